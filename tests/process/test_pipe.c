/* Pipe and Connection: framed messages between threads and processes. Each case names the
 * CPython behaviour it mirrors (Lib/test/_test_multiprocessing.py, _TestConnection and
 * _TestPoll, unless said otherwise). */
#include "weft_test.h"

#include "core/core_internal.h"
#include "process/process_shared.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void make(weft_conn_t **a, weft_conn_t **b, bool duplex)
{
    assert_int_equal(weft_pipe_create(duplex, a, b), 0);
    assert_non_null(*a);
    assert_non_null(*b);
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(seed * 31 + i * 7);
}

static bool check_pattern(const unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != (unsigned char)(seed * 31 + i * 7)) return false;
    return true;
}

/* test_connection / _TestPoll.test_strings, test_empty_string: messages of every size,
 * the empty one included, arrive whole and in order, in both directions. */
static void pipe_messages_arrive_whole_and_in_order(void **state)
{
    (void)state;
    weft_conn_t *a, *b;
    make(&a, &b, true);
    size_t sizes[] = {0, 1, 7, 8, 9, 100, 4096, 40000, 0, 3};
    unsigned char *buf = malloc(40000), *got = malloc(40000);
    assert_non_null(buf);
    assert_non_null(got);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        fill_pattern(buf, sizes[i], (unsigned)i);
        assert_int_equal(weft_conn_send_bytes(b, sizes[i] ? buf : NULL, sizes[i], 10), 0);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len = 12345;
        assert_int_equal(weft_conn_recv_bytes(a, got, 40000, 10, &len), 0);
        assert_int_equal(len, sizes[i]);
        assert_true(check_pattern(got, len, (unsigned)i));
    }
    assert_int_equal(weft_conn_send_bytes(a, "back", 4, 10), 0); /* duplex: the other way */
    size_t len;
    assert_int_equal(weft_conn_recv_bytes(b, got, 40000, 10, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(got, "back", 4);
    free(buf);
    free(got);
    assert_int_equal(weft_conn_release(a), 0);
    assert_int_equal(weft_conn_release(b), 0);
}

/* test_sendbytes / test_connection with a child: the child echoes what it gets until EOF. */
static weft_conn_t *child_end, *parent_end;

static int echo(void *arg)
{
    (void)arg;
    weft_conn_release(parent_end); /* the child's copy of the other end */
    static unsigned char buf[1 << 20];
    size_t len;
    int rc;
    while ((rc = weft_conn_recv_bytes(child_end, buf, sizeof buf, 30, &len)) == 0)
        if (weft_conn_send_bytes(child_end, buf, len, 30)) return 2;
    return rc == WEFT_EEOF ? 0 : 1;
}

static void pipe_echo_through_a_child(void **state)
{
    (void)state;
    make(&parent_end, &child_end, true);
    weft_process_t *p;
    assert_int_equal(weft_process_start(echo, NULL, NULL, &p), 0);
    weft_conn_release(child_end);
    size_t len = 1 << 20; /* far beyond the socket buffer: both sides must stream */
    unsigned char *buf = malloc(len), *got = malloc(len);
    assert_non_null(buf);
    assert_non_null(got);
    for (unsigned round = 0; round < 3; round++) {
        size_t n = round == 1 ? len : 1000 + round;
        fill_pattern(buf, n, round);
        assert_int_equal(weft_conn_send_bytes(parent_end, buf, n, 30), 0);
        size_t glen;
        assert_int_equal(weft_conn_recv_bytes(parent_end, got, len, 30, &glen), 0);
        assert_int_equal(glen, n);
        assert_true(check_pattern(got, n, round));
    }
    weft_conn_release(parent_end); /* the child sees EOF and exits 0 */
    assert_int_equal(weft_process_join(p, 30), 0);
    int code;
    assert_int_equal(weft_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(weft_process_release(p), 0);
    free(buf);
    free(got);
}

/* Connection.recv_bytes_into's BufferTooShort, without losing the message: the length is
 * reported and the message is received by the next call with a big enough buffer. */
static void pipe_short_buffer_keeps_the_message(void **state)
{
    (void)state;
    weft_conn_t *a, *b;
    make(&a, &b, false);
    assert_int_equal(weft_conn_send_bytes(b, "0123456789", 10, 10), 0);
    assert_int_equal(weft_conn_send_bytes(b, "next", 4, 10), 0);
    char small[4], big[16];
    size_t len = 0;
    assert_int_equal(weft_conn_recv_bytes(a, small, sizeof small, 10, &len), WEFT_EOVERFLOW);
    assert_int_equal(len, 10);
    assert_int_equal(weft_conn_poll(a, 0), 0); /* still there */
    assert_int_equal(weft_conn_recv_bytes(a, big, sizeof big, 10, &len), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(big, "0123456789", 10);
    assert_int_equal(weft_conn_recv_bytes(a, big, sizeof big, 10, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(big, "next", 4);
    weft_conn_release(a);
    weft_conn_release(b);
}

/* test_connection: recv after the other end closed raises EOFError once the messages sent
 * before the close are consumed; poll reports the EOF as "something to read". */
static void pipe_eof_after_peer_close(void **state)
{
    (void)state;
    weft_conn_t *a, *b;
    make(&a, &b, true);
    assert_int_equal(weft_conn_send_bytes(b, "last", 4, 10), 0);
    weft_conn_release(b);
    char buf[8];
    size_t len;
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(len, 4);
    assert_int_equal(weft_conn_poll(a, 10), 0);
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 10, &len), WEFT_EEOF);
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 0, &len), WEFT_EEOF);
    weft_conn_release(a);
}

/* A send to a closed peer is WEFT_EPIPE and never SIGPIPE (which would kill this test with
 * the default action in place), even for a message that fills the socket first. */
static void pipe_send_to_closed_peer_is_epipe_not_sigpipe(void **state)
{
    (void)state;
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigaction(SIGPIPE, &dfl, &old);
    weft_conn_t *a, *b;
    make(&a, &b, false);
    weft_conn_release(a);
    assert_int_equal(weft_conn_send_bytes(b, "x", 1, 10), WEFT_EPIPE);
    size_t big = 4 << 20;
    void *buf = calloc(1, big);
    assert_non_null(buf);
    assert_int_equal(weft_conn_send_bytes(b, buf, big, 10), WEFT_EPIPE);
    free(buf);
    weft_conn_release(b);
    sigaction(SIGPIPE, &old, NULL);
}

/* test_duplex_false: Pipe(False) gives a receive-only and a send-only end. */
static void pipe_one_way_ends(void **state)
{
    (void)state;
    weft_conn_t *r, *w;
    make(&r, &w, false);
    char buf[4];
    size_t len;
    assert_int_equal(weft_conn_send_bytes(r, "x", 1, 0), WEFT_EBADF);
    assert_int_equal(weft_conn_recv_bytes(w, buf, sizeof buf, 0, &len), WEFT_EBADF);
    assert_int_equal(weft_conn_poll(w, 0), WEFT_EBADF);
    assert_int_equal(weft_conn_send_bytes(w, "ok", 2, 10), 0);
    assert_int_equal(weft_conn_recv_bytes(r, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(len, 2);
    weft_conn_release(r);
    weft_conn_release(w);
}

/* The calling thread's voluntary context switches so far (each sleep in the kernel is one). */
static long sleeps_so_far(void)
{
    FILE *f = fopen("/proc/thread-self/status", "r");
    assert_non_null(f);
    char line[256];
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1) break;
    fclose(f);
    assert_true(n >= 0);
    return n;
}

/* weft's own: a thread that nobody can cancel (no executor task) waits for a message in one
 * sleep, not in slices of 50 ms (0.3 s of them used to wake it 6 times for nothing). */
static void pipe_timed_recv_outside_a_task_sleeps_once(void **state)
{
    (void)state;
    weft_conn_t *a, *b;
    make(&a, &b, true);
    char buf[4];
    size_t len;
    long before = sleeps_so_far();
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 0.3, &len), WEFT_ETIMEDOUT);
    long sleeps = sleeps_so_far() - before;
    print_message("sleeps in a 0.3 s receive: %ld\n", sleeps);
    assert_true(sleeps <= 3);
    weft_conn_release(a);
    weft_conn_release(b);
}

