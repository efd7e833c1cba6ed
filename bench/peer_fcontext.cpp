// peer_fcontext.cpp — boost.context for bench_coro.c (see peer_context.h): the raw
// jump_fcontext/make_fcontext pair, and boost::context::fiber over it. Built only when CMake
// finds Boost.Context. Exceptions stop at the extern "C" boundary.
#include "peer_context.h"

#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>

#include <chrono>
#include <utility>
#include <vector>

namespace ctx = boost::context;

namespace
{

double now_ns()
{
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// The other side of the fcontext ping-pong: jumps straight back to whoever jumped in, forever
// (its stack is simply dropped afterwards, as nothing on it needs unwinding).
void bounce(ctx::detail::transfer_t t)
{
    for (;;) t = ctx::detail::jump_fcontext(t.fctx, nullptr);
}

} // namespace

double peer_fcontext_switch_ns(long n)
{
    static std::vector<char> stack(64 * 1024);
    ctx::detail::fcontext_t other =
        ctx::detail::make_fcontext(stack.data() + stack.size(), stack.size(), bounce);
    other = ctx::detail::jump_fcontext(other, nullptr).fctx; // starts it: not timed
    double t0 = now_ns();
    for (long i = 0; i < n; i++) other = ctx::detail::jump_fcontext(other, nullptr).fctx;
    return (now_ns() - t0) / static_cast<double>(2 * n);
}

double peer_fiber_switch_ns(long n)
{
    try {
        ctx::fiber other{[](ctx::fiber &&back) {
            for (;;) back = std::move(back).resume();
            return std::move(back);
        }};
        other = std::move(other).resume(); // starts it: not timed
        double t0 = now_ns();
        for (long i = 0; i < n; i++) other = std::move(other).resume();
        double ns = (now_ns() - t0) / static_cast<double>(2 * n);
        return ns; // ~fiber unwinds the other side's stack (forced_unwind)
    } catch (...) {
        return -1;
    }
}
