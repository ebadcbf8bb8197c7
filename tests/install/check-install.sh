#!/bin/sh
# Install the build into a temporary prefix, then build a consumer two ways:
# with CMake's find_package(aredis) and with plain pkg-config (only
# PKG_CONFIG_PATH set: aredis.pc must be right for any prefix). Run both.
# Install once more with DESTDIR, and build against that tree too. Last, the
# installed headers compile warning-free as C and C++ (headers.sh). Every
# consumer does a SET/GET round trip against a throwaway redis-server.
set -e
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
. "$SRC/../support/unix-server.sh"
trap 'unix_server_stop; rm -rf "$TMP"' EXIT
fail() { echo "install: $*" >&2; exit 1; }
unix_server_start

# run_consumer BIN LIBDIR: run it; it must say the round trip worked.
run_consumer() {
    out=$(LD_LIBRARY_PATH="$2" "$1") || fail "$1 failed: $out"
    echo "$out" | grep -q "round trip ok" || fail "$1 did no round trip: $out"
}

# The library directory of an installed tree: where aredis.pc lies, up one.
libdir_of() {
    pc=$(find "$1" -name aredis.pc -path '*/pkgconfig/*' | head -n 1)
    [ -n "$pc" ] || fail "no aredis.pc under $1"
    dirname "$(dirname "$pc")"
}

# pkg_consumer ROOT NAME: build consumer.c with what pkg-config says for the
# tree whose prefix is ROOT, check it points into ROOT, and run it.
pkg_consumer() {
    libdir=$(libdir_of "$1")
    flags=$(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs aredis)
    # The flags name ROOT's include/ and lib/, however pkg-config spells them.
    for f in $flags; do
        case $f in
            -I* | -L*)
                d=$(cd "${f#-?}" 2>/dev/null && pwd -P) || fail "pkg-config: $f does not exist"
                case $d in "$(cd "$1" && pwd -P)"/*) ;; *) fail "pkg-config: $f is outside $1" ;; esac ;;
        esac
    done
    # shellcheck disable=SC2086
    cc -o "$TMP/$2" "$SRC/consumer.c" $flags
    run_consumer "$TMP/$2" "$libdir"
}

cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
LIBDIR=$(libdir_of "$TMP/prefix")
# 1. CMake package
cmake -S "$SRC" -B "$TMP/cm" -DCMAKE_PREFIX_PATH="$TMP/prefix" >/dev/null
cmake --build "$TMP/cm" >/dev/null
run_consumer "$TMP/cm/consumer" "$LIBDIR"
# ... and the static library: nothing of libaredis.so is loaded.
run_consumer "$TMP/cm/consumer_static" /nonexistent
ldd "$TMP/cm/consumer_static" | grep -q libaredis && fail "consumer_static loads libaredis.so"
# 2. pkg-config
pkg_consumer "$TMP/prefix" pc
# 3. DESTDIR: the files land under DESTDIR/<prefix>, nothing at <prefix>
#    itself, and the relocatable aredis.pc works from there as it is.
DESTDIR="$TMP/dest" cmake --install "$BUILD" --prefix "$TMP/staged" >/dev/null
[ ! -e "$TMP/staged" ] || fail "DESTDIR ignored: files went to the prefix itself"
[ -n "$(find "$TMP/dest$TMP/staged" -name aredis.h)" ] || fail "DESTDIR: no headers under $TMP/dest"
pkg_consumer "$TMP/dest$TMP/staged" destdir
# 4. The shared library carries its SONAME: the ABI version in export.h.
ABI=$(sed -n 's/^#define AREDIS_ABI_VERSION \([0-9]*\).*/\1/p' "$(dirname "$0")/../../include/aredis/export.h")
objdump -p "$LIBDIR/libaredis.so" | grep -q "SONAME.*libaredis.so.$ABI\$"
echo "install: find_package, pkg-config, DESTDIR and SONAME ok"
# 5. The installed headers, as C and as C++.
INCDIR=$(dirname "$(dirname "$(find "$TMP/prefix" -path '*/aredis/aredis.h' | head -n 1)")")
"$SRC/headers.sh" "$BUILD" "$INCDIR"