/* _TestPoll.test_empty / test_boundaries: poll(0) is false on an empty pipe, a timed poll
 * waits about its timeout, and any message (even an empty one) makes it true. */
static void pipe_poll_and_recv_timeouts(void **state)
{
    (void)state;
    weft_conn_t *a, *b;
    make(&a, &b, true);
    assert_int_equal(weft_conn_poll(a, 0), WEFT_ETIMEDOUT);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_conn_poll(a, 0.1), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.09);
    char buf[4];
    size_t len;
    t0 = weft_time_monotonic();
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 0.1, &len), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.09);
    assert_int_equal(weft_conn_send_bytes(b, NULL, 0, 0), 0);
    assert_int_equal(weft_conn_poll(a, 10), 0);
    assert_int_equal(weft_conn_recv_bytes(a, NULL, 0, 0, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(weft_conn_poll(a, 0), WEFT_ETIMEDOUT);
    weft_conn_release(a);
    weft_conn_release(b);
}

/* A deadline that expires with half a frame header buffered loses nothing: the frame is
 * received whole once the rest arrives. (The raw bytes go in through the peer's socket.) */
static void pipe_timeout_mid_header_loses_nothing(void **state)
{
    (void)state;
    weft_conn_t *a, *b;
    make(&a, &b, true);
    uint64_t header = 5;
    unsigned char frame[8 + 5];
    memcpy(frame, &header, 8);
    memcpy(frame + 8, "hello", 5);
    assert_int_equal(send(weft_conn_fileno(b), frame, 3, 0), 3);
    char buf[8];
    size_t len;
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 0.05, &len), WEFT_ETIMEDOUT);
    assert_int_equal(send(weft_conn_fileno(b), frame + 3, sizeof frame - 3, 0),
                     (ssize_t)(sizeof frame - 3));
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 5);
    weft_conn_release(a);
    weft_conn_release(b);
}

