"""peer_process.py — Python's multiprocessing, the peer of bench/bench_process.c.

Usage: python3 peer_process.py queue MESSAGES SIZE   -> "msgs/s: <rate>"
       python3 peer_process.py pipe MESSAGES SIZE    -> "msgs/s: <rate>"
       python3 peer_process.py startjoin N          -> "us/op: <microseconds>"
       python3 peer_process.py pool TASKS WORKERS   -> "tasks/s: <rate>"

queue: a producer Process puts MESSAGES bytes objects of SIZE bytes into a
multiprocessing.Queue; the main process gets them all. Timed from the first get to the
last (the producer is started first). pipe: the same through a one-way
multiprocessing.Pipe(duplex=False) (an os.pipe; send_bytes/recv_bytes, as weft_conn's
send_bytes/recv_bytes: one write per message, two reads). startjoin: Process(target=f).start(); join(), N
times, fork start method. pool: ProcessPoolExecutor(WORKERS) with the fork context,
TASKS trivial tasks submitted, then every result waited for; the pool is warmed up
first. Run it with Debian's /usr/bin/python3 (bench_process.c does).
"""
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def produce(q, n, size):
    payload = b"x" * size
    for _ in range(n):
        q.put(payload)


def produce_pipe(w, n, size):
    payload = b"x" * size
    for _ in range(n):
        w.send_bytes(payload)


def nothing():
    pass


def echo(b):
    return b


def main():
    ctx = mp.get_context("fork")
    what = sys.argv[1]
    if what == "queue":
        n, size = int(sys.argv[2]), int(sys.argv[3])
        q = ctx.Queue()
        p = ctx.Process(target=produce, args=(q, n, size))
        p.start()
        q.get()
        t0 = time.perf_counter()
        for _ in range(n - 1):
            q.get()
        rate = (n - 1) / (time.perf_counter() - t0)
        p.join()
        print(f"msgs/s: {rate:.1f}")
    elif what == "pipe":
        n, size = int(sys.argv[2]), int(sys.argv[3])
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=produce_pipe, args=(w, n, size))
        p.start()
        w.close()
        r.recv_bytes()
        t0 = time.perf_counter()
        for _ in range(n - 1):
            r.recv_bytes()
        rate = (n - 1) / (time.perf_counter() - t0)
        p.join()
        print(f"msgs/s: {rate:.1f}")
    elif what == "startjoin":
        n = int(sys.argv[2])
        t0 = time.perf_counter()
        for _ in range(n):
            p = ctx.Process(target=nothing)
            p.start()
            p.join()
        print(f"us/op: {(time.perf_counter() - t0) / n * 1e6:.1f}")
    elif what == "pool":
        tasks, workers = int(sys.argv[2]), int(sys.argv[3])
        with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
            list(ex.map(echo, [b"x"] * (workers * 4)))  # warm up: workers started
            t0 = time.perf_counter()
            fs = [ex.submit(echo, b"x") for _ in range(tasks)]
            for f in fs:
                f.result()
            rate = tasks / (time.perf_counter() - t0)
        print(f"tasks/s: {rate:.1f}")


if __name__ == "__main__":
    main()
