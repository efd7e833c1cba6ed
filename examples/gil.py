#!/usr/bin/python3
# Notes §8 全局解释锁GIL / the GIL — the companion of examples/gil.c.
#
# The same loop as gil.c (x = (x * 1103515245 + 12345) mod 2^31), in N equal chunks: first
# one thread runs all N, then N threads run one each, then N processes run one each (each
# way the fastest of 3 rounds). Under
# the GIL only one thread runs Python bytecode at a time, so N threads take as long as one
# (the notes: 多线程用于IO密集型, 多进程用于计算密集型); processes each have their own
# interpreter and lock, and scale. Run with /usr/bin/python3 examples/gil.py [N].
import multiprocessing
import os
import sys
import threading
import time

CHUNK = 2_000_000  # loop iterations per chunk: about 0.2 s on one core in CPython
ROUNDS = 3  # each way is timed 3 times and the fastest kept (a loaded machine)


def lcg(x, n):
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def run_chunk(results, i):
    results[i] = lcg(i + 1, CHUNK)


def timed(label, fn, n, cores_note=True):
    wall, cpu = float("inf"), 0.0
    for _ in range(ROUNDS):
        w0, c0 = time.monotonic(), time.process_time()
        fn()
        w, c = time.monotonic() - w0, time.process_time() - c0
        if w < wall:
            wall, cpu = w, c
    busy = f"{cpu / wall:.2f} cores busy" if cores_note else "CPU in the children"
    print(f"{label:11}: {wall:.3f} s wall, {cpu:.3f} s CPU ({busy})")
    return wall


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else os.cpu_count()
    print(f"{n} chunks of {CHUNK} loop iterations, {os.cpu_count()} CPUs online")
    one, many = [0] * n, [0] * n

    def one_thread():
        for i in range(n):
            run_chunk(one, i)

    def n_threads():
        ts = [threading.Thread(target=run_chunk, args=(many, i)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    shared = multiprocessing.Array("l", n)

    def proc_chunk(i):
        shared[i] = lcg(i + 1, CHUNK)

    def n_processes():
        ps = [multiprocessing.Process(target=proc_chunk, args=(i,)) for i in range(n)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()

    w1 = timed("1 thread", one_thread, n)
    wt = timed(f"{n} threads", n_threads, n)
    wp = timed(f"{n} processes", n_processes, n, cores_note=False)
    assert one == many == list(shared), "results differ"
    print(f"speedup of {n} threads over 1: {w1 / wt:.2f}x (the GIL: one thread at a time)")
    print(f"speedup of {n} processes over 1 thread: {w1 / wp:.2f}x")


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    main()
