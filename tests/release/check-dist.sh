#!/bin/sh
# `make dist` makes a release tarball that stands on its own: named after the
# version in include/aredis/export.h, holding every tracked file and nothing
# else (no build trees), reproducible (made again from the unpacked tarball
# it is byte-identical), and it builds and passes the unit tests.
# Usage: check-dist.sh SOURCE_DIR
set -e
SRC=$(cd "$1" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "release/dist: $*" >&2; exit 1; }

V=$(sed -n 's/^#define AREDIS_VERSION_STRING "\([0-9.]*\)"$/\1/p' "$SRC/include/aredis/export.h")
[ -n "$V" ] || fail "no version in export.h"
mkdir "$TMP/a" "$TMP/b"
make -s -C "$SRC" dist DISTDIR="$TMP/a" >/dev/null
TGZ="$TMP/a/aredis-$V.tar.gz"
[ -s "$TGZ" ] || fail "make dist did not write aredis-$V.tar.gz"

# Contents: one top directory; MANIFEST lists exactly the other files.
tar -tzf "$TGZ" >"$TMP/names"
grep -v "^aredis-$V/" "$TMP/names" && fail "entries outside aredis-$V/"
grep -E "^aredis-$V/(build[^/]*|\.git)/" "$TMP/names" && fail "build trees or .git in the tarball"
for f in MANIFEST CMakeLists.txt Makefile README.md LICENSE CHANGELOG.md include/aredis/aredis.h \
    include/aredis/export.h debian/control scripts/dist.sh; do
    grep -qx "aredis-$V/$f" "$TMP/names" || fail "$f is missing"
done
tar -xzf "$TGZ" -C "$TMP"
U="$TMP/aredis-$V"
(cd "$U" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$TMP/files"
cmp -s "$TMP/files" "$U/MANIFEST" || { diff "$U/MANIFEST" "$TMP/files" >&2; fail "MANIFEST differs from the files"; }
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Every tracked file that exists is in it.
    git -C "$SRC" ls-files | while read -r f; do
        [ ! -e "$SRC/$f" ] || grep -qxF "$f" "$U/MANIFEST" || fail "tracked file $f is missing"
    done
fi

# Reproducible: the unpacked tree makes the same bytes again.
make -s -C "$U" dist DISTDIR="$TMP/b" >/dev/null
cmp -s "$TGZ" "$TMP/b/aredis-$V.tar.gz" || fail "make dist from the unpacked tarball differs"

# It builds, and its unit tests pass (only the unit tests' targets are built).
cmake -S "$U" -B "$TMP/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAREDIS_BUILD_EXAMPLES=OFF \
    -DAREDIS_BUILD_BENCH=OFF >"$TMP/configure.log" 2>&1 || { cat "$TMP/configure.log" >&2; fail "configure failed"; }
targets=$(ctest --test-dir "$TMP/build" -N -L '^unit$' | sed -n 's|.*Test *#[0-9]*: unit/\(.*\)$|test_unit_\1|p' | grep -v '^test_unit_format$')
[ -n "$targets" ] || fail "no unit tests"
# shellcheck disable=SC2086
cmake --build "$TMP/build" -j 2 --target $targets >"$TMP/build.log" 2>&1 || { tail -40 "$TMP/build.log" >&2; fail "build failed"; }
ctest --test-dir "$TMP/build" -L '^unit$' --output-on-failure -j 2 >"$TMP/ctest.log" 2>&1 || { cat "$TMP/ctest.log" >&2; fail "unit tests failed"; }
n=$(grep -o '[0-9]* tests passed' "$TMP/ctest.log" | head -n 1)
echo "release/dist: aredis-$V.tar.gz: $(wc -l <"$U/MANIFEST") files, reproducible, builds, $n"
