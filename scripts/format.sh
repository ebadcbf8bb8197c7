#!/bin/sh
# The tree's C and C++ sources against its own .clang-format.
#
#   scripts/format.sh           reformat in place (make format)
#   scripts/format.sh --check   list files that drift and fail (make test runs it)
#
# Needs clang-format (Debian 12: clang-format 14; scripts/deps.sh installs it).
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if ! command -v clang-format >/dev/null 2>&1; then
    echo "format: clang-format not found (scripts/deps.sh installs it)"
    [ -n "$CI" ] && exit 1
    exit 77
fi
files=$(find src include tests examples bench fuzz bindings -type f \
    \( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) | sort)
if [ "$1" = "--check" ]; then
    bad=""
    for f in $files; do
        clang-format "$f" | cmp -s - "$f" || bad="$bad $f"
    done
    if [ -n "$bad" ]; then
        echo "format: these files do not match .clang-format (run make format):"
        for f in $bad; do echo "  $f"; done
        exit 1
    fi
    echo "format: $(echo "$files" | wc -l) files match .clang-format"
    exit 0
fi
# shellcheck disable=SC2086
clang-format -i $files
echo "format: reformatted $(echo "$files" | wc -l) files"
