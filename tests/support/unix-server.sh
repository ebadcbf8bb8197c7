# tests/support/unix-server.sh — sourced by the shell tests that need one
# throwaway redis-server (tests/install, tests/release): unix_server_start
# starts it on a unix socket in a fresh temp dir and exports REDIS_URL;
# unix_server_stop (call it from the caller's EXIT trap) stops it. Without
# redis-server it exits 77 (skip), or fails when CI is set.
unix_server_start() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "SKIP: redis-server is not installed (scripts/deps.sh installs it)" >&2
        [ -n "$CI" ] && exit 1
        exit 77
    fi
    US_DIR=$(mktemp -d /tmp/aredis-us-XXXXXX)
    redis-server --port 0 --unixsocket "$US_DIR/redis.sock" --dir "$US_DIR" --save "" \
        --appendonly no --daemonize no --logfile "$US_DIR/redis.log" &
    US_PID=$!
    i=0
    until redis-cli -s "$US_DIR/redis.sock" ping >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 200 ] || ! kill -0 "$US_PID" 2>/dev/null; then
            cat "$US_DIR/redis.log" >&2
            echo "redis-server did not start" >&2
            exit 1
        fi
        sleep 0.05
    done
    REDIS_URL="unix://$US_DIR/redis.sock"
    export REDIS_URL
}

unix_server_stop() {
    if [ -n "$US_PID" ]; then
        kill "$US_PID" 2>/dev/null || true
        wait "$US_PID" 2>/dev/null || true
    fi
    [ -z "$US_DIR" ] || rm -rf "$US_DIR"
}