/* The process pool's receive (weft__conn_recv_alloc_nowait) allocates as the bytes arrive,
 * not what the peer's header claims: a header of 2^62 or 1 GiB followed by a few bytes costs
 * a few KiB and waits for the rest (WEFT_EAGAIN), then ends with WEFT_EEOF when the peer goes;
 * a 200,000-byte message sent in pieces arrives whole behind the headroom. Found by
 * fuzz/fuzz_conn: the 2^62 header was malloc'd at once (an ASan abort, ENOMEM elsewhere). */
static void pipe_alloc_receive_allocates_what_arrives(void **state)
{
    (void)state;
    uint64_t claims[] = {(uint64_t)1 << 62, (uint64_t)1 << 30};
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        weft_conn_t *a, *b;
        make(&a, &b, true);
        unsigned char frame[8 + 5];
        memcpy(frame, &claims[i], 8);
        memcpy(frame + 8, "hello", 5);
        assert_int_equal(send(weft_conn_fileno(b), frame, sizeof frame, 0), (ssize_t)sizeof frame);
        long before = weft_test_live_allocs();
        void *msg = NULL;
        size_t len = 0;
        assert_int_equal(weft__conn_recv_alloc_nowait(a, 16, &msg, &len), WEFT_EAGAIN);
        assert_null(msg);
        assert_true(weft_test_live_allocs() - before <= 1);
        weft_conn_release(b);
        assert_int_equal(weft__conn_recv_alloc_nowait(a, 16, &msg, &len), WEFT_EEOF);
        assert_null(msg);
        weft_conn_release(a);
    }
    weft_conn_t *a, *b;
    make(&a, &b, true);
    size_t n = 200000;
    unsigned char *frame = malloc(8 + n);
    assert_non_null(frame);
    uint64_t header = n;
    memcpy(frame, &header, 8);
    fill_pattern(frame + 8, n, 3);
    size_t cuts[] = {0, 4, 8 + 1000, 8 + 70000, 8 + n};
    void *msg = NULL;
    size_t len = 0;
    for (size_t k = 0; k + 1 < sizeof cuts / sizeof cuts[0]; k++) {
        size_t part = cuts[k + 1] - cuts[k];
        assert_int_equal(send(weft_conn_fileno(b), frame + cuts[k], part, 0), (ssize_t)part);
        int rc;
        do {
            rc = weft__conn_recv_alloc_nowait(a, 16, &msg, &len);
        } while (rc == WEFT_EAGAIN && k + 2 == sizeof cuts / sizeof cuts[0] && !msg &&
                 weft_conn_poll(a, 10) == 0);
        assert_int_equal(rc, k + 2 == sizeof cuts / sizeof cuts[0] ? 0 : WEFT_EAGAIN);
    }
    assert_non_null(msg);
    assert_int_equal(len, n);
    assert_true(check_pattern((unsigned char *)msg + 16, n, 3));
    weft__free(msg);
    free(frame);
    weft_conn_release(a);
    weft_conn_release(b);
}

/* The process pool's send (weft__conn_send_nowait) writes several frames back to back in one
 * call, as far as the pipe takes them, and resumes mid-frame where it stopped: 8 frames from
 * 0 B to 300,000 B, over a duplex Pipe and a one-way one, arrive whole and in order through
 * weft__conn_recv_alloc_nowait, the sender told each time how many went whole (*sent) and how
 * much of the next (*done). Bad frame counts and lengths are WEFT_EINVAL. */
