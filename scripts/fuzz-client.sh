#!/bin/sh
# Build the whole-client simulation (fuzz/client_sim.c) as a libFuzzer
# target with clang, ASan and UBSan, and run it on a copy of
# fuzz/client_corpus for FUZZ_SECONDS (default 300). Extra arguments go to
# the fuzzer.
#
#   FUZZ_SECONDS=3600 scripts/fuzz-client.sh
#   FUZZ_BUILD=/tmp/bfc scripts/fuzz-client.sh -jobs=2 -workers=2
#   scripts/fuzz-client.sh build-fuzz-client/artifacts/crash-...   (replay one)
#
# Every library source is compiled into the target (instrumented for
# coverage); nothing else of the build is needed, so this does not use CMake.
# Needs clang and its libFuzzer runtime (Debian: clang, libclang-rt-<N>-dev),
# installed by scripts/fuzz.sh's rules when missing and we are root.
# Crashes go to $FUZZ_BUILD/artifacts/; the grown corpus stays in
# $FUZZ_BUILD/corpus (copy finds worth keeping to fuzz/client_corpus). The
# normal build replays the same harness without libFuzzer (CTest entry
# unit/client_sim): build/tests/test_unit_client_sim artifacts/crash-...
# replays a crash with any compiler, and AREDIS_SIM_TRACE=1 prints each step.
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz-client}
SECS=${FUZZ_SECONDS:-300}
CC=${CC_FUZZ:-clang}

FUZZ_WHO=fuzz-client
FUZZ_CC=$CC
# shellcheck source=scripts/fuzz-toolchain.sh
. "$ROOT/scripts/fuzz-toolchain.sh"
[ -e /usr/include/openssl/ssl.h ] || apt_install libssl-dev

mkdir -p "$BUILD/corpus" "$BUILD/artifacts"
FLAGS="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# shellcheck disable=SC2086
"$CC" -std=c11 -D_GNU_SOURCE -O1 -g $FLAGS -Wall -Wextra -Werror -Wno-unused-parameter \
    -I"$ROOT/include" -I"$ROOT/src" \
    "$ROOT/fuzz/client_sim.c" $(find "$ROOT/src" -name '*.c' | sort) \
    -o "$BUILD/client_fuzz" -lssl -lcrypto -lpthread
echo "fuzz-client: built $BUILD/client_fuzz"

# One file or directory given: replay it, do not fuzz.
if [ $# -eq 1 ] && [ -e "$1" ] && [ "${1#-}" = "$1" ]; then
    exec "$BUILD/client_fuzz" "$1"
fi
cp "$ROOT"/fuzz/client_corpus/* "$BUILD/corpus/" 2>/dev/null || true
echo "fuzz-client: running client_fuzz for ${SECS}s"
exec "$BUILD/client_fuzz" -max_total_time="$SECS" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/" "$@" "$BUILD/corpus"
