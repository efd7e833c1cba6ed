/*
 * conn.c — Pipe and Connection: messages of bytes between processes over a Unix stream
 * socket pair.
 *
 * Wire format: each message is a frame, an 8-byte length (host order: both ends are on one
 * machine) followed by that many bytes. A socket, not a pipe(2), even for a one-way Pipe:
 * send(MSG_NOSIGNAL) reports a closed peer as EPIPE without raising SIGPIPE, and
 * MSG_DONTWAIT makes each call non-blocking without touching the file status flags, which
 * are shared with every process that inherited the socket.
 *
 * Receiving goes through a buffer (RBUF bytes, inside the struct of a receiving end): a
 * burst of small messages costs one recv for many. `pending` is the length of a message
 * whose header was consumed and whose payload was not (valid while has_pending: every 64-bit
 * value is a length a peer may send, so none can mean "no message"): it is what lets a
 * receiver that found its buffer too small keep the message for the next call, and a
 * deadline that expires with half a header buffered lose nothing. The payload of a message
 * longer than half the buffer bypasses it and goes straight to the caller's memory.
 *
 * A receive's timeout covers the whole message. One that expires (or is canceled) after part
 * of the payload arrived keeps that part: it moves to `part` (weft__malloc'd; part_got bytes
 * at part + part_off, room for part_cap), and the next receive starts from it, so the message
 * is neither lost nor misparsed. If that copy cannot be allocated the message is lost and the
 * end is `broken`: every later receive fails with WEFT_EBROKEN (the stream is out of step).
 * The process pool's non-blocking receive (weft__conn_recv_alloc_nowait) keeps its partial
 * messages in `part` the same way, with the caller's headroom in front, grown as the bytes
 * arrive (doubling, to the message's length): a peer's header alone allocates nothing beyond
 * RBUF, whatever length it claims.
 * Every length read from the peer is checked against the caller's capacity or through the
 * overflow-checked size helpers before it sizes anything.
 *
 * Sending writes header and payload with one sendmsg (writev on a pipe) when they fit.
 *
 * Transport: a duplex Pipe is a Unix stream socket pair. A one-way Pipe (Pipe(False), as
 * Python's os.pipe()) is a pipe(2): a write(2) on a pipe costs about a third of a sendmsg on
 * a socket (no socket buffer allocated per call), so a small message costs one cheap system
 * call. A pipe has no MSG_NOSIGNAL: a write with no read end open anywhere raises SIGPIPE. So
 * the sending end holds a copy of the read end (`held`): its writes never find the pipe
 * without a reader. Whether a receiving end is still open anywhere is told by a second pipe,
 * the sentinel, never written: every receiving end holds its write end (`held`), the sending
 * end its read end (`watch`), and reads it (one non-blocking read) before each write: EOF
 * there means every receiving end is closed, WEFT_EPIPE. A sender waiting for room looks at
 * the sentinel every PIPE_WATCH_NS (the pipe itself never reports the readers gone: it has
 * ours). The write end and the sentinel are O_NONBLOCK (file status flags are shared with
 * every process that inherited the fd, but only weft's ends use these, always that way): a
 * blocking write into a full pipe whose readers are gone would never return. The read end
 * stays blocking, so that a receiver that may block does so in its read (one system call);
 * others read with RWF_NOWAIT, or, on a kernel without it for pipes, set O_NONBLOCK on it.
 *
 * Locks: send_lock serialises senders on this end (a frame is written whole before the next
 * begins); recv_lock serialises receivers and guards rbuf, rpos, rlen, pending, part and
 * broken. Both are weft Locks: held across the socket waits, which is what they are for.
 */
#include "process_internal.h"
#include "../core/sys_internal.h"
#include "../io/io_shared.h"
#include "weft/io.h"

#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "weft/sync.h"

#define RBUF (64 * 1024)
/* The "deadline" of a receive that never waits (weft__conn_recv_alloc_nowait): WEFT_EAGAIN
 * instead of a wait. */
