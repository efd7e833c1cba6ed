/*
 * coro_shared.h — what the coroutine layer offers the layers above it that are not coroutines
 * themselves (the scope layer): a hook through which a coroutine that ends without running its
 * function still says so. Deliberately shared, and kept to what that caller needs; the layer's
 * inside is coro_internal.h.
 */
#ifndef WEFT_CORO_SHARED_H
#define WEFT_CORO_SHARED_H

#include "weft/coro.h"

/* Has co call unrun(arg) (arg: the one it was spawned with) where its function would have run,
 * when it ends without running it: canceled before it first ran (weft_co_cancel, its thread's
 * exit, its hubs' stop). The scope layer ends such a task through it. Called by the spawner
 * before co can run (a spawn does not switch: right after weft_co_spawn, on the same thread). */
void weft__co_on_unrun(weft_co_t *co, void (*unrun)(void *arg));

#endif /* WEFT_CORO_SHARED_H */
