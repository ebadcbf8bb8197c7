#!/bin/sh
# bench/instructions.sh: user-space instructions per command of each client,
# counted by valgrind's callgrind (repeatable, unlike time). This is where
# the instruction counts in bench/limits.md come from.
#
#   bench/instructions.sh PORT [BUILD_DIR]     (default BUILD_DIR: build)
#
# Needs a redis-server on 127.0.0.1:PORT and valgrind. Each line runs one
# `compare --worker` of N commands (start-up included, which is why N is
# large) and divides the instructions by N.
set -e
PORT=${1:?usage: bench/instructions.sh PORT [BUILD_DIR]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${2:-build}
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bench/compare"
N=${N:-100000}
[ -x "$BIN" ] || { echo "instructions: $BIN not found: build first" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "instructions: valgrind not found" >&2; exit 1; }
OUT=$(mktemp -d /tmp/aredis-instr-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# count LABEL WORKER-ARGS...: print LABEL and instructions per command.
count() {
    label=$1; shift
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" \
        "$BIN" --worker "$@" -n "$N" -h 127.0.0.1 -p "$PORT" >"$OUT/res" 2>"$OUT/log" ||
        { cat "$OUT/log" >&2; exit 1; }
    grep -q "errors=0" "$OUT/res" || { echo "instructions: $label failed:" >&2; cat "$OUT/res" >&2; exit 1; }
    ir=$(sed -n 's/^==[0-9]*== I *refs: *//p' "$OUT/log" | tr -d ,)
    printf '%-44s %8d instructions/command\n' "$label" $((ir / N))
}

# GET needs the key: one SET first (outside the counts).
"$BIN" --worker aredis --op set --depth 1 --mode window -n 1 -h 127.0.0.1 -p "$PORT" >/dev/null ||
    { echo "instructions: cannot reach redis-server on 127.0.0.1:$PORT" >&2; exit 1; }

count "aredis GET, depth 64 (format string)" aredis --op get --depth 64 --mode window
count "aredis GET, depth 64 (argv)" aredis --op get --depth 64 --mode window --argv
count "aredis SET, depth 64 (format string)" aredis --op set --depth 64 --mode window
count "aredis GET, depth 1 (format string)" aredis --op get --depth 1 --mode window
count "hiredis-async GET, depth 64" hiredis-async --op get --depth 64 --mode window
count "hiredis-async SET, depth 64" hiredis-async --op set --depth 64 --mode window
count "hiredis-async GET, depth 1" hiredis-async --op get --depth 1 --mode window
