/*
 * stack.c — coroutine stacks: private anonymous mappings that cost RAM only for the pages a
 * coroutine touches, with an optional guard page below.
 *
 * The guard: MADV_GUARD_INSTALL (Linux 6.13+) marks the page in the page table and leaves
 * the mapping whole, so a million guarded stacks fit in the default vm.max_map_count (65530);
 * mprotect(PROT_NONE) splits the mapping in two, so it is used only when asked for (guard > 0)
 * where guard regions are missing. Adjacent stack mappings merge in the kernel, so unguarded
 * or MADV-guarded stacks cost no mapping each.
 *
 * Sanitizers: valgrind is told about each stack (else it takes a switch for a huge stack
 * change); ASan forgets the poison of frames left on a stack before it is reused.
 */
#include "coro_internal.h"
#include "../core/sys_internal.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT__HAVE_VALGRIND 1
#endif
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static size_t page_size(void)
{
    static _Atomic size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

size_t weft__stack_round(size_t size)
{
    size_t page = page_size();
    return (size + page - 1) & ~(page - 1);
}

/* 1: MADV_GUARD_INSTALL works, -1: it does not, 0: not tried yet. */
static _Atomic int madv_guard;

/* Stacks mapped now, in use or in a hub's cache (weft__stack_count). */
static _Atomic long stacks_mapped;

long weft__stack_count(void)
{
    /* Relaxed: a count read for tests, ordering nothing else. */
    return atomic_load_explicit(&stacks_mapped, memory_order_relaxed);
}

int weft__stack_alloc(weft__stack_t *s, size_t size, int guard)
{
    size_t page = page_size();
    size = weft__stack_round(size);
    bool want_guard = guard >= 0;
    size_t total = size + (want_guard ? page : 0);
    void *base = weft__sys_mmap(NULL, total, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return WEFT_ENOMEM;
    s->guard = 0;
    if (want_guard) {
        int g = atomic_load_explicit(&madv_guard, memory_order_relaxed);
        if (g >= 0 && weft__sys_madvise(base, page, MADV_GUARD_INSTALL) == 0) {
            s->guard = 1;
            if (!g) atomic_store_explicit(&madv_guard, 1, memory_order_relaxed);
        } else {
            if (!g) atomic_store_explicit(&madv_guard, -1, memory_order_relaxed);
            if (guard > 0 && weft__sys_mprotect(base, page, PROT_NONE) == 0) s->guard = 2;
        }
        if (!s->guard) { /* no guard after all: the page is plain stack */
            size += page;
        }
    }
    s->base = base;
    s->total = total;
    s->lo = (char *)base + (total - size);
    s->size = size;
#ifdef WEFT__HAVE_VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#endif
    atomic_fetch_add_explicit(&stacks_mapped, 1, memory_order_relaxed); /* a count, see above */
    return 0;
}

void weft__stack_reset(weft__stack_t *s)
{
#if WEFT__ASAN
    __asan_unpoison_memory_region(s->lo, s->size);
#else
    (void)s;
#endif
}

void weft__stack_free(weft__stack_t *s)
{
#ifdef WEFT__HAVE_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    weft__stack_reset(s);
    weft__sys_munmap(s->base, s->total);
    s->base = NULL;
    atomic_fetch_sub_explicit(&stacks_mapped, 1, memory_order_relaxed); /* a count, see above */
}
