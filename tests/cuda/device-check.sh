#!/usr/bin/env bash
# tests/cuda/device-check.sh: the GPU checks of the CUDA build, in one go, on a machine with
# a GPU and the CUDA toolkit but perhaps without the build's -dev packages (HDF5, oneDNN,
# OpenBLAS, Random123): it runs the programs `make cuda` made here and carried there in
# build/cuda (oneDNN and its needs travel in build/cuda/lib), and builds nothing.
#
#   OUT=/some/dir tests/cuda/device-check.sh        (from anywhere; OUT is required)
#
# Parts, each under `timeout`, all of them within about 4.5 minutes:
#   nvidia-smi         nvidia-smi -L (and the full listing into env.log)
#   libraries          ldd of each program; a library not found is looked for in the CUDA
#                      toolkit and in python3's site-packages (the nvidia-* wheels that
#                      PyTorch brings: cuDNN, cuBLAS) and its folder put on LD_LIBRARY_PATH;
#                      what stays missing is printed
#   amlfs-cuda-check   the CUDA loss and random streams against the CPU
#   layers-check       amlfs-cuda-layers-check: every layer of the CUDA backend against the
#                      C reference (AMLFS_CUDA_LOG=1: the convolution algorithms chosen)
#   bench-train        build/cuda/bench-train --device cuda, small-cnn and resnet20, short
#                      windows; JSON in train-cuda-amlfs.json
#   tools              with AMLFS_DEVICE_DATA (a Fashion-MNIST file from amlfs-prep): the
#                      tools of build/cuda/bin train small-cnn one epoch on cuda:0 and on
#                      the CPU from one start and must agree (tests/cuda/device-tools.sh);
#                      output in bench-train.log
#   pytorch small-cnn, pytorch resnet20
#                      bench/train_torch.py speed --device cuda, when python3's torch sees
#                      the GPU; both results in train-cuda-torch.json
# Writes into $OUT at most 8 files (what the device tool brings back): summary.txt (a line
# per part: ok, FAIL or skipped, and why), env.log, amlfs-cuda-check.log,
# amlfs-cuda-layers-check.log, bench-train.log, train-cuda-amlfs.json, pytorch.log,
# train-cuda-torch.json. Prints the failing rows, the speeds and the summary on stdout.
# Exit 0 when no part failed, 1 otherwise, 2 on bad usage.
set -u
case "${1:-}" in
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "device-check: error: unexpected argument '$1' (see --help)" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 2
out=${OUT:-}
if [ -z "$out" ]; then
    echo "device-check: error: set OUT to the directory for the logs (OUT=DIR $0)" >&2
    exit 2
fi
mkdir -p "$out" || { echo "device-check: error: $out: cannot create it" >&2; exit 2; }
out=$(cd "$out" && pwd)
B=build/cuda
bins=("$B/amlfs-cuda-check" "$B/amlfs-cuda-layers-check" "$B/bench-train")
t0=$(date +%s)
deadline=270 # seconds for every part together, so the script ends within 5 minutes
summary=$out/summary.txt env_log=$out/env.log
: >"$summary"
: >"$env_log"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/amlfs-device-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

elapsed() { echo $(($(date +%s) - t0)); }

# record PART RESULT: one line of the summary
record() { printf '%-20s %s\n' "$1" "$2" | tee -a "$summary" >/dev/null; }

# The seconds a part may run: its own limit, or what is left of the deadline.
budget() {
    local left=$((deadline - $(elapsed)))
    if [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}

# run_part NAME LIMIT LOG COMMAND...: runs it under timeout, output appended to LOG;
# records ok / FAIL / skipped; returns the command's status (3 when skipped).
run_part() {
    local name=$1 limit=$2 log=$3
    shift 3
    local t
    t=$(budget "$limit")
    if [ "$t" -lt 10 ]; then
        record "$name" "skipped (out of time: $(elapsed) s of $deadline used)"
        return 3
    fi
    echo "== $name: $* (timeout $t s)" >>"$log"
    local start rc took why
    start=$(date +%s)
    timeout -k 5 "$t" "$@" >>"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    echo "== $name: exit $rc after $took s" >>"$log"
    case $rc in
        0) record "$name" "ok ($took s)" ;;
        124 | 137) record "$name" "FAIL (timed out after $t s; see $(basename "$log"))" ;;
        *)
            why="exit $rc"
            [ "$rc" -gt 128 ] && why="killed by signal $((rc - 128))$([ $rc = 134 ] && echo ' (abort: a CUDA error?)')"
            [ "$rc" = 2 ] && [ "$name" != bench-train ] && why="exit 2: no GPU seen"
            [ "$rc" = 127 ] && why="exit 127: the program or a library not found"
            record "$name" "FAIL ($why, $took s; see $(basename "$log"))"
            ;;
    esac
    return $rc
}