static void pipe_send_nowait_writes_frames_back_to_back_and_resumes(void **state)
{
    (void)state;
    static const size_t sizes[WEFT__CONN_FRAMES_MAX] = {0, 1, 100, 300000, 5, 0, 200000, 7};
    enum { N = WEFT__CONN_FRAMES_MAX };
    unsigned char *bufs[N];
    weft__frame_t frames[N];
    for (size_t i = 0; i < N; i++) {
        bufs[i] = malloc(sizes[i] + 1);
        assert_non_null(bufs[i]);
        fill_pattern(bufs[i], sizes[i], (unsigned)i);
        frames[i] = (weft__frame_t){bufs[i], sizes[i]};
    }
    for (int duplex = 0; duplex <= 1; duplex++) {
        weft_conn_t *rx, *tx;
        make(&rx, &tx, duplex);
        size_t base = 0, done = 0, got = 0;
        int eagains = 0;
        while (got < N) {
            if (base < N) {
                size_t sent = 99;
                int rc = weft__conn_send_nowait(tx, frames + base, N - base, &sent, &done);
                assert_true(sent <= N - base);
                base += sent;
                if (rc == WEFT_EAGAIN) {
                    eagains++;
                    assert_true(base < N);
                } else {
                    assert_int_equal(rc, 0);
                    assert_int_equal(base, N);
                    assert_int_equal(done, 0);
                }
            }
            for (;;) { /* take what arrived whole */
                void *msg;
                size_t len;
                int rc = weft__conn_recv_alloc_nowait(rx, 16, &msg, &len);
                if (rc == WEFT_EAGAIN) break;
                assert_int_equal(rc, 0);
                assert_true(got < base); /* only frames the sender counts as whole */
                assert_int_equal(len, sizes[got]);
                assert_true(check_pattern((unsigned char *)msg + 16, len, (unsigned)got));
                weft__free(msg);
                got++;
            }
        }
        assert_true(eagains > 0); /* 500 KB do not fit: the resumption was driven */
        size_t sent = 99, d = 0;
        assert_int_equal(weft__conn_send_nowait(tx, frames, 0, &sent, &d), WEFT_EINVAL);
        assert_int_equal(sent, 0);
        assert_int_equal(weft__conn_send_nowait(tx, frames, N + 1, &sent, &d), WEFT_EINVAL);
        weft__frame_t huge = {bufs[0], SIZE_MAX};
        assert_int_equal(weft__conn_send_nowait(tx, &huge, 1, &sent, &d), WEFT_EINVAL);
        weft_conn_release(tx);
        weft_conn_release(rx);
    }
    for (size_t i = 0; i < N; i++) free(bufs[i]);
}

/* A frame header announcing 2^64-1 bytes, more than any buffer: WEFT_EOVERFLOW with that
 * length (saturated to SIZE_MAX), and the message stays next in line as any message too
 * long for the buffer does: the bytes behind the header are never parsed as a frame of their
 * own (they look like one here: a 5-byte "hello"). 2^62 behaves the same. */
static void pipe_huge_frame_header_stays_next_in_line(void **state)
{
    (void)state;
    uint64_t lengths[] = {UINT64_MAX, UINT64_MAX - 1, (uint64_t)1 << 62};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        weft_conn_t *a, *b;
        make(&a, &b, true);
        uint64_t header = lengths[i], inner = 5;
        unsigned char frame[8 + 8 + 5];
        memcpy(frame, &header, 8);
        memcpy(frame + 8, &inner, 8);
        memcpy(frame + 16, "hello", 5);
        assert_int_equal(send(weft_conn_fileno(b), frame, sizeof frame, 0), (ssize_t)sizeof frame);
        char buf[64];
        for (int k = 0; k < 3; k++) {
            size_t len = 0;
            assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 10, &len), WEFT_EOVERFLOW);
            assert_true(len == (lengths[i] > SIZE_MAX ? SIZE_MAX : (size_t)lengths[i]));
        }
        assert_int_equal(weft_conn_poll(a, 0), 0); /* still there */
        weft_conn_release(a);
        weft_conn_release(b);
    }
}

/* The timeout of a receive covers the whole message, not only the wait for it to begin: a
 * peer that stalls in the middle of a frame makes recv return WEFT_ETIMEDOUT on time. The part
 * received stays in the connection: the next recv (a short buffer: WEFT_EOVERFLOW, message kept)
 * continues the same message, which arrives whole; a second stall times out again. Both the
 * buffered path (small frames) and the direct one (large frames) are checked. */
typedef struct rest {
    weft_conn_t *to;
    const unsigned char *data;
    size_t len;
} rest_t;

static void *send_rest(void *arg)
{
    rest_t *r = arg;
    for (size_t done = 0; done < r->len;) {
        ssize_t n = send(weft_conn_fileno(r->to), r->data + done, r->len - done, 0);
        assert_true(n > 0);
        done += (size_t)n;
    }
    return NULL;
}

