#!/usr/bin/env python3
"""Checks a weft trace (weft/trace.h) is what Perfetto and chrome://tracing read.

  check_trace.py FILE [--min-runs N] [--processes N] [--tasks N] [--park TEXT] [--flows]
                      [--thread-name NAME] [--cancel-wake TEXT]
  check_trace.py --run PROGRAM FILE [options]   runs PROGRAM with WEFT_TRACE=FILE first
  check_trace.py --unwritable PROGRAM           WEFT_TRACE at a path that cannot be written:
                                                the program runs, one line on stderr

Checks: the file is JSON {"traceEvents": [...]}; every event has ph, pid, ts (and tid but M
process metadata); "X" slices of each thread nest (no two overlap partially); "B"/"E" balance
per thread; async "b"/"e" pair up per (cat, id) with b before e; every flow "f" has its "s";
one "M" process_name per pid and one "M" thread_name per (pid, tid); then the counts asked for:
coroutine runs, process lifetimes, pool tasks from submit to result, a park whose name contains
TEXT, a thread named NAME, a park on TEXT canceled (outcome "canceled") with its wake arrow
from the canceler (a "wake: TEXT..." slice and its flow "s" -> the park's "f"). Exit 0 when all hold; else prints why, exit 1.
"""
import json
import os
import subprocess
import sys


def fail(msg):
    print("check_trace: " + msg)
    sys.exit(1)


def check(path, min_runs=0, processes=None, tasks=None, park=None, flows=False,
          thread_name=None, cancel_wake=None, woken_wake=None):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        fail("%s: not a JSON trace: %s" % (path, e))
    evs = doc.get("traceEvents")
    if not isinstance(evs, list):
        fail("no traceEvents list")
    slices = {}
    stacks = {}
    asyncs = {}
    pairs = {}
    flow_s, flow_f = set(), set()
    meta = {}
    for e in evs:
        for k in ("ph", "pid", "ts"):
            if k not in e:
                fail("event without %s: %r" % (k, e))
        ph = e["ph"]
        tid = e.get("tid")
        if ph != "M" and tid is None:
            fail("event without tid: %r" % e)
        if ph == "M" and e.get("name") in ("process_name", "thread_name"):
            key = (e["name"], e["pid"], tid if e["name"] == "thread_name" else None)
            if key in meta:
                fail("%s twice for pid %s tid %s: %r and %r"
                     % (e["name"], e["pid"], tid, meta[key]["args"], e["args"]))
            meta[key] = e
        if ph == "X":
            if e["dur"] < 0:
                fail("negative duration: %r" % e)
            slices.setdefault(tid, []).append((e["ts"], e["ts"] + e["dur"], e))
        elif ph in "BE":
            stacks.setdefault(tid, []).append(e)
        elif ph in "be":
            asyncs.setdefault((e["cat"], e["id"]), []).append(e)
        elif ph == "s":
            flow_s.add(e["id"])
        elif ph == "f":
            flow_f.add(e["id"])
    # Each thread's events are written together, so a task's e (the worker's) may come
    # before its b (the submitter's) in the file: pairs are matched in time order.
    for key, es in asyncs.items():
        es.sort(key=lambda e: (e["ts"], e["ph"] == "e"))
        open_ = False
        for e in es:
            if e["ph"] == "b":
                if open_:
                    fail("async b inside an open pair %r" % (key,))
                open_ = True
            else:
                if not open_:
                    fail("async e without its b: %r" % e)
                open_ = False
                pairs.setdefault(e["cat"], []).append(e)
        if open_:
            fail("async pair left open: %r" % (key,))
    for tid, ss in slices.items():
        ss.sort(key=lambda s: (s[0], -s[1]))
        open_ = []
        for start, end, e in ss:
            while open_ and open_[-1][1] <= start + 1e-3:  # ns rounding of the decimals
                open_.pop()
            if open_ and end > open_[-1][1] + 1e-3:
                fail("thread %s: slice %r overlaps %r" % (tid, e, open_[-1][2]))
            open_.append((start, end, e))
    for tid, es in stacks.items():
        depth = 0
        for e in sorted(es, key=lambda e: e["ts"]):
            depth += 1 if e["ph"] == "B" else -1
            if depth < 0:
                fail("thread %s: E without B" % tid)
        if depth:
            fail("thread %s: %d B without E" % (tid, depth))
    missing = flow_f - flow_s
    if missing:
        fail("flow ends without starts: %r" % sorted(missing)[:5])
    runs = sum(1 for e in evs if e["ph"] == "X" and e.get("cat") == "coroutine")
    if runs < min_runs:
        fail("%d coroutine runs, expected at least %d" % (runs, min_runs))
    procs = pairs.get("process", [])
    if processes is not None and len(procs) != processes:
        fail("%d process lifetimes, expected %d" % (len(procs), processes))
    done = [e for e in pairs.get("task", []) if e["args"]["outcome"] == "result"]
    if tasks is not None and len(done) != tasks:
        fail("%d tasks from submit to result, expected %d" % (len(done), tasks))
    if park is not None and not any(e.get("cat") == "park" and park in e["name"] for e in evs):
        fail("no park on %r" % park)
    if flows and not flow_s & flow_f:
        fail("no wake arrow (flow s -> f)")
    if thread_name is not None and not any(
            k[0] == "thread_name" and e["args"]["name"] == thread_name for k, e in meta.items()):
        fail("no thread named %r: %r" % (thread_name, sorted(
            e["args"]["name"] for k, e in meta.items() if k[0] == "thread_name")))
    for text, outcome in ((cancel_wake, "canceled"), (woken_wake, "woken")):
        if text is not None:
            wake_arrows(evs, text, outcome)
    print("check_trace: %s: %d events, %d coroutine runs, %d processes, %d tasks, %d flows: ok"
          % (path, len(evs), runs, len(procs), len(done), len(flow_s & flow_f)))


