#!/usr/bin/env bash
# tests/cuda/device-search.sh: a whole search on the GPU, as a user runs one: amlfs-run
# with the CUDA build's tools (AMLFS_BIN), device = cuda:0, on a prepared Fashion-MNIST
# file; then the run directory is checked (amlfs-check on the
# final policy and checkpoint, the test evaluation present) and the per-epoch lines and
# the result printed.
#
#   tests/cuda/device-search.sh BIN DATA WORK [EPOCHS]
#
# BIN: the CUDA build's tools (build/cuda/bin); DATA: a dataset file from amlfs-prep;
# WORK: a scratch directory. DEVICE (default cuda:0) and JOBS (default 1: one GPU per
# job) change the run's device and jobs, e.g. DEVICE=cuda:0,0 JOBS=2 for two jobs on the
# one GPU, or DEVICE=cpu to try the script where there is none. Needs GNU Parallel on PATH (on a machine without
# it, put its program on PATH first). Exit 0 when the search finished and its files check.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BIN DATA WORK [EPOCHS]" >&2; exit 2; }
bin=$(realpath "$1") data=$(realpath "$2") work=$3 epochs=${4:-4}
root=$(cd "$(dirname "$0")/../.." && pwd)
for tool in parallel; do
    command -v "$tool" >/dev/null || { echo "device-search: $tool not on PATH" >&2; exit 2; }
done
mkdir -p "$work"
run=$work/run
start=$(date +%s)
AMLFS_BIN=$bin "$root/workflow/amlfs-run" --config "$root/configs/fashion-mnist.conf" \
    --out "$run" --set data="$data" --set device="${DEVICE:-cuda:0}" --set jobs="${JOBS:-1}" --set threads=2 \
    --set epochs="$epochs"
echo "device-search: amlfs-run finished in $(($(date +%s) - start)) s"
"$bin/amlfs-check" "$run/final/checkpoint.h5" >/dev/null
"$bin/amlfs-check" "$run/final/eval-test.h5" >/dev/null
"$bin/amlfs-check" "$(ls "$run"/policy/epoch-*.h5 | tail -n 1)" >/dev/null
grep -h '^# device' "$run/config" || true
echo "device-search: ok"
