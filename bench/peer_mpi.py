# bench_mpi's peer: mpi4py.futures' MPIPoolExecutor, the same tasks as weft's MPI pool.
# Run as `mpirun -np 3 python3 -m mpi4py.futures peer_mpi.py <trivial tasks> <1 MiB tasks>`:
# rank 0 runs this, ranks 1-2 are the pool's workers. Prints "trivial <tasks/s>" and
# "1mib <tasks/s>".
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def noop(x):
    return x


def size_of(b):
    return len(b)


def rate(ex, fn, args):
    t0 = time.perf_counter()
    fs = [ex.submit(fn, a) for a in args]
    for f in fs:
        f.result()
    return len(args) / (time.perf_counter() - t0)


if __name__ == "__main__":
    n, m = int(sys.argv[1]), int(sys.argv[2])
    with MPIPoolExecutor() as ex:
        rate(ex, noop, range(100))  # warm up: the workers are connected
        print("trivial %.1f" % rate(ex, noop, range(n)))
        blob = bytes(1 << 20)
        print("1mib %.1f" % rate(ex, size_of, [blob] * m))
    sys.stdout.flush()
