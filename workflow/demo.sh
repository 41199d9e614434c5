#!/usr/bin/env bash
# workflow/demo.sh: what `make demo` runs: a real, short AM-LFS search on Fashion-MNIST
# (configs/fashion-mnist.conf: 10,000 training images, B = 8, 12 epochs), then its
# control (the same config with mode = fixed: cross-entropy, the best of B kept each
# epoch, no search) on the same prepared data, and the search's report against the
# control. Run again, it finds the finished runs and only rewrites the report;
# interrupted, it resumes where it stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${DEMO_OUT:-$root/demo-run}
control=${DEMO_CONTROL_OUT:-$out-control}
export PATH="$root/bin:$PATH"

echo "demo: an AM-LFS search on Fashion-MNIST into $out, then its control into $control"
echo "demo: (under 10 minutes on 2 cores)"
amlfs-run --config "$root/configs/fashion-mnist.conf" --out "$out"
amlfs-run --config "$root/configs/fashion-mnist.conf" --out "$control" --set mode=fixed \
    --set data="$out/data/data.h5"
amlfs-report "$out" --control "$control"
# the result first: the two test top-1 (attributes of eval-test.h5)
top1() { amlfs-check --get "$1/final/eval-test.h5" /@top1; }
s=$(top1 "$out") c=$(top1 "$control")
awk -v s="$s" -v c="$c" 'BEGIN { d = 100 * (s - c);
    printf "demo: test top-1: the search %.4f, its control %.4f: %+.2f points (%s)\n", s, c, d,
           (d > 0 ? "above the control" : "not above the control") }'
echo "demo: the report, the search against its control: $out/report/index.html"
echo "demo: every file of the runs can be read with h5dump or amlfs-check, e.g."
echo "demo:   amlfs-check $out/policy/epoch-0013.h5"