static void pipe_recv_timeout_covers_the_whole_message(void **state)
{
    (void)state;
    size_t sizes[] = {100, 3000, (size_t)1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i], part = size / 10 < 50000 ? size / 10 : 50000;
        weft_conn_t *a, *b;
        make(&a, &b, true);
        unsigned char *frame = malloc(8 + size), *got = malloc(size);
        assert_non_null(frame);
        assert_non_null(got);
        uint64_t header = size;
        memcpy(frame, &header, 8);
        fill_pattern(frame + 8, size, (unsigned)i);
        assert_int_equal(send(weft_conn_fileno(b), frame, 8 + part, 0), (ssize_t)(8 + part));
        size_t len = 777;
        double t0 = weft_time_monotonic();
        assert_int_equal(weft_conn_recv_bytes(a, got, size, 0.1, &len), WEFT_ETIMEDOUT);
        assert_true(weft_time_monotonic() - t0 < 5);
        assert_int_equal(len, 777);
        /* More of it, still not all: the next recv continues, and times out again. */
        assert_int_equal(send(weft_conn_fileno(b), frame + 8 + part, part, 0), (ssize_t)part);
        assert_int_equal(weft_conn_recv_bytes(a, got, size, 0.05, &len), WEFT_ETIMEDOUT);
        assert_int_equal(weft_conn_recv_bytes(a, got, size - 1, 0, &len), WEFT_EOVERFLOW);
        assert_int_equal(len, size);
        assert_int_equal(weft_conn_poll(a, 0), 0); /* a message has begun */
        rest_t r = {b, frame + 8 + 2 * part, size - 2 * part};
        pthread_t t = weft_test_start(send_rest, &r);
        assert_int_equal(weft_conn_recv_bytes(a, got, size, 30, &len), 0);
        weft_test_join(t);
        assert_int_equal(len, size);
        assert_true(check_pattern(got, size, (unsigned)i));
        /* The stream is in step: the next message is itself. */
        assert_int_equal(weft_conn_send_bytes(b, "next", 4, 10), 0);
        assert_int_equal(weft_conn_recv_bytes(a, got, size, 10, &len), 0);
        assert_int_equal(len, 4);
        assert_memory_equal(got, "next", 4);
        free(frame);
        free(got);
        weft_conn_release(a);
        weft_conn_release(b);
    }
}

/* A recv that times out mid-message and cannot keep the part it received (out of memory)
 * loses the message and breaks the end for receiving: every later recv says WEFT_EBROKEN
 * (the stream is out of step), never a misparsed frame. */
static void pipe_part_that_cannot_be_kept_breaks_the_end(void **state)
{
    (void)state;
    weft_conn_t *a, *b;
    make(&a, &b, true);
    uint64_t header = 100;
    unsigned char frame[8 + 100] = {0};
    memcpy(frame, &header, 8);
    assert_int_equal(send(weft_conn_fileno(b), frame, 8 + 10, 0), 18);
    char buf[100];
    size_t len = 777;
    weft_test_fail_alloc(1, 0);
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 0.05, &len), WEFT_ETIMEDOUT);
    weft_test_fail_alloc(0, 0);
    assert_int_equal(send(weft_conn_fileno(b), frame + 18, 90, 0), 90);
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 1, &len), WEFT_EBROKEN);
    assert_int_equal(weft_conn_send_bytes(b, "next", 4, 10), 0);
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 1, &len), WEFT_EBROKEN);
    assert_int_equal(weft_conn_poll(a, 0), 0); /* ready: to report it */
    assert_int_equal(len, 777);
    weft_conn_release(a);
    weft_conn_release(b);
}

/* A sender that dies in the middle of a message: the receiver gets WEFT_EEOF, never a
 * truncated message. */
static int half_a_message(void *arg)
{
    (void)arg;
    weft_conn_release(parent_end);
    uint64_t header = 1000;
    unsigned char frame[8 + 10] = {0};
    memcpy(frame, &header, 8);
    ssize_t n = send(weft_conn_fileno(child_end), frame, sizeof frame, 0);
    _exit(n == (ssize_t)sizeof frame ? 0 : 1);
}

static void pipe_sender_dying_mid_message_gives_eof(void **state)
{
    (void)state;
    make(&parent_end, &child_end, true);
    weft_process_t *p;
    assert_int_equal(weft_process_start(half_a_message, NULL, NULL, &p), 0);
    weft_conn_release(child_end);
    char buf[2000];
    size_t len = 777;
    assert_int_equal(weft_conn_recv_bytes(parent_end, buf, sizeof buf, 30, &len), WEFT_EEOF);
    assert_int_equal(len, 777); /* untouched on failure */
    assert_int_equal(weft_process_join(p, 30), 0);
    assert_int_equal(weft_process_release(p), 0);
    weft_conn_release(parent_end);
}

/* A one-way Pipe is a pipe(2): messages of every size, up to many times the pipe's buffer,
 * come whole and in order from a child (partial writes of a non-blocking end, the receiver
 * reading straight into the caller's memory). */
