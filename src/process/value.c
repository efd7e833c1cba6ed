/*
 * value.c — weft_value_t, a shared 64-bit integer (multiprocessing.Value('q')): plain C11
 * atomics, which work across processes on shared memory because lock-free 64-bit atomics
 * are single instructions on every supported target (checked below).
 */
#include "process_internal.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "weft_value_t needs lock-free 64-bit atomics");

int weft_value_init(weft_value_t *v, int64_t initial)
{
    if (!v) return WEFT_EINVAL;
    *v = (weft_value_t)WEFT_VALUE_INIT(initial);
    WEFT__OBJ_INIT(v, WEFT__ID_VALUE);
    return 0;
}

int weft_value_destroy(weft_value_t *v)
{
    WEFT__OBJ_CHECK(v, WEFT__ID_VALUE, "value");
    return v ? WEFT__OBJ_DESTROYED(v, 0) : WEFT_EINVAL;
}

int weft_value_get(const weft_value_t *v, int64_t *out)
{
    WEFT__OBJ_PEEK(v, WEFT__ID_VALUE, "value");
    if (!v || !out) return WEFT_EINVAL;
    *out = atomic_load_explicit(&v->v_, memory_order_acquire);
    return 0;
}

int weft_value_set(weft_value_t *v, int64_t value)
{
    WEFT__OBJ_CHECK(v, WEFT__ID_VALUE, "value");
    if (!v) return WEFT_EINVAL;
    atomic_store_explicit(&v->v_, value, memory_order_release);
    return 0;
}

int weft_value_add(weft_value_t *v, int64_t delta, int64_t *result)
{
    WEFT__OBJ_CHECK(v, WEFT__ID_VALUE, "value");
    if (!v) return WEFT_EINVAL;
    /* Through uint64_t: signed overflow would be undefined, the wrap is what we promise. */
    uint64_t old = (uint64_t)atomic_fetch_add_explicit(&v->v_, delta, memory_order_acq_rel);
    if (result) *result = (int64_t)(old + (uint64_t)delta);
    return 0;
}
