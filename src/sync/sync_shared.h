/*
 * sync_shared.h — what the sync layer deliberately offers the process layer: the shared
 * Lock's entry points with an absolute deadline and no double conversion, for the
 * cross-process Queue's side locks (process/mpqueue.c), whose put+get pays for each one (going
 * through the public weft_lock_acquire/release cost about 50 ns more per put+get). Included
 * by sync_internal.h and by mpqueue.c only.
 */
#ifndef WEFT_SYNC_SHARED_H
#define WEFT_SYNC_SHARED_H

#include "../wait/wait_internal.h"
#include "weft/sync.h"

/* Acquires the process-shared Lock l (weft_lock_init_shared) by the deadline: 0,
 * WEFT_EOWNERDEAD (held, its last owner died holding it), WEFT_EDEADLK, WEFT_ETIMEDOUT,
 * WEFT_ECANCELED (unless nocancel), as weft_lock_acquire. */
int weft__plock_acquire_deadline(weft_lock_t *l, int64_t deadline, bool nocancel);
/* Releases it: 0, or WEFT_EPERM when the caller does not hold it. */
int weft__plock_release(weft_lock_t *l);

#endif /* WEFT_SYNC_SHARED_H */
