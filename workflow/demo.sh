#!/usr/bin/env bash
# workflow/demo.sh: what `make demo` runs. Until the training engine lands, a search
# cannot train, so the demo shows the parts that exist on real data: the policy of a
# search (mu_1 fitted to focal loss), the epoch-1 draw of B = 8 losses, and each sampled
# loss on real Fashion-MNIST labels, scored by a nearest-class-mean classifier of the
# pixels (the user's side: numpy writes the loss-input file, as any framework could).
# Output: demo-run/ with every HDF5 file, demo-run/report/losses.csv and transforms.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${AMLFS_BIN:-$root/build/rel/bin}
src=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
out=${DEMO_OUT:-$root/demo-run}
export PATH="$bin:$PATH"

for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
         t10k-labels-idx1-ubyte.gz; do
    [ -f "$src/$f" ] || { echo "demo: $src/$f missing (apt-get install dataset-fashion-mnist," \
                               "or set FASHION_MNIST=DIR)" >&2; exit 2; }
done
mkdir -p "$out/policy" "$out/epoch-0001" "$out/report"
echo "demo: run directory $out"

amlfs-init --policy-only --init focal --intervals 6 --seed 2019 \
    --out "$out/policy/epoch-0001.h5" >/dev/null
amlfs-check "$out/policy/epoch-0001.h5" | grep -E '@(init|init_max_error|sigma) ' | sed 's/^/demo:   /'
amlfs-sample --policy "$out/policy/epoch-0001.h5" --epoch 1 --samples 8 \
    --out "$out/epoch-0001/thetas.h5" >/dev/null
# the identity, for comparison: fixed mode draws copies of mu_1 = identity
amlfs-init --policy-only --mode fixed --out "$out/policy/identity.h5" >/dev/null
amlfs-sample --policy "$out/policy/identity.h5" --epoch 1 --samples 2 \
    --out "$out/epoch-0001/identity.h5" >/dev/null

/usr/bin/python3 "$root/workflow/demo_logits.py" "$src" "$out/epoch-0001/batch.h5"

printf 'sample,mean_loss,clamped,mean_weight\n' > "$out/report/losses.csv"
row() { # name thetas index
    amlfs-loss --thetas "$2" --index "$3" --input "$out/epoch-0001/batch.h5" \
        --out "$out/epoch-0001/loss-$1.h5" >/dev/null
    /usr/bin/python3 - "$out/epoch-0001/loss-$1.h5" "$1" >> "$out/report/losses.csv" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    print(f"{sys.argv[2]},{f.attrs['mean']:.6f},{f.attrs['clamped']},{f['weight'][()].mean():.6f}")
PY
}
row cross-entropy "$out/epoch-0001/identity.h5" 0
for i in 0 1 2 3 4 5 6 7; do row "sample-$i" "$out/epoch-0001/thetas.h5" $i; done
echo "demo: the 8 sampled losses on 2,000 real Fashion-MNIST test images:"
column -s, -t < "$out/report/losses.csv" | sed 's/^/demo:   /'

/usr/bin/python3 "$root/workflow/demo_plot.py" "$out/epoch-0001/thetas.h5" "$out/report"
gnuplot "$out/report/transforms.gp"
echo "demo: plot of the sampled t and tau: $out/report/transforms.png"
echo "demo: done; inspect any file with h5dump or amlfs-check, e.g."
echo "demo:   amlfs-check $out/epoch-0001/thetas.h5"
