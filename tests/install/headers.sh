#!/bin/sh
# The public headers compile warning-free (-Wall -Wextra -Wpedantic -Werror)
# as C (c99, c11, c17) and as C++ (c++11, c++17, c++20): each one on its own,
# and all of them together with every AREDIS_*_INIT macro (headers.c). The
# loop adapters are compiled only for the loop libraries CMake found (read
# from BUILD's CMakeCache.txt), one per translation unit. Then the C and C++
# forms of the _INIT macros must give the same values (defaults.cpp).
#
# Usage: headers.sh BUILD [INCLUDE_DIR]   (default: the source tree's include/)
# CC and CXX choose the compilers (default cc and c++).
set -e
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
INC=$(cd "${2:-$HERE/../../include}" && pwd)
CC=${CC:-cc}
CXX=${CXX:-c++}
WARN="-Wall -Wextra -Wpedantic -Werror"
C_STDS="c99 c11 c17"
CXX_STDS="c++11 c++17 c++20"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail() { echo "headers: $*" >&2; exit 1; }
[ -d "$INC/aredis" ] || fail "no aredis/ in $INC"
command -v "$CXX" >/dev/null 2>&1 || fail "no C++ compiler ($CXX)"
# libuv's <uv.h> needs POSIX types that a strict -std=cNN hides: the
# adapter builds name a POSIX level, the plain builds name none.
POSIX=-D_POSIX_C_SOURCE=200809L

cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt" | tr ';' ' '; }
ADAPTERS=""
[ "$(cache LIBUV_FOUND)" = 1 ] && ADAPTERS="$ADAPTERS LIBUV"
[ "$(cache LIBEVENT_FOUND)" = 1 ] && ADAPTERS="$ADAPTERS LIBEVENT"
found() { [ -n "$1" ] && case $1 in *-NOTFOUND) false ;; esac; }
if found "$(cache LIBEV_INCLUDE_DIR)" && found "$(cache LIBEV_LIBRARY)"; then
    ADAPTERS="$ADAPTERS LIBEV"
fi
adapter_flags() { # the include flags CMake found for one loop library
    case $1 in
        LIBUV) cache LIBUV_CFLAGS ;;
        LIBEVENT) cache LIBEVENT_CFLAGS ;;
        LIBEV) d=$(cache LIBEV_INCLUDE_DIR); [ "$d" = /usr/include ] || echo "-I$d" ;;
    esac
}

# compile LANG STD SOURCE FLAGS...: one translation unit, warnings as errors.
compile() {
    lang=$1 std=$2 src=$3
    shift 3
    if [ "$lang" = c ]; then cc="$CC"; else cc="$CXX"; fi
    # shellcheck disable=SC2086
    if ! $cc -x "$lang" -std="$std" $WARN -O2 -I"$TMP" -I"$INC" "$@" -c "$src" \
            -o "$TMP/out.o" 2>"$TMP/err"; then
        cat "$TMP/err" >&2
        fail "$(basename "$src") does not compile as $std ($*)"
    fi
}

# 1. Every _INIT macro a header defines is exercised by headers.c.
sed -n 's/^#define \(AREDIS_[A-Z0-9_]*_INIT\)\b.*/\1/p' "$INC"/aredis/*.h | sort -u >"$TMP/inits"
while read -r m; do
    grep -qw "$m" "$HERE/headers.c" || fail "$m is not used in tests/install/headers.c"
done <"$TMP/inits"

# 2. Each header on its own (it includes what it needs).
n=0
for h in "$INC"/aredis/*.h "$INC"/aredis/adapters/*.h; do
    rel=${h#"$INC"/}
    flags=""
    case $rel in
        aredis/adapters/adapter_common.h) ;;
        aredis/adapters/*)
            lib=$(basename "$rel" .h | tr '[:lower:]' '[:upper:]')
            case " $ADAPTERS " in *" $lib "*) ;; *) continue ;; esac
            flags="$POSIX $(adapter_flags "$lib")" ;;
    esac
    printf '#include <%s>\ntypedef int aredis_test_nonempty;\n' "$rel" >"$TMP/one.c"
    # shellcheck disable=SC2086
    compile c c17 "$TMP/one.c" $flags
    # shellcheck disable=SC2086
    compile c++ c++17 "$TMP/one.c" $flags
    n=$((n + 1))
done

# 3. All of them together, with the _INIT macros, in every language mode.
for h in "$INC"/aredis/*.h; do echo "#include <aredis/${h##*/}>"; done \
    >"$TMP/aredis_all_headers.h"
for std in $C_STDS; do compile c "$std" "$HERE/headers.c"; done
for std in $CXX_STDS; do compile c++ "$std" "$HERE/headers.c"; done
for lib in $ADAPTERS; do
    for std in $C_STDS; do
        # shellcheck disable=SC2046
        compile c "$std" "$HERE/headers.c" -DAREDIS_TEST_"$lib" "$POSIX" $(adapter_flags "$lib")
    done
    for std in $CXX_STDS; do
        # shellcheck disable=SC2046
        compile c++ "$std" "$HERE/headers.c" -DAREDIS_TEST_"$lib" $(adapter_flags "$lib")
    done
done

# 4. The C and C++ forms of the _INIT macros agree.
compile c c99 "$HERE/defaults_c.c" && mv "$TMP/out.o" "$TMP/defaults_c.o"
compile c++ c++17 "$HERE/defaults.cpp" && mv "$TMP/out.o" "$TMP/defaults.o"
"$CXX" -o "$TMP/defaults" "$TMP/defaults.o" "$TMP/defaults_c.o"
"$TMP/defaults" >"$TMP/err" || { cat "$TMP/err" >&2; fail "C and C++ defaults differ"; }

echo "headers: $n headers alone, all together as $C_STDS $CXX_STDS;" \
     "adapters:${ADAPTERS:- none found}; C and C++ defaults agree"
