/*
 * debug.c — the debug mode's checks (built with -DWEFT_DEBUG=ON; core_internal.h, "debug
 * mode"): misuse reports, the magic words of caller-allocated objects and of handles, and the
 * quarantine of released handles.
 *
 * A caller-allocated object keeps its magic in the last word of its reserved tail: 0 (a
 * static initializer, or calloc'd memory) is accepted and stamped with the type's magic by the
 * first call; the type's magic is fine; WEFT__OBJECT_POISON (written by a successful destroy;
 * no init writes it) is a use after destroy; anything else is garbage. A handle keeps a
 * weft__handle_t in its private struct: `magic` is the type's while the memory is live and
 * WEFT__HANDLE_FREED once its last reference is gone; `user_refs` counts the references the
 * program holds (a release with none left is a double release).
 *
 * The quarantine: in a debug build a handle's memory comes from libc (not from the allocator
 * hook: the hook's user may count or swap allocators, and the quarantine outlives both; the
 * hook is still asked for the size, so its failures land where they would) and is
 * not freed at its last release but kept, poisoned, in a ring of the last QUARANTINE released
 * handles, so that a second release or a late call reads valid memory and is reported; the
 * oldest is freed when the ring is full, and all at unload. `qlock` guards the ring; a fork
 * hook holds it across fork so that the child finds it consistent.
 */
#include "core_internal.h"
#include "sys_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void weft__misuse(const char *call, const void *obj, const char *what)
{
    char line[256];
    int n = snprintf(line, sizeof line, "weft: misuse: %s(%p): %s\n", call, obj, what);
    if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
    if (n > 0) {
        /* The one line, past the monkey patch (it may be what is misused). */
        ssize_t w = weft__sys_write(STDERR_FILENO, line, (size_t)n);
        (void)w;
    }
    abort();
}

#ifdef WEFT_DEBUG

void weft__object_check(const char *call, const void *obj, uint64_t *slot, uint64_t magic,
                        const char *noun, bool stamp)
{
    uint64_t seen = __atomic_load_n(slot, __ATOMIC_RELAXED); /* the word alone: nothing else */
    if (seen == magic) return;
    if (seen == 0) { /* a static initializer or zeroed memory: stamp it (a racing call too) */
        if (stamp)
            __atomic_compare_exchange_n(slot, &seen, magic, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED);
        return;
    }
    char what[160];
    if (seen == WEFT__OBJECT_POISON)
        snprintf(what, sizeof what, "weft_%s_t used after weft_%s_destroy", noun, noun);
    else
        snprintf(what, sizeof what, "not an initialised weft_%s_t (garbage or never initialised)",
                 noun);
    weft__misuse(call, obj, what);
}

void weft__handle_check(const char *call, const void *h, weft__handle_t *hd, uint32_t magic,
                        const char *noun, bool release)
{
    /* Relaxed: the word is only compared; the handle's own synchronisation orders the rest. */
    uint32_t seen = atomic_load_explicit(&hd->magic, memory_order_relaxed);
    char what[160];
    if (seen == magic) {
        if (!release) return;
        /* Relaxed: a count alone; the handle's own refs (acq_rel) order its memory. */
        uint32_t refs = atomic_load_explicit(&hd->user_refs, memory_order_relaxed);
        while (refs) /* one of the program's references goes */
            if (atomic_compare_exchange_weak_explicit(&hd->user_refs, &refs, refs - 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                return;
        snprintf(what, sizeof what, "%s handle released twice", noun);
    } else if (seen == WEFT__HANDLE_FREED) {
        if (release)
            snprintf(what, sizeof what, "%s handle released twice", noun);
        else
            snprintf(what, sizeof what, "weft_%s_t used after weft_%s_release", noun, noun);
    } else {
        snprintf(what, sizeof what, "not a weft_%s_t (garbage, or never made by weft)", noun);
    }
    weft__misuse(call, h, what);
}

/* ---- the quarantine ----------------------------------------------------------------------- */

#define QUARANTINE 4096

static weft__mutex_t qlock = WEFT__MUTEX_INIT;
static void *ring[QUARANTINE];
static size_t qhead, qcount; /* the oldest entry, and how many */
static _Atomic bool hooks_registered;

static void q_prepare(void)
{
    weft__mutex_lock(&qlock);
}
static void q_parent(void)
{
    weft__mutex_unlock(&qlock);
}
static void q_child(void)
{
    qlock = (weft__mutex_t)WEFT__MUTEX_INIT;
}
static const weft__fork_hooks_t q_hooks = {WEFT__LAYER_CORE, q_prepare, q_parent, q_child, NULL};

void *weft__handle_alloc(size_t size)
{
    /* The allocator hook is asked first and given its block straight back: one that fails the
     * Nth call (the tests' out-of-memory loop) fails the same call as in any other build. */
    void *probe = weft__malloc(size);
    if (!probe) return NULL;
    weft__free(probe);
    return calloc(1, size ? size : 1);
}

void weft__handle_free(void *h, weft__handle_t *hd)
{
    if (!h) return;
    atomic_store_explicit(&hd->magic, WEFT__HANDLE_FREED, memory_order_relaxed);
    /* Registered at the first release, not under qlock (a fork would take it). Without it
     * (WEFT_ENOMEM) a fork racing a release could find qlock held: the risk of a debug build. */
    if (!atomic_load_explicit(&hooks_registered, memory_order_acquire) &&
        weft__fork_register(&q_hooks) == 0)
        atomic_store_explicit(&hooks_registered, true, memory_order_release);
    void *oldest = NULL;
    weft__mutex_lock(&qlock);
    if (qcount == QUARANTINE) {
        oldest = ring[qhead];
        ring[qhead] = h;
        qhead = (qhead + 1) % QUARANTINE;
    } else {
        ring[(qhead + qcount++) % QUARANTINE] = h;
    }
    weft__mutex_unlock(&qlock);
    free(oldest);
}

/* At unload (or exit): nothing of the quarantine is left for valgrind or LeakSanitizer. */
__attribute__((destructor)) static void quarantine_drain(void)
{
    weft__mutex_lock(&qlock);
    for (; qcount; qcount--, qhead = (qhead + 1) % QUARANTINE) free(ring[qhead]);
    weft__mutex_unlock(&qlock);
}

#endif /* WEFT_DEBUG */
