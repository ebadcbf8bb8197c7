#!/bin/sh
# README.md's promises hold: every ```c block compiles warning-free as C11
# against the headers (blocks with main() also link against the library
# built in BUILD_DIR), and the benchmark tables between the bench markers
# are exactly what scripts/bench-readme.sh takes from docs/BENCHMARKS.md (the
# numbers come from that one `make bench` run).
# Usage: check-readme.sh SOURCE_DIR BUILD_DIR [CFLAGS] (CFLAGS: the
# build's sanitizer flags, to link against its library)
set -e
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
XFLAGS=${3:-}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "docs/readme: $*" >&2; exit 1; }

awk -v dir="$TMP" '
/^```c$/ { n++; f = sprintf("%s/block%02d.c", dir, n); inb = 1; next }
/^```/ && inb { inb = 0; close(f); next }
inb { print > f }' "$SRC/README.md"
n=0
for f in "$TMP"/block*.c; do
    [ -e "$f" ] || fail "no C blocks in README.md"
    n=$((n + 1))
    if grep -q '^int main' "$f"; then
        # shellcheck disable=SC2086
        cc -std=c11 -Wall -Wextra -Werror $XFLAGS -I"$SRC/include" -o "${f%.c}" "$f" \
            "$BUILD/libaredis.a" -lssl -lcrypto -lpthread 2>"$TMP/err" ||
            { cat "$f" "$TMP/err" >&2; fail "README block $(basename "$f") does not build"; }
    else
        cc -std=c11 -Wall -Wextra -Werror -Wno-missing-prototypes -I"$SRC/include" -c \
            -o "${f%.c}.o" "$f" 2>"$TMP/err" ||
            { cat "$f" "$TMP/err" >&2; fail "README block $(basename "$f") does not compile"; }
    fi
done

sed -n '/<!-- bench:start -->/,/<!-- bench:end -->/p' "$SRC/README.md" | sed '1d;$d' >"$TMP/readme-bench"
"$SRC/scripts/bench-readme.sh" "$SRC/docs/BENCHMARKS.md" >"$TMP/want-bench"
cmp -s "$TMP/readme-bench" "$TMP/want-bench" ||
    { diff "$TMP/want-bench" "$TMP/readme-bench" >&2; fail "README's benchmark tables differ from docs/BENCHMARKS.md's run"; }
echo "docs/readme: $n C blocks compile, benchmark tables match docs/BENCHMARKS.md"
