/*
 * process_shared.h — what the process layer deliberately offers one file above it: the
 * executor's process pool (src/executor/process_pool.c), and nobody else. The pool thread
 * watches every worker's pipe and pidfd with one poll(2) and must never block on one worker,
 * which the public API (blocking sends and receives with a timeout, weft_process_join) cannot
 * give it: so it gets a worker's pidfd to poll, and non-blocking, resumable message I/O on a
 * Connection. The process layer's own files get these through process_internal.h.
 */
#ifndef WEFT_PROCESS_SHARED_H
#define WEFT_PROCESS_SHARED_H

#include "weft/process.h"

#include <stddef.h>
#include <sys/types.h>

/* The child's pidfd (readable once it has ended), for a caller that holds the handle and
 * polls several children at once (the process pool). -1 for a foreign handle, and where the
 * kernel (or valgrind) has no pidfd_open: then poll weft_process_is_alive instead. */
int weft__process_pidfd(const weft_process_t *p);

/* This process's pid without a system call once the process layer is initialised (its fork
 * hook keeps it right in a child); getpid() before. For the pool's per-submit "am I the
 * pool's process" check. */
pid_t weft__process_self_pid(void);

/* Non-blocking, resumable message I/O for a caller that watches many ends with poll (the
 * process pool thread, which must never block on a worker's pipe).
 *
 * weft__conn_send_nowait writes the n frames (1 to WEFT__CONN_FRAMES_MAX: each the 8-byte
 * header, then the len bytes at buf) back to back, from byte *done of the first (*done starts
 * at 0), in one system call while the socket takes them, as far as it takes them: *sent is how
 * many were written whole, *done how much of the next one: 0 once all of them are written,
 * WEFT_EAGAIN when the socket is full (call again with the frames from the next one and the
 * same *done once the fd is writable), WEFT_EINVAL (n out of range, a length too large),
 * WEFT_EPIPE, or a socket error. It takes no lock: while a frame is part-written the caller
 * must be the only sender on this end.
 *
 * weft__conn_recv_alloc_nowait takes the next whole message, never waiting: 0 and *msg, a
 * weft__malloc'd block of headroom bytes (the caller's to use) followed by the *len bytes of
 * the message (free it with weft__free); WEFT_EAGAIN: no whole message yet (what arrived is
 * kept in the connection, and the socket was read until it had nothing more, so poll on the
 * fd tells when to call again); WEFT_ENOMEM: the message, *len bytes long, cannot be
 * allocated (it stays next in line, with what arrived of it). The memory grows as the bytes
 * arrive (at most twice what arrived, or 64 KiB, plus the headroom): the length a peer's
 * header claims allocates nothing by itself; WEFT_EEOF or a socket error (a message begun is lost);
 * WEFT_EBROKEN (see weft_conn_recv_bytes). Pass the same headroom on every call. */
typedef struct weft__frame {
    const void *buf;
    size_t len;
} weft__frame_t;

enum { WEFT__CONN_FRAMES_MAX = 8 };

int weft__conn_send_nowait(weft_conn_t *c, const weft__frame_t *frames, size_t n, size_t *sent,
                           size_t *done);
int weft__conn_recv_alloc_nowait(weft_conn_t *c, size_t headroom, void **msg, size_t *len);

#endif /* WEFT_PROCESS_SHARED_H */