static const size_t one_way_sizes[] = {0, 1, 8, 56, 4088, 4096, 65536, 1 << 20, 3};

static int send_sizes(void *arg)
{
    (void)arg;
    weft_conn_release(parent_end);
    unsigned char *buf = malloc(1 << 20);
    if (!buf) return 1;
    for (size_t i = 0; i < sizeof one_way_sizes / sizeof one_way_sizes[0]; i++) {
        fill_pattern(buf, one_way_sizes[i], (unsigned)i);
        if (weft_conn_send_bytes(child_end, buf, one_way_sizes[i], 30) != 0) return 2;
    }
    free(buf);
    return 0;
}

static void pipe_one_way_messages_arrive_whole_and_in_order(void **state)
{
    (void)state;
    make(&parent_end, &child_end, false);
    weft_process_t *p = weft_test_process_start(send_sizes, NULL);
    weft_conn_release(child_end);
    unsigned char *got = malloc(1 << 20);
    assert_non_null(got);
    for (size_t i = 0; i < sizeof one_way_sizes / sizeof one_way_sizes[0]; i++) {
        size_t len = 12345;
        assert_int_equal(weft_conn_recv_bytes(parent_end, got, 1 << 20, 30, &len), 0);
        assert_int_equal(len, one_way_sizes[i]);
        assert_true(check_pattern(got, len, (unsigned)i));
    }
    size_t len;
    assert_int_equal(weft_conn_recv_bytes(parent_end, got, 1 << 20, 30, &len), WEFT_EEOF);
    free(got);
    assert_int_equal(weft_test_process_finish(p), 0);
    weft_conn_release(parent_end);
}

static int exit_at_once(void *arg)
{
    (void)arg;
    return 0;
}

/* The receiving end's last copy goes with a process that exits without closing it: the next
 * send is WEFT_EPIPE at once (the sender's sentinel), and no SIGPIPE (default disposition
 * here: it would kill the test). */
static void pipe_one_way_send_after_reader_process_exited_is_epipe(void **state)
{
    (void)state;
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigaction(SIGPIPE, &dfl, &old);
    weft_conn_t *r, *w;
    make(&r, &w, false);
    weft_process_t *p = weft_test_process_start(exit_at_once, NULL); /* holds copies of both */
    weft_conn_release(r);
    assert_int_equal(weft_test_process_finish(p), 0);
    assert_int_equal(weft_conn_send_bytes(w, "x", 1, 10), WEFT_EPIPE);
    assert_int_equal(weft_conn_send_bytes(w, NULL, 0, 0), WEFT_EPIPE);
    weft_conn_release(w);
    sigaction(SIGPIPE, &old, NULL);
}

/* Fills a one-way Pipe until a polling send times out; returns how many messages it took. */
static int fill_pipe(weft_conn_t *w, const unsigned char *msg, size_t len)
{
    int n = 0, rc;
    while ((rc = weft_conn_send_bytes(w, msg, len, 0)) == 0) n++;
    assert_int_equal(rc, WEFT_ETIMEDOUT);
    return n;
}

typedef struct blocked_send {
    weft_conn_t *w;
    int rc;
} blocked_send_t;

static void send_forever(void *arg)
{
    blocked_send_t *b = arg;
    static const unsigned char msg[1000]; /* as large as those that filled the pipe */
    b->rc = weft_conn_send_bytes(b->w, msg, sizeof msg, WEFT_FOREVER);
}

/* A sender waiting for room in a full one-way Pipe learns that the receiving end was closed
 * (its own copy of the read end keeps the pipe from saying so): WEFT_EPIPE, not a hang.
 * Whether the close comes before or during its wait, the answer is the same. */
static void pipe_one_way_blocked_sender_sees_the_reader_close(void **state)
{
    (void)state;
    weft_conn_t *r;
    blocked_send_t b = {.rc = 1};
    make(&r, &b.w, false);
    unsigned char msg[1000] = {0};
    assert_true(fill_pipe(b.w, msg, sizeof msg) > 0);
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(send_forever, &b, NULL, &t), 0);
    weft_conn_release(r);
    assert_int_equal(weft_thread_join(t, 30), 0);
    weft_thread_release(t);
    assert_int_equal(b.rc, WEFT_EPIPE);
    weft_conn_release(b.w);
}

/* A timed send on a full one-way Pipe times out and sends nothing; once the receiver takes
 * messages, sending goes on, and the receiver gets exactly what was sent. */
