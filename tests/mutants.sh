#!/usr/bin/env bash
# tests/mutants.sh [--list FILE] [--keep] [--from N] [--to N] [--only N,...]:
# mutation testing, not part of make test (slow: one incremental build per mutant).
#
# Reads single-line mutants from FILE (default tests/mutants.txt), one a line:
#   path|old text|new text|tests
# `old text` is a fixed string that must occur on exactly one line of path (a mutant that
# matches none or several is reported "bad" and left out of the score); that occurrence
# is replaced by `new text`. `tests` are the tests that should catch it, separated by
# spaces: unit/test_NAME (build/rel/tests/test_NAME), or a Python test file relative to
# tests/ (tools/test_run.py, slow/test_resume.py) with optional unittest names after a
# colon (tools/test_run.py:Run.test_resume,Run.test_invalid). '#' lines and blank lines
# are ignored; a '\|' in a field is a literal '|'.
#
# The tree (working tree, uncommitted changes included, minus build/ and .git) is copied
# to a scratch directory and built once with make -j2 all; then each mutant is applied,
# the copy rebuilt, its tests run (each with a 900 s limit), and the file restored. One
# line per mutant: killed (a test failed), survived, or bad (no single match, or the
# mutant does not build: such a mutant must be rewritten); then the
# score, killed / (killed + survived). Exit 0 when every valid mutant was killed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
list=$root/tests/mutants.txt
keep=0 from=1 to=1000000 only=
while [ $# -gt 0 ]; do
    case $1 in
        --list) list=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --from) from=$2; shift 2 ;;
        --to) to=$2; shift 2 ;;
        --only) only=,$2,; shift 2 ;;
        -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "mutants.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$list" ] || { echo "mutants.sh: error: $list: no such file" >&2; exit 2; }

scratch=$(mktemp -d /tmp/amlfs-mutants-XXXXXX)
[ "$keep" = 1 ] || trap 'rm -rf "$scratch"' EXIT
log=$scratch/logs
mkdir -p "$scratch/tree" "$log"
tar -C "$root" --exclude=./build --exclude=./.git --exclude=./bin -cf - . | tar -C "$scratch/tree" -xf -
cd "$scratch/tree"
echo "mutants.sh: scratch copy $scratch/tree; building it once" >&2
make -j2 all >"$log/build-0.log" 2>&1 || { echo "mutants.sh: error: the unmutated copy does not build ($log/build-0.log)" >&2; keep=1; exit 1; }

export AMLFS_ROOT=$PWD AMLFS_BIN=$PWD/build/rel/bin PATH=$PWD/build/rel/bin:$PATH

run_test() { # spec log: 0 when the test passes
    local spec=$1 out=$2 file names
    case $spec in
        unit/*) timeout 900 "build/rel/tests/${spec#unit/}" >>"$out" 2>&1 ;;
        *)
            file=${spec%%:*}
            names=
            [[ $spec == *:* ]] && names=${spec#*:}
            # shellcheck disable=SC2086
            timeout 900 /usr/bin/python3 "tests/$file" ${names//,/ } >>"$out" 2>&1 ;;
    esac
}

killed=0 survived=0 bad=0 n=0
survivors=()
while IFS= read -r line || [ -n "$line" ]; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    n=$((n + 1))
    [ "$n" -lt "$from" ] || [ "$n" -gt "$to" ] && continue
    [ -n "$only" ] && [[ $only != *",$n,"* ]] && continue
    # split on unescaped |
    IFS=$'\x1f' read -r path old new tests <<<"$(sed 's/\\|/\x1e/g; s/|/\x1f/g; s/\x1e/|/g' <<<"$line")"
    where=$(/usr/bin/python3 - "$path" "$old" "$new" <<'EOF'
import sys
path, old, new = sys.argv[1:4]
try:
    lines = open(path).read().split("\n")
except OSError as e:
    print(f"BAD {e}")
    sys.exit()
hits = [i for i, l in enumerate(lines) if old in l]
if len(hits) != 1:
    print(f"BAD the old text is on {len(hits)} lines")
    sys.exit()
i = hits[0]
if lines[i].count(old) != 1:
    print("BAD the old text occurs more than once on its line")
    sys.exit()
open(path + ".mutant-orig", "w").write("\n".join(lines))
lines[i] = lines[i].replace(old, new)
open(path, "w").write("\n".join(lines))
print(i + 1)
EOF
)
    if [[ $where == BAD* ]]; then
        bad=$((bad + 1))
        printf '%3d bad       %s: %s\n' "$n" "$path" "${where#BAD }"
        continue
    fi
    mlog=$log/mutant-$n.log
    echo "== $path:$where: '$old' -> '$new'" >"$mlog"
    status=survived by=
    if ! make -j2 all >>"$mlog" 2>&1; then
        status=bad by="does not build"
    else
        for t in $tests; do
            echo "== test $t" >>"$mlog"
            if ! run_test "$t" "$mlog"; then status=killed by=$t; break; fi
        done
    fi
    mv "$path.mutant-orig" "$path"
    touch "$path"
    case $status in
        killed) killed=$((killed + 1)) ;;
        bad) bad=$((bad + 1)) ;;
        *) survived=$((survived + 1)); survivors+=("$n") ;;
    esac
    printf '%3d %-9s %s:%s  %s -> %s  [%s]\n' "$n" "$status" "$path" "$where" "$old" "$new" "${by:-$tests}"
done <"$list"
make -j2 all >"$log/build-end.log" 2>&1
total=$((killed + survived))
echo
if [ "$total" -gt 0 ]; then
    echo "score: $killed of $total killed ($(awk -v k=$killed -v t=$total 'BEGIN { printf "%.1f", 100 * k / t }') %), $bad bad"
else
    echo "score: no valid mutant ($bad bad)"
fi
[ ${#survivors[@]} -gt 0 ] && echo "survived: ${survivors[*]} (logs: $log; --keep keeps them)"
[ "$total" -gt 0 ] && [ "$survived" -eq 0 ]
