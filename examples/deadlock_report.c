/*
 * deadlock_report — two threads each take one Lock and then wait for the other's: the
 * classic deadlock. weft names who waits for what, and who holds it (weft/debug.h).
 *
 * Alice takes the fork, then wants the knife; Bob takes the knife, then wants the fork.
 * Neither will ever let go. The main thread asks weft for the deadlock report, which prints
 *
 *   weft: deadlock: thread 'alice' waits for Lock 'knife' held by thread 'bob', which waits
 *   for Lock 'fork' held by thread 'alice': a cycle, none of them can go on
 *
 * (starting from either of them). Each acquire has a timeout, so here the cycle breaks by
 * itself: both give up after a second and let go. In a program without timeouts the same
 * report comes from the watchdog: run it with WEFT_DEADLOCK_CHECK=<seconds> in the
 * environment. Coroutines get it for free: when a hub sees that nothing can wake its
 * coroutines, it prints the report before their waits fail with WEFT_EDEADLK.
 */
#include <stdio.h>
#include <time.h>

#include "weft.h"

static weft_lock_t fork_, knife;
static weft_event_t alice_has_fork, bob_has_knife;

typedef struct diner {
    const char *name;
    weft_lock_t *first, *second;
    const char *second_name;
    weft_event_t *mine, *other;
} diner_t;

static void dine(void *arg)
{
    diner_t *d = arg;
    weft_lock_acquire(d->first, WEFT_FOREVER);
    weft_event_set(d->mine);
    weft_event_wait(d->other, WEFT_FOREVER); /* both hold one now: the cycle is certain */
    int rc = weft_lock_acquire(d->second, 1.0);
    if (rc == 0) {
        weft_lock_release(d->second);
    } else {
        printf("%s gave up waiting for the %s: %s\n", d->name, d->second_name, weft_error_name(rc));
    }
    weft_lock_release(d->first);
}

int main(void)
{
    weft_debug_observe(true); /* record who takes each Lock: the report names holders */
    weft_lock_init(&fork_);
    weft_lock_init(&knife);
    weft_lock_set_name(&fork_, "fork");
    weft_lock_set_name(&knife, "knife");
    weft_event_init(&alice_has_fork);
    weft_event_init(&bob_has_knife);

    diner_t alice = {"alice", &fork_, &knife, "knife", &alice_has_fork, &bob_has_knife};
    diner_t bob = {"bob", &knife, &fork_, "fork", &bob_has_knife, &alice_has_fork};
    weft_thread_t *a, *b;
    if (weft_thread_start(dine, &alice, &(weft_thread_opts_t){.name = "alice"}, &a) ||
        weft_thread_start(dine, &bob, &(weft_thread_opts_t){.name = "bob"}, &b)) {
        fputs("could not start the threads\n", stderr);
        return 1;
    }

    /* Ask until both are parked on their second Lock (a moment after they hold the first). */
    size_t cycles = 0;
    FILE *quiet = fopen("/dev/null", "w");
    for (int i = 0; i < 100 && cycles == 0; i++) {
        weft_debug_deadlocks(quiet, 0, &cycles, NULL);
        if (cycles == 0) weft_time_sleep(0.005);
    }
    fclose(quiet);
    weft_debug_deadlocks(stdout, 0, &cycles, NULL);
    printf("deadlocks found: %zu\n", cycles);

    weft_thread_join(a, WEFT_FOREVER);
    weft_thread_join(b, WEFT_FOREVER);
    weft_thread_release(a);
    weft_thread_release(b);
    weft_lock_destroy(&fork_);
    weft_lock_destroy(&knife);
    weft_event_destroy(&alice_has_fork);
    weft_event_destroy(&bob_has_knife);
    return cycles == 1 ? 0 : 1;
}
