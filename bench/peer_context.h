/*
 * peer_context.h — bare context switches, the lowest-level peers of weft's coroutines in
 * bench_coro.c: boost.context (peer_fcontext.cpp, C++, compiled only when CMake finds
 * Boost.Context: WEFT_HAVE_BOOST_CONTEXT) and glibc's ucontext (peer_ucontext.c, always).
 *
 * Each runs n round trips between the calling context and one other context with a stack of
 * its own (created before timing) and returns the nanoseconds per switch (a round trip is two
 * switches). No scheduler is involved: this is the switch alone.
 */
#ifndef WEFT_BENCH_PEER_CONTEXT_H
#define WEFT_BENCH_PEER_CONTEXT_H

#ifdef __cplusplus
extern "C" {
#endif

/* boost::context::detail::jump_fcontext, the switch under every boost.context API. */
double peer_fcontext_switch_ns(long n);

/* boost::context::fiber::resume, the public API over it. -1 if Boost threw. */
double peer_fiber_switch_ns(long n);

/* swapcontext(3) (which also saves and restores the signal mask: a system call). */
double peer_ucontext_switch_ns(long n);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_BENCH_PEER_CONTEXT_H */