#define NO_WAIT INT64_MIN
/* A spinning receiver's pauses between two reads (each read takes the pipe's or socket's
 * lock, which the sender needs too): about a microsecond. */
#define SPIN_PAUSES 16
/* A one-way Pipe's buffer, as large as a Unix socket's default send buffer: a pipe's 64 KiB
 * hold only 16 messages of 4 KiB, and a sender that finds its pipe full waits. */
#define PIPE_SIZE (256 * 1024)
/* How often a one-way Pipe's sender waiting for room looks whether the receivers are gone. */
#define PIPE_WATCH_NS (100 * 1000000LL)

struct weft_conn {
    weft__handle_t hd; /* debug mode: magic, the program's reference (core_internal.h) */
    int fd;
    int watch; /* a one-way Pipe's sending end: the sentinel's read end; else -1 */
    int held;  /* one-way: sending end, a copy of the read end; receiving end, the sentinel's
                  write end; -1 on a socket */
    bool is_pipe;
    bool can_send, can_recv;
    bool has_pending, broken;
    weft_lock_t send_lock, recv_lock;
    uint64_t pending;
    unsigned char *part; /* the first part_got bytes of the pending message, or NULL */
    size_t part_off, part_got, part_cap;
    size_t rpos, rlen;
    unsigned char rbuf[]; /* RBUF bytes on a receiving end, none on a send-only one */
};

static weft_conn_t *conn_new(int fd, bool can_send, bool can_recv)
{
    weft_conn_t *c = weft__handle_alloc(sizeof *c + (can_recv ? RBUF : 0));
    if (!c) return NULL;
    weft__handle_init(&c->hd, WEFT__ID_CONN, 1);
    c->fd = fd;
    c->watch = c->held = -1;
    c->is_pipe = false;
    c->can_send = can_send;
    c->can_recv = can_recv;
    weft_lock_init(&c->send_lock);
    weft_lock_init(&c->recv_lock);
    c->has_pending = c->broken = false;
    c->pending = 0;
    c->part = NULL;
    c->part_off = c->part_got = c->part_cap = 0;
    c->rpos = c->rlen = 0;
    return c;
}

static int fd_error(void)
{
    return errno == ENFILE ? WEFT_EMFILE : weft__errno(errno);
}

/* Pipe(True): a socket pair. */
static int socket_pair(weft_conn_t **a, weft_conn_t **b)
{
    int sv[2];
    if (weft__sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return fd_error();
    weft_conn_t *ca = conn_new(sv[0], true, true);
    weft_conn_t *cb = ca ? conn_new(sv[1], true, true) : NULL;
    if (!cb) {
        if (ca) weft__handle_free(ca, &ca->hd);
        weft__sys_close(sv[0]);
        weft__sys_close(sv[1]);
        return WEFT_ENOMEM;
    }
    *a = ca;
    *b = cb;
    return 0;
}

/* Pipe(False): the data pipe, the sentinel pipe and the sender's copy of the read end (see
 * the top of the file). */
static int pipe_pair(weft_conn_t **a, weft_conn_t **b)
{
    int data[2] = {-1, -1}, sentinel[2] = {-1, -1}, copy = -1;
    weft_conn_t *ca = NULL, *cb = NULL;
    int rc = 0;
    if (weft__sys_pipe2(data, O_CLOEXEC) < 0 || weft__sys_fcntl(data[1], F_SETFL, O_NONBLOCK) < 0 ||
        weft__sys_pipe2(sentinel, O_CLOEXEC | O_NONBLOCK) < 0 ||
        (copy = weft__sys_fcntl(data[0], F_DUPFD_CLOEXEC, 0)) < 0) {
        rc = fd_error();
        goto fail;
    }
    /* Best effort: past the user's pipe-user-pages-soft the kernel refuses, and 64 KiB stay. */
    (void)weft__sys_fcntl(data[1], F_SETPIPE_SZ, PIPE_SIZE);
    ca = conn_new(data[0], false, true);
    cb = ca ? conn_new(data[1], true, false) : NULL;
    if (!cb) {
        rc = WEFT_ENOMEM;
        goto fail;
    }
    ca->is_pipe = cb->is_pipe = true;
    ca->held = sentinel[1];
    cb->watch = sentinel[0];
    cb->held = copy;
    *a = ca;
    *b = cb;
    return 0;
fail:
    if (ca) weft__handle_free(ca, &ca->hd);
    int fds[] = {data[0], data[1], sentinel[0], sentinel[1], copy};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0) weft__sys_close(fds[i]);
    return rc;
}

