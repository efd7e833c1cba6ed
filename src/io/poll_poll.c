/*
 * poll_poll.c — the poll(2) backend: a dense pollfd array of the watched fds (an fd's slot is
 * found through a per-fd index), handed whole to ppoll at every wait.
 */
#include "io_internal.h"
#include "../core/sys_internal.h"

#include <errno.h>
#include <poll.h>

typedef struct impl {
    struct pollfd *set;
    struct pollfd *scratch; /* as long as set: the ready ones of a wait */
    size_t n, cap;
    int *slot; /* per fd: index in set + 1, 0 when absent */
    size_t nslot;
} impl_t;

static int init(weft__poller_t *p)
{
    impl_t *q = weft__calloc(1, sizeof *q);
    if (!q) return WEFT_ENOMEM;
    p->impl = q;
    return 0;
}

static void fini(weft__poller_t *p)
{
    impl_t *q = p->impl;
    weft__free(q->set);
    weft__free(q->scratch);
    weft__free(q->slot);
    weft__free(q);
    p->impl = NULL;
}

/* In a fork child: nothing is shared with the parent (the set is this process's memory). It
 * is dropped all the same, like the other backends' state, and the child's poller arms its
 * table into a fresh one: one path for every backend. */
static void fork_(weft__poller_t *p)
{
    fini(p);
}

static int arm(weft__poller_t *p, int fd, uint32_t mask)
{
    impl_t *q = p->impl;
    if ((size_t)fd >= q->nslot) {
        if (!mask) return 0;
        size_t n = q->nslot ? q->nslot : 64;
        while (n <= (size_t)fd) n *= 2;
        int *s = weft__realloc(q->slot, n * sizeof *s);
        if (!s) return WEFT_ENOMEM;
        for (size_t i = q->nslot; i < n; i++) s[i] = 0;
        q->slot = s;
        q->nslot = n;
    }
    short events = (short)((mask & WEFT_READ ? POLLIN : 0) | (mask & WEFT_WRITE ? POLLOUT : 0));
    int i = q->slot[fd] - 1;
    if (i >= 0) {
        if (mask) {
            q->set[i].events = events;
        } else { /* the last one fills the hole */
            q->set[i] = q->set[--q->n];
            if ((size_t)i < q->n) q->slot[q->set[i].fd] = i + 1;
            q->slot[fd] = 0;
        }
        return 0;
    }
    if (!mask) return 0;
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 16;
        struct pollfd *s = weft__realloc(q->set, cap * sizeof *s);
        if (!s) return WEFT_ENOMEM;
        q->set = s;
        s = weft__realloc(q->scratch, cap * sizeof *s);
        if (!s) return WEFT_ENOMEM;
        q->scratch = s;
        q->cap = cap;
    }
    q->set[q->n] = (struct pollfd){fd, events, 0};
    q->slot[fd] = (int)++q->n;
    return 0;
}

static void forget(weft__poller_t *p, int fd)
{
    arm(p, fd, 0);
}

static void wait_(weft__poller_t *p, int64_t deadline)
{
    impl_t *q = p->impl;
    struct timespec ts;
    int n = weft__sys_ppoll(q->set, q->n, weft__poller_timespec(deadline, &ts));
    if (n <= 0) return;
    /* Reports may reshape the set (a narrowed interest moves the last slot): collect the
     * ready ones first. */
    struct pollfd *ready = q->scratch;
    size_t k = 0;
    for (size_t i = 0; i < q->n && k < (size_t)n; i++)
        if (q->set[i].revents) {
            ready[k++] = q->set[i];
            q->set[i].revents = 0;
        }
    for (size_t i = 0; i < k; i++) {
        short re = ready[i].revents;
        uint32_t got = 0;
        if (re & POLLNVAL) got = WEFT__IO_ERR;
        if (re & (POLLIN | POLLHUP | POLLERR)) got |= WEFT_READ;
        if (re & (POLLOUT | POLLHUP | POLLERR)) got |= WEFT_WRITE;
        weft__poller_ready(p, ready[i].fd, got);
    }
}

const weft__poller_ops_t weft__poller_poll = {.name = "poll",
                                              .init = init,
                                              .fini = fini,
                                              .fork = fork_,
                                              .arm = arm,
                                              .wait = wait_,
                                              .forget = forget,
                                              .unwatch = NULL};
