#!/usr/bin/env bash
# workflow/demo.sh: what `make demo` runs: a real, short AM-LFS search on Fashion-MNIST
# (configs/fashion-mnist.conf: 10,000 training images, B = 8, 12 epochs) and its report.
# Run again, it finds the finished run and only rewrites the report; interrupted, it
# resumes where it stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${DEMO_OUT:-$root/demo-run}
export PATH="$root/bin:$PATH"

echo "demo: an AM-LFS search on Fashion-MNIST into $out (under 10 minutes on 2 cores)"
amlfs-run --config "$root/configs/fashion-mnist.conf" --out "$out"
amlfs-report "$out"
echo "demo: the report: $out/report/index.html"
echo "demo: every file of the run can be read with h5dump or amlfs-check, e.g."
echo "demo:   amlfs-check $out/policy/epoch-0013.h5"
