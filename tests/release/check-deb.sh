#!/bin/sh
# debian/ builds the packages with `dpkg-buildpackage -us -uc -b`
# (scripts/deb.sh, from the release tarball): libaredis<ABI> with the shared
# library under its SONAME, libaredis-dev with the headers, the .so link, the
# static library, aredis.pc and the CMake package. Then a program is built
# against the unpacked packages with pkg-config and with find_package(aredis)
# and does a round trip with a throwaway redis-server.
# Usage: check-deb.sh SOURCE_DIR. Exit 77 (skip) without debhelper, unless CI
# is set (scripts/deps.sh installs it).
set -e
SRC=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
. "$HERE/../support/unix-server.sh"
trap 'unix_server_stop; rm -rf "$TMP"' EXIT
fail() { echo "release/deb: $*" >&2; exit 1; }
if ! command -v dpkg-buildpackage >/dev/null 2>&1 || ! command -v dh >/dev/null 2>&1; then
    echo "release/deb: SKIP: dpkg-buildpackage or debhelper missing (apt-get install dpkg-dev debhelper)" >&2
    [ -n "$CI" ] && exit 1
    exit 77
fi

V=$(sed -n 's/^#define AREDIS_VERSION_STRING "\([0-9.]*\)"$/\1/p' "$SRC/include/aredis/export.h")
ABI=$(sed -n 's/^#define AREDIS_ABI_VERSION \([0-9]*\)$/\1/p' "$SRC/include/aredis/export.h")
ARCH=$(dpkg --print-architecture)
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
mkdir "$TMP/debs"
DEB_BUILD_OPTIONS="parallel=2" "$SRC/scripts/deb.sh" "$TMP/debs" >/dev/null
DV=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
LIB="$TMP/debs/libaredis${ABI}_${DV}_$ARCH.deb"
DEV="$TMP/debs/libaredis-dev_${DV}_$ARCH.deb"
[ -s "$LIB" ] || fail "no $(basename "$LIB") (the runtime package is named after the ABI, $ABI)"
[ -s "$DEV" ] || fail "no $(basename "$DEV")"
case $DV in "$V"-*) ;; *) fail "debian/changelog says $DV, export.h says $V" ;; esac

# Contents.
dpkg-deb -c "$LIB" | awk '{print $6}' >"$TMP/lib.list"
dpkg-deb -c "$DEV" | awk '{print $6}' >"$TMP/dev.list"
has() { grep -qx "./$2" "$TMP/$1.list" || fail "$1 package lacks $2"; }
has lib "usr/lib/$MA/libaredis.so.$ABI"
has dev "usr/include/aredis/aredis.h"
has dev "usr/include/aredis/adapters/libuv.h"
has dev "usr/lib/$MA/libaredis.so"
has dev "usr/lib/$MA/libaredis.a"
has dev "usr/lib/$MA/pkgconfig/aredis.pc"
has dev "usr/lib/$MA/cmake/aredis/aredisConfig.cmake"
grep -q "include/" "$TMP/lib.list" && fail "headers in the runtime package"
dpkg-deb -f "$LIB" Depends | grep -q libssl || fail "libaredis$ABI does not depend on libssl"
dpkg-deb -f "$DEV" Depends | grep -q "libaredis$ABI (= $DV)" || fail "libaredis-dev does not depend on libaredis$ABI (= $DV)"

# Unpack both and build against them.
dpkg-deb -x "$LIB" "$TMP/root"
dpkg-deb -x "$DEV" "$TMP/root"
so=$(readlink -f "$TMP/root/usr/lib/$MA/libaredis.so")
objdump -p "$so" | grep -q "SONAME *libaredis.so.$ABI\$" || fail "wrong SONAME in $so"
unix_server_start
LIBDIR="$TMP/root/usr/lib/$MA"
run() {
    out=$(LD_LIBRARY_PATH="$LIBDIR" "$1") || fail "$1 failed: $out"
    echo "$out" | grep -q "round trip ok" || fail "$1 did no round trip: $out"
}
# shellcheck disable=SC2046
cc -o "$TMP/pc" "$SRC/tests/install/consumer.c" \
    $(PKG_CONFIG_PATH="$LIBDIR/pkgconfig" pkg-config --cflags --libs aredis)
run "$TMP/pc"
cmake -S "$SRC/tests/install" -B "$TMP/cm" -DCMAKE_PREFIX_PATH="$TMP/root/usr" >/dev/null
cmake --build "$TMP/cm" >/dev/null
run "$TMP/cm/consumer"
run "$TMP/cm/consumer_static"
echo "release/deb: $(basename "$LIB") and $(basename "$DEV") built; pkg-config and find_package consumers ran"
