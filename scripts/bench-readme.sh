#!/bin/sh
# The README's benchmark tables, taken from a docs/BENCHMARKS.md that
# scripts/bench.sh wrote (so the README shows numbers of that one run):
# ops/s for SET and GET by depth for aredis and the clients it is compared
# with, the ratio to the newest hiredis (the median of the per-round ratios,
# from the run's ratio table), and client CPU per million commands.
# Usage: scripts/bench-readme.sh [docs/BENCHMARKS.md] > block.md
set -e
F=${1:-$(dirname "$0")/../docs/BENCHMARKS.md}
awk '
function trim(s) { gsub(/^ +| +$/, "", s); gsub(/\*/, "", s); return s }
# Columns shown, in order, when the run has them.
BEGIN { nwant = split("aredis hiredis-1.4.0-async hiredis-0.14.1-async redis-benchmark", want, " ") }
/^Generated / { gen = $0 }
/^### (SET|GET), 3-byte value: ops\/s/ { op = $2; sub(/,$/, "", op); mode = "ops"; hdr = 0; next }
/^### Client CPU seconds/ { mode = "cpu"; hdr = 0; next }
/^### Ratios, aredis \(built-in loop\)/ { mode = "ratio"; hdr = 0; next }
/^### / { mode = ""; next }
mode != "" && /^\|/ {
    n = split($0, c, "|")
    if (!hdr) { for (i = 2; i < n; i++) { col[mode, trim(c[i])] = i; if (mode == "ratio") col_name[i] = trim(c[i]) }
        hdr = 1; next }
    if (c[2] ~ /---/) next
    if (mode == "ops") { d = trim(c[2]); depths[op, ++nd[op]] = d
        for (w = 1; w <= nwant; w++) if ((mode, want[w]) in col) ops[op, d, want[w]] = trim(c[col[mode, want[w]]]) }
    else if (mode == "ratio") { o = trim(c[2]); d = trim(c[3])
        for (i = 4; i < n; i++) ratio[o, d, col_name[i]] = trim(c[i]) }
    else { o = trim(c[2]); d = trim(c[3])
        for (w = 1; w <= nwant; w++) if ((mode, want[w]) in col) cpu[o, d, want[w]] = trim(c[col[mode, want[w]]]) }
}
END {
    # The hiredis to compare with: the newest one the run has.
    ref = (("ops", "hiredis-1.4.0-async") in col) ? "hiredis-1.4.0-async" : "hiredis-0.14.1-async"
    split("SET GET", ops_, " ")
    for (k = 1; k <= 2; k++) {
        op = ops_[k]
        if (!nd[op]) continue
        printf "**%s**, 3-byte value, one connection, ops/s (median of the rounds):\n\n", op
        line = "| depth |"; sep = "|---:|"
        for (w = 1; w <= nwant; w++) if (("ops", want[w]) in col) { line = line " " want[w] " |"; sep = sep "---:|" }
        print line " aredis / " ref " |"; print sep "---:|"
        for (j = 1; j <= nd[op]; j++) {
            d = depths[op, j]; line = "| " d " |"
            for (w = 1; w <= nwant; w++) if (("ops", want[w]) in col) line = line " " ops[op, d, want[w]] " |"
            r = ((op, d, "/ " ref) in ratio) ? ratio[op, d, "/ " ref] : "-"
            print line " " r " |"
        }
        print ""
    }
    print "Client CPU seconds per million commands at depth 64 (lower is better):\n"
    line = "| op |"; sep = "|---|"
    for (w = 1; w <= nwant; w++) if (("cpu", want[w]) in col) { line = line " " want[w] " |"; sep = sep "---:|" }
    print line; print sep
    for (k = 1; k <= 2; k++) {
        line = "| " ops_[k] " |"
        for (w = 1; w <= nwant; w++) if (("cpu", want[w]) in col) line = line " " cpu[ops_[k], "64", want[w]] " |"
        print line
    }
    print ""
    sub(/^Generated /, "", gen); sub(/\.$/, "", gen)
    print "From one `make bench` run (" gen "), redis-server on the same 2-core machine;"
    print "the ratio is the median of the per-round ratios. Method, latency, throughput"
    print "and profiles in"
    print "[docs/BENCHMARKS.md](docs/BENCHMARKS.md)."
}' "$F"
