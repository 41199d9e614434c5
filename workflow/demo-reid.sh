#!/usr/bin/env bash
# workflow/demo-reid.sh: what `make demo-reid` runs: a re-ID search on a generated
# Market-1501-layout folder (configs/reid-small.conf: reid-small at 64x32, P x K
# batches, the cosine space, rewarded by held-out identities' validation mAP), then the
# fixed SphereReID loss (mode = fixed) and the random ablation (mode = random) on the
# same prepared data, and the search's report against the fixed loss. The folder is
# written once by amlfs-synth market. Run again, it finds the finished runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${DEMO_OUT:-$root/demo-reid-run}
market=${DEMO_MARKET:-$root/demo-market}
export PATH="$root/bin:$PATH"

echo "demo-reid: a re-ID search into $out, then the fixed loss and the random ablation"
if [ ! -d "$market/bounding_box_test" ]; then
    rm -rf "$market"
    mkdir -p "$(dirname "$market")"
    amlfs-synth market --out "$market" --identities 60 --test-identities 30 \
        --images-per-camera 8 --size 64x32 \
        --seed 2019
fi
amlfs-run --config "$root/configs/reid-small.conf" --set src="$market" --out "$out"
amlfs-run --config "$root/configs/reid-small.conf" --set src="$market" --out "$out-fixed" \
    --set mode=fixed --set data="$out/data/data.h5"
amlfs-run --config "$root/configs/reid-small.conf" --set src="$market" --out "$out-random" \
    --set mode=random --set data="$out/data/data.h5"
amlfs-report "$out" --control "$out-fixed"
get() { amlfs-check --get "$1/final/eval-test.h5" "/@$2"; }
for r in "$out" "$out-fixed" "$out-random"; do
    printf 'demo-reid: %s: test mAP %.4f, rank-1 %.4f\n' "$(basename "$r")" "$(get "$r" mAP)" \
        "$(get "$r" rank1)"
done
echo "demo-reid: the report, the search against the fixed loss: $out/report/index.html"
