#!/bin/sh
# make bench-perl: the Perl binding (Future::IO::Redis) against Redis::Fast
# and Redis.pm in one run of bench/perl/bench.pl, with a throwaway
# redis-server. Builds the binding in BUILD/perl-bench (a copy of
# bindings/perl) against BUILD's static library; the report goes to stdout
# and BUILD/perl-bench.md. Extra arguments go to bench.pl.
# Usage: scripts/bench-perl.sh BUILD [bench.pl options]
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-build}" && pwd)
shift || true
W="$BUILD/perl-bench"
rm -rf "$W"
mkdir -p "$W"
(cd "$ROOT/bindings/perl" && tar -cf - --exclude=blib --exclude=Makefile --exclude='*.o' \
    --exclude=Redis.c --exclude='MYMETA.*' --exclude=pm_to_blib .) | tar -C "$W" -xf -
(cd "$W" && perl Makefile.PL AREDIS_BUILD="$BUILD" AREDIS_TREE="$ROOT" >build.log 2>&1 &&
    make >>build.log 2>&1) || { tail -30 "$W/build.log" >&2; exit 1; }
exec perl "$ROOT/bench/perl/bench.pl" --blib "$W" --compare "$BUILD/bench/compare" \
    --out "$BUILD/perl-bench.md" "$@"
