#!/usr/bin/env bash
# The one-command set-up on a machine with none of the packages, without such a machine:
# on PATH, a dpkg-query that knows no package and a pkg-config that knows none until an
# apt-get (which records its calls) has "installed" them; after that both answer as the
# real ones do. `make setup`, the first step of `make demo` and `make test`, must install
# and then find HDF5 (whose header only pkg-config locates on Debian); a make that reads
# its flags before `deps` ran (what `make demo` was: `demo: deps all`) must not, or the
# fakes prove nothing; and a second `make setup` must not call apt-get (no network).
set -euo pipefail
root=${AMLFS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
state=$tmp/installed
fail() { echo "FAIL: $*"; exit 1; }

# fake NAME: a command that is the real one once $state exists, and knows nothing before
fake() {
    printf '#!/bin/sh\n[ -f "%s" ] && exec %s "$@"\nexit 1\n' "$state" "$(command -v "$1")" \
        > "$tmp/bin/$1"
}
fake pkg-config
fake dpkg-query
printf '#!/bin/sh\necho "$*" >> "%s"\n[ "$1" = install ] && touch "%s"\nexit 0\n' \
    "$tmp/apt.log" "$state" > "$tmp/bin/apt-get"
chmod +x "$tmp/bin/"*
export PATH="$tmp/bin:$PATH"
unset HDF5_DIR DNNL_DIR MAKEFLAGS MFLAGS MAKELEVEL

# the old way: one make whose flags were read before the packages came
if make -C "$root" --no-print-directory deps check-deps > "$tmp/old.out" 2>&1; then
    cat "$tmp/old.out"; fail "a make that resolved its flags before deps found HDF5"
fi
grep -q "HDF5 not found" "$tmp/old.out" || { cat "$tmp/old.out"; fail "expected 'HDF5 not found'"; }
echo "ok: one make reading its flags before deps fails, as on a fresh machine"

rm -f "$state" "$tmp/apt.log"
make -C "$root" --no-print-directory setup > "$tmp/setup.out" 2>&1 ||
    { cat "$tmp/setup.out"; fail "make setup failed on a machine without the packages"; }
grep -q '^install .*libhdf5-dev' "$tmp/apt.log" || fail "apt-get install libhdf5-dev not called"
grep -q '^install .*libdnnl-dev' "$tmp/apt.log" || fail "apt-get install libdnnl-dev not called"
[ "$(grep -c '^install' "$tmp/apt.log")" = 1 ] || fail "apt-get install called more than once"
echo "ok: make setup installs ($(grep '^install' "$tmp/apt.log")) and then finds HDF5"

: > "$tmp/apt.log"
make -C "$root" --no-print-directory setup > "$tmp/again.out" 2>&1 ||
    { cat "$tmp/again.out"; fail "a second make setup failed"; }
[ ! -s "$tmp/apt.log" ] || fail "a second make setup called apt-get: $(cat "$tmp/apt.log")"
grep -q "all Debian packages present" "$tmp/again.out" || fail "no 'all Debian packages present'"
echo "ok: with the packages present, make setup calls no apt-get"
