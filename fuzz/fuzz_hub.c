/*
 * fuzz_hub.c — a stateful API-sequence fuzzer of one hub: the input drives the thread's
 * coroutines through spawn, cancel, timeouts, IO on socket pairs (their fds moved past 1,024
 * with dup2), a Lock, an Event, a Queue, joins and closes, and the invariants are checked
 * after each step and at the end.
 *
 * Input: steps, each an op byte o and an argument byte a (slot s = a % SLOTS, timeout
 * t = timeouts[(a >> 3) % 4]):
 *   o % 12 == 0..3  spawn into slot s (if free) a coroutine doing work o % 6 with timeout t:
 *                   event wait / lock acquire, yield, release / queue get / 1-byte fd read
 *                   on pair (a >> 5) % PAIRS / sleep / yield several times
 *   4  cancel slot s        5  event set            6  event clear
 *   7  queue put            8  write a byte to pair (a >> 5) % PAIRS (none when it is full)
 *   9  join slot s (timeout 0; if done: release it)
 *   10 close pair (a >> 5) % PAIRS with weft_fd_close (its waiters end with WEFT_EBADF) and
 *      open it again at the same numbers
 *   11 the root yields, or acquires / releases the Lock
 * After each step: a slot's coroutine that has returned has a code its work can return.
 * Every poller (WEFT_POLLER=select|poll|epoll|io_uring; select refuses the fds past 1,024
 * with WEFT_EINVAL, as documented).
 * At the end, with everything any waiter can wait for made available (the Event set, enough
 * queue items, bytes on every pair, the Lock free), every coroutine is joined with a 5 s
 * timeout: a join that times out is a lost wake (abort). Then every fd is closed, every
 * handle released, and LeakSanitizer checks for leaks.
 */
#include "weft.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_hub: check failed at line %d: %s\n", __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define SLOTS 6
#define PAIRS 2

static const double timeouts[4] = {0, 0.0005, 0.002, WEFT_FOREVER};

typedef struct slot {
    weft_co_t *co;
    int work, pair;
    double timeout;
    bool started, done; /* a coroutine canceled before it starts never runs work() */
    int rc;
} slot_t;

static slot_t slots[SLOTS];
static weft_lock_t lock;
static bool root_holds_lock;
static weft_event_t event;
static weft_queue_t *queue;
static int pair_fd[PAIRS][2]; /* [0] read by the coroutines, [1] written by the root */

static void open_pair(int p)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
    for (int k = 0; k < 2; k++) {
        int high = 1024 + 97 * p + 13 * k; /* past FD_SETSIZE: select cannot, the others must */
        CHECK(dup3(sv[k], high, O_CLOEXEC) == high);
        CHECK(close(sv[k]) == 0);
        pair_fd[p][k] = high;
    }
}

static void work(void *arg)
{
    slot_t *s = arg;
    s->started = true;
    int rc = 0;
    switch (s->work) {
    case 0:
        rc = weft_event_wait(&event, s->timeout);
        break;
    case 1:
        rc = weft_lock_acquire(&lock, s->timeout);
        if (rc == 0) {
            (void)weft_co_yield();
            CHECK(weft_lock_release(&lock) == 0);
        }
        break;
    case 2: {
        void *item = NULL;
        rc = weft_queue_get(queue, s->timeout, &item);
        if (rc == 0) CHECK(item == &queue);
        break;
    }
    case 3: {
        char c;
        size_t done = 0;
        rc = weft_fd_read(pair_fd[s->pair][0], &c, 1, s->timeout, &done);
        if (rc == 0) CHECK(done == 1);
        break;
    }
    case 4:
        rc = weft_time_sleep(s->timeout == WEFT_FOREVER ? 0.003 : s->timeout);
        break;
    default:
        for (int k = 0; k < 3 && rc == 0; k++) rc = weft_co_yield();
        break;
    }
    s->rc = rc;
    s->done = true;
}

static bool code_ok(const slot_t *s)
{
    if (s->rc == 0 || s->rc == WEFT_ECANCELED) return true;
    if (s->rc == WEFT_ETIMEDOUT) return s->timeout != WEFT_FOREVER && s->work <= 3;
    if (s->rc == WEFT_EBADF) return s->work == 3;
    /* The select poller cannot watch an fd >= FD_SETSIZE (weft/io.h): a read that must wait
     * there fails at once. */
    if (s->rc == WEFT_EINVAL) return s->work == 3 && strcmp(weft_poller_name(), "select") == 0;
    return false;
}

