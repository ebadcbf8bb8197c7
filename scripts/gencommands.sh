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

DIR=$(mktemp -d /tmp/aredis-commands-XXXXXX)
PID=""
cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0))
print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + ($$ + tries * 7919) % 30000))
}
# Started until one answers as ours: a port taken between the pick and the
# bind makes the server exit, or another process answer (its pid differs).
tries=0
while :; do
    PORT=$(free_port)
    "$SERVER" --port "$PORT" --bind 127.0.0.1 --dir "$DIR" --save "" --appendonly no \
        --daemonize no --logfile "$DIR/redis.log" &
    PID=$!
    i=0
    while [ $i -lt 100 ] && kill -0 "$PID" 2>/dev/null &&
        ! redis-cli -p "$PORT" ping >/dev/null 2>&1; do
        i=$((i + 1)); sleep 0.05
    done
    if redis-cli -p "$PORT" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$PID"; then
        break
    fi
    kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
    tries=$((tries + 1))
    [ $tries -ge 5 ] && { cat "$DIR/redis.log" >&2; die "$SERVER did not start"; }
done
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
