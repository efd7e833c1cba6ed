/*
 * fuzz_conn.c — a hostile peer on a Pipe: the input is the byte stream the other end (a
 * socket pair's, or a one-way Pipe's pipe) writes (any bytes, frame headers included), cut
 * into writes and interleaved with receives by a few control bytes.
 *
 * Input: byte 0 picks the transport (bit 0: duplex, a socket pair; else a pipe) and the
 * receive buffer's size (the other bits); then steps, each a control byte c:
 *   c % 4 == 0, 1  write the next (c >> 2) + 1 bytes of the input raw into the peer's end
 *   c % 4 == 2     weft_conn_recv_bytes(timeout 0) into the buffer
 *   c % 4 == 3     weft__conn_recv_alloc_nowait (the process pool's receive), headroom 16
 * then the peer closes and the receiver drains to WEFT_EEOF.
 * Checked: every call ends (timeout 0 everywhere), returns 0 or one of its documented codes,
 * a length returned with 0 fits the buffer, nothing allocates more than the frame claims
 * (libFuzzer's -malloc_limit_mb), nothing leaks (LeakSanitizer).
 */
#include "core/core_internal.h"
#include "process/process_shared.h"
#include "weft.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_conn: check failed at line %d: %s\n", __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const size_t caps[] = {0, 1, 8, 16, 100, 4096, 32 * 1024, 70 * 1024};
static unsigned char buf[70 * 1024];

static bool recv_code_ok(int rc)
{
    return rc == 0 || rc == WEFT_ETIMEDOUT || rc == WEFT_EOVERFLOW || rc == WEFT_EEOF ||
           rc == WEFT_EBROKEN;
}

static void recv_once(weft_conn_t *a, size_t cap, bool *eof)
{
    size_t len = 12345;
    int rc = weft_conn_recv_bytes(a, buf, cap, 0, &len);
    CHECK(recv_code_ok(rc));
    if (rc == 0) CHECK(len <= cap);
    if (rc == WEFT_EOVERFLOW) CHECK(len > cap);
    if (rc == WEFT_EEOF) *eof = true;
}

static void recv_alloc_once(weft_conn_t *a, bool *eof)
{
    void *msg = NULL;
    size_t len = 0;
    int rc = weft__conn_recv_alloc_nowait(a, 16, &msg, &len);
    CHECK(rc == 0 || rc == WEFT_EAGAIN || rc == WEFT_ENOMEM || rc == WEFT_EEOF ||
          rc == WEFT_EBROKEN);
    CHECK(rc == 0 || msg == NULL);
    if (rc == 0) {
        memset(msg, 0xa5, 16 + len); /* all of it is ours: ASan checks the bounds */
        weft__free(msg);
    }
    if (rc == WEFT_EEOF) *eof = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    bool duplex = data[0] & 1;
    size_t cap = caps[(data[0] >> 1) % (sizeof caps / sizeof caps[0])];
    weft_conn_t *a, *b;
    CHECK(weft_pipe_create(duplex, &a, &b) == 0);
    int peer = weft_conn_fileno(b);
    /* The peer's writes must never block (nobody reads while it writes): the input is at
     * most -max_len bytes (4 KiB), below a pipe's buffer (64 KiB) and, raised here, a
     * socket's (which counts each small write's buffer overhead too). */
    int sndbuf = 1 << 20;
    if (duplex) setsockopt(peer, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    bool eof = false;
    size_t i = 1;
    while (i < size && !eof) {
        uint8_t c = data[i++];
        switch (c % 4) {
        case 0:
        case 1: {
            size_t n = (size_t)(c >> 2) + 1;
            if (n > size - i) n = size - i;
            ssize_t w = duplex ? send(peer, data + i, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                               : write(peer, data + i, n); /* non-blocking: its end's flags */
            CHECK(w == (ssize_t)n);
            i += n;
            break;
        }
        case 2:
            recv_once(a, cap, &eof);
            break;
        default:
            recv_alloc_once(a, &eof);
            break;
        }
    }
    CHECK(weft_conn_release(b) == 0);
    /* Drain to the end: every receive now ends in a message, an error or EOF. */
    for (int n = 0; !eof && n < 100000; n++) {
        size_t len;
        int rc = weft_conn_recv_bytes(a, buf, sizeof buf, 0, &len);
        CHECK(recv_code_ok(rc) && rc != WEFT_ETIMEDOUT);
        if (rc == WEFT_EOVERFLOW || rc == WEFT_EBROKEN || rc == WEFT_EEOF) break;
    }
    CHECK(weft_conn_release(a) == 0);
    return 0;
}
