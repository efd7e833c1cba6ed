"""peer_coro.py — gevent's greenlets, a peer of weft's coroutines in bench/bench_coro.c.

Usage: python3 peer_coro.py sleep0 N
       python3 peer_coro.py switch N
       python3 peer_coro.py spawn TOTAL BATCH
       python3 peer_coro.py memory N

sleep0: two greenlets each call gevent.sleep(0) N times, taking turns through gevent's hub
(what weft_co_yield is to weft); prints "ns per switch: <x>", time over the 2N yields.
switch: two bare greenlets hand control to each other with greenlet.switch(), N round trips,
no hub in between; prints "ns per switch: <x>", time over the 2N switches.
spawn: TOTAL greenlets in batches of BATCH, each batch gevent.spawn'ed then gevent.joinall'ed;
prints "ns per spawn+join: <x>".
memory: N greenlets each parked in Event.wait() on one gevent.event.Event; prints the growth
of the resident set (/proc/self/statm) over N: "bytes per greenlet RSS: <x>".

Each mode warms up first and times itself, so interpreter start-up is not counted.
bench_coro.c runs this with Debian's /usr/bin/python3 (python3-gevent) through popen.
"""
import os
import sys
import time

import gevent
import gevent.event
from greenlet import greenlet, getcurrent


def sleep0(n):
    def turn():
        sleep = gevent.sleep
        for _ in range(n):
            sleep(0)

    t0 = time.perf_counter()
    gevent.joinall([gevent.spawn(turn), gevent.spawn(turn)])
    return time.perf_counter() - t0


def switch(n):
    main = getcurrent()

    def pong():
        back = main.switch
        while True:
            back()

    other = greenlet(pong)
    go = other.switch
    go()  # starts it: it switches back at once
    t0 = time.perf_counter()
    for _ in range(n):
        go()
    elapsed = time.perf_counter() - t0
    other.throw(gevent.GreenletExit)
    return elapsed


def spawn(total, batch):
    ran = [0]

    def task():
        ran[0] += 1

    spawn_one, joinall = gevent.spawn, gevent.joinall
    t0 = time.perf_counter()
    for _ in range(0, total, batch):
        joinall([spawn_one(task) for _ in range(batch)])
    elapsed = time.perf_counter() - t0
    if ran[0] != (total + batch - 1) // batch * batch:
        sys.exit("peer_coro.py: greenlets lost")
    return elapsed


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory(n):
    event = gevent.event.Event()
    parked = [0]

    def waiter():
        parked[0] += 1
        event.wait()

    gevent.sleep(0)  # the hub exists before the first measure
    rss0 = rss_bytes()
    greenlets = [gevent.spawn(waiter) for _ in range(n)]
    gevent.sleep(0)  # every one runs to its wait
    rss1 = rss_bytes()
    if parked[0] != n:
        sys.exit("peer_coro.py: not every greenlet parked")
    print(f"bytes per greenlet RSS: {(rss1 - rss0) / n:.1f}")
    event.set()
    gevent.joinall(greenlets)


def main():
    mode = sys.argv[1]
    args = [int(a) for a in sys.argv[2:]]
    if mode == "memory":
        memory(args[0])
        return
    runs = {"sleep0": (sleep0, 2), "switch": (switch, 2), "spawn": (spawn, 1)}
    fn, per = runs[mode]
    warm = [max(1, args[0] // 10)] + args[1:]
    fn(*warm)
    elapsed = fn(*args)
    unit = "ns per spawn+join" if mode == "spawn" else "ns per switch"
    print(f"{unit}: {elapsed * 1e9 / (args[0] * per):.2f}")


if __name__ == "__main__":
    main()
