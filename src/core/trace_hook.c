/*
 * trace_hook.c — the seam between the layers that report what a trace records (the hub's
 * switches, the waiting core's parks and wakes, the executors' tasks, the processes) and the
 * trace itself (src/observe/trace.c), which sits above them all: the sink pointer it sets
 * while a trace runs, and the ids of flows and tasks. See core_internal.h.
 */
#include "core_internal.h"

void (*_Atomic weft__trace_sink)(const weft__trace_ev_t *ev);

static _Atomic uint64_t next_id;

uint64_t weft__trace_id(void)
{
    /* Relaxed: only uniqueness matters. */
    return atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
}