int weft_pipe_create(bool duplex, weft_conn_t **a, weft_conn_t **b)
{
    if (a) *a = NULL;
    if (b) *b = NULL;
    if (!a || !b) return WEFT_EINVAL;
    return duplex ? socket_pair(a, b) : pipe_pair(a, b);
}

int weft_conn_fileno(const weft_conn_t *c)
{
    WEFT__HANDLE_CHECK(c, WEFT__ID_CONN, "conn");
    return c ? c->fd : -1;
}

int weft_conn_release(weft_conn_t *c)
{
    WEFT__HANDLE_RELEASE(c, WEFT__ID_CONN, "conn");
    if (!c) return WEFT_EINVAL;
    weft_fd_close(c->fd); /* a hub that waited on it forgets it before the number is reused */
    if (c->watch >= 0) weft__sys_close(c->watch); /* read only, never waited on */
    if (c->held >= 0) weft__sys_close(c->held);
    weft__free(c->part);
    weft__name_drop(c);
    weft__handle_free(c, &c->hd);
    return 0;
}

int weft_conn_set_name(weft_conn_t *c, const char *name)
{
    WEFT__HANDLE_CHECK(c, WEFT__ID_CONN, "conn");
    if (!c) return WEFT_EINVAL;
    return weft__name_set(c, name);
}

/* Whether a wait may simply block in the system call: no deadline, and the waiting core says
 * the caller may block its thread (a thread nobody can cancel meanwhile). One system call
 * instead of a poll and a retry: the common case of a process loop blocked on its pipe. */
static bool may_block(int64_t deadline, bool nocancel)
{
    return deadline == WEFT_NO_DEADLINE && weft__may_block(nocancel);
}

/* Waits until c's socket is ready for `event` (WEFT_READ or WEFT_WRITE): 0, or the wait's
 * error (io_shared.h). */
static int await_ready(weft_conn_t *c, int event, int64_t deadline, bool nocancel)
{
    weft__waitctx_t *ctx = weft__waitctx_current();
    bool mark = weft__blocked_enter(
        ctx, event == WEFT_WRITE ? WEFT__ON_PIPE_SEND : WEFT__ON_PIPE_RECV, c, deadline);
    int rc = nocancel ? weft__io_wait_nocancel(c->fd, event, deadline)
                      : weft__io_wait(c->fd, event, deadline);
    weft__blocked_leave(ctx, mark);
    return rc > 0 ? 0 : rc;
}

/* ---- sending --------------------------------------------------------------------------------*/

/* Writes what msg holds, as much as fits: the byte count, or -1 with errno (EAGAIN: no room;
 * EPIPE: no receiving end is open). block: a socket may block in the call (a pipe's end is
 * non-blocking). */
static ssize_t put(weft_conn_t *c, const struct msghdr *msg, bool block)
{
    if (!c->is_pipe)
        return weft__sys_sendmsg(c->fd, msg, MSG_NOSIGNAL | (block ? 0 : MSG_DONTWAIT));
    char byte;
    if (weft__sys_read(c->watch, &byte, 1) == 0) { /* EOF: every receiving end is closed */
        errno = EPIPE;
        return -1;
    }
    return weft__sys_writev(c->fd, msg->msg_iov, (int)msg->msg_iovlen);
}

