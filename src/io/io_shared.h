/*
 * io_shared.h — what the io layer offers the layers above it that are not io themselves (the
 * process layer's pipes and joins): one wait for an fd, for threads and coroutines alike, with
 * one cancel rule. Deliberately shared, and kept to what those callers need; the io layer's
 * inside is io_internal.h.
 */
#ifndef WEFT_IO_SHARED_H
#define WEFT_IO_SHARED_H

#include "../wait/wait_internal.h"
#include "weft/io.h"

/* Waits until fd is ready for one of `events` (WEFT_READ, WEFT_WRITE; a hang-up or an error
 * counts as both), until the deadline (or the caller's timeout scope): the ready events (> 0),
 * or WEFT_ETIMEDOUT, WEFT_ECANCELED (the caller's context was canceled), WEFT_EBADF (fd closed
 * by weft_fd_close meanwhile, or not open), or another error. A ready fd wins over an expired
 * deadline. A coroutine (or a thread's root context with coroutines) parks through its hub's
 * poller; a thread without one sleeps in poll(2), woken by a weft_fd_close of fd, and inside a
 * cancel scope in slices of WEFT__CANCEL_SLICE_NS to see a cancel. */
int weft__io_wait(int fd, int events, int64_t deadline);
/* The same, immune to cancellation (a wait in the middle of a message that must finish). */
int weft__io_wait_nocancel(int fd, int events, int64_t deadline);

#endif /* WEFT_IO_SHARED_H */
