#!/bin/sh
# bench/instructions.sh: user-space instructions per command of each client,
# counted by valgrind's callgrind (repeatable, unlike time). This is where
# the instruction counts in bench/limits.md come from.
#
#   bench/instructions.sh PORT [BUILD_DIR]     (default BUILD_DIR: build)
#
# Needs a redis-server on 127.0.0.1:PORT and valgrind. Each line runs one
# `compare --worker` of N commands (start-up included, which is why N is
# large) and divides the instructions by N. The "no request timeout" lines
# are the what-if `--no-timeout` (request_timeout_ms = 0): their difference
# from the lines above them is what the default 5 s deadline costs. When the
# build has bench/compare_hiredis1 (cmake -DHIREDIS_DIR=...), hiredis 1.x is
# counted too. CG_KEEP=DIR keeps the callgrind files (callgrind.LABEL.out)
# for callgrind_annotate.
#
# WHAT=clients (the lines above: aredis's what-ifs and hiredis), WHAT=features
# (the same batches of 100 auto-pipelined, as one aredis_pipeline and as one
# MULTI ... EXEC, --pipeline / --tx; and plain commands against EVALSHA of a
# one-line script doing the same, --script, at depth 64 and 1, with their
# own plain lines so that every pair comes from one run), or WHAT=all (the
# default: both).
set -e
PORT=${1:?usage: bench/instructions.sh PORT [BUILD_DIR]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${2:-build}
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bench/compare"
BIN1="$BUILD/bench/compare_hiredis1"
N=${N:-100000}
WHAT=${WHAT:-all}
case $WHAT in all | clients | features) ;; *) echo "instructions: WHAT=all|clients|features" >&2; exit 2 ;; esac
[ -x "$BIN" ] || { echo "instructions: $BIN not found: build first" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "instructions: valgrind not found" >&2; exit 1; }
OUT=$(mktemp -d /tmp/aredis-instr-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# count LABEL WORKER-ARGS...: print LABEL and instructions per command
# (EXE: the binary, default compare).
count() {
    label=$1; shift
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" \
        "${EXE:-$BIN}" --worker "$@" -n "$N" -h 127.0.0.1 -p "$PORT" >"$OUT/res" 2>"$OUT/log" ||
        { cat "$OUT/log" >&2; exit 1; }
    grep -q "errors=0" "$OUT/res" || { echo "instructions: $label failed:" >&2; cat "$OUT/res" >&2; exit 1; }
    ir=$(sed -n 's/^==[0-9]*== I *refs: *//p' "$OUT/log" | tr -d ,)
    printf '%-52s %8d instructions/command\n' "$label" $((ir / N))
    if [ -n "$CG_KEEP" ]; then
        mkdir -p "$CG_KEEP"
        cp "$OUT/cg" "$CG_KEEP/callgrind.$(echo "$label" | tr -c 'A-Za-z0-9\n' _).out"
    fi
}

# GET needs the key: one SET first (outside the counts).
"$BIN" --worker aredis --op set --depth 1 --mode window -n 1 -h 127.0.0.1 -p "$PORT" >/dev/null ||
    { echo "instructions: cannot reach redis-server on 127.0.0.1:$PORT" >&2; exit 1; }

if [ "$WHAT" != features ]; then
    count "aredis GET, depth 64 (format string)" aredis --op get --depth 64 --mode window
    count "aredis GET, depth 64 (argv)" aredis --op get --depth 64 --mode window --argv
    count "aredis SET, depth 64 (format string)" aredis --op set --depth 64 --mode window
    count "aredis GET, depth 1 (format string)" aredis --op get --depth 1 --mode window
    count "aredis GET, depth 64, no request timeout" aredis --op get --depth 64 --mode window --no-timeout
    count "aredis SET, depth 64, no request timeout" aredis --op set --depth 64 --mode window --no-timeout
    count "aredis GET, depth 1, no request timeout" aredis --op get --depth 1 --mode window --no-timeout
    count "hiredis-async GET, depth 64" hiredis-async --op get --depth 64 --mode window
    count "hiredis-async SET, depth 64" hiredis-async --op set --depth 64 --mode window
    count "hiredis-async GET, depth 1" hiredis-async --op get --depth 1 --mode window
    if [ -x "$BIN1" ]; then
        EXE=$BIN1
        count "hiredis1-async GET, depth 64" hiredis1-async --op get --depth 64 --mode window
        count "hiredis1-async SET, depth 64" hiredis1-async --op set --depth 64 --mode window
        count "hiredis1-async GET, depth 1" hiredis1-async --op get --depth 1 --mode window
    fi
fi

if [ "$WHAT" != clients ]; then
    EXE=$BIN
    # Batches of 100: auto-pipelined, one pipeline, one transaction.
    for o in set get; do
        op=$(echo "$o" | tr '[:lower:]' '[:upper:]')
        count "aredis $op, batches of 100, auto-pipelined" aredis --op "$o" --depth 100 --mode batch
        count "aredis $op, batches of 100, pipeline" aredis --op "$o" --depth 100 --mode batch --pipeline
        count "aredis $op, batches of 100, transaction" aredis --op "$o" --depth 100 --mode batch --tx
    done
    # A plain command against EVALSHA of a script doing it (cached path:
    # the worker runs the script once before it counts).
    for d in 64 1; do
        for o in get set; do
            op=$(echo "$o" | tr '[:lower:]' '[:upper:]')
            count "aredis $op, depth $d, plain" aredis --op "$o" --depth "$d" --mode window
            count "aredis $op, depth $d, EVALSHA" aredis --op "$o" --depth "$d" --mode window --script
        done
    done
fi
