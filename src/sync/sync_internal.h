/*
 * sync_internal.h — what the sync objects share privately: the lock entry points Condition
 * needs to release and re-take its lock however the wait ended.
 */
#ifndef WEFT_SYNC_INTERNAL_H
#define WEFT_SYNC_INTERNAL_H

#include "../wait/wait_internal.h"
#include "weft/sync.h"

/* Acquires l with no deadline, immune to cancellation (re-taking a Condition's lock). */
void weft__lock_acquire_nocancel(weft_lock_t *l);

/* Drops every level of an RLock the caller owns; returns the count to restore. */
unsigned long weft__rlock_release_all(weft_rlock_t *r);
/* Re-takes r (immune to cancellation) at the saved count. */
void weft__rlock_restore(weft_rlock_t *r, unsigned long count);

#endif /* WEFT_SYNC_INTERNAL_H */
