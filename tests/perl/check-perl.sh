#!/bin/sh
# The Perl binding (bindings/perl: Future::IO::Redis) builds against this
# build's static library and passes its t/ suite against throwaway
# redis-servers. It is built in BUILD_DIR/perl (a copy, scripts/perl-build.sh),
# so the source tree stays clean. Exit 77 (skip) when Perl's modules or XS toolchain are
# missing, unless CI is set (scripts/deps.sh installs them).
# Usage: check-perl.sh SOURCE_DIR BUILD_DIR [CFLAGS]
set -e
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
XFLAGS=${3:-}
missing=""
for m in ExtUtils::MakeMaker Future Future::IO Future::AsyncAwait IO::Async::Loop \
    Future::IO::Impl::IOAsync Test2::V0; do
    perl -M"$m" -e 1 2>/dev/null || missing="$missing $m"
done
[ -f "$(perl -MConfig -e 'print "$Config{archlibexp}/CORE/perl.h"')" ] || missing="$missing perl.h(libperl-dev)"
if [ -n "$missing" ]; then
    echo "perl/binding: SKIP: missing:$missing (scripts/deps.sh installs them)" >&2
    [ -n "$CI" ] && exit 1
    exit 77
fi
# The command methods are generated from aredis's command table: in step.
perl "$SRC/bindings/perl/tools/gen-commands.pl" "$SRC/src/proto/cmdtable_data.c" |
    cmp -s - "$SRC/bindings/perl/lib/Future/IO/Redis/Commands.pm" || {
    echo "perl/binding: lib/Future/IO/Redis/Commands.pm is stale: regenerate it with" \
        "perl tools/gen-commands.pl ../../src/proto/cmdtable_data.c (in bindings/perl)" >&2
    exit 1
}
W="$BUILD/perl"
"$SRC/scripts/perl-build.sh" "$BUILD" "$W" "$XFLAGS"
cd "$W"
case $XFLAGS in
*sanitize=address*)
    # perl itself is not built with ASan: preload the runtime. perl frees
    # little at exit by design, so leak checking stays off; every other
    # check (use after free, overflows, UBSan) is on and fatal.
    LD_PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:abort_on_error=1"
    export LD_PRELOAD ASAN_OPTIONS
    ;;
esac
make test TEST_VERBOSE=${TEST_VERBOSE:-0}
