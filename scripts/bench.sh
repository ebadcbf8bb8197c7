#!/bin/sh
# make bench: run bench/ (parser, throughput, latency, compare) against a
# throwaway redis-server on a free 127.0.0.1 port (and a unix socket in its
# temp dir), then write docs/BENCHMARKS.md (tables, machine, exact commands,
# ratios, targets, bench/limits.md) and docs/bench-throughput.png (gnuplot).
# The server is stopped at the end, also on Ctrl-C.
#
#   scripts/bench.sh [BUILD_DIR]      (default: build)
#
# Environment: BENCH_QUICK=1 runs a short smoke version (the document says
# so); BENCH_OUT overrides the output file (default docs/BENCHMARKS.md);
# BENCH_PIN=0 leaves placement to the scheduler (by default, with 2+ CPUs and
# taskset, the server is pinned to CPU 0 and every client to CPU 1).
# HIREDIS_DIR=PREFIX adds a current hiredis (1.x, an install prefix or build
# dir with include/hiredis/ and lib/libhiredis.so or .a) to compare, besides
# Debian's 0.14: the build is reconfigured with -DHIREDIS_DIR and
# bench/compare_hiredis1 built (bench/CMakeLists.txt); HIREDIS_DIR= (empty)
# takes it out again; unset, the build stays as configured.
# LIBVALKEY_DIR=PREFIX adds libvalkey's async cluster client (an install
# prefix or build dir with include/valkey/cluster.h and lib/libvalkey.a or
# .so) to bench/cluster, the same way: reconfigured with -DLIBVALKEY_DIR;
# LIBVALKEY_DIR= (empty) takes it out again; unset, the build stays as is.
# bench/cluster starts its own servers (a standalone one and a cluster of
# three primaries, pinned like the server above) and stops them.
# BASE_BUILD=DIR, a build of the commit before observability (its
# bench/compare), adds a plain client's instructions per command there and
# here (bench/observe_base.sh) to the observability section.
# As root, installs Perl's Redis::Fast (libredis-fast-perl) when missing.
set -e
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bench"
OUT=${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}
PNG="$(dirname "$OUT")/bench-throughput.png"
mkdir -p "$(dirname "$OUT")"
T_START=$(date +%s)

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

for b in parser throughput latency compare; do
    [ -x "$BIN/$b" ] || die "$BIN/$b not found: build first (make bench, or cmake --build $BUILD)"
done
# A current hiredis besides Debian's: configure it in, or out, when asked.
cached_hiredis_dir() { sed -n 's/^HIREDIS_DIR:PATH=//p' "$BUILD/CMakeCache.txt" 2>/dev/null; }
if [ -n "${HIREDIS_DIR+set}" ]; then
    want=$HIREDIS_DIR
    if [ -n "$want" ]; then
        [ -d "$want" ] || die "HIREDIS_DIR=$want: not a directory"
        want=$(cd "$want" && pwd)
    fi
    if [ "$want" != "$(cached_hiredis_dir)" ] ||
        { [ -n "$want" ] && [ ! -x "$BIN/compare_hiredis1" ]; }; then
        say "configuring $BUILD with HIREDIS_DIR=$want"
        cmake -S "$ROOT" -B "$BUILD" -DHIREDIS_DIR="$want" >/dev/null ||
            die "cmake -DHIREDIS_DIR=$want failed"
    fi
    # compare depends on compare_hiredis1 and knows its path and version.
    cmake --build "$BUILD" --target bench_compare -j "$(nproc 2>/dev/null || echo 2)" >/dev/null ||
        die "building bench/compare with HIREDIS_DIR=$want failed"
    if [ -n "$want" ]; then
        "$BIN/compare" --hiredis1 >/dev/null ||
            die "HIREDIS_DIR=$want: no hiredis there to build with (see cmake's warning)"
        say "hiredis $("$BIN/compare" --hiredis1) in compare"
    fi
fi
HIREDIS1_DIR=$(cached_hiredis_dir)
# libvalkey beside aredis in bench/cluster: configure it in, or out, when asked.
cached_libvalkey_dir() { sed -n 's/^LIBVALKEY_DIR:PATH=//p' "$BUILD/CMakeCache.txt" 2>/dev/null; }
if [ -n "${LIBVALKEY_DIR+set}" ]; then
    want=$LIBVALKEY_DIR
    if [ -n "$want" ]; then
        [ -d "$want" ] || die "LIBVALKEY_DIR=$want: not a directory"
        want=$(cd "$want" && pwd)
    fi
    if [ "$want" != "$(cached_libvalkey_dir)" ]; then
        say "configuring $BUILD with LIBVALKEY_DIR=$want"
        cmake -S "$ROOT" -B "$BUILD" -DLIBVALKEY_DIR="$want" >/dev/null ||
            die "cmake -DLIBVALKEY_DIR=$want failed"
    fi
    cmake --build "$BUILD" --target bench_cluster -j "$(nproc 2>/dev/null || echo 2)" >/dev/null ||
        die "building bench/cluster with LIBVALKEY_DIR=$want failed"
    if [ -n "$want" ]; then
        "$BIN/cluster" --libvalkey >/dev/null ||
            die "LIBVALKEY_DIR=$want: no libvalkey there to build with (see cmake's warning)"
        say "libvalkey $("$BIN/cluster" --libvalkey) in bench/cluster"
    fi
