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
"$ROOT/scripts/perl-build.sh" "$BUILD" "$W"
exec perl "$ROOT/bench/perl/bench.pl" --blib "$W" --compare "$BUILD/bench/compare" \
    --out "$BUILD/perl-bench.md" "$@"