# ---- environment -------------------------------------------------------------------
{
    echo "device-check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) processors"
    uname -a
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "LD_LIBRARY_PATH at start: ${LD_LIBRARY_PATH:-}"
    command -v nvcc >/dev/null && nvcc --version | tail -2
    [ -x /usr/local/cuda/bin/nvcc ] && /usr/local/cuda/bin/nvcc --version | tail -1
    echo "python3: $(command -v python3 || echo none)"
} >>"$env_log" 2>&1

if run_part nvidia-smi 20 "$env_log" nvidia-smi -L; then
    timeout 20 nvidia-smi >>"$env_log" 2>&1
fi
grep -m3 '^GPU' "$env_log"

# ---- libraries ---------------------------------------------------------------------
orig_ld_path=${LD_LIBRARY_PATH:-}
have_bins=1
for b in "${bins[@]}"; do
    if [ ! -x "$b" ]; then
        echo "device-check: $b missing: run make cuda where the build packages are, carry build/cuda" |
            tee -a "$env_log"
        have_bins=0
    fi
done
missing_libs() { ldd "${bins[@]}" 2>/dev/null | awk '/=> not found/ { print $1 }' | sort -u; }
lib_dirs=(/usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib
          /usr/lib/x86_64-linux-gnu /usr/local/nvidia/lib64 /usr/local/nvidia/lib)
py_sites=$(timeout 30 python3 -c 'import site, sys
print("\n".join(p for p in site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null)
find_lib() { # SONAME: the first path holding it, or nothing
    local d
    for d in "${lib_dirs[@]}"; do
        [ -e "$d/$1" ] && { echo "$d/$1"; return; }
    done
    local s
    for s in $py_sites; do
        [ -d "$s" ] || continue
        timeout 20 find "$s" -maxdepth 5 -name "$1" -print -quit 2>/dev/null | grep . && return
    done
}
added=""
if [ $have_bins = 1 ]; then
    for round in 1 2 3; do
        missing=$(missing_libs)
        [ -z "$missing" ] && break
        for lib in $missing; do
            path=$(find_lib "$lib")
            if [ -n "$path" ]; then
                dir=$(dirname "$path")
                case ":${LD_LIBRARY_PATH:-}:" in
                    *":$dir:"*) ;;
                    *)
                        export LD_LIBRARY_PATH=$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
                        added="$added $dir"
                        echo "libraries: $lib found in $dir (round $round)" >>"$env_log"
                        ;;
                esac
            fi
        done
    done
    # last: the toolkit's own folder, for what cuDNN opens at run time (NVRTC) from wheels
    # whose RUNPATH hides the programs' RPATH
    for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do
        [ -d "$d" ] || continue
        case ":${LD_LIBRARY_PATH:-}:" in
            *":$d:"*) ;;
            *) export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d ;;
        esac
    done
    {
        echo "LD_LIBRARY_PATH for the programs: ${LD_LIBRARY_PATH:-}"
        for b in "${bins[@]}"; do
            echo "== ldd $b"
            ldd "$b"
        done
    } >>"$env_log" 2>&1
    missing=$(missing_libs | tr '\n' ' ')
    # cuDNN 9 opens its engines at run time, beside libcudnn.so.9
    cudnn=$(ldd "$B/amlfs-cuda-layers-check" 2>/dev/null | awk '$1 == "libcudnn.so.9" { print $3 }')
    subs=""
    if [ -n "$cudnn" ] && [ -e "$cudnn" ]; then
        for s in libcudnn_cnn.so.9 libcudnn_ops.so.9 libcudnn_engines_precompiled.so.9 \
                 libcudnn_engines_runtime_compiled.so.9 libcudnn_heuristic.so.9 libcudnn_graph.so.9; do
            [ -e "$(dirname "$cudnn")/$s" ] || subs="$subs $s"
        done
    fi
    where=$(ldd "${bins[@]}" 2>/dev/null | awk '$1 ~ /^lib(cudnn|cublas|cudart|dnnl)\./ { print $1 " " $3 }' |
            sort -u | tr '\n' ';')
    echo "libraries: $where" | tee -a "$env_log"
    if [ -n "$missing" ]; then
        record libraries "FAIL (not found: $missing; searched ${lib_dirs[*]} and python3's site-packages)"
    elif [ -n "$subs" ]; then
        record libraries "FAIL (beside $cudnn, missing:$subs)"
    else
        record libraries "ok${added:+ (LD_LIBRARY_PATH +$added)}"
    fi
else
    record libraries "FAIL (programs missing in $B: carry build/cuda from make cuda)"
fi

