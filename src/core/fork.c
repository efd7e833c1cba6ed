/*
 * fork.c — the fork hooks and the exit rules of every layer, run in layer order.
 *
 * A layer with state that a fork must see consistent, or that a child must reset, registers
 * one static weft__fork_hooks_t; a layer with an exit rule (join what is still running at
 * exit) registers one static weft__exit_rule_t. Both lists are sorted by the layer's rank
 * (WEFT__LAYER_*), ties in registration order. One pthread_atfork serves them all:
 *   prepare  top layer first (executor ... thread), later registrations of a rank first: a
 *            layer takes its locks before the layers it calls into take theirs, the order in
 *            which their code takes them (a layer calls down holding its own lock, never up);
 *   parent, child
 *            bottom layer first, earlier registrations of a rank first: a layer's child hook
 *            finds the layers below it already reset.
 * fresh hooks (what a child that runs one function alone resets, weft__fork_fresh) and exit
 * rules run top layer first: a layer lets go of what it runs before the layers under it do.
 *
 * `lock` guards both lists; the prepare handler holds it across fork (so a registration never
 * races a fork), and the child resets it. pthread_atfork and atexit are called under
 * `install_lock` instead: glibc holds its own atfork lock while it runs prepare handlers, so
 * calling pthread_atfork under `lock` could deadlock with a fork on another thread. The child
 * resets install_lock too.
 */
#include "core_internal.h"

#include <pthread.h>
#include <stdlib.h>

#define MAX_HOOKS 32 /* more than every layer's registrations together */
#define MAX_RULES 8

/* A registration: its rank, and the weft__fork_hooks_t or weft__exit_rule_t it names. */
typedef struct slot {
    int rank;
    const void *e;
} slot_t;

static weft__mutex_t lock = WEFT__MUTEX_INIT;
static slot_t hooks[MAX_HOOKS];
static size_t nhooks;
static slot_t rules[MAX_RULES];
static size_t nrules;

static const weft__fork_hooks_t *hook(size_t i)
{
    return hooks[i].e;
}

static weft__mutex_t install_lock = WEFT__MUTEX_INIT;
static _Atomic bool atfork_installed, atexit_installed;

/* ---- the handlers ------------------------------------------------------------------------ */

static void on_prepare(void)
{
    weft__mutex_lock(&lock);
    for (size_t i = nhooks; i-- > 0;)
        if (hook(i)->prepare) hook(i)->prepare();
}

static void on_parent(void)
{
    for (size_t i = 0; i < nhooks; i++)
        if (hook(i)->parent) hook(i)->parent();
    weft__mutex_unlock(&lock);
}

static void on_child(void)
{
    for (size_t i = 0; i < nhooks; i++)
        if (hook(i)->child) hook(i)->child();
    lock = (weft__mutex_t)WEFT__MUTEX_INIT;         /* held by prepare on a thread that is gone */
    install_lock = (weft__mutex_t)WEFT__MUTEX_INIT; /* maybe held by one installing atexit */
}

static void on_exit_(void)
{
    weft__exit_run();
}

/* Calls install() once it succeeded (under install_lock, never under `lock`); 0 or
 * WEFT_ENOMEM (a later call tries again). */
static int install_once(_Atomic bool *done, int (*install)(void))
{
    if (atomic_load_explicit(done, memory_order_acquire)) return 0;
    int rc = 0;
    weft__mutex_lock(&install_lock);
    if (!atomic_load_explicit(done, memory_order_relaxed)) { /* relaxed: under install_lock */
        if (install() != 0)
            rc = WEFT_ENOMEM; /* both fail only for lack of memory */
        else
            atomic_store_explicit(done, true, memory_order_release);
    }
    weft__mutex_unlock(&install_lock);
    return rc;
}

static int install_atfork(void)
{
    return pthread_atfork(on_prepare, on_parent, on_child);
}

static int install_atexit(void)
{
    return atexit(on_exit_);
}

/* The atfork handler is installed at load, before the program can start a thread: installed
 * lazily, a fork racing the first registration could leave the child with install_lock held
 * by a thread that is gone (blocked in pthread_atfork, on glibc's lock the fork holds). A
 * failure here (no memory) is retried by the next registration. The atexit handler is
 * installed by the first exit rule, so that it runs before the handlers the program registered
 * earlier, as each layer's own atexit did. */
__attribute__((constructor)) static void install_at_load(void)
{
    install_once(&atfork_installed, install_atfork);
}

/* Inserts e into list (n entries, sorted by rank) after the last entry of a rank <= its own,
 * unless it is there already. 0 or WEFT_ENOMEM (full); the caller holds `lock`. */
static int insert(slot_t *list, size_t *n, size_t cap, int rank, const void *e)
{
    for (size_t i = 0; i < *n; i++)
        if (list[i].e == e) return 0;
    if (*n == cap) return WEFT_ENOMEM;
    size_t at = *n;
    for (; at > 0 && list[at - 1].rank > rank; at--) list[at] = list[at - 1];
    list[at] = (slot_t){rank, e};
    (*n)++;
    return 0;
}

/* ---- the API ----------------------------------------------------------------------------- */

int weft__fork_register(const weft__fork_hooks_t *h)
{
    int rc = 0;
    if (h->prepare || h->parent || h->child) rc = install_once(&atfork_installed, install_atfork);
    if (rc) return rc;
    weft__mutex_lock(&lock);
    rc = insert(hooks, &nhooks, MAX_HOOKS, h->rank, h);
    weft__mutex_unlock(&lock);
    return rc;
}

void weft__fork_fresh(void)
{
    for (size_t i = nhooks; i-- > 0;) /* the only thread: no lock */
        if (hook(i)->fresh) hook(i)->fresh();
}

int weft__exit_register(const weft__exit_rule_t *r)
{
    int rc = install_once(&atexit_installed, install_atexit);
    if (rc) return rc;
    weft__mutex_lock(&lock);
    rc = insert(rules, &nrules, MAX_RULES, r->rank, r);
    weft__mutex_unlock(&lock);
    return rc;
}

void weft__exit_run(void)
{
    /* A rule may register another (a rule that starts a thread installs the thread layer's):
     * each round runs the top rule not run yet, without the lock. */
    const weft__exit_rule_t *done[MAX_RULES];
    size_t ndone = 0;
    for (;;) {
        const weft__exit_rule_t *next = NULL;
        weft__mutex_lock(&lock);
        for (size_t i = nrules; i-- > 0 && !next;) {
            next = rules[i].e;
            for (size_t k = 0; k < ndone && next; k++)
                if (done[k] == next) next = NULL;
        }
        weft__mutex_unlock(&lock);
        if (!next) return;
        done[ndone++] = next;
        next->run();
    }
}
