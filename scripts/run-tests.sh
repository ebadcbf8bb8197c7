#!/bin/sh
# Run the default test suite with CTest. Extra arguments go to ctest.
set -e
BUILD=${1:-build}
shift || true
exec ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
