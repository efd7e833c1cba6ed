// peer_tbb.cpp — oneTBB's task_group for bench_pool.c (see peer_tbb.h). Built only when CMake
// finds TBB. Exceptions stop at the extern "C" boundary.
#include "peer_tbb.h"

#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <atomic>
#include <chrono>
#include <new>

namespace
{

tbb::task_arena *arena;
std::atomic<long> ran{0}; // what the no-op touches, so the compiler keeps the task

double now_ns()
{
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void noop()
{
    // relaxed: a counter nobody reads while tasks run; it only keeps the task non-empty
    ran.fetch_add(1, std::memory_order_relaxed);
}

} // namespace

extern "C" int peer_tbb_init(int threads)
{
    try {
        arena = new tbb::task_arena(threads);
        arena->initialize();
        // Wake the arena's worker once, so the first timed run does not pay its start.
        peer_tbb_throughput_ns(1000);
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" double peer_tbb_throughput_ns(long n)
{
    double t = 0;
    arena->execute([&] {
        tbb::task_group g;
        double t0 = now_ns();
        for (long i = 0; i < n; i++) g.run(noop);
        g.wait();
        t = now_ns() - t0;
    });
    return t;
}

extern "C" void peer_tbb_round_trips(long n, double *ns)
{
    arena->execute([&] {
        tbb::task_group g;
        for (long i = 0; i < n; i++) {
            double t0 = now_ns();
            g.run(noop);
            g.wait();
            ns[i] = now_ns() - t0;
        }
    });
}