def wake_arrows(evs, text, outcome):
    """Every park on `text` that ended `outcome` has its wake arrow, from a 'wake: ...'
    slice; and there is one such park."""
    # A park's flow end follows it in the file: "b" "e" "f" (a coroutine), "X" "f" (a thread).
    starts = {}
    for i, e in enumerate(evs):
        if e["ph"] == "s" and i and evs[i - 1].get("cat") == "wake":
            starts[e["id"]] = evs[i - 1]["name"]
    found = False
    for i, e in enumerate(evs):
        if (e.get("cat") != "park" or e["ph"] not in "bX" or text not in e["name"]
                or e.get("args", {}).get("outcome") != outcome):
            continue
        f = evs[i + (2 if e["ph"] == "b" else 1):][:1]
        if not f or f[0]["ph"] != "f":
            fail("%s park without a wake arrow: %r" % (outcome, e))
        if not starts.get(f[0]["id"], "").startswith("wake: " + text):
            fail("%s park's arrow %r starts at no 'wake: %s' slice" % (outcome, f[0], text))
        found = True
    if not found:
        fail("no %s park on %r" % (outcome, text))


def main(argv):
    opts = {}
    args = []
    i = 0
    run = unwritable = None
    while i < len(argv):
        a = argv[i]
        if a == "--run":
            run = argv[i + 1]; i += 2
        elif a == "--unwritable":
            unwritable = argv[i + 1]; i += 2
        elif a == "--min-runs":
            opts["min_runs"] = int(argv[i + 1]); i += 2
        elif a == "--processes":
            opts["processes"] = int(argv[i + 1]); i += 2
        elif a == "--tasks":
            opts["tasks"] = int(argv[i + 1]); i += 2
        elif a == "--park":
            opts["park"] = argv[i + 1]; i += 2
        elif a == "--thread-name":
            opts["thread_name"] = argv[i + 1]; i += 2
        elif a == "--cancel-wake":
            opts["cancel_wake"] = argv[i + 1]; i += 2
        elif a == "--woken-wake":
            opts["woken_wake"] = argv[i + 1]; i += 2
        elif a == "--flows":
            opts["flows"] = True; i += 1
        else:
            args.append(a); i += 1
    if unwritable:
        env = dict(os.environ, WEFT_TRACE="/nonexistent-weft-dir/trace.json")
        p = subprocess.run([unwritable], env=env, capture_output=True, text=True, timeout=50)
        lines = [l for l in p.stderr.splitlines() if "WEFT_TRACE" in l]
        if p.returncode != 0:
            fail("%s exited %d under an unwritable WEFT_TRACE" % (unwritable, p.returncode))
        if len(lines) != 1 or not lines[0].startswith("weft: WEFT_TRACE="):
            fail("expected one line about WEFT_TRACE on stderr, got %r" % p.stderr)
        print("check_trace: %s: %s" % (unwritable, lines[0]))
        return
    if len(args) != 1:
        fail("usage: check_trace.py [--run PROGRAM] FILE [options]")
    if run:
        if os.path.exists(args[0]):
            os.unlink(args[0])
        p = subprocess.run([run], env=dict(os.environ, WEFT_TRACE=args[0]),
                           stdout=subprocess.DEVNULL, timeout=50)
        if p.returncode != 0:
            fail("%s exited %d" % (run, p.returncode))
    check(args[0], **opts)


if __name__ == "__main__":
    main(sys.argv[1:])