/* Waits until c may take more bytes: 0 (write again), or the wait's error. A pipe's sender
 * looks at its receivers again every PIPE_WATCH_NS (0 then too): its pipe never reports them
 * gone. A timeout that is not that look (the caller's timeout scope) is the wait's error. */
static int await_room(weft_conn_t *c, int64_t deadline, bool nocancel)
{
    if (c->is_pipe) {
        int64_t look = weft_time_monotonic_ns() + PIPE_WATCH_NS;
        if (look < deadline) {
            int rc = await_ready(c, WEFT_WRITE, look, nocancel);
            return rc == WEFT_ETIMEDOUT && weft_time_monotonic_ns() >= look ? 0 : rc;
        }
    }
    return await_ready(c, WEFT_WRITE, deadline, nocancel);
}

static int send_error(void)
{
    return errno == EPIPE || errno == ECONNRESET ? WEFT_EPIPE : weft__errno(errno);
}

/* Writes the frame of len bytes. Until its first byte is taken the wait honours the deadline
 * and cancellation; after that the frame is finished regardless. */
static int send_frame(weft_conn_t *c, const void *buf, size_t len, int64_t deadline)
{
    uint64_t header = len;
    struct iovec iov[2] = {{&header, sizeof header}, {(void *)buf, len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    bool started = false;
    while (msg.msg_iovlen > 0) {
        bool block = may_block(started ? WEFT_NO_DEADLINE : deadline, started);
        ssize_t n = put(c, &msg, block);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return send_error();
            int rc =
                started ? await_room(c, WEFT_NO_DEADLINE, true) : await_room(c, deadline, false);
            if (rc) return rc;
            continue;
        }
        started = true;
        /* Advance over what was written. */
        size_t done = (size_t)n;
        while (msg.msg_iovlen > 0 && done >= msg.msg_iov[0].iov_len) {
            done -= msg.msg_iov[0].iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen > 0) {
            msg.msg_iov[0].iov_base = (char *)msg.msg_iov[0].iov_base + done;
            msg.msg_iov[0].iov_len -= done;
        }
    }
    return 0;
}

int weft_conn_send_bytes(weft_conn_t *c, const void *buf, size_t len, double timeout)
{
    WEFT__HANDLE_CHECK(c, WEFT__ID_CONN, "conn");
    int64_t deadline;
    if (!c || (!buf && len) || isnan(timeout) || weft__deadline(timeout, &deadline))
        return WEFT_EINVAL;
    if (!c->can_send) return WEFT_EBADF;
    int rc = weft_lock_acquire(&c->send_lock, timeout);
    if (rc) return rc;
    rc = send_frame(c, buf, len, deadline);
    weft_lock_release(&c->send_lock);
    return rc;
}

int weft__conn_send_nowait(weft_conn_t *c, const weft__frame_t *frames, size_t n, size_t *sent,
                           size_t *done)
{
    uint64_t header[WEFT__CONN_FRAMES_MAX];
    size_t total[WEFT__CONN_FRAMES_MAX];
    *sent = 0;
    if (n < 1 || n > WEFT__CONN_FRAMES_MAX) return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        header[i] = frames[i].len;
        if (!weft__size_add(sizeof header[i], frames[i].len, &total[i])) return WEFT_EINVAL;
    }
    while (*sent < n) {
        /* The rest of frame *sent from byte *done, then the frames after it whole. */
        struct iovec iov[2 * WEFT__CONN_FRAMES_MAX];
        struct msghdr msg = {.msg_iov = iov};
        for (size_t i = *sent, at = *done; i < n; i++, at = 0) {
            if (at < sizeof header[i])
                iov[msg.msg_iovlen++] =
                    (struct iovec){(char *)&header[i] + at, sizeof header[i] - at};
            size_t from = at < sizeof header[i] ? 0 : at - sizeof header[i];
            if (frames[i].len > from)
                iov[msg.msg_iovlen++] =
                    (struct iovec){(char *)frames[i].buf + from, frames[i].len - from};
        }
        ssize_t got = put(c, &msg, false);
        if (got < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? WEFT_EAGAIN : send_error();
        }
        /* Advance over what went: whole frames, then into the next one. */
        for (size_t left = (size_t)got; *sent < n && left > 0;) {
            size_t rest = total[*sent] - *done;
            if (left < rest) {
                *done += left;
                break;
            }
            left -= rest;
            *done = 0;
            ++*sent;
        }
    }
    return 0;
}

