#!/usr/bin/env bash
# tests/cuda/device-tools.sh: the tools themselves on the GPU. From one start checkpoint
# and the identity theta, amlfs-train-epoch trains small-cnn one epoch on DATA with
# --device cuda:0 and again with --device cpu, and amlfs-eval scores each on the val
# split on its own device. The two differ only by float32 rounding (cuDNN's sums and
# oneDNN's), so after one epoch their train loss and val top-1 must agree closely:
#   |train loss cuda - cpu| <= 0.02 |cpu|, |val top-1 cuda - cpu| <= 0.02
# (a wrong layer or a missed synchronisation would be off by far more). Prints each
# side's figures and images/s (from amlfs-train-epoch's stderr).
#
#   tests/cuda/device-tools.sh BIN DATA WORK [THREADS]
#
# BIN: the CUDA build's tools (build/cuda/bin); DATA: a Fashion-MNIST dataset file made
# by amlfs-prep; WORK: a scratch directory. Exit 0 when the two agree, 1 otherwise.
# GPU=cpu runs the GPU side on the CPU as well (to try the script where there is none).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BIN DATA WORK [THREADS]" >&2; exit 2; }
T=$1 data=$2 w=$3 threads=${4:-$(nproc)}
mkdir -p "$w"

"$T/amlfs-init" --policy-only --mode fixed --out "$w/policy.h5"
"$T/amlfs-sample" --policy "$w/policy.h5" --epoch 1 --samples 2 --out "$w/thetas.h5"
"$T/amlfs-init" --model small-cnn --data "$data" --epochs 3 --out "$w/start.h5"

gpu=${GPU:-cuda:0}
for tag in cuda cpu; do
    dev=cpu
    [ $tag = cuda ] && dev=$gpu
    start=$(date +%s%N)
    "$T/amlfs-train-epoch" --checkpoint "$w/start.h5" --thetas "$w/thetas.h5" --index 0 \
        --data "$data" --out "$w/$tag.h5" --device "$dev" --threads "$threads" 2>"$w/$tag.log"
    end=$(date +%s%N)
    "$T/amlfs-eval" --checkpoint "$w/$tag.h5" --data "$data" --split val --out "$w/$tag-val.h5" \
        --device "$dev" --threads "$threads"
    echo "$dev: train-epoch $(((end - start) / 1000000)) ms wall; $(tail -n 1 "$w/$tag.log")"
done

"${PYTHON:-python3}" - "$w" <<'EOF'
import sys
import h5py
w = sys.argv[1]
fig = {}
for tag in ("cuda", "cpu"):
    with h5py.File(f"{w}/{tag}.h5", "r") as c, h5py.File(f"{w}/{tag}-val.h5", "r") as e:
        status = c.attrs["status"]
        status = status.decode() if isinstance(status, bytes) else str(status)
        fig[tag] = (status, float(c.attrs["train_loss"]), float(c.attrs["train_top1"]),
                    float(e.attrs["top1"]), float(e.attrs["loss"]))
        print(f"{tag:5s} status {fig[tag][0]:8s} train loss {fig[tag][1]:.5f} train top-1 "
              f"{fig[tag][2]:.4f} val top-1 {fig[tag][3]:.4f} val loss {fig[tag][4]:.5f}")
g, c = fig["cuda"], fig["cpu"]
ok = (abs(g[1] - c[1]) <= 0.02 * abs(c[1]) and abs(g[3] - c[3]) <= 0.02
      and g[0] == "ok" and c[0] == "ok")
print(f"train loss diff {g[1] - c[1]:+.5f} (rel {abs(g[1] - c[1]) / abs(c[1]):.2e}), "
      f"val top-1 diff {g[3] - c[3]:+.4f}: {'agree' if ok else 'DISAGREE'}")
sys.exit(0 if ok else 1)
EOF
