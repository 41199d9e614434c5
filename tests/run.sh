#!/usr/bin/env bash
# tests/run.sh BUILD [--slow]: run the unit test programs of BUILD (build/rel or
# build/san) and the tool tests against BUILD/bin; --slow adds tests/slow/.
# Each test is one program or script; exit 0 is a pass. Ends with "N passed, N failed".
set -u
build=${1:?usage: tests/run.sh BUILD [--slow]}
slow=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export AMLFS_BIN="$root/$build/bin"
export AMLFS_ROOT="$root"
export PATH="$AMLFS_BIN:$PATH"
logdir="$root/$build/test-logs"
mkdir -p "$logdir"
pass=0 fail=0 failed=()

run_one() { # name, command...
    local name=$1; shift
    local log="$logdir/${name//\//-}.log"
    local t0=$SECONDS
    if "$@" >"$log" 2>&1; then
        pass=$((pass + 1)); printf 'PASS %-40s %3ds\n' "$name" $((SECONDS - t0))
    else
        fail=$((fail + 1)); failed+=("$name")
        printf 'FAIL %-40s %3ds  (log: %s)\n' "$name" $((SECONDS - t0)) "$log"
        tail -n 20 "$log" | sed 's/^/     | /'
    fi
}

for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "unit/$(basename "$t")" "$t"
done
for t in tests/tools/test_*.sh tests/tools/test_*.py; do
    [ -f "$t" ] || continue
    case $t in
        *.py) run_one "tools/$(basename "$t" .py)" /usr/bin/python3 "$t" ;;
        *) run_one "tools/$(basename "$t" .sh)" bash "$t" ;;
    esac
done
if [ "$slow" = --slow ]; then
    for t in tests/slow/test_*.sh tests/slow/test_*.py tests/slurm/test_*.py; do
        [ -f "$t" ] || continue
        case $t in
            *.py) run_one "$(basename "$(dirname "$t")")/$(basename "$t" .py)" /usr/bin/python3 "$t" ;;
            *) run_one "$(basename "$(dirname "$t")")/$(basename "$t" .sh)" bash "$t" ;;
        esac
    done
fi
echo
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed in ${SECONDS}s"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