/* ---- receiving ------------------------------------------------------------------------------*/

/* Reads up to n bytes: the count (0: EOF), or -1 with errno (EAGAIN: nothing there). block:
 * the call may block (on a socket, all: until n bytes came). */
static ssize_t get(weft_conn_t *c, void *buf, size_t n, bool block, bool all)
{
    if (!c->is_pipe)
        return weft__sys_recv(c->fd, buf, n, !block ? MSG_DONTWAIT : all ? MSG_WAITALL : 0);
    if (block) return weft__sys_read(c->fd, buf, n);
    ssize_t got = weft__sys_read_nowait(c->fd, buf, n);
    if (got >= 0 || errno != EOPNOTSUPP) return got;
    /* A kernel without RWF_NOWAIT on pipes: the end becomes non-blocking for good (for every
     * copy: each read handles EAGAIN). */
    int flags = weft__sys_fcntl(c->fd, F_GETFL, 0);
    if (flags < 0 || weft__sys_fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) < 0) return -1;
    return weft__sys_read(c->fd, buf, n);
}

static int recv_error(void)
{
    return errno == ECONNRESET ? WEFT_EEOF : weft__errno(errno);
}

/* get without blocking, retried for the waiting core's spin budget (none for a coroutine, or
 * on one CPU) while there is nothing to read: a receiver that sleeps costs its sender a
 * wake-up (tens of microseconds on a virtual machine), and a sender streaming messages is
 * back within microseconds. */
static ssize_t get_spinning(weft_conn_t *c, void *buf, size_t n, int64_t deadline)
{
    int64_t budget = weft__may_spin() ? weft__spin_ns() : 0;
    int64_t until = budget ? weft_time_monotonic_ns() + budget : 0;
    if (until > deadline) until = deadline;
    for (;;) {
        ssize_t got = get(c, buf, n, false, false);
        if (got >= 0 || errno != EAGAIN || !budget || weft_time_monotonic_ns() >= until) return got;
        for (int i = 0; i < SPIN_PAUSES; i++) weft__cpu_relax();
    }
}

/* Reads what the socket has into the buffer (compacting it first), waiting for at least one
 * byte until the deadline (NO_WAIT: WEFT_EAGAIN instead of waiting); a one-way Pipe's
 * receiver spins first (get_spinning). 0, the wait's error, or
 * WEFT_EEOF / a socket error, which also set *dead (the stream ended). The caller holds
 * recv_lock. */
static int fill(weft_conn_t *c, int64_t deadline, bool *dead)
{
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen);
        c->rpos = 0;
    }
    bool block = may_block(deadline, false);
    /* Only a one-way Pipe's receiver spins: a stream of messages is what it carries. A duplex
     * one (request and reply, the process pool's workers) reads (or blocks) at once: a
     * worker spinning for its next task takes the CPU the pool thread needs to send it. */
    bool spin = c->is_pipe && deadline != NO_WAIT && weft__may_spin() && weft__spin_ns() > 0;
    for (bool first = spin;; first = false) {
        unsigned char *to = c->rbuf + c->rlen;
        size_t room = RBUF - c->rlen;
        ssize_t n = first ? get_spinning(c, to, room, deadline) : get(c, to, room, block, false);
        if (n > 0) {
            c->rlen += (size_t)n;
            return 0;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n == 0 || errno != EAGAIN) {
            *dead = true;
            return n == 0 ? WEFT_EEOF : recv_error();
        }
        if (deadline == NO_WAIT) return WEFT_EAGAIN;
        int rc = await_ready(c, WEFT_READ, deadline, false);
        if (rc) return rc;
    }
}

