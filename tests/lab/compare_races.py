#!/usr/bin/env python3
"""Do two races agree on the order of the models? (issue 19: two runs of `make demo` must.)

Usage: compare_races.py A/race.txt B/race.txt [--tolerance 0.15] [--column req/s]
For each connection count and each pair of models, if run A puts them more than the tolerance
apart in the column (requests/s by default), run B must order them the same way. Pairs closer
than that in A are a tie and may swap. Prints the disagreements; exit 1 if there are any.
"""
import sys

args = sys.argv[1:]
tol, col = 0.15, "req/s"
if "--tolerance" in args:
    i = args.index("--tolerance"); tol = float(args[i + 1]); del args[i:i + 2]
if "--column" in args:
    i = args.index("--column"); col = args[i + 1]; del args[i:i + 2]
if len(args) != 2:
    sys.exit(__doc__)


def read(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    head = lines[0].replace("p50 us", "p50").replace("p99 us", "p99").replace(
        "cpu us/req", "cpu").replace("rss MiB", "rss").split()
    names = {"req/s": "req/s", "p99": "p99", "cpu": "cpu", "rss": "rss"}
    k = head.index(names.get(col, col).split()[0])
    cells = {}
    for line in lines[1:]:
        f = line.split()
        if not line.strip() or f[0] == "At" or len(f) < len(head) or not f[1].isdigit():
            continue
        cells.setdefault(int(f[1]), {})[f[0]] = float(f[k])
    return cells


a, b = read(args[0]), read(args[1])
bad = []
pairs = 0
for level in sorted(a):
    ma, mb = a[level], b.get(level, {})
    names = sorted(set(ma) & set(mb))
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            hi, lo = max(ma[x], ma[y]), min(ma[x], ma[y])
            if lo <= 0 or hi / lo <= 1 + tol:
                continue
            pairs += 1
            if (ma[x] > ma[y]) != (mb[x] > mb[y]):
                bad.append(f"{level} connections: {x} {ma[x]:.0f} vs {y} {ma[y]:.0f} in A, "
                           f"{mb[x]:.0f} vs {mb[y]:.0f} in B")
print(f"compare_races: {pairs} pairs more than {tol:.0%} apart in A, {len(bad)} ordered "
      f"otherwise in B")
for line in bad:
    print("  " + line)
sys.exit(1 if bad else 0)
