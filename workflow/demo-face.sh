#!/usr/bin/env bash
# workflow/demo-face.sh: what `make demo-face` runs: a face search on a generated
# face-like folder (configs/face-small.conf: face-small, 48x40, the cosine space from the
# CosFace fit, B = 8, 12 epochs, rewarded by held-out identities' verification pairs),
# then its baseline, the exact CosFace loss (mode = fixed, loss = cosface, the best of B
# kept each epoch) on the same prepared data, and the search's report against it. The
# folder is written once by amlfs-synth face (CASIA layout, an LFW-style pairs.txt,
# probe identities and distractors). Run again, it finds the finished runs and only
# rewrites the report; interrupted, it resumes where it stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${DEMO_OUT:-$root/demo-face-run}
control=${DEMO_CONTROL_OUT:-$out-cosface}
faces=${DEMO_FACES:-$root/demo-faces}
export PATH="$root/bin:$PATH"

echo "demo-face: a face search into $out, then the exact CosFace baseline into $control"
echo "demo-face: (about 3 minutes on 2 cores)"
if [ ! -f "$faces/lfw/pairs.txt" ]; then
    rm -rf "$faces"
    mkdir -p "$(dirname "$faces")"
    amlfs-synth face --out "$faces" --identities 60 --images-per-identity 30 --heldout 20 \
        --probe-identities 10 --distractors 500 --size 48x40 --seed 2019
fi
amlfs-run --config "$root/configs/face-small.conf" --set src="$faces" --out "$out"
amlfs-run --config "$root/configs/face-small.conf" --set src="$faces" --out "$control" \
    --set mode=fixed --set loss=cosface --set data="$out/data/data.h5"
amlfs-report "$out" --control "$control"
get() { amlfs-check --get "$1/final/eval-test.h5" "/@$2"; }
for r in "$out" "$control"; do
    printf 'demo-face: %s: test verification %.4f, TAR at FAR 1e-3 %.4f, rank-1 %.4f\n' \
        "$(basename "$r")" "$(get "$r" accuracy)" "$(get "$r" tar_at_far)" "$(get "$r" rank1)"
done
echo "demo-face: the report, the search against the CosFace baseline: $out/report/index.html"
