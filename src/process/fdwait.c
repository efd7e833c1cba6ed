/*
 * fdwait.c — the process layer's one blocking wait: ppoll on an fd, in slices so that a
 * cancel request of the caller's context is noticed (DESIGN.md: a wait the waiting core
 * cannot park, handed to poll with a bounded slice); in a coroutine through its hub's poller,
 * which parks only the coroutine. Every process-layer call that blocks on an fd (join, a
 * pipe's send/recv/poll) comes through here.
 */
#include "process_internal.h"
#include "../core/sys_internal.h"

#include "../io/io_internal.h"

#include <poll.h>
#include <time.h>

int weft__fd_wait(int fd, short events, int64_t deadline, bool nocancel)
{
    if (weft__parks_coroutine()) {
        /* Through the hub's poller: only this coroutine waits. */
        int ev = (events & POLLIN ? WEFT_READ : 0) | (events & POLLOUT ? WEFT_WRITE : 0);
        int rc =
            nocancel ? weft__io_wait_nocancel(fd, ev, deadline) : weft__io_wait(fd, ev, deadline);
        return rc > 0 ? 0 : rc;
    }
    weft__waitctx_t *ctx = weft__waitctx_current();
    bool cancelable = !nocancel;
    for (;;) {
        int64_t slice = 0;
        int64_t now = weft_monotonic_ns();
        if (!(cancelable && weft__waitctx_canceled(ctx)) && deadline > now)
            slice = deadline - now < WEFT__CANCEL_SLICE_NS ? deadline - now : WEFT__CANCEL_SLICE_NS;
        struct pollfd pfd = {.fd = fd, .events = events};
        struct timespec ts = {slice / 1000000000, slice % 1000000000};
        int r = weft__sys_ppoll(&pfd, 1, &ts);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return weft__errno(errno);
        if (cancelable && weft__waitctx_canceled(ctx)) return WEFT_ECANCELED;
        if (deadline <= weft_monotonic_ns()) return WEFT_ETIMEDOUT;
    }
}