static void pipe_one_way_full_pipe_send_times_out_whole(void **state)
{
    (void)state;
    weft_conn_t *r, *w;
    make(&r, &w, false);
    unsigned char msg[1000], got[1000];
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (unsigned char)i;
    int sent = fill_pipe(w, msg, sizeof msg);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_conn_send_bytes(w, msg, sizeof msg, 0.05), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.04);
    size_t len;
    assert_int_equal(weft_conn_recv_bytes(r, got, sizeof got, 10, &len), 0);
    assert_int_equal(weft_conn_send_bytes(w, msg, sizeof msg, 10), 0);
    for (int i = 0; i < sent; i++) { /* sent - 1 left, and the last one */
        assert_int_equal(weft_conn_recv_bytes(r, got, sizeof got, 10, &len), 0);
        assert_int_equal(len, sizeof msg);
        assert_memory_equal(got, msg, sizeof msg);
    }
    assert_int_equal(weft_conn_poll(r, 0), WEFT_ETIMEDOUT);
    weft_conn_release(r);
    weft_conn_release(w);
}

/* Threads sending on one end at once never interleave their messages (Python needs a lock
 * for that; weft's ends have one per direction). */
enum { SENDERS = 4, PER_SENDER = 500 };
static weft_conn_t *shared_end;

static void sender(void *arg, int i)
{
    (void)arg;
    unsigned char buf[3000];
    for (int k = 0; k < PER_SENDER; k++) {
        size_t len = 8 + (size_t)(k * 37 + i * 101) % 2900;
        uint32_t id[2] = {(uint32_t)i, (uint32_t)k};
        fill_pattern(buf, len, (unsigned)(i * PER_SENDER + k));
        memcpy(buf, id, sizeof id);
        assert_int_equal(weft_conn_send_bytes(shared_end, buf, len, 30), 0);
    }
}

static void pipe_concurrent_senders_never_interleave(void **state)
{
    (void)state;
    weft_conn_t *r;
    make(&r, &shared_end, false);
    weft_test_bg_t bg;
    weft_test_bg_start(&bg, SENDERS, sender, NULL);
    int next[SENDERS] = {0};
    unsigned char buf[3000], want[3000];
    for (int n = 0; n < SENDERS * PER_SENDER; n++) {
        size_t len;
        assert_int_equal(weft_conn_recv_bytes(r, buf, sizeof buf, 30, &len), 0);
        uint32_t id[2];
        memcpy(id, buf, sizeof id);
        assert_true(id[0] < SENDERS);
        assert_int_equal(id[1], next[id[0]]++); /* each sender's messages in its order */
        assert_int_equal(len, 8 + (size_t)(id[1] * 37 + id[0] * 101) % 2900);
        fill_pattern(want, len, id[0] * PER_SENDER + id[1]);
        assert_memory_equal(buf + 8, want + 8, len - 8);
    }
    weft_test_bg_join(&bg);
    weft_conn_release(r);
    weft_conn_release(shared_end);
}

/* A task blocked in recv is canceled like any weft wait. */
static int recv_task(void *arg, void **result)
{
    (void)result;
    char buf[4];
    size_t len;
    return weft_conn_recv_bytes(arg, buf, sizeof buf, WEFT_FOREVER, &len);
}

static void pipe_recv_is_cancelable(void **state)
{
    (void)state;
    weft_conn_t *a, *b;
    make(&a, &b, true);
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(1, NULL, &ex), 0);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, recv_task, a, &f), 0);
    while (!weft_future_running(f)) sched_yield();
    assert_int_equal(weft_future_cancel(f), WEFT_EBUSY);
    assert_int_equal(weft_future_result(f, 10, NULL), WEFT_ECANCELED);
    weft_future_release(f);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    weft_executor_release(ex);
    /* Nothing was taken: a message sent now is received whole. */
    assert_int_equal(weft_conn_send_bytes(b, "ok", 2, 10), 0);
    char buf[4];
    size_t len;
    assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(len, 2);
    weft_conn_release(a);
    weft_conn_release(b);
}