fi
LIBVALKEY1_DIR=$(cached_libvalkey_dir)
command -v redis-server >/dev/null || die "redis-server not found (scripts/deps.sh installs it)"
command -v redis-cli >/dev/null || die "redis-cli not found (scripts/deps.sh installs it)"

# Perl's Redis::Fast: the client the reference design compared itself with.
if ! perl -MRedis::Fast -e 1 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing libredis-fast-perl (Perl's Redis::Fast, for compare)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            libredis-fast-perl >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 &&
              DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                  libredis-fast-perl >/dev/null 2>&1; } ||
            say "could not install libredis-fast-perl: compare runs without Redis::Fast"
    else
        say "Perl's Redis::Fast is not installed (apt-get install libredis-fast-perl): skipped"
    fi
fi
command -v gnuplot >/dev/null || say "gnuplot not found: no chart (apt-get install gnuplot-nox)"

# ---- The throwaway server ----------------------------------------------------
. "$ROOT/scripts/throwaway-server.sh"
throwaway_dir bench
# Pinning: the same placement for every client, run after run.
SRV_PIN=""
CLI_PIN=""
C_PIN=""
CL_PIN="" # bench/cluster starts its own servers: it pins them
PIN_NOTE="placement left to the scheduler"
if [ "${BENCH_PIN:-1}" != 0 ] && command -v taskset >/dev/null &&
    [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then
    SRV_PIN="taskset -c 0"
    CLI_PIN="taskset -c 1"
    C_PIN="--cpu 1"
    CL_PIN="--server-cpu 0"
    PIN_NOTE="redis-server pinned to CPU 0 and every client process to CPU 1 (taskset)"
fi
SOCK="$DIR/redis.sock"
# shellcheck disable=SC2086 # $SRV_PIN: "taskset -c 0" or nothing
throwaway_start $SRV_PIN redis-server --unixsocket "$SOCK" --unixsocketperm 700
say "throwaway redis-server on 127.0.0.1:$PORT and $SOCK (pid $PID)"

# Other work on the machine: its busy CPU time over the run (/proc/stat),
# less this script's children and the server, is what else ran meanwhile.
# cpu_busy: busy and total ticks of all CPUs (steal counted as neither).
cpu_busy() { awk '/^cpu / { print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat 2>/dev/null; }
BUSY0=$(cpu_busy)

# ---- Sizes ---------------------------------------------------------------------
if [ -n "$BENCH_QUICK" ]; then
    P_ARGS="--time 0.05 --rounds 1"
    T_ARGS="-n 20000 --seq-count 2000 --rounds 1"
    L_ARGS="-n 20000"
    C_ARGS="--rounds 1 --scale 0.1"
else
    P_ARGS="--time 0.25 --rounds 3"
    T_ARGS="-n 150000 --seq-count 10000 --rounds 3"
    L_ARGS="-n 100000"
    C_ARGS="--rounds 7"
fi

W="$DIR/work"
mkdir -p "$W"
: >"$W/commands"
# run NAME CMD...: run and log the exact command line (paths shortened).
run() {
    name=$1; shift
    echo "$*" | sed -e "s#$BIN/#bench/#g" -e "s#$SOCK#/tmp/…/redis.sock#g" \
        -e "s#$ROOT/##g" -e "s#$W/#out/#g" -e "s#-p $PORT#-p \$PORT#g" >>"$W/commands"
    say "$name: $*"
    "$@"
}

run parser $CLI_PIN "$BIN/parser" $P_ARGS --md="$W/parser.md"
run throughput $CLI_PIN "$BIN/throughput" -h 127.0.0.1 -p "$PORT" -u "$SOCK" $T_ARGS \
    --json="$W/throughput.json" --md="$W/throughput.md"
run latency $CLI_PIN "$BIN/latency" -h 127.0.0.1 -p "$PORT" $L_ARGS --md="$W/latency.md"
run compare "$BIN/compare" -h 127.0.0.1 -p "$PORT" $C_ARGS $C_PIN \
    --perl-script "$ROOT/bench/redis_fast.pl" --md="$W/compare.md" --dat="$W/compare.dat" \
    --summary="$W/summary.md" --json="$W/compare.json"

# Features (pipeline, transaction, EVALSHA) against plain commands, in
# instructions per command (callgrind): repeatable, and what their targets
# are stated in. Needs valgrind (scripts/deps.sh bench installs it).
if command -v valgrind >/dev/null; then
    FN=100000
    [ -n "$BENCH_QUICK" ] && FN=10000
    echo "N=$FN WHAT=features bench/instructions.sh \$PORT $(basename "$BUILD")" >>"$W/commands"
    say "features: instructions per command (callgrind, N=$FN)"
    N=$FN WHAT=features "$ROOT/bench/instructions.sh" "$PORT" "$BUILD" >"$W/features.txt"
fi

# Pub/sub, the pool and commands from other threads: each bench prints its
# own table; the document shows it as printed.
PS_N=1000000; PS_RUNS=5; POOL_N=200000; POOL_I=50000; THR_N=200000
if [ -n "$BENCH_QUICK" ]; then
    PS_N=100000; PS_RUNS=1; POOL_N=20000; POOL_I=5000; THR_N=20000
fi
if [ -x "$BIN/pubsub" ]; then
    run pubsub $CLI_PIN "$BIN/pubsub" -h 127.0.0.1 -p "$PORT" -n "$PS_N" --runs "$PS_RUNS" \
        --subs aredis,aredis-resp2,hiredis-async >"$W/pubsub.txt" ||
        say "pubsub failed: left out"
fi
if [ -x "$BIN/pool" ]; then
    if command -v valgrind >/dev/null; then
        run pool $CLI_PIN "$BIN/pool" -h 127.0.0.1 -p "$PORT" -n "$POOL_N" \
            --instructions="$POOL_I" >"$W/pool.txt" || say "pool failed: left out"
    else
        run pool $CLI_PIN "$BIN/pool" -h 127.0.0.1 -p "$PORT" -n "$POOL_N" >"$W/pool.txt" ||
            say "pool failed: left out"
    fi
    run pool16 $CLI_PIN "$BIN/pool" -h 127.0.0.1 -p "$PORT" -n "$POOL_N" -d 16 \
        >"$W/pool16.txt" || say "pool -d 16 failed: left out"
fi
# Observability (aredis/observe.h): no observer, a no-op observer, metrics,
# both; with BASE_BUILD=DIR (a build of the commit before observability),
# also a plain client's instructions per command there and here
# (bench/observe_base.sh).
OBS_N=200000; OBS_N1=20000; OBS_R=7; OBS_I=50000
if [ -n "$BENCH_QUICK" ]; then
    OBS_N=20000; OBS_N1=2000; OBS_R=1; OBS_I=5000
fi
if [ -x "$BIN/observe" ]; then
    OBS_ARGS=""
    command -v valgrind >/dev/null && OBS_ARGS="--instructions=$OBS_I"
    # shellcheck disable=SC2086 # $CLI_PIN, $OBS_ARGS: words or nothing
    run observe $CLI_PIN "$BIN/observe" -h 127.0.0.1 -p "$PORT" -n "$OBS_N" --n1 "$OBS_N1" \
        --rounds "$OBS_R" $OBS_ARGS >"$W/observe.md" || say "observe failed: left out"
    if [ -n "$BASE_BUILD" ] && command -v valgrind >/dev/null; then
        case $BASE_BUILD in /*) ;; *) BASE_BUILD="$ROOT/$BASE_BUILD" ;; esac
        OBS_BN=100000
        [ -n "$BENCH_QUICK" ] && OBS_BN=10000
        echo "BASE=$BASE_BUILD NEW=$(basename "$BUILD") N=$OBS_BN bench/observe_base.sh \$PORT" \
            >>"$W/commands"
        say "observe_base: instructions per command, $BASE_BUILD against $BUILD"
        # shellcheck disable=SC2086
        BASE=$BASE_BUILD NEW=$BUILD N=$OBS_BN $CLI_PIN "$ROOT/bench/observe_base.sh" "$PORT" \
            >"$W/observe_base.md" || say "observe_base failed: left out"
    fi
fi
# Client-side caching (aredis/cache.h): GET of 1,000 hot keys with the
# cache off, on (warmed: all hits) and on while another client writes.
CACHE_N=1000000; CACHE_R=7
if [ -n "$BENCH_QUICK" ]; then
    CACHE_N=100000; CACHE_R=1
fi
if [ -x "$BIN/cache" ]; then
    run cache $CLI_PIN "$BIN/cache" -h 127.0.0.1 -p "$PORT" -n "$CACHE_N" --rounds "$CACHE_R" \
        >"$W/cache.md" || say "cache failed: left out"
fi
# Redis Cluster (aredis/cluster.h): a 3-primary cluster against a single
# node, libvalkey's cluster client beside them when built in (LIBVALKEY_DIR);
# bench/cluster starts and stops its own servers (not $PORT's).
CL_N=200000; CL_N1=20000; CL_R=5; CL_I=50000; CL_P=200
if [ -n "$BENCH_QUICK" ]; then
    CL_N=20000; CL_N1=2000; CL_R=1; CL_I=5000; CL_P=20
fi
if [ -x "$BIN/cluster" ]; then
    CL_ARGS="--pipeline=$CL_P"
    command -v valgrind >/dev/null && CL_ARGS="$CL_ARGS --instructions=$CL_I"
    # shellcheck disable=SC2086 # $CLI_PIN, $CL_PIN, $CL_ARGS: words or nothing
    run cluster $CLI_PIN "$BIN/cluster" $CL_PIN -n "$CL_N" --n1 "$CL_N1" --rounds "$CL_R" \
        $CL_ARGS >"$W/cluster.md" || say "cluster failed: left out"
fi
if [ -x "$BIN/threads" ]; then
    run threads "$BIN/threads" -h 127.0.0.1 -p "$PORT" -n "$THR_N" >"$W/threads.txt" ||
        say "threads failed: left out"
fi

# ---- Chart -------------------------------------------------------------------
CHART=""
# plot_cmd INDEX: one line per column of compare.dat, each client in the same
# style whichever columns are present (hiredis 1.x only with HIREDIS_DIR).
plot_cmd() {
    awk '!/^#/ && NF { print; exit }' "$W/compare.dat" | tr ' ' '\n' |
        awk -v f="$W/compare.dat" -v ix="$1" -v q="'" '
        BEGIN {
            split("aredis aredis-libevent hiredis-async hiredis-sync redis-benchmark redis-fast", n)
            for (i in n) style[n[i]] = i
        }
        NR > 1 {
            lt = style[$0]
            # With hiredis 1.x present the hiredis labels carry versions.
            if (!lt) lt = ($0 ~ /^hiredis-0\./ ? 3 : 7) + ($0 ~ /-sync$/)
            printf "%s%s%s%s index %d using 1:%d with linespoints lt %d title columnheader(%d)",
                (NR > 2 ? ", " : ""), q, f, q, ix, NR, lt, NR
        }'
}
if command -v gnuplot >/dev/null; then
    cores=$(nproc 2>/dev/null || echo "?")
    rm -f "$PNG"
    gnuplot <<EOF >/dev/null && [ -s "$PNG" ] && CHART=1
set terminal pngcairo size 1200,520 font "DejaVu Sans,10"
set output '$PNG'
set multiplot layout 1,2 title \
    "ops/s on one connection, client and server sharing $cores cores (higher is better)"
set logscale xy
set xrange [0.8:320]
set xtics ("1" 1, "16" 16, "64" 64, "256" 256)
set format y "%.0s%c"
set grid ytics mytics xtics
set key top left box opaque
set linetype 1 lc rgb "#c0392b" lw 3 pt 7
set linetype 2 lc rgb "#e67e22" lw 2 pt 5 dt 2
set linetype 3 lc rgb "#2471a3" lw 2 pt 9
set linetype 4 lc rgb "#76b7e8" lw 2 pt 11 dt 2
set linetype 5 lc rgb "#1e8449" lw 2 pt 13
set linetype 6 lc rgb "#7d3c98" lw 2 pt 3 dt 3
set linetype 7 lc rgb "#b7950b" lw 2 pt 6
set linetype 8 lc rgb "#f0c92e" lw 2 pt 4 dt 2
set xlabel "commands in flight (depth)"
set ylabel "ops/s"
set title "SET, 3-byte value"
plot $(plot_cmd 0)
set title "GET, 3-byte value"
plot $(plot_cmd 1)
unset multiplot
EOF
fi

# ---- The document --------------------------------------------------------------
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
ver() { "$@" 2>/dev/null | head -1; }
aredis_ver=$("$BIN/throughput" --version 2>/dev/null | sed -n 's/^aredis //p')
[ -n "$aredis_ver" ] ||
    aredis_ver=$(sed -n 's/^project(aredis VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
git_rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo "?")
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
bt_uc=$(echo "$build_type" | tr "a-z" "A-Z")
build_flags=$(sed -n "s/^CMAKE_C_FLAGS_$bt_uc:STRING=//p" "$BUILD/CMakeCache.txt" 2>/dev/null)
hiredis_ver=$(dpkg-query -W -f='${Version}' libhiredis-dev 2>/dev/null ||
    pkg-config --modversion hiredis 2>/dev/null || echo "not installed")
# hiredis 1.x (HIREDIS_DIR): its version as compare labelled it, when it ran.
hiredis1_ver=$(sed -n 's/.*"hiredis1_version":"\([^"]*\)".*/\1/p' "$W/compare.json")
# Debian's hiredis in the tables: hiredis-async, or with its version when both are.
ha_label=$(sed -n 's/.*"client":"hiredis-async"[^}]*"label":"\([^"]*\)".*/\1/p' \
    "$W/compare.json" | head -1)
hs_label=$(echo "${ha_label:-hiredis-async}" | sed 's/-async$/-sync/')
hypervisor=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor:[[:space:]]*//p' | head -1)
cpuidle=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo "?")
haltpoll_ns=$(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns 2>/dev/null || echo "")
libevent_ver=$(pkg-config --modversion libevent 2>/dev/null || echo "not installed")
# libvalkey in bench/cluster (LIBVALKEY_DIR): its version; empty when not built in.
libvalkey_ver=""
if [ -x "$BIN/cluster" ]; then
    libvalkey_ver=$("$BIN/cluster" --libvalkey 2>/dev/null) || libvalkey_ver=""
fi
rfast_ver=$(perl -MRedis::Fast -e 'print $Redis::Fast::VERSION' 2>/dev/null || echo "not installed")
syscall_tool=$(sed -n 's/.*"syscall_tool":"\([a-z]*\)".*/\1/p' "$W/compare.json")
T_END=$(date +%s)
# Seconds of CPU: the machine's busy time, ours (children of this script,
# from `times`), the server's (/proc/PID/stat, utime + stime).
other_note=""
BUSY1=$(cpu_busy)
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
srv_ticks=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$PID/stat" 2>/dev/null || echo "")
times >"$DIR/times" # here, not in a $(...) subshell: that has no children
mine=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, "m"); s += t[1] * 60 + t[2] } print s }' "$DIR/times")
if [ -n "$BUSY0" ] && [ -n "$BUSY1" ] && [ -n "$srv_ticks" ] && [ -n "$mine" ]; then
    other_note=$(echo "$BUSY0 $BUSY1 $hz $srv_ticks $mine" | awk '{
        busy = ($3 - $1) / $5; total = ($4 - $2) / $5; other = busy - $6 / $5 - $7
        if (other < 0) other = 0
        printf "%.0f s of the %.0f s of CPU time the run spanned (%.0f %%)", other, total,
            (total > 0 ? 100 * other / total : 0) }')
    other_pct=$(echo "$BUSY0 $BUSY1 $hz $srv_ticks $mine" | awk '{
        total = ($4 - $2) / $5; other = ($3 - $1) / $5 - $6 / $5 - $7
        printf "%.0f", (total > 0 && other > 0 ? 100 * other / total : 0) }')
