/*
 * names.c — the names programs give to weft objects (weft_lock_set_name and the others), for
 * the task dump, the deadlock report and the trace; and the process's "observing" switch.
 *
 * Data structure: an open-addressing hash table (linear probing, power-of-two capacity, at
 * most half full) from an object's address to a copy of its name, under one private mutex.
 * The public objects keep their 1.0 sizes: a name lives here, not in the object. The object's
 * destroy drops its entry (weft__name_drop); while no name was ever set that is one relaxed
 * load. Deleting uses backward-shift (no tombstones), so a probe ends at the first empty slot.
 *
 * A name is looked up only by the dump, the report and the trace; set and drop are the only
 * writers. An object destroyed without its destroy call (freed memory reused at the same
 * address) would show its old name: the debug mode's quarantine catches that misuse.
 */
#include "core_internal.h"

#include <string.h>

typedef struct entry {
    const void *obj; /* NULL: empty */
    char *name;
} entry_t;

static weft__mutex_t lock = WEFT__MUTEX_INIT;
static entry_t *table;
static size_t cap, count;
static _Atomic size_t ever; /* names ever set: drop's fast path */

_Atomic uint32_t weft__observing;
void (*weft__deadlock_report_hook)(void);

static size_t slot_of(const void *obj)
{
    uintptr_t h = (uintptr_t)obj;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h & (cap - 1);
}

/* The slot holding obj, or the empty one where it would go. Under the lock, cap > 0. */
static size_t find(const void *obj)
{
    size_t i = slot_of(obj);
    while (table[i].obj && table[i].obj != obj) i = (i + 1) & (cap - 1);
    return i;
}

static int grow(void)
{
    size_t ncap = cap ? cap * 2 : 16;
    entry_t *nt = weft__calloc(ncap, sizeof *nt);
    if (!nt) return WEFT_ENOMEM;
    entry_t *old = table;
    size_t ocap = cap;
    table = nt;
    cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].obj) table[find(old[i].obj)] = old[i];
    weft__free(old);
    return 0;
}

static void remove_at(size_t i)
{
    weft__free(table[i].name);
    table[i].obj = NULL;
    table[i].name = NULL;
    count--;
    /* Backward shift: move later members of the probe run into the hole. */
    for (size_t j = (i + 1) & (cap - 1); table[j].obj; j = (j + 1) & (cap - 1)) {
        size_t home = slot_of(table[j].obj);
        /* j's entry may fill the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        table[i] = table[j];
        table[j].obj = NULL;
        table[j].name = NULL;
        i = j;
    }
}

int weft__name_set(const void *obj, const char *name)
{
    if (!obj) return WEFT_EINVAL;
    char *copy = NULL;
    if (name && *name) {
        size_t n = strnlen(name, WEFT__NAME_MAX - 1);
        copy = weft__malloc(n + 1);
        if (!copy) return WEFT_ENOMEM;
        /* One line of the dump, quoted: a control character or a quote would let a name
         * write lines of its own (or a terminal's escapes). */
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)name[i];
            copy[i] = c < 0x20 || c == 0x7f || c == '\'' ? '?' : (char)c;
        }
        copy[n] = '\0';
    }
    weft__mutex_lock(&lock);
    if (!copy) { /* NULL or "": no name */
        if (cap) {
            size_t i = find(obj);
            if (table[i].obj) remove_at(i);
        }
        weft__mutex_unlock(&lock);
        return 0;
    }
    if ((count + 1) * 2 > cap && grow() != 0) {
        weft__mutex_unlock(&lock);
        weft__free(copy);
        return WEFT_ENOMEM;
    }
    size_t i = find(obj);
    if (table[i].obj) {
        weft__free(table[i].name);
    } else {
        table[i].obj = obj;
        count++;
    }
    table[i].name = copy;
    atomic_fetch_add_explicit(&ever, 1, memory_order_relaxed);
    weft__mutex_unlock(&lock);
    return 0;
}

bool weft__name_get(const void *obj, char *buf, size_t n)
{
    if (n) buf[0] = '\0';
    if (!obj || !n || atomic_load_explicit(&ever, memory_order_relaxed) == 0) return false;
    weft__mutex_lock(&lock);
    bool found = false;
    if (cap) {
        size_t i = find(obj);
        if (table[i].obj) {
            size_t len = strnlen(table[i].name, n - 1);
            memcpy(buf, table[i].name, len);
            buf[len] = '\0';
            found = true;
        }
    }
    weft__mutex_unlock(&lock);
    return found;
}

void weft__name_drop(const void *obj)
{
    if (!obj || atomic_load_explicit(&ever, memory_order_relaxed) == 0) return;
    weft__name_set(obj, NULL);
}

/* Tests only: forget every name (each case's leak guard counts the table's allocations). */
void weft__names_reset(void)
{
    weft__mutex_lock(&lock);
    for (size_t i = 0; i < cap; i++) weft__free(table[i].name);
    weft__free(table);
    table = NULL;
    cap = count = 0;
    weft__mutex_unlock(&lock);
}

/* A fork while another thread holds the table's lock would leave it held in the child. */
static void prepare(void)
{
    weft__mutex_lock(&lock);
}

static void after(void)
{
    weft__mutex_unlock(&lock);
}

static const weft__fork_hooks_t fork_hooks = {
    .rank = WEFT__LAYER_CORE, .prepare = prepare, .parent = after, .child = after};

__attribute__((constructor)) static void register_fork_hooks(void)
{
    weft__fork_register(&fork_hooks); /* at load: nothing can fail yet but memory */
}
