#!/bin/sh
# Run every unit test under valgrind memcheck; any error or leak fails.
set -e
BUILD=${1:-build}
command -v valgrind >/dev/null || { echo "valgrind not found (scripts/deps.sh installs it)"; exit 1; }
fail=0; n=0
for t in "$BUILD"/tests/test_unit_*; do
    [ -x "$t" ] || continue
    n=$((n + 1))
    if valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect "$t" >"$t.valgrind.log" 2>&1; then
        echo "valgrind ok:   $(basename "$t")"
    else
        echo "valgrind FAIL: $(basename "$t") (see $t.valgrind.log)"; fail=$((fail + 1))
    fi
done
echo "$((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
