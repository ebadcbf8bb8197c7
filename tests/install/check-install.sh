#!/bin/sh
# Install the build into a temporary prefix, then build a consumer two ways:
# with CMake's find_package(aredis) and with pkg-config. Run both.
set -e
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
LIBDIR=$(ls -d "$TMP"/prefix/lib*/ | head -n 1)
# 1. CMake package
cmake -S "$SRC" -B "$TMP/cm" -DCMAKE_PREFIX_PATH="$TMP/prefix" >/dev/null
cmake --build "$TMP/cm" >/dev/null
LD_LIBRARY_PATH="$LIBDIR" "$TMP/cm/consumer"
# 2. pkg-config
PKG_CONFIG_PATH="$LIBDIR/pkgconfig" cc -o "$TMP/pc" "$SRC/consumer.c" \
    $(PKG_CONFIG_PATH="$LIBDIR/pkgconfig" pkg-config --cflags --libs aredis --define-variable=prefix="$TMP/prefix")
LD_LIBRARY_PATH="$LIBDIR" "$TMP/pc"
# 3. The shared library carries its SONAME.
objdump -p "$LIBDIR/libaredis.so" | grep -q 'SONAME.*libaredis.so.0'
echo "install: find_package, pkg-config and SONAME ok"