/* Takes up to n buffered bytes into dst; returns how many. */
static size_t take(weft_conn_t *c, unsigned char *dst, size_t n)
{
    if (n > c->rlen) n = c->rlen;
    if (n == 0) return 0; /* dst may be NULL for an empty message */
    memcpy(dst, c->rbuf + c->rpos, n);
    c->rpos += n;
    c->rlen -= n;
    return n;
}

/* Consumes the next frame header if none is pending: 0 (c->pending is valid), or fill's
 * error (a partial header stays buffered). */
static int recv_header(weft_conn_t *c, int64_t deadline)
{
    if (c->has_pending) return 0;
    bool dead = false;
    int rc = 0;
    while (c->rlen < sizeof(uint64_t) && (rc = fill(c, deadline, &dead)) == 0) {
    }
    if (rc) return rc;
    memcpy(&c->pending, c->rbuf + c->rpos, sizeof(uint64_t));
    c->rpos += sizeof(uint64_t);
    c->rlen -= sizeof(uint64_t);
    c->has_pending = true;
    return 0;
}

/* Receives the pending payload (len bytes) into dst, *got of which are there already, until
 * the deadline. 0, the wait's error (the *got bytes received stay valid), or WEFT_EEOF / a
 * socket error, which also set *dead. */
static int recv_payload(weft_conn_t *c, unsigned char *dst, size_t len, size_t *got,
                        int64_t deadline, bool *dead)
{
    *got += take(c, dst + *got, len - *got);
    while (*got < len) {
        if (len - *got >= RBUF / 2) { /* big: straight into the caller's memory */
            ssize_t n = get(c, dst + *got, len - *got, may_block(deadline, false), true);
            if (n > 0) {
                *got += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n == 0 || errno != EAGAIN) {
                *dead = true;
                return n == 0 ? WEFT_EEOF : recv_error();
            }
            if (deadline == NO_WAIT) return WEFT_EAGAIN;
            int rc = await_ready(c, WEFT_READ, deadline, false);
            if (rc) return rc;
        } else {
            int rc = fill(c, deadline, dead);
            if (rc) return rc;
            *got += take(c, dst + *got, len - *got);
        }
    }
    return 0;
}

/* The pending message is gone (received, or lost with the stream). */
static void drop_pending(weft_conn_t *c)
{
    weft__free(c->part);
    c->part = NULL;
    c->part_off = c->part_got = c->part_cap = 0;
    c->has_pending = false;
}

/* A receive into the caller's buffer stopped after got bytes of the pending message (a
 * timeout, a cancel): keeps them for the next call, or marks the end broken if it cannot. */
static void keep_part(weft_conn_t *c, const unsigned char *buf, size_t got)
{
    if (got == 0) return; /* the message stays pending, nothing of it taken */
    c->part = weft__malloc(got);
    if (!c->part) {
        drop_pending(c);
        c->broken = true;
        return;
    }
    memcpy(c->part, buf, got);
    c->part_off = 0;
    c->part_got = c->part_cap = got;
}

int weft_conn_recv_bytes(weft_conn_t *c, void *buf, size_t cap, double timeout, size_t *len)
{
    WEFT__HANDLE_CHECK(c, WEFT__ID_CONN, "conn");
    int64_t deadline;
    if (!c || !len || (!buf && cap) || isnan(timeout) || weft__deadline(timeout, &deadline))
        return WEFT_EINVAL;
    if (!c->can_recv) return WEFT_EBADF;
    int rc = weft_lock_acquire(&c->recv_lock, timeout);
    if (rc) return rc;
    rc = c->broken ? WEFT_EBROKEN : recv_header(c, deadline);
    if (rc) goto out;
    if (c->pending > cap) {
        *len = c->pending > SIZE_MAX ? SIZE_MAX : (size_t)c->pending;
        rc = WEFT_EOVERFLOW; /* stays pending for a bigger buffer */
        goto out;
    }
    size_t got = 0;
    if (c->part) { /* the start of this message, kept by an earlier receive */
        memcpy(buf, c->part + c->part_off, c->part_got);
        got = c->part_got;
        weft__free(c->part);
        c->part = NULL;
    }
    bool dead = false;
    rc = recv_payload(c, buf, (size_t)c->pending, &got, deadline, &dead);
    if (rc == 0) *len = (size_t)c->pending;
    if (rc == 0 || dead)
        drop_pending(c); /* received, or lost with the connection */
    else
        keep_part(c, buf, got);
out:
    weft_lock_release(&c->recv_lock);
    return rc;
}

