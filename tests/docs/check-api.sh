#!/bin/sh
# The API reference builds from the public headers with no warning at all:
# every public function, type, struct member, enumerator and macro has a
# comment, and no comment is malformed. Then spot-check what it made: an
# HTML page and a man page for the client header and for a function.
# Usage: check-api.sh BUILD_DIR. Exit 77 (skip) without doxygen, unless CI
# is set (scripts/deps.sh installs it).
set -e
BUILD=$(cd "$1" && pwd)
if ! command -v doxygen >/dev/null 2>&1; then
    echo "docs/api: SKIP: doxygen is not installed (apt-get install doxygen)" >&2
    [ -n "$CI" ] && exit 1
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# The configured Doxyfile, with its output moved here and warnings fatal.
{
    cat "$BUILD/docs/Doxyfile"
    echo "OUTPUT_DIRECTORY = $TMP/out"
    echo "WARN_LOGFILE = $TMP/warnings.log"
    echo "WARN_AS_ERROR = NO"
} >"$TMP/Doxyfile"
mkdir -p "$TMP/out"
(cd "$TMP" && doxygen Doxyfile) >"$TMP/doxygen.out" 2>&1 || {
    cat "$TMP/doxygen.out" >&2
    echo "docs/api: doxygen failed" >&2
    exit 1
}
if [ -s "$TMP/warnings.log" ]; then
    cat "$TMP/warnings.log" >&2
    echo "docs/api: $(wc -l <"$TMP/warnings.log") doxygen warning line(s): document the public API" >&2
    exit 1
fi
for f in html/index.html html/client_8h.html man/man3/aredis_client_new.3 \
    man/man3/aredis_future_command.3 man/man3/aredis_options.3; do
    [ -s "$TMP/out/$f" ] || { echo "docs/api: $f was not generated" >&2; exit 1; }
done
grep -q "aredis_client_new" "$TMP/out/html/client_8h.html" ||
    { echo "docs/api: client.h's page does not name aredis_client_new" >&2; exit 1; }
echo "docs/api: no warnings; $(ls "$TMP/out/man/man3" | wc -l) man pages"
