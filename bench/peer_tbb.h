/*
 * peer_tbb.h — oneTBB's task_group, a peer of weft's thread pool in bench_pool.c. The C++
 * side (peer_tbb.cpp) is compiled only when CMake finds TBB (WEFT_HAVE_TBB).
 */
#ifndef WEFT_BENCH_PEER_TBB_H
#define WEFT_BENCH_PEER_TBB_H

#ifdef __cplusplus
extern "C" {
#endif

/* Creates the arena of `threads` threads (the calling thread takes one slot) and starts its
 * workers. 0, or -1 if TBB threw. Call once, before the others. */
int peer_tbb_init(int threads);

/* Runs n no-op lambdas in one task_group inside the arena and waits for them; returns the
 * nanoseconds from the first run() to the end of wait(). */
double peer_tbb_throughput_ns(long n);

/* n round trips, each run() of one no-op lambda then wait(); stores each one's nanoseconds
 * in ns[0..n-1]. The caller holds one of the arena's slots, and wait() runs the lambda in the
 * caller itself (every time, measured): no other thread takes part. */
void peer_tbb_round_trips(long n, double *ns);

/* n round trips that cross threads, as a pool's do: the caller (outside the arena) enqueues
 * one no-op lambda into the arena, which one of the arena's worker threads runs, and waits
 * for the flag the lambda sets (watched for 20 us, then a condition variable); stores each
 * one's nanoseconds in ns[0..n-1]. */
void peer_tbb_enqueue_round_trips(long n, double *ns);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_BENCH_PEER_TBB_H */
