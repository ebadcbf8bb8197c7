#!/bin/sh
# The version has one source, include/aredis/export.h; everything that
# repeats it agrees: the CMake project (and so the library's file name and
# the CMake package), aredis.pc, the newest release in CHANGELOG.md (Keep a
# Changelog: "## [X.Y.Z] - YYYY-MM-DD" under "## [Unreleased]") and
# debian/changelog (X.Y.Z-N).
# Usage: check-version.sh SOURCE_DIR BUILD_DIR
set -e
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
fail() { echo "release/version: $*" >&2; exit 1; }
h() { sed -n "s/^#define AREDIS_VERSION_$1 \\([0-9]*\\)\$/\\1/p" "$SRC/include/aredis/export.h"; }
V="$(h MAJOR).$(h MINOR).$(h PATCH)"
S=$(sed -n 's/^#define AREDIS_VERSION_STRING "\(.*\)"$/\1/p' "$SRC/include/aredis/export.h")
[ "$V" = "$S" ] || fail "export.h: AREDIS_VERSION_STRING $S, parts say $V"
C=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
[ "$C" = "$V" ] || fail "CMake project version $C, export.h $V"
P=$(sed -n 's/^Version: //p' "$BUILD/aredis.pc")
[ "$P" = "$V" ] || fail "aredis.pc Version $P, export.h $V"
grep -q '^## \[Unreleased\]' "$SRC/CHANGELOG.md" || fail "CHANGELOG.md has no '## [Unreleased]' section"
R=$(sed -n 's/^## \[\([0-9][0-9.]*\)\] - [0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}$/\1/p' "$SRC/CHANGELOG.md" | head -n 1)
[ "$R" = "$V" ] || fail "CHANGELOG.md's newest release is '$R', export.h says $V"

D=$(sed -n '1s/^aredis (\([^)]*\)).*/\1/p' "$SRC/debian/changelog")
case $D in "$V"-[0-9]*) ;; *) fail "debian/changelog's version is '$D', export.h says $V" ;; esac
echo "release/version: $V everywhere (debian $D)"
