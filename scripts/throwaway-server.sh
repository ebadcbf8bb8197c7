# scripts/throwaway-server.sh — sourced (". scripts/throwaway-server.sh") by
# the scripts that need a throwaway redis-server (bench.sh, gencommands.sh):
#
#   throwaway_dir NAME        DIR=a fresh temp dir; on exit (and Ctrl-C) the
#                             server ($PID) is stopped and DIR removed
#   throwaway_start CMD...    start CMD --port P --bind 127.0.0.1 --dir DIR
#                             (CMD: the server binary, maybe behind taskset,
#                             with its own options after it) on a free
#                             loopback port, until one answers as ours: sets
#                             PORT and PID. Its log is DIR/redis.log.
#
# The caller defines die() (print and exit).

throwaway_dir() {
    DIR=$(mktemp -d "/tmp/aredis-$1-XXXXXX")
    PID=""
    trap throwaway_cleanup EXIT
    trap 'exit 130' INT TERM
}

throwaway_cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}

throwaway_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0))
print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + ($$ + tries * 7919) % 30000))
}

# A port taken between the pick and the bind makes the server exit, or
# another process answer (its process_id differs): try again, 5 times.
throwaway_start() {
    tries=0
    while :; do
        PORT=$(throwaway_free_port)
        "$@" --port "$PORT" --bind 127.0.0.1 --dir "$DIR" --save "" --appendonly no \
            --daemonize no --logfile "$DIR/redis.log" &
        PID=$!
        i=0
        while [ $i -lt 100 ] && kill -0 "$PID" 2>/dev/null &&
            ! redis-cli -p "$PORT" ping >/dev/null 2>&1; do
            i=$((i + 1)); sleep 0.05
        done
        if redis-cli -p "$PORT" info server 2>/dev/null | tr -d '\r' |
            grep -qx "process_id:$PID"; then
            return 0
        fi
        kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
        tries=$((tries + 1))
        [ $tries -ge 5 ] && { cat "$DIR/redis.log" >&2; die "$1 did not start"; }
    done
}
