#!/bin/sh
# bench/summary.sh LOG [GOALS] — the summary table of a `make bench` run (docs/BENCHMARKS.md
# keeps the same table at its top). GOALS (default bench/goals.txt) lists one row per line:
#   label | goal | ratio source | weft figure | peer figure
# The ratio source is the text of a "speedup <figure> vs <peer>" line the benchmarks print,
# or "cost:<peer figure>/<weft figure>" (a cost: ratio = peer over weft) or
# "rate:<weft figure>/<peer figure>" for a ratio no program prints. Figures name
# "<figure>: <value> <unit>" lines; "-" leaves the column empty. A goal is a minimum ratio.
# Prints a Markdown table; a row whose lines are missing from LOG says "not run".
set -eu
log=${1:?usage: bench/summary.sh LOG [GOALS]}
goals=${2:-$(dirname "$0")/goals.txt}
awk -v date="$(date -u +%Y-%m-%d)" '
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
# "<name>: <value> <unit>" -> value and unit by name (the last run of a name wins)
FNR == NR && /^speedup / { t = substr($0, 9); i = index(t, ": "); speed[substr(t, 1, i - 1)] = substr(t, i + 2) + 0; next }
FNR == NR && /^# .*load average/ { if (match($0, /load average [0-9.]+/)) { l = substr($0, RSTART + 13, RLENGTH - 13) + 0; if (l > maxload) maxload = l; seenload = 1 } next }
FNR == NR && match($0, /: [-0-9.]+ [^:]*$/) && !/^#/ {
    name = substr($0, 1, RSTART - 1); rest = substr($0, RSTART + 2); sp = index(rest, " ")
    val[name] = substr(rest, 1, sp - 1); unit[name] = substr(rest, sp + 1); next }
FNR == NR { next }
/^[ \t]*(#|$)/ { next }
{
    n = split($0, f, "|"); for (k = 1; k <= n; k++) f[k] = trim(f[k])
    if (n != 5 || f[2] !~ /^[0-9.]+$/) { printf "%s:%d: want label | goal | source | weft | peer\n", FILENAME, FNR > "/dev/stderr"; bad = 1; exit 2 }
    label = f[1]; goal = f[2] + 0; src = f[3]; wf = f[4]; pf = f[5]
    ratio = ""
    if (src ~ /^(cost|rate):/) {
        split(substr(src, 6), ab, "/")
        if ((ab[1] in val) && (ab[2] in val) && val[ab[2]] + 0 != 0) ratio = sprintf("%.2f", val[ab[1]] / val[ab[2]])
    } else if (src in speed) ratio = sprintf("%.2f", speed[src])
    w = (wf != "-" && (wf in val)) ? val[wf] " " unit[wf] : ""
    p = (pf != "-" && (pf in val)) ? val[pf] " " unit[pf] : ""
    if (ratio == "") { verdict = "not run"; notrun++ } else if (ratio + 0 >= goal) { verdict = "**met**"; met++ } else { verdict = "not met"; missed++ }
    rows[++nrows] = sprintf("| %s | %s | %s | %s | >= %s | %s |", label, w, p, ratio == "" ? "-" : ratio, f[2], verdict)
}
END {
    if (bad) exit 2
    printf "Summary of this run (%s, highest load average at a program start: %s; ratio > 1: weft ahead)\n\n", date, seenload ? maxload : "?"
    print "| figure | weft | best peer | ratio | goal | |"
    print "|---|---|---|---|---|---|"
    for (k = 1; k <= nrows; k++) print rows[k]
    printf "\n%d met, %d not met, %d not run\n", met, missed, notrun
}' "$log" "$goals"
