"""peer_pool.py — concurrent.futures.ThreadPoolExecutor, the peer of bench/bench_pool.c.

Usage: python3 peer_pool.py throughput TASKS
       python3 peer_pool.py latency ROUNDS

throughput: submits TASKS no-op calls to a ThreadPoolExecutor(max_workers=2) keeping the
futures, then waits for all of them; prints "tasks/s: <rate>".
latency: ROUNDS times submits one no-op call and waits for its result (submit().result());
prints "us per round trip: <median>" (the median round trip).
The pool is created and its two workers started before timing, as bench_pool.c does for
every pool. bench_pool.c runs this with Debian's /usr/bin/python3 through popen.
"""
import concurrent.futures as cf
import statistics
import sys
import time


def noop():
    return None


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        cf.wait([pool.submit(time.sleep, 0.01) for _ in range(2)])  # start both workers
        if mode == "throughput":
            t0 = time.perf_counter()
            futures = [pool.submit(noop) for _ in range(n)]
            cf.wait(futures, return_when=cf.ALL_COMPLETED)
            elapsed = time.perf_counter() - t0
            print(f"tasks/s: {n / elapsed:.1f}")
        elif mode == "latency":
            clock = time.perf_counter_ns
            rounds = []
            for _ in range(n):
                t0 = clock()
                pool.submit(noop).result()
                rounds.append(clock() - t0)
            print(f"us per round trip: {statistics.median(rounds) / 1e3:.3f}")
        else:
            sys.exit("peer_pool.py: mode must be throughput or latency")


if __name__ == "__main__":
    main()
