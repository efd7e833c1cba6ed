/*
 * alloc.c — the allocation hook. Every allocation weft makes goes through weft__malloc and
 * friends, so a test can swap in an allocator that fails the Nth call.
 *
 * The four pointers are plain globals: weft_allocator_set is documented as a set-up call made
 * before weft runs on several threads, so readers need no synchronisation (as libuv).
 */
#include "core_internal.h"

#include <stdlib.h>

static weft_malloc_fn alloc_malloc = malloc;
static weft_realloc_fn alloc_realloc = realloc;
static weft_calloc_fn alloc_calloc = calloc;
static weft_free_fn alloc_free = free;

int weft_allocator_set(weft_malloc_fn malloc_fn, weft_realloc_fn realloc_fn,
                       weft_calloc_fn calloc_fn, weft_free_fn free_fn)
{
    int nulls = !malloc_fn + !realloc_fn + !calloc_fn + !free_fn;
    if (nulls == 4) {
        malloc_fn = malloc, realloc_fn = realloc, calloc_fn = calloc, free_fn = free;
    } else if (nulls != 0) {
        return WEFT_EINVAL;
    }
    alloc_malloc = malloc_fn;
    alloc_realloc = realloc_fn;
    alloc_calloc = calloc_fn;
    alloc_free = free_fn;
    return 0;
}

void *weft__malloc(size_t size)
{
    return alloc_malloc(size ? size : 1);
}
void *weft__calloc(size_t count, size_t size)
{
    return alloc_calloc(count ? count : 1, size ? size : 1);
}
void *weft__realloc(void *ptr, size_t size)
{
    return alloc_realloc(ptr, size ? size : 1);
}

void weft__free(void *ptr)
{
    if (ptr) alloc_free(ptr);
}
