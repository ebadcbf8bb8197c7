#!/bin/sh
# make demo: run examples/demo.c against REDIS_URL, or against a throwaway
# redis-server on a unix socket in a temp dir, stopped at the end (also on
# Ctrl-C). Needs nothing beyond redis-server and redis-cli.
set -e
BUILD=${1:-build}
DEMO="$BUILD/examples/example_demo"
if [ -n "$REDIS_URL" ]; then
    exec "$DEMO" "${DEMO_OPS:-100000}"
fi
command -v redis-server >/dev/null || { echo "redis-server not found (scripts/deps.sh installs it)"; exit 1; }
DIR=$(mktemp -d /tmp/aredis-demo-XXXXXX)
# A unix socket in a fresh temp dir: free by construction, nothing to pick.
SOCK="$DIR/redis.sock"
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
redis-server --port 0 --unixsocket "$SOCK" --dir "$DIR" --save "" --appendonly no \
    --daemonize no --logfile "$DIR/redis.log" &
PID=$!
i=0
until redis-cli -s "$SOCK" ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "redis-server did not start"; cat "$DIR/redis.log"; exit 1; }
    sleep 0.05
done
echo "demo: started a throwaway redis-server on $SOCK (pid $PID)"
REDIS_URL="unix://$SOCK" "$DEMO" "${DEMO_OPS:-100000}"
echo "demo: stopping the throwaway redis-server"
