/*
 * process_internal.h — what the process layer's files share.
 *
 *   process.c   child processes: start, join, signals, the registry of children, exit rules
 * Waits on an fd (a pidfd, a pipe end) are the io layer's (io_shared.h).
 */
#ifndef WEFT_PROCESS_INTERNAL_H
#define WEFT_PROCESS_INTERNAL_H

#include "../wait/wait_internal.h"
#include "weft/process.h"

#include <errno.h>

/* The calling context's errno as a weft code (through the one converter, weft__errno). */
static inline int weft__errno_code(void)
{
    return weft__errno(errno);
}

/* The child's pidfd (readable once it has ended), for a caller that holds the handle and
 * polls several children at once (the process pool). -1 for a foreign handle, and where the
 * kernel (or valgrind) has no pidfd_open: then poll weft_process_is_alive instead. */
int weft__process_pidfd(const weft_process_t *p);

/* Non-blocking, resumable message I/O for a caller that watches many ends with poll (the
 * process pool thread, which must never block on a worker's pipe).
 *
 * weft__conn_send_nowait writes the frame of len bytes at buf from byte *done of the frame
 * (the 8-byte header, then the payload; *done starts at 0) as far as the socket takes it,
 * advancing *done: 0 once all of it is written, WEFT_EAGAIN when the socket is full (call
 * again with the same buf, len and *done once the fd is writable), WEFT_EPIPE, or a socket
 * error. It takes no lock: while a frame is part-written the caller must be the only sender
 * on this end.
 *
 * weft__conn_recv_alloc_nowait takes the next whole message, never waiting: 0 and *msg, a
 * weft__malloc'd block of headroom bytes (the caller's to use) followed by the *len bytes of
 * the message (free it with weft__free); WEFT_EAGAIN: no whole message yet (what arrived is
 * kept in the connection, and the socket was read until it had nothing more, so poll on the
 * fd tells when to call again); WEFT_ENOMEM: the message, *len bytes long, cannot be
 * allocated (it stays next in line); WEFT_EEOF or a socket error (a message begun is lost);
 * WEFT_EBROKEN (see weft_conn_recv_bytes). Pass the same headroom on every call. */
int weft__conn_send_nowait(weft_conn_t *c, const void *buf, size_t len, size_t *done);
int weft__conn_recv_alloc_nowait(weft_conn_t *c, size_t headroom, void **msg, size_t *len);

/* White-box, for tests that play a process writing garbage into a queue's shared memory: the
 * queue's shared mapping and the size this process mapped it with. */
void *weft__mpqueue_shared(weft_mpqueue_t *q, size_t *size);

#endif /* WEFT_PROCESS_INTERNAL_H */