static void pipe_bad_input(void **state)
{
    (void)state;
    weft_conn_t *a = (weft_conn_t *)1, *b = (weft_conn_t *)1;
    assert_int_equal(weft_pipe_create(true, NULL, &b), WEFT_EINVAL);
    assert_null(b); /* the out-pointer given is NULL, as the header says */
    assert_int_equal(weft_pipe_create(true, &a, NULL), WEFT_EINVAL);
    assert_null(a);
    make(&a, &b, true);
    char buf[4];
    size_t len;
    assert_int_equal(weft_conn_send_bytes(NULL, "x", 1, 0), WEFT_EINVAL);
    assert_int_equal(weft_conn_send_bytes(a, NULL, 1, 0), WEFT_EINVAL);
    assert_int_equal(weft_conn_send_bytes(a, "x", 1, NAN), WEFT_EINVAL);
    assert_int_equal(weft_conn_recv_bytes(NULL, buf, 4, 0, &len), WEFT_EINVAL);
    assert_int_equal(weft_conn_recv_bytes(a, NULL, 4, 0, &len), WEFT_EINVAL);
    assert_int_equal(weft_conn_recv_bytes(a, buf, 4, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_conn_recv_bytes(a, buf, 4, NAN, &len), WEFT_EINVAL);
    assert_int_equal(weft_conn_poll(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_conn_poll(a, NAN), WEFT_EINVAL);
    assert_int_equal(weft_conn_fileno(NULL), -1);
    assert_int_equal(weft_conn_release(NULL), WEFT_EINVAL);
    weft_conn_release(a);
    weft_conn_release(b);
}

static int pipe_body(void *ctx)
{
    (void)ctx;
    weft_conn_t *a, *b;
    int rc = weft_pipe_create(true, &a, &b);
    if (rc) {
        if (a || b) return WEFT_EIO; /* both NULL on failure */
        return rc;
    }
    char buf[4];
    size_t len;
    rc = weft_conn_send_bytes(a, "abc", 3, 1);
    if (!rc) rc = weft_conn_recv_bytes(b, buf, sizeof buf, 1, &len);
    weft_conn_release(a);
    weft_conn_release(b);
    return rc;
}

static void pipe_out_of_memory(void **state)
{
    (void)state;
    assert_int_equal(weft_test_oom(pipe_body, NULL), 2);
}

/* The timeout rules (weft/core.h): recv and poll of an empty Connection with -0.5 poll
 * (WEFT_ETIMEDOUT at once), WEFT_FOREVER blocks until a message comes, NaN is WEFT_EINVAL. */
typedef struct timed_conn {
    weft_conn_t *r, *w; /* one-way: (receive end, send end), as Pipe(duplex=False) */
    double timeout;
} timed_conn_t;

static int timed_recv(void *p)
{
    timed_conn_t *t = p;
    char buf[8];
    size_t len = 0;
    int rc = weft_conn_recv_bytes(t->r, buf, sizeof buf, t->timeout, &len);
    return rc ? rc : (int)len;
}

static int timed_poll(void *p)
{
    timed_conn_t *t = p;
    return weft_conn_poll(t->r, t->timeout);
}

static void send_abc(void *p)
{
    timed_conn_t *t = p;
    assert_int_equal(weft_conn_send_bytes(t->w, "abc", 3, 1), 0);
}

static void pipe_recv_negative_timeout_polls(void **state)
{
    (void)state;
    timed_conn_t t = {.timeout = -0.5};
    make(&t.r, &t.w, false);
    assert_int_equal(weft_test_polls(timed_recv, &t), WEFT_ETIMEDOUT);
    assert_int_equal(weft_test_polls(timed_poll, &t), WEFT_ETIMEDOUT);
    t.timeout = WEFT_FOREVER;
    weft_test_blocks_until(timed_recv, &t, send_abc, &t, 3);
    assert_int_equal(weft_conn_release(t.r), 0);
    assert_int_equal(weft_conn_release(t.w), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(pipe_recv_negative_timeout_polls),
        WEFT_TEST(pipe_messages_arrive_whole_and_in_order),
        WEFT_TEST(pipe_echo_through_a_child),
        WEFT_TEST(pipe_short_buffer_keeps_the_message),
        WEFT_TEST(pipe_eof_after_peer_close),
        WEFT_TEST(pipe_send_to_closed_peer_is_epipe_not_sigpipe),
        WEFT_TEST(pipe_one_way_ends),
        WEFT_TEST(pipe_poll_and_recv_timeouts),
        WEFT_TEST(pipe_timed_recv_outside_a_task_sleeps_once),
        WEFT_TEST(pipe_timeout_mid_header_loses_nothing),
        WEFT_TEST(pipe_huge_frame_header_stays_next_in_line),
        WEFT_TEST(pipe_recv_timeout_covers_the_whole_message),
        WEFT_TEST(pipe_part_that_cannot_be_kept_breaks_the_end),
        WEFT_TEST(pipe_sender_dying_mid_message_gives_eof),
        WEFT_TEST(pipe_concurrent_senders_never_interleave),
        WEFT_TEST(pipe_one_way_messages_arrive_whole_and_in_order),
        WEFT_TEST(pipe_one_way_send_after_reader_process_exited_is_epipe),
        WEFT_TEST(pipe_one_way_blocked_sender_sees_the_reader_close),
        WEFT_TEST(pipe_one_way_full_pipe_send_times_out_whole),
        WEFT_TEST(pipe_recv_is_cancelable),
        WEFT_TEST(pipe_alloc_receive_allocates_what_arrives),
        WEFT_TEST(pipe_send_nowait_writes_frames_back_to_back_and_resumes),
        WEFT_TEST(pipe_bad_input),
        WEFT_TEST(pipe_out_of_memory),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
