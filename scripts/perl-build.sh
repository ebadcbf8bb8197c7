#!/bin/sh
# Build the Perl binding (bindings/perl, Future::IO::Redis) in DEST, a fresh
# copy, against BUILD's static library, so the source tree stays clean.
# CFLAGS (optional) go to the compiler and linker (a sanitizer's flags).
# The build's output is in DEST/build.log; on failure its tail is shown.
# Usage: scripts/perl-build.sh BUILD DEST [CFLAGS]
# (tests/perl/check-perl.sh and scripts/bench-perl.sh use it.)
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
DEST=$2
rm -rf "$DEST"
mkdir -p "$DEST"
(cd "$ROOT/bindings/perl" && tar -cf - --exclude=blib --exclude=Makefile --exclude='*.o' \
    --exclude=Redis.c --exclude=Redis.xsc --exclude=Redis.bs --exclude='MYMETA.*' \
    --exclude=pm_to_blib .) | tar -C "$DEST" -xf -
cd "$DEST"
# Makefile.PL looks for the tree two levels up: point it at this one.
perl Makefile.PL AREDIS_BUILD="$BUILD" AREDIS_TREE="$ROOT" AREDIS_CFLAGS="${3:-}" >build.log 2>&1 ||
    { cat build.log >&2; exit 1; }
make >>build.log 2>&1 || { tail -40 build.log >&2; exit 1; }