static void check_slots(void)
{
    for (int k = 0; k < SLOTS; k++) {
        if (!slots[k].co || !slots[k].done) continue;
        if (!code_ok(&slots[k])) {
            fprintf(stderr, "fuzz_hub: slot %d work %d timeout %g returned %d\n", k, slots[k].work,
                    slots[k].timeout, slots[k].rc);
            abort();
        }
    }
}

static void finish(slot_t *s)
{
    CHECK(weft_co_release(s->co) == 0);
    s->co = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(slots, 0, sizeof slots);
    CHECK(weft_lock_init(&lock) == 0);
    root_holds_lock = false;
    CHECK(weft_event_init(&event) == 0);
    CHECK(weft_queue_create(WEFT_QUEUE_FIFO, 0, &queue) == 0);
    for (int p = 0; p < PAIRS; p++) open_pair(p);

    for (size_t i = 0; i + 1 < size; i += 2) {
        uint8_t o = data[i] % 12, a = data[i + 1];
        slot_t *s = &slots[a % SLOTS];
        int p = (a >> 5) % PAIRS;
        switch (o) {
        case 0:
        case 1:
        case 2:
        case 3:
            if (s->co) break;
            *s = (slot_t){.work = (o * 3 + a) % 6, .pair = p, .timeout = timeouts[(a >> 3) % 4]};
            CHECK(weft_co_spawn(work, s, NULL, &s->co) == 0);
            break;
        case 4:
            if (s->co) CHECK(weft_co_cancel(s->co) == 0);
            break;
        case 5:
            CHECK(weft_event_set(&event) == 0);
            break;
        case 6:
            CHECK(weft_event_clear(&event) == 0);
            break;
        case 7:
            CHECK(weft_queue_put(queue, &queue, 0) == 0);
            break;
        case 8: { /* a pair whose buffer is full (a few hundred 1-byte writes) takes no more */
            ssize_t n = write(pair_fd[p][1], "x", 1);
            CHECK(n == 1 || (n < 0 && errno == EAGAIN));
            break;
        }
        case 9:
            if (s->co) {
                int rc = weft_co_join(s->co, 0);
                CHECK(rc == 0 || rc == WEFT_ETIMEDOUT);
                CHECK(rc == 0 ? s->done || !s->started : !s->done);
                if (rc == 0) finish(s);
            }
            break;
        case 10:
            CHECK(weft_fd_close(pair_fd[p][0]) == 0);
            CHECK(weft_fd_close(pair_fd[p][1]) == 0);
            open_pair(p);
            break;
        default:
            if (a % 3 == 0) {
                CHECK(weft_co_yield() == 0);
            } else if (!root_holds_lock) {
                int rc = weft_lock_acquire(&lock, 0);
                CHECK(rc == 0 || rc == WEFT_ETIMEDOUT);
                root_holds_lock = rc == 0;
            } else {
                CHECK(weft_lock_release(&lock) == 0);
                root_holds_lock = false;
            }
            break;
        }
        check_slots();
    }

    /* Everything a waiter can wait for, then every join must end. */
    if (root_holds_lock) CHECK(weft_lock_release(&lock) == 0);
    CHECK(weft_event_set(&event) == 0);
    for (int k = 0; k < SLOTS; k++) CHECK(weft_queue_put(queue, &queue, 0) == 0);
    /* One byte for each slot that may be reading a pair: every 1-byte read can complete. */
    static const char one_per_slot[SLOTS] = {0};
    for (int p = 0; p < PAIRS; p++) { /* a full pair already holds more than SLOTS bytes */
        ssize_t n = write(pair_fd[p][1], one_per_slot, SLOTS);
        CHECK(n == SLOTS || (n > 0 ? n < SLOTS : errno == EAGAIN));
    }
    for (int k = 0; k < SLOTS; k++) {
        if (!slots[k].co) continue;
        int rc = weft_co_join(slots[k].co, 5.0);
        if (rc != 0) {
            fprintf(stderr, "fuzz_hub: lost wake: slot %d work %d timeout %g: join %d\n", k,
                    slots[k].work, slots[k].timeout, rc);
            abort();
        }
        CHECK(slots[k].done || !slots[k].started);
        finish(&slots[k]);
    }
    check_slots();

    for (int p = 0; p < PAIRS; p++)
        for (int k = 0; k < 2; k++) {
            CHECK(weft_fd_close(pair_fd[p][k]) == 0);
            CHECK(fcntl(pair_fd[p][k], F_GETFD) == -1);
        }
    void *item;
    while (weft_queue_get_nowait(queue, &item) == 0) {
    }
    CHECK(weft_queue_release(queue) == 0);
    CHECK(weft_event_destroy(&event) == 0);
    CHECK(weft_lock_destroy(&lock) == 0);
    return 0;
}