# ---- the checks ------------------------------------------------------------------------
if [ $have_bins = 1 ]; then
    run_part amlfs-cuda-check 60 "$out/amlfs-cuda-check.log" "$B/amlfs-cuda-check"
    AMLFS_CUDA_LOG=1 run_part layers-check 120 "$out/amlfs-cuda-layers-check.log" \
        "$B/amlfs-cuda-layers-check"
    run_part bench-train 90 "$out/bench-train.log" "$B/bench-train" --device cuda --model all \
        --warmup 3 --windows 3 --seconds 1 --json "$out/train-cuda-amlfs.json"
    # the tools on the GPU and on the CPU from one start (tests/cuda/device-tools.sh),
    # when a dataset file came along (AMLFS_DEVICE_DATA)
    if [ -n "${AMLFS_DEVICE_DATA:-}" ] && [ -f "$AMLFS_DEVICE_DATA" ] && [ -x "$B/bin/amlfs-train-epoch" ]; then
        run_part tools 120 "$out/bench-train.log" tests/cuda/device-tools.sh "$B/bin" \
            "$AMLFS_DEVICE_DATA" "$tmp/tools" "$(nproc)"
    else
        record tools "skipped (set AMLFS_DEVICE_DATA to a Fashion-MNIST file from amlfs-prep; needs $B/bin)"
    fi
else
    for p in amlfs-cuda-check layers-check bench-train; do
        record "$p" "skipped (programs missing in $B)"
    done
fi

# ---- PyTorch on the GPU (its own libraries: the LD_LIBRARY_PATH we started with) -------
torch_log=$out/pytorch.log
: >"$torch_log"
if LD_LIBRARY_PATH=$orig_ld_path timeout 60 python3 -c 'import torch
assert torch.cuda.is_available(), "torch.cuda.is_available() is False"
print("torch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN",
      torch.backends.cudnn.version(), torch.cuda.get_device_name(0))' >>"$torch_log" 2>&1; then
    for model in small-cnn resnet20; do
        LD_LIBRARY_PATH=$orig_ld_path run_part "pytorch $model" 60 "$torch_log" \
            python3 bench/train_torch.py speed --model "$model" --device cuda --warmup 3 \
            --windows 3 --seconds 1 --json "$tmp/torch-$model.json"
    done
    LD_LIBRARY_PATH=$orig_ld_path python3 - "$tmp" "$out/train-cuda-torch.json" <<'EOF' >>"$torch_log" 2>&1
import json, os, sys
rows = []
for model in ("small-cnn", "resnet20"):
    path = os.path.join(sys.argv[1], f"torch-{model}.json")
    if os.path.exists(path):
        with open(path) as f:
            rows.append(json.load(f))
with open(sys.argv[2], "w") as f:
    json.dump({"bench": "train-pytorch", "device": "cuda", "rows": rows}, f, indent=1)
    f.write("\n")
EOF
else
    why=$(tail -n 1 "$torch_log")
    record "pytorch" "skipped (python3 has no torch on CUDA: ${why:-no output})"
fi

# ---- what the lead reads first ---------------------------------------------------------
echo
echo "-- failing rows and errors (amlfs-cuda-layers-check.log, amlfs-cuda-check.log)"
grep -hE 'FAIL|MISMATCH|error|amlfs: cuda:' "$out/amlfs-cuda-layers-check.log" \
    "$out/amlfs-cuda-check.log" 2>/dev/null | head -n 60
grep -hE '^amlfs-cuda-(layers-)?check: (all agree|cuda)' "$out/amlfs-cuda-layers-check.log" \
    "$out/amlfs-cuda-check.log" 2>/dev/null
echo
echo "-- bench-train (amlfs) and PyTorch on the GPU"
grep -hE '^(model|small-cnn|resnet20|cuda:|cpu:|cuda |cpu |train loss diff|GPU MB)|error' \
    "$out/bench-train.log" 2>/dev/null
grep -hE '^(torch|pytorch)|[Ee]rror' "$torch_log" 2>/dev/null | tail -n 20
python3 - "$out/train-cuda-amlfs.json" "$out/train-cuda-torch.json" <<'EOF' 2>/dev/null
import json, sys
try:
    a = {r["model"]: r for r in json.load(open(sys.argv[1]))["rows"]}
    p = {r["model"]: r for r in json.load(open(sys.argv[2]))["rows"]}
except (OSError, ValueError, KeyError):
    sys.exit(0)
for m in ("small-cnn", "resnet20"):
    if m in a and m in p:
        print(f"speed {m}: amlfs {a[m]['images_per_s']:.0f} img/s, PyTorch "
              f"{p[m]['images_per_s']:.0f} img/s, ratio {a[m]['images_per_s'] / p[m]['images_per_s']:.2f}x; "
              f"GPU memory amlfs {a[m].get('gpu_mem_used_mb', float('nan')):.0f} MB in use "
              f"(context alone {a[m].get('gpu_mem_base_mb', float('nan')):.0f}), PyTorch peak "
              f"{p[m].get('gpu_peak_reserved_mb', float('nan')):.0f} MB reserved")
EOF
echo
echo "-- summary ($(elapsed) s; files in $out)"
cat "$summary"
if grep -q ' FAIL' "$summary"; then exit 1; fi
exit 0
