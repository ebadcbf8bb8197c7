#!/bin/sh
# Build the RESP reader's libFuzzer target with clang and run it on a copy of
# fuzz/corpus for FUZZ_SECONDS (default 60). Extra arguments go to the fuzzer.
#
#   FUZZ_SECONDS=600 scripts/fuzz.sh
#   FUZZ_BUILD=/tmp/bf scripts/fuzz.sh -jobs=4
#
# Needs clang and its libFuzzer runtime (Debian: clang, libclang-rt-<N>-dev).
# When they are missing and we are root, they are installed (and said so);
# otherwise the script says what is missing and exits 1.
# Crashes are written to $FUZZ_BUILD/artifacts/; the grown corpus is left in
# $FUZZ_BUILD/corpus (copy new finds to fuzz/corpus by hand if worth keeping).
# The normal build replays the same harness without libFuzzer (CTest entry
# unit/fuzz_replay, fuzz/replay.c); it takes files too, so a crash replays
# with any compiler:  build/tests/test_unit_fuzz_replay artifacts/crash-...
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
SECS=${FUZZ_SECONDS:-60}

FUZZ_WHO=fuzz
# shellcheck source=scripts/fuzz-toolchain.sh
. "$ROOT/scripts/fuzz-toolchain.sh"

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAREDIS_BUILD_FUZZ=ON -DAREDIS_BUILD_TESTS=OFF -DAREDIS_BUILD_EXAMPLES=OFF \
    -DAREDIS_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" --target reader_fuzz -j "$(nproc 2>/dev/null || echo 2)"

rm -rf "$BUILD/corpus"
mkdir -p "$BUILD/corpus" "$BUILD/artifacts"
cp "$ROOT"/fuzz/corpus/* "$BUILD/corpus/"
echo "fuzz: running reader_fuzz for ${SECS}s"
exec "$BUILD/fuzz/reader_fuzz" -max_total_time="$SECS" -print_final_stats=1 \
    -dict="$ROOT/fuzz/reader_fuzz.dict" -artifact_prefix="$BUILD/artifacts/" \
    "$@" "$BUILD/corpus"
