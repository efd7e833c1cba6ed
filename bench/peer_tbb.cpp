// peer_tbb.cpp — oneTBB's task_group for bench_pool.c (see peer_tbb.h). Built only when CMake
// finds TBB. Exceptions stop at the extern "C" boundary.
#include "peer_tbb.h"

#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
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

// What the caller of an enqueued task waits on: a flag the task sets, watched for 20 us (weft's
// default spin budget) and then waited for on a condition variable.
struct done_flag {
    std::atomic<bool> set{false};
    std::mutex m;
    std::condition_variable cv;

    void signal()
    {
        {
            std::lock_guard<std::mutex> g(m);
            set.store(true, std::memory_order_release);
        }
        cv.notify_one();
    }

    void wait()
    {
        double until = now_ns() + 20000;
        while (!set.load(std::memory_order_acquire) && now_ns() < until) {
        }
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return set.load(std::memory_order_acquire); });
        set.store(false, std::memory_order_relaxed);
    }
};

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

extern "C" void peer_tbb_enqueue_round_trips(long n, double *ns)
{
    done_flag done;
    for (long i = 0; i < n; i++) {
        double t0 = now_ns();
        arena->enqueue([&] {
            noop();
            done.signal();
        });
        done.wait();
        ns[i] = now_ns() - t0;
    }
}
