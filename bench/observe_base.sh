#!/bin/sh
# bench/observe_base.sh: instructions per command of a plain aredis client
# (no observer, no metrics) in two builds side by side — the library before
# observability (BASE) and now (NEW) — for the issue's target "no observer
# within 1 % of before". bench/observe.c cannot run in the old build (it
# did not exist), so both sides run the same bench/compare worker:
#
#   compare --worker aredis --op get|set --depth 1|64 --mode window -n COUNT
#
# under valgrind's callgrind at two counts, N and N/5, and the difference of
# the instruction counts over the difference of the counts is the figure:
# start-up, connect and teardown cancel out (as bench/pool.c, bench/observe).
# Each count runs REPEAT times, BASE and NEW alternating; the median is used
# (at depth 64 how replies bunch into reads varies a little from run to run).
#
#   BASE=DIR NEW=DIR bench/observe_base.sh [PORT]
#
# DIR: a build directory holding bench/compare. PORT: a redis-server on
# 127.0.0.1 (default: a throwaway one on a free port, stopped after).
# Environment: N (default 100000), REPEAT (default 3), OPS (default
# "get set"), DEPTHS (default "1 64"), CG_KEEP=DIR keeps the callgrind files
# of the N runs (callgrind.{base,new}.OP.dDEPTH.out) for callgrind_annotate.
# Prints a Markdown table; nothing is asserted.
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "observe_base: $*" >&2; }
die() { say "$*"; exit 1; }
[ -n "$BASE" ] && [ -n "$NEW" ] || die "usage: BASE=DIR NEW=DIR bench/observe_base.sh [PORT]"
for b in "$BASE" "$NEW"; do
    [ -x "$b/bench/compare" ] || die "$b/bench/compare not found: build it first"
done
command -v valgrind >/dev/null || die "valgrind not found (scripts/deps.sh bench installs it)"
N=${N:-100000}
REPEAT=${REPEAT:-3}
OPS=${OPS:-get set}
DEPTHS=${DEPTHS:-1 64}
SMALL=$((N / 5))
[ "$SMALL" -ge 1 ] && [ "$N" -gt "$SMALL" ] || die "N=$N: too small"

. "$ROOT/scripts/throwaway-server.sh"
throwaway_dir observe-base
if [ -n "$1" ]; then
    PORT=$1
else
    command -v redis-server >/dev/null || die "redis-server not found"
    throwaway_start redis-server
    say "throwaway redis-server on 127.0.0.1:$PORT (pid $PID)"
fi
# GET needs the key (compare's, with its 3-byte value).
"$NEW/bench/compare" --worker aredis --op set --depth 1 --mode window -n 1 \
    -h 127.0.0.1 -p "$PORT" >/dev/null || die "cannot reach redis-server on 127.0.0.1:$PORT"

# ir BUILD OP DEPTH COUNT [KEEP]: the instructions of one callgrind run.
ir() {
    out=/dev/null
    [ -n "$5" ] && out=$5
    valgrind --tool=callgrind --callgrind-out-file="$out" "$1/bench/compare" --worker aredis \
        --op "$2" --depth "$3" --mode window -n "$4" -h 127.0.0.1 -p "$PORT" \
        >"$DIR/res" 2>"$DIR/log" || { cat "$DIR/log" "$DIR/res" >&2; die "$1: run failed"; }
    grep -q "errors=0" "$DIR/res" || { cat "$DIR/res" >&2; die "$1: errors"; }
    sed -n 's/^==[0-9]*== I *refs: *//p' "$DIR/log" | tr -d ,
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo "| command | before: instructions/command | now | now / before | runs (before; now) |"
echo "|---|---:|---:|---:|---|"
for op in $OPS; do
    OP=$(echo "$op" | tr '[:lower:]' '[:upper:]')
    for d in $DEPTHS; do
        : >"$DIR/base.txt"
        : >"$DIR/new.txt"
        r=0
        while [ $r -lt "$REPEAT" ]; do
            for side in base new; do
                [ $side = base ] && b=$BASE || b=$NEW
                keep=""
                if [ -n "$CG_KEEP" ] && [ $r = 0 ]; then
                    mkdir -p "$CG_KEEP"
                    keep="$CG_KEEP/callgrind.$side.$op.d$d.out"
                fi
                hi=$(ir "$b" "$op" "$d" "$N" "$keep")
                lo=$(ir "$b" "$op" "$d" "$SMALL")
                awk -v h="$hi" -v l="$lo" -v n="$N" -v s="$SMALL" \
                    'BEGIN { printf "%.1f\n", (h - l) / (n - s) }' >>"$DIR/$side.txt"
            done
            r=$((r + 1))
        done
        mb=$(median <"$DIR/base.txt")
        mn=$(median <"$DIR/new.txt")
        runs="$(tr '\n' ' ' <"$DIR/base.txt" | sed 's/ $//'); $(tr '\n' ' ' <"$DIR/new.txt" | sed 's/ $//')"
        echo "$OP $d $mb $mn $runs" | awk '{
            runs = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ [^ ]+ /, "", runs)
            printf "| %s, depth %s | %.1f | %.1f | %.4f | %s |\n", $1, $2, $3, $4, $4 / $3, runs }'
        say "$OP depth $d: before $mb, now $mn"
    done
done
echo
echo "<!-- bench/observe_base.sh: BASE=$BASE NEW=$NEW N=$N (minus N/5), median of $REPEAT -->"
