#!/bin/sh
# make commands: regenerate the built-in command table,
# src/proto/cmdtable_data.c, from a throwaway redis-server on a free
# 127.0.0.1 port in a temp dir (tools/gencommands reads its COMMAND,
# COMMAND DOCS and INFO). The server is stopped at the end, also on Ctrl-C.
#
#   scripts/gencommands.sh [BUILD_DIR]      (default: build)
#
# REDIS_SERVER names another server binary (the table then names its
# version). The output must already match .clang-format (the generator
# writes it so); the file is replaced only when the generator succeeded.
set -e
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
GEN="$BUILD/tools/gencommands"
DEST="$ROOT/src/proto/cmdtable_data.c"
SERVER=${REDIS_SERVER:-redis-server}

say() { echo "commands: $*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$GEN" ] || die "$GEN not found: build first (make build, or cmake --build $BUILD)"
command -v "$SERVER" >/dev/null || die "$SERVER not found (scripts/deps.sh installs redis-server)"
command -v redis-cli >/dev/null || die "redis-cli not found"

. "$ROOT/scripts/throwaway-server.sh"
throwaway_dir commands
throwaway_start "$SERVER"
say "throwaway $SERVER on 127.0.0.1:$PORT (pid $PID)"

"$GEN" --host 127.0.0.1 --port "$PORT" --out "$DIR/cmdtable_data.c"
if command -v clang-format >/dev/null; then
    (cd "$ROOT" && clang-format --assume-filename=src/proto/cmdtable_data.c \
        <"$DIR/cmdtable_data.c") | cmp -s - "$DIR/cmdtable_data.c" ||
        die "the generator's output does not match .clang-format: fix tools/gencommands.c"
else
    say "clang-format not found: the format check is left to make test"
fi
if cmp -s "$DIR/cmdtable_data.c" "$DEST"; then
    say "src/proto/cmdtable_data.c is up to date"
else
    cp "$DIR/cmdtable_data.c" "$DEST"
    say "src/proto/cmdtable_data.c written ($(sed -n 's/.*cmdtable_source\[\] = "\(.*\)";/\1/p' "$DEST"))"
fi