fi

{
    echo "# aredis benchmarks"
    echo
    echo "<!-- GENERATED by scripts/bench.sh (make bench) from one run: do not edit by hand."
    echo "     The \"What limits the rest\" section comes from bench/limits.md. -->"
    echo
    if [ -n "$BENCH_QUICK" ]; then
        echo "**BENCH_QUICK smoke run: counts cut tenfold, one round; not for quoting.**"
        echo
    fi
    how="\`make bench\`"
    if [ -n "${HIREDIS_DIR:-}" ]; then
        how="\`HIREDIS_DIR=$HIREDIS_DIR make bench\`"
    elif [ -z "${HIREDIS_DIR+set}" ] && [ -n "$HIREDIS1_DIR" ]; then
        how="$how (build configured with \`-DHIREDIS_DIR=$HIREDIS1_DIR\`)"
    fi
    if [ -n "${LIBVALKEY_DIR:-}" ]; then
        how="\`LIBVALKEY_DIR=$LIBVALKEY_DIR ${how#\`}"
    elif [ -z "${LIBVALKEY_DIR+set}" ] && [ -n "$LIBVALKEY1_DIR" ]; then
        how="$how (build configured with \`-DLIBVALKEY_DIR=$LIBVALKEY1_DIR\`)"
    fi
    echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') in $((T_END - T_START)) s by $how."
    echo "Every number below comes from that one run."
    echo
    echo "## Summary"
    echo
    cat "$W/summary.md"
    echo
    if [ -n "$CHART" ]; then
        echo "![ops/s by depth: aredis, hiredis, redis-benchmark, Redis::Fast]\
(bench-throughput.png)"
        echo
    fi
    echo "## The machine"
    echo
    echo "- CPU: ${cpu_model:-unknown}, \`nproc\` = $(nproc 2>/dev/null || echo ?)."
    echo "  **Client and server share these cores**: redis-server runs on the same"
    echo "  machine, so at high depth the server's own time bounds every client and the"
    echo "  clients' ratios shrink; compare alternates the clients in rounds so that noise"
    echo "  from other work on the machine hits all of them alike."
    echo "- Placement: $PIN_NOTE."
    echo "- Kernel: $(uname -sr); $(ver gcc --version)."
    echo "- redis-server: $(ver redis-server --version)."
    if [ -n "$hypervisor" ]; then
        halt=""
        [ -n "$haltpoll_ns" ] && halt=", guest halt polling $haltpoll_ns ns"
        echo "- A virtual machine ($hypervisor), cpuidle driver $cpuidle$halt: an idle"
        echo "  vCPU halts, and waking it (the other side's reply arriving) costs a trip"
        echo "  through the host. At low depth that wake-up, not the client, sets the"
        echo "  round trip."
    fi
    echo "- aredis $aredis_ver (git $git_rev), build type ${build_type:-?}"
    echo "  (${build_flags:-?}), static library."
    echo "- hiredis (Debian libhiredis-dev) $hiredis_ver; libevent $libevent_ver;"
    echo "  Perl Redis::Fast $rfast_ver."
    if [ -n "$hiredis1_ver" ]; then
        echo "- hiredis $hiredis1_ver (HIREDIS_MAJOR/MINOR/PATCH of its hiredis.h) from"
        echo "  \`HIREDIS_DIR=$HIREDIS1_DIR\`, as built there, linked into"
        echo "  bench/compare_hiredis1."
    fi
    if [ -n "$libvalkey_ver" ]; then
        echo "- libvalkey $libvalkey_ver (LIBVALKEY_VERSION_* of its valkey.h) from"
        echo "  \`LIBVALKEY_DIR=$LIBVALKEY1_DIR\`, as built there, linked into bench/cluster."
    fi
    echo "- The server: \`redis-server --bind 127.0.0.1 --save \"\" --appendonly no\`, TCP on"
    echo "  127.0.0.1 and a unix socket, started for the run and stopped after it."
    if [ -n "$other_note" ]; then
        echo "- Other work on the machine during the run (busy CPU time from /proc/stat"
        echo "  less this run's own processes and the server's): $other_note."
        if [ "${other_pct:-0}" -ge 5 ]; then
            echo "  **The machine was not quiet**: absolute ops/s and CPU per command are"
            echo "  depressed (CPU per command also grows with the extra context switches);"
            echo "  the ratios, taken round by round, less so."
        fi
    fi
    echo
    echo "## Compare: aredis, hiredis, redis-benchmark, Redis::Fast"
    echo
    echo "SET then GET of one key (\`key:__rand_int__\`, as redis-benchmark without \`-r\`)"
    echo "with a 3-byte value, one connection, TCP, at depth 1, 16, 64 and 256. Each"
    echo "client runs in its own process; the order rotates from round to round; the"
    echo "median of the rounds is shown."
    echo
    echo "- **aredis**: built-in epoll loop, callbacks, default options"
    echo "  (\`AREDIS_OPTIONS_INIT\`); a reply callback issues the next command (a window"
    echo "  of depth commands in flight)."
    echo "- **aredis-libevent**: the same on aredis's libevent adapter, so the loop is the"
    echo "  one hiredis-async uses."
    echo "- **${ha_label:-hiredis-async}**: Debian's hiredis $hiredis_ver, \`redisAsyncCommand\` on its"
    echo "  libevent adapter, same window."
    if [ -n "$hiredis1_ver" ]; then
        echo "- **hiredis-$hiredis1_ver-async**, **hiredis-$hiredis1_ver-sync**: the same two"
        echo "  hiredis drivers (bench/clients.c) built a second time against hiredis"
        echo "  $hiredis1_ver from \`HIREDIS_DIR\` (bench/compare_hiredis1: two hiredis versions"
        echo "  cannot share one binary)."
    fi
    echo "- **$hs_label**, **redis-benchmark** (\`-c 1 -P depth\`), **redis-fast**"
    echo "  (Perl Redis::Fast, callbacks + \`wait_all_responses\`): can only send a batch"
    echo "  of \`depth\` and wait for all of it."
    echo
    echo "Columns: ops/s is each client's own timing of the command phase. CPU is the"
    echo "client process's user+sys over that phase (redis-benchmark: its whole"
    echo "process). Syscalls are counted with \`${syscall_tool:-none}\` in a separate pass"
    echo "(tracing costs time), minus a one-batch run so that start-up is not counted."
    echo
    sed 's/^#### /### /' "$W/compare.md"
    echo
    echo "## Throughput (aredis alone)"
    echo
    echo "ops/s, median of the rounds; keys \`bench:0\`..\`bench:9999\`. sequential = a"
    echo "future per command, awaited; concurrent = 64 in flight; pipeline = batches of"
    echo "100, each waited for; auto-pipelined = 10,000 issued in one loop turn (they"
    echo "leave in one write)."
    echo
    cat "$W/throughput.md"
    echo
    echo "## Latency"
    echo
    echo "SET of a 3-byte value over TCP; latency from issue to reply callback, N"
    echo "commands kept in flight on one connection."
    echo
    cat "$W/latency.md"
    echo
    echo "## Parser (reader alone)"
    echo
    echo "No I/O: one reply repeated to fill a 16 KB chunk (the size both libraries read"
    echo "at a time), fed to the reader, every reply taken out and freed, repeated; median"
    echo "of the rounds. hiredis 0.14 has no RESP3, so for the map it parses the RESP2"
    echo "equivalent (HGETALL's flat array of 100). The zero-copy column feeds aredis"
    echo "through \`aredis_reader_space/commit\`, as its client does."
    echo
    cat "$W/parser.md"
    echo
    if [ -s "$W/features.txt" ]; then
        echo "## Features: pipelines, transactions, scripts (instructions per command)"
        echo
        echo "User-space instructions of the client process per command, counted by"
        echo "callgrind (\`bench/instructions.sh\` with \`WHAT=features\`: start-up included,"
        echo "divided by N). Batches of 100 SET/GET: issued one by one (auto-pipelined), as"
        echo "one \`aredis_pipeline\`, and as one transaction (MULTI, the 100, EXEC). Then a"
        echo "plain GET/SET against \`aredis_script_run\` of a one-line script doing the"
        echo "same (the cached EVALSHA path). Targets: a pipeline within 10 % of"
        echo "auto-pipelining."
        echo
        awk '
            { n = $(NF - 1); sub(/ +[0-9]+ instructions\/command$/, ""); sub(/^aredis /, "") }
            /batches of 100/ {
                split($0, a, ", "); op = a[1]; kind = a[3]
                b[op, kind] = n; if (!(op in seen)) { seen[op] = 1; ops[++no] = op }
            }
            /depth [0-9]+, (plain|EVALSHA)/ {
                split($0, a, ", "); key = a[1] ", " a[2]; kind = a[3]
                s[key, kind] = n; if (!(key in sseen)) { sseen[key] = 1; keys[++nk] = key }
            }
            END {
                print "| batches of 100 | auto-pipelined | pipeline | transaction | pipeline / auto | transaction / auto |"
                print "|---|---:|---:|---:|---:|---:|"
                for (i = 1; i <= no; i++) {
                    o = ops[i]; a0 = b[o, "auto-pipelined"]
                    printf "| %s | %d | %d | %d | %.2f | %.2f |\n", o, a0, b[o, "pipeline"], b[o, "transaction"],
                        b[o, "pipeline"] / a0, b[o, "transaction"] / a0
                }
                print ""
                print "| command | plain | EVALSHA (cached) | EVALSHA / plain |"
                print "|---|---:|---:|---:|"
                for (i = 1; i <= nk; i++) {
                    k = keys[i]
                    printf "| %s | %d | %d | %.2f |\n", k, s[k, "plain"], s[k, "EVALSHA"], s[k, "EVALSHA"] / s[k, "plain"]
                }
            }' "$W/features.txt"
        echo
        echo "Why they cost what they do: \"Features\" in the section after the next."
        echo
    fi
    if [ -s "$W/pubsub.txt" ]; then
        echo "## Pub/sub: one subscriber"
        echo
        echo "A publisher pipelines PUBLISH of 16-byte messages to one channel; one"
        echo "subscriber process counts them. CPU is the subscriber's own (getrusage) from"
        echo "\"subscribed\" to the last message, per million messages; aredis (RESP3 pushes),"
        echo "aredis over RESP2 (its dedicated subscriber connection) and hiredis's async"
        echo "subscriber on libevent, each in turn, median of the runs. Target: at most"
        echo "0.5x hiredis's CPU per message."
        echo
        echo '```text'
        cat "$W/pubsub.txt"
        echo '```'
        echo
    fi
    if [ -s "$W/pool.txt" ]; then
        echo "## Pool: what a pooled command costs"
        echo
        echo "GET on one connection at depth 1 (then 16): a plain \`aredis_command\`;"
        echo "\`aredis_pool_acquire\` + the command + \`aredis_pool_release\`; and"
        echo "\`aredis_pool_command\` (acquire, send, release in one call). Instructions per"
        echo "operation by callgrind (two runs differenced, so start-up is not counted)."
        echo
        echo '```text'
        cat "$W/pool.txt"
        [ -s "$W/pool16.txt" ] && cat "$W/pool16.txt"
        echo '```'
        echo
    fi
    if [ -s "$W/observe.md" ]; then
        echo "## Observability: what an observer and metrics cost"
        echo
        echo "GET and SET of one key (3-byte value) on one client, a window of 1 and of 64"
        echo "commands in flight, in four modes: **none** (no observer, no metrics),"
        echo "**noop** (an observer whose callbacks do nothing), **metrics** (an"
        echo "\`aredis_metrics\` attached) and **both**. Every run in its own process, the"
        echo "modes in rotating order round after round; ops/s is the median, and the"
        echo "ratio to none is taken round by round (median, then each round). CPU is the"
        echo "client's user+sys per million commands. Instructions per command by"
        echo "callgrind, two runs differenced (start-up not counted). Targets: no observer"
        echo "within 1 % of the library before observability; metrics within 10 % of no"
        echo "observer."
        echo
        cat "$W/observe.md"
        echo
        if [ -s "$W/observe_base.md" ]; then
            echo "A plain client (bench/compare's aredis worker, no observer) before"
            echo "observability and now, instructions per command (\`bench/observe_base.sh\`):"
            echo
            cat "$W/observe_base.md"
            echo
        fi
    fi
    if [ -s "$W/cache.md" ]; then
        echo "## Client-side caching"
        echo
        echo "GET of 1,000 hot keys (64-byte values, read in turn) on one client, 1 and 64"
        echo "in flight, with the cache (\`aredis/cache.h\`) **off**, **on** (warmed first:"
        echo "every read a hit, answered on a later loop turn without I/O) and **on-writes**"
        echo "(another client SETs one key per 100 reads meanwhile, so the server's"
        echo "invalidations make about 1 % of the reads miss). The three run in one process,"
        echo "in rotating order round after round; ops/s is the median, the ratios to off"
        echo "are taken round by round, and CPU is the process's user+sys per million reads"
        echo "(the writer's included)."
        echo
        cat "$W/cache.md"
        echo
    fi
    if [ -s "$W/cluster.md" ]; then
        echo "## Redis Cluster"
        echo
        echo "GET and SET of 10,000 keys (\`key:0\`..\`key:9999\`, spread over every slot;"
        echo "64-byte values) on one client, 1, 16, 64 and 256 commands in flight (a reply"
        echo "callback issues the next), against **single**, a plain client of one standalone"
        echo "redis-server, and **cluster**, \`aredis_cluster\` over a cluster of three"
        echo "primaries (no replicas), default options, on the built-in loop;"
        if [ -n "$libvalkey_ver" ]; then
            echo "**cluster-libevent** is the same on aredis's libevent adapter, and **libvalkey**"
            echo "is libvalkey $libvalkey_ver's async cluster client (\`valkeyClusterAsyncCommand\`)"
            echo "on libevent, no command timeout (its default)."
        else
            echo "**cluster-libevent** is the same on aredis's libevent adapter (libvalkey's"
            echo "cluster client joins them when the build has \`LIBVALKEY_DIR\`)."
        fi
        cl_where="unpinned"
        [ -n "$CL_PIN" ] && cl_where="all pinned to CPU 0, like the server above"
        echo "bench/cluster starts these servers itself ($cl_where),"
        echo "every run in its own process after an untimed warm-up, the clients in rotating"
        echo "order round after round; ops/s is the median, the ratios to single are taken"
        echo "round by round, CPU is the client's user+sys per million commands; every GET's"
        echo "value is checked to be its key's. All four servers share the same"
        echo "cores, so at high depth the cluster's three servers split one CPU between them."
        echo "Instructions per command by callgrind, two runs differenced; **cluster-1slot**"
        echo "has every key in one slot (\`{key}:N\`, one node): it isolates the routing from"
        echo "the spreading of a window over three connections. Target: routing adds at most"
        echo "a few percent to a command's instructions, and a pipeline over many slots"
        echo "leaves in one write per node."
        echo
        cat "$W/cluster.md"
        echo
        echo "Where a routed command's extra instructions go: \"Redis Cluster\" under \"What"
        echo "limits the rest\" below."
        echo
    fi
    if [ -s "$W/threads.txt" ]; then
        echo "## Commands from other threads"
        echo
        echo "GET/SET issued through \`aredis/threads.h\` (\`aredis_loop_post\` underneath)"
        echo "from 1 thread and from 8 threads onto one client on its loop thread."
        echo
        echo '```text'
        cat "$W/threads.txt"
        echo '```'
        echo
    fi
    echo "## The exact commands"
    echo
    echo "\`\$PORT\` is the throwaway server's port; \`out/\` is a temp dir."
    echo
    echo '```sh'
    echo "$SRV_PIN${SRV_PIN:+ }redis-server --port \$PORT --bind 127.0.0.1 \\"
    echo "    --unixsocket /tmp/…/redis.sock --unixsocketperm 700 --save \"\" --appendonly no"
    cat "$W/commands"
    echo '```'
    echo
    echo "compare runs, per client and round: \`compare --worker NAME --op set|get --depth D"
    echo "--mode window|batch -n N -s 3 -h 127.0.0.1 -p \$PORT\`$([ -n "$hiredis1_ver" ] &&
        echo " (hiredis 1.x: \`compare_hiredis1 --worker hiredis1-async|hiredis1-sync ...\`)"),"
    echo "\`redis-benchmark -h 127.0.0.1"
    echo "-p \$PORT -c 1 -P D -n N -d 3 -t set|get --csv\` and \`perl bench/redis_fast.pl --host"
    echo "127.0.0.1 --port \$PORT --op set|get -P D -n N -d 3\`."
    echo
    if [ -f "$ROOT/bench/limits.md" ]; then
        cat "$ROOT/bench/limits.md"
    fi
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"

# The README's numbers come from this run: replace what sits between the
# markers, when the README has them, with the tables scripts/bench-readme.sh
# takes from the BENCHMARKS.md just written (tests/docs/check-readme.sh
# checks the two agree).
README="$ROOT/README.md"
if [ -z "$BENCH_QUICK" ] && [ -z "$BENCH_OUT" ] &&
    grep -q '<!-- bench:start -->' "$README" 2>/dev/null &&
    grep -q '<!-- bench:end -->' "$README"; then
    "$ROOT/scripts/bench-readme.sh" "$OUT" >"$W/readme-bench.md"
    awk -v f="$W/readme-bench.md" '
        /<!-- bench:start -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
        /<!-- bench:end -->/ { skip = 0 }
        !skip' "$README" >"$W/README.md" && cat "$W/README.md" >"$README"
    say "updated the numbers in README.md"
fi
say "wrote $OUT${CHART:+ and $PNG} in $((T_END - T_START)) s"