/* The process pool's receive: when `part` (behind `headroom` bytes) is full, makes room for
 * more of the pending message than the part_got bytes there: twice as much, at least RBUF,
 * at most the whole message (moving a part kept by weft_conn_recv_bytes, which has no headroom,
 * behind it). 0, or WEFT_ENOMEM (a length no allocation can hold, or no memory): the part stays. */
static int part_grow(weft_conn_t *c, size_t headroom)
{
    if (c->part && c->part_off == headroom &&
        (c->part_got < c->part_cap || c->part_cap == c->pending))
        return 0; /* room left */
    uint64_t want = c->part_got < RBUF / 2 ? RBUF : (uint64_t)c->part_got * 2;
    if (want > c->pending) want = c->pending;
    size_t size;
    if (want > SIZE_MAX || !weft__size_add(headroom, (size_t)want, &size)) return WEFT_ENOMEM;
    unsigned char *more;
    if (c->part && c->part_off == headroom) {
        more = weft__realloc(c->part, size);
        if (!more) return WEFT_ENOMEM;
    } else {
        more = weft__malloc(size);
        if (!more) return WEFT_ENOMEM;
        if (c->part) memcpy(more + headroom, c->part + c->part_off, c->part_got);
        weft__free(c->part);
    }
    c->part = more;
    c->part_off = headroom;
    c->part_cap = (size_t)want;
    return 0;
}

int weft__conn_recv_alloc_nowait(weft_conn_t *c, size_t headroom, void **msg, size_t *len)
{
    *msg = NULL;
    if (!c->can_recv) return WEFT_EBADF;
    if (weft_lock_acquire(&c->recv_lock, 0) != 0) return WEFT_EAGAIN; /* another receiver */
    int rc = c->broken ? WEFT_EBROKEN : recv_header(c, NO_WAIT);
    if (rc) goto out;
    *len = c->pending > SIZE_MAX ? SIZE_MAX : (size_t)c->pending;
    /* The message's memory grows with the bytes that arrive (at most twice them, or RBUF): a
     * length is only the peer's claim. */
    bool dead = false;
    do {
        rc = part_grow(c, headroom);
        if (rc) goto out;
        rc = recv_payload(c, c->part + headroom, c->part_cap, &c->part_got, NO_WAIT, &dead);
    } while (rc == 0 && c->part_got < c->pending);
    if (rc == 0) {
        *msg = c->part;
        c->part = NULL; /* the caller's now */
        drop_pending(c);
    } else if (dead) {
        drop_pending(c);
    }
out:
    weft_lock_release(&c->recv_lock);
    return rc;
}

int weft_conn_poll(weft_conn_t *c, double timeout)
{
    WEFT__HANDLE_CHECK(c, WEFT__ID_CONN, "conn");
    int64_t deadline;
    if (!c || isnan(timeout) || weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (!c->can_recv) return WEFT_EBADF;
    int rc = weft_lock_acquire(&c->recv_lock, timeout);
    if (rc) return rc;
    bool buffered = c->rlen > 0 || c->has_pending || c->broken;
    weft_lock_release(&c->recv_lock);
    return buffered ? 0 : await_ready(c, WEFT_READ, deadline, false);
}
