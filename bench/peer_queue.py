"""peer_queue.py — Python's queue.Queue, the peer of bench/bench_queue.c.

Usage: python3 peer_queue.py PRODUCERS CONSUMERS ITEMS MAXSIZE

PRODUCERS threads put ITEMS objects in total into one queue.Queue(maxsize=MAXSIZE) (0:
unbounded) while CONSUMERS threads get them, each consumer taking its share of ITEMS, the way
bench_queue.c's C threads do. Timed from the start barrier to the last thread's end; prints
one line "items/s: <rate>" that bench_queue.c reads through popen. Run it with Debian's
/usr/bin/python3 (bench_queue.c does), not another interpreter first on PATH.
"""
import queue
import sys
import threading
import time


def share(total, parts, i):
    """The i-th of `parts` near-equal shares of `total` (the C side splits the same way)."""
    return total // parts + (1 if i < total % parts else 0)


def main():
    producers, consumers, items, maxsize = (int(a) for a in sys.argv[1:5])
    q = queue.Queue(maxsize=maxsize)
    start = threading.Barrier(producers + consumers + 1)
    sums = [0] * consumers

    def produce(i):
        n = share(items, producers, i)
        put = q.put
        start.wait()
        for k in range(1, n + 1):
            put(k)

    def consume(i):
        n = share(items, consumers, i)
        get = q.get
        total = 0
        start.wait()
        for _ in range(n):
            total += get()
        sums[i] = total

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
    threads += [threading.Thread(target=consume, args=(i,)) for i in range(consumers)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    expected = sum(share(items, producers, i) * (share(items, producers, i) + 1) // 2
                   for i in range(producers))
    if sum(sums) != expected:
        sys.exit("peer_queue.py: items lost or duplicated")
    print(f"items/s: {items / elapsed:.1f}")


if __name__ == "__main__":
    main()
