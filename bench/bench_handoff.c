/*
 * bench_handoff.c — waking a thread that waits: how fast weft passes a token between two
 * threads, and what waiting costs when nobody comes.
 *
 * A handoff is a token passed back and forth between thread A (the caller, which times) and
 * thread B. Every way of passing it is a `channel`: give(dir) hands the token across, take(dir)
 * waits for it; dir 0 is A → B, dir 1 is B → A. One round trip is A: give(0), take(1) and
 * B: take(0), give(1). The channels:
 *   weft_lock       two weft Locks used as binary semaphores (a Lock has no owner)
 *   weft_semaphore  two weft Semaphores starting at 0
 *   weft_event      two weft Events: give sets, take waits then clears (Event ping-pong)
 *   sem_t           two POSIX semaphores (an extra peer: futex, no spin)
 *   condvar token   one pthread mutex + condvar + a turn variable (the peer for the token)
 *   condvar event   two Events built from mutex + condvar + flag (the peer for ping-pong)
 * The same weft channels also run with WEFT_SPIN_NS=0, in a child process forked before the
 * first weft call, to show what the thread parker's bounded spin buys; and everything runs
 * again with one more thread busy-looping, to show what the spin costs on a busy machine.
 * Figures: round trips per second, µs per round trip, and CPU µs per round trip (both
 * threads together), each the median of interleaved repetitions. Goal: 5x mutex+condvar.
 *
 * Last the idle wait: one thread waits 1 s on an Event nobody sets; the figure is the CPU time
 * that wait consumed (the spin before sleeping is the cost), against the same wait on a
 * pthread condvar, and against nanosleep (the floor: what any sleep is charged here).
 */
#include "bench_common.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "weft/sync.h"

enum { REPS = 7, LOADED_REPS = 5 };
#define REP_NS      100000000LL /* each repetition passes the token for ~100 ms */
#define IDLE_WAIT_S 1.0         /* the idle wait's timeout */
#define IDLE_REPS   3           /* idle waits, weft's and the peer's running side by side */

/* ---- channels ----------------------------------------------------------------------------- */

typedef struct channel {
    void (*init)(void *obj);
    void (*give)(void *obj, int dir);
    void (*take)(void *obj, int dir);
    void (*destroy)(void *obj); /* after the last round trip; checks nothing is left held */
} channel_t;

/* weft Locks: both start held; give releases, take acquires. */
static void lock_init(void *obj)
{
    weft_lock_t *l = obj;
    for (int d = 0; d < 2; d++) {
        weft_lock_init(&l[d]);
        weft_lock_acquire(&l[d], WEFT_FOREVER);
    }
}
static void lock_give(void *obj, int dir)
{
    weft_lock_release(&((weft_lock_t *)obj)[dir]);
}
static void lock_take(void *obj, int dir)
{
    bench_check(weft_lock_acquire(&((weft_lock_t *)obj)[dir], WEFT_FOREVER) == 0, "lock take");
}
static void lock_destroy(void *obj)
{
    weft_lock_t *l = obj;
    for (int d = 0; d < 2; d++) {
        bench_check(weft_lock_locked(&l[d]), "lock handoff ends with both locks held");
        weft_lock_release(&l[d]);
        bench_check(weft_lock_destroy(&l[d]) == 0, "weft_lock_destroy");
    }
}

/* weft Semaphores starting at 0. */
static void wsem_init(void *obj)
{
    for (int d = 0; d < 2; d++) weft_semaphore_init(&((weft_semaphore_t *)obj)[d], 0, false);
}
static void wsem_give(void *obj, int dir)
{
    weft_semaphore_release(&((weft_semaphore_t *)obj)[dir], 1);
}
static void wsem_take(void *obj, int dir)
{
    bench_check(weft_semaphore_acquire(&((weft_semaphore_t *)obj)[dir], WEFT_FOREVER) == 0,
                "semaphore take");
}
static void wsem_destroy(void *obj)
{
    for (int d = 0; d < 2; d++)
        bench_check(weft_semaphore_destroy(&((weft_semaphore_t *)obj)[d]) == 0,
                    "weft_semaphore_destroy");
}

/* weft Events: give sets; take waits, then clears for the next round. */
static void wevent_init(void *obj)
{
    for (int d = 0; d < 2; d++) weft_event_init(&((weft_event_t *)obj)[d]);
}
static void wevent_give(void *obj, int dir)
{
    weft_event_set(&((weft_event_t *)obj)[dir]);
}
static void wevent_take(void *obj, int dir)
{
    weft_event_t *e = &((weft_event_t *)obj)[dir];
    bench_check(weft_event_wait(e, WEFT_FOREVER) == 0, "event take");
    weft_event_clear(e);
}
static void wevent_destroy(void *obj)
{
    for (int d = 0; d < 2; d++)
        bench_check(weft_event_destroy(&((weft_event_t *)obj)[d]) == 0, "weft_event_destroy");
}

/* POSIX semaphores starting at 0. */
static void psem_init(void *obj)
{
    for (int d = 0; d < 2; d++) sem_init(&((sem_t *)obj)[d], 0, 0);
}
static void psem_give(void *obj, int dir)
{
    sem_post(&((sem_t *)obj)[dir]);
}
static void psem_take(void *obj, int dir)
{
    while (sem_wait(&((sem_t *)obj)[dir]) != 0) continue; /* EINTR */
}
static void psem_destroy(void *obj)
{
    for (int d = 0; d < 2; d++) sem_destroy(&((sem_t *)obj)[d]);
}

/* One mutex + condvar and a turn variable naming the thread that holds the token. */
typedef struct cv_token {
    pthread_mutex_t m;
    pthread_cond_t c;
    int holder; /* 0: A, 1: B */
} cv_token_t;

static void cvtok_init(void *obj)
{
    cv_token_t *t = obj;
    pthread_mutex_init(&t->m, NULL);
    pthread_cond_init(&t->c, NULL);
    t->holder = 0;
}
/* dir 0 (A → B) makes B the holder, dir 1 makes A the holder. */
static void cvtok_give(void *obj, int dir)
{
    cv_token_t *t = obj;
    pthread_mutex_lock(&t->m);
    t->holder = 1 - dir;
    pthread_cond_signal(&t->c);
    pthread_mutex_unlock(&t->m);
}
static void cvtok_take(void *obj, int dir)
{
    cv_token_t *t = obj;
    pthread_mutex_lock(&t->m);
    while (t->holder != 1 - dir) pthread_cond_wait(&t->c, &t->m);
    pthread_mutex_unlock(&t->m);
}
static void cvtok_destroy(void *obj)
{
    cv_token_t *t = obj;
    pthread_cond_destroy(&t->c);
    pthread_mutex_destroy(&t->m);
}

/* Python's Event as CPython builds it: a flag under a mutex, a condvar to wait for it. */
typedef struct cv_event {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool flag;
} cv_event_t;

static void cv_event_init(cv_event_t *e)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_mutex_init(&e->m, NULL);
    pthread_cond_init(&e->c, &a);
    pthread_condattr_destroy(&a);
    e->flag = false;
}
static void cv_event_set(cv_event_t *e)
{
    pthread_mutex_lock(&e->m);
    e->flag = true;
    pthread_cond_broadcast(&e->c);
    pthread_mutex_unlock(&e->m);
}
/* Waits until set or until the absolute CLOCK_MONOTONIC time `until` (NULL: forever); true
 * when set. */
static bool cv_event_wait(cv_event_t *e, const struct timespec *until)
{
    pthread_mutex_lock(&e->m);
    while (!e->flag) {
        if (!until)
            pthread_cond_wait(&e->c, &e->m);
        else if (pthread_cond_timedwait(&e->c, &e->m, until) != 0)
            break;
    }
    bool set = e->flag;
    pthread_mutex_unlock(&e->m);
    return set;
}
static void cv_event_clear(cv_event_t *e)
{
    pthread_mutex_lock(&e->m);
    e->flag = false;
    pthread_mutex_unlock(&e->m);
}
static void cv_event_destroy(cv_event_t *e)
{
    pthread_cond_destroy(&e->c);
    pthread_mutex_destroy(&e->m);
}

static void cvev_init(void *obj)
{
    for (int d = 0; d < 2; d++) cv_event_init(&((cv_event_t *)obj)[d]);
}
static void cvev_give(void *obj, int dir)
{
    cv_event_set(&((cv_event_t *)obj)[dir]);
}
static void cvev_take(void *obj, int dir)
{
    cv_event_t *e = &((cv_event_t *)obj)[dir];
    cv_event_wait(e, NULL);
    cv_event_clear(e);
}
static void cvev_destroy(void *obj)
{
    for (int d = 0; d < 2; d++) cv_event_destroy(&((cv_event_t *)obj)[d]);
}

enum { CH_LOCK, CH_WSEM, CH_WEVENT, CH_PSEM, CH_CVTOKEN, CH_CVEVENT, N_CHANNELS };

static channel_t channels[N_CHANNELS] = {
    [CH_LOCK] = {lock_init, lock_give, lock_take, lock_destroy},
    [CH_WSEM] = {wsem_init, wsem_give, wsem_take, wsem_destroy},
    [CH_WEVENT] = {wevent_init, wevent_give, wevent_take, wevent_destroy},
    [CH_PSEM] = {psem_init, psem_give, psem_take, psem_destroy},
    [CH_CVTOKEN] = {cvtok_init, cvtok_give, cvtok_take, cvtok_destroy},
    [CH_CVEVENT] = {cvev_init, cvev_give, cvev_take, cvev_destroy},
};

/* ---- one repetition of a handoff ------------------------------------------------------------ */

typedef struct handoff {
    const channel_t *ch;
    union { /* the channel's objects, one per direction */
        weft_lock_t lock[2];
        weft_semaphore_t wsem[2];
        weft_event_t wevent[2];
        sem_t psem[2];
        cv_token_t cvtoken;
        cv_event_t cvevent[2];
    } obj;
    atomic_bool stop; /* set by A before its last give: B then leaves without giving back */
} handoff_t;

static void *handoff_b(void *arg)
{
    handoff_t *h = arg;
    for (;;) {
        h->ch->take(&h->obj, 0);
        if (atomic_load_explicit(&h->stop, memory_order_acquire)) return NULL;
        h->ch->give(&h->obj, 1);
    }
}

/* The result of a repetition: wall time and CPU time (both threads) per round trip, in ns. */
typedef struct handoff_result {
    double wall_ns, cpu_ns;
} handoff_result_t;

static handoff_result_t run_handoff(const channel_t *ch)
{
    handoff_t h = {.ch = ch};
    atomic_init(&h.stop, false);
    ch->init(&h.obj);
    pthread_t b;
    bench_check(pthread_create(&b, NULL, handoff_b, &h) == 0, "pthread_create");
    for (int i = 0; i < 16; i++) { /* warm-up: B is running and both paths are hot */
        ch->give(&h.obj, 0);
        ch->take(&h.obj, 1);
    }
    long trips = 0;
    int64_t t0 = bench_now_ns(), cpu0 = bench_cpu_ns(), t1 = t0;
    for (;;) {
        ch->give(&h.obj, 0);
        ch->take(&h.obj, 1);
        if (++trips % 64 == 0 && (t1 = bench_now_ns()) - t0 >= REP_NS) break;
    }
    int64_t cpu1 = bench_cpu_ns();
    atomic_store_explicit(&h.stop, true, memory_order_release);
    ch->give(&h.obj, 0);
    pthread_join(b, NULL);
    ch->destroy(&h.obj);
    return (handoff_result_t){(double)(t1 - t0) / trips, (double)(cpu1 - cpu0) / trips};
}

/* ---- comparisons ------------------------------------------------------------------------- */

/* One repetition of channel arg in this process; *cpu_ns gets the CPU cost. */
static double handoff_rep(void *arg, double *cpu_ns)
{
    handoff_result_t r = run_handoff(arg);
    *cpu_ns = r.cpu_ns;
    return r.wall_ns;
}

/* The same in the WEFT_SPIN_NS=0 child (bench_child_start). */
static double handoff_serve(int which, double *cpu_ns)
{
    return handoff_rep(&channels[which], cpu_ns);
}

/* Prints a case's figures: round trips per second, µs per round trip, CPU µs per round trip. */
static void print_handoff(const char *what, const char *variant, const bench_case_t *c)
{
    char fig[128];
    snprintf(fig, sizeof fig, "%s %s", what, variant);
    bench_figure(fig, 1e9 / c->median, "round trips/s");
    bench_figure(fig, c->median / 1e3, "µs per round trip");
    snprintf(fig, sizeof fig, "%s %s cpu", what, variant);
    bench_figure(fig, c->extra_median / 1e3, "µs per round trip (both threads)");
}

static void bench_token(bench_child_t *nospin)
{
    bench_case_t c[] = {
        {.run = handoff_rep, .arg = &channels[CH_LOCK]},
        {.run = handoff_rep, .arg = &channels[CH_WSEM]},
        {.run = handoff_rep, .arg = &channels[CH_CVTOKEN]},
        {.run = handoff_rep, .arg = &channels[CH_PSEM]},
        {.run = bench_remote_run, .arg = &(bench_remote_t){nospin, CH_LOCK}},
    };
    bench_interleave(c, sizeof c / sizeof c[0], REPS);
    print_handoff("handoff", "weft_lock", &c[0]);
    print_handoff("handoff", "weft_semaphore", &c[1]);
    print_handoff("handoff", "mutex+condvar", &c[2]);
    print_handoff("handoff", "sem_t", &c[3]);
    print_handoff("handoff", "weft_lock WEFT_SPIN_NS=0", &c[4]);
    bench_speedup("handoff weft_lock", "mutex+condvar", c[2].median / c[0].median);
    bench_speedup("handoff weft_semaphore", "mutex+condvar", c[2].median / c[1].median);
    bench_speedup("handoff weft_lock", "sem_t", c[3].median / c[0].median);
    bench_speedup("handoff weft_lock", "weft_lock WEFT_SPIN_NS=0", c[4].median / c[0].median);
    bench_speedup("handoff weft_lock WEFT_SPIN_NS=0", "mutex+condvar", c[2].median / c[4].median);
    fflush(stdout);
}

static void bench_pingpong(bench_child_t *nospin)
{
    bench_case_t c[] = {
        {.run = handoff_rep, .arg = &channels[CH_WEVENT]},
        {.run = handoff_rep, .arg = &channels[CH_CVEVENT]},
        {.run = bench_remote_run, .arg = &(bench_remote_t){nospin, CH_WEVENT}},
    };
    bench_interleave(c, sizeof c / sizeof c[0], REPS);
    print_handoff("event ping-pong", "weft_event", &c[0]);
    print_handoff("event ping-pong", "mutex+condvar", &c[1]);
    print_handoff("event ping-pong", "weft_event WEFT_SPIN_NS=0", &c[2]);
    bench_speedup("event ping-pong weft_event", "mutex+condvar", c[1].median / c[0].median);
    bench_speedup("event ping-pong weft_event", "weft_event WEFT_SPIN_NS=0",
                  c[2].median / c[0].median);
    fflush(stdout);
}

/* ---- handoffs on a busy machine ------------------------------------------------------------
 * The same handoffs while one more thread of this process busy-loops: three runnable threads
 * on two CPUs, as when a build runs beside the program. A waiter that spins now holds a CPU
 * its waker may be queued for. (CPU figures are left out: the busy thread's CPU counts.) */

static atomic_bool hog_stop;

static void *hog(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&hog_stop, memory_order_relaxed)) bench_relax();
    return NULL;
}

static void bench_loaded(bench_child_t *nospin)
{
    bench_case_t c[] = {
        {.run = handoff_rep, .arg = &channels[CH_LOCK]},
        {.run = handoff_rep, .arg = &channels[CH_CVTOKEN]},
        {.run = bench_remote_run, .arg = &(bench_remote_t){nospin, CH_LOCK}},
        {.run = handoff_rep, .arg = &channels[CH_WEVENT]},
        {.run = handoff_rep, .arg = &channels[CH_CVEVENT]},
        {.run = bench_remote_run, .arg = &(bench_remote_t){nospin, CH_WEVENT}},
    };
    enum { N = sizeof c / sizeof c[0] };
    static const char *const names[N] = {"loaded handoff weft_lock",
                                         "loaded handoff mutex+condvar",
                                         "loaded handoff weft_lock WEFT_SPIN_NS=0",
                                         "loaded event ping-pong weft_event",
                                         "loaded event ping-pong mutex+condvar",
                                         "loaded event ping-pong weft_event WEFT_SPIN_NS=0"};
    printf("# loaded: one more thread busy-loops meanwhile (3 runnable threads, %ld CPUs)\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    atomic_store(&hog_stop, false);
    pthread_t t;
    bench_check(pthread_create(&t, NULL, hog, NULL) == 0, "pthread_create");
    bench_interleave(c, N, LOADED_REPS);
    atomic_store(&hog_stop, true);
    pthread_join(t, NULL);
    for (int i = 0; i < N; i++) bench_figure(names[i], c[i].median / 1e3, "µs per round trip");
    bench_speedup("loaded handoff weft_lock", "mutex+condvar", c[1].median / c[0].median);
    bench_speedup("loaded handoff weft_lock WEFT_SPIN_NS=0", "mutex+condvar",
                  c[1].median / c[2].median);
    bench_speedup("loaded event ping-pong weft_event", "mutex+condvar", c[4].median / c[3].median);
    bench_speedup("loaded event ping-pong weft_event WEFT_SPIN_NS=0", "mutex+condvar",
                  c[4].median / c[5].median);
    fflush(stdout);
}

/* ---- the idle wait -------------------------------------------------------------------------- */

enum idle_kind { IDLE_WEFT, IDLE_CONDVAR, IDLE_NANOSLEEP, N_IDLE };

typedef struct idle_wait {
    enum idle_kind kind;
    double cpu_ms, late_us; /* out: CPU time of the wait; how long after the timeout it ended */
} idle_wait_t;

/* Waits `seconds` on an event nobody sets (or just sleeps: the floor, what any sleep is
 * charged here); true if the wait timed out as it should. */
static bool idle_wait_once(enum idle_kind kind, double seconds)
{
    if (kind == IDLE_NANOSLEEP) {
        struct timespec d = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
        return nanosleep(&d, NULL) == 0;
    }
    if (kind == IDLE_WEFT) {
        weft_event_t e;
        weft_event_init(&e);
        bool timed_out = weft_event_wait(&e, seconds) == WEFT_ETIMEDOUT;
        weft_event_destroy(&e);
        return timed_out;
    }
    cv_event_t e;
    cv_event_init(&e);
    int64_t until = bench_now_ns() + (int64_t)(seconds * 1e9);
    struct timespec ts = {until / 1000000000, until % 1000000000};
    bool timed_out = !cv_event_wait(&e, &ts);
    cv_event_destroy(&e);
    return timed_out;
}

static void *idle_waiter(void *arg)
{
    idle_wait_t *w = arg;
    /* A first short wait pays the new thread's one-time costs (stack pages, symbol binding),
     * so the figure is the wait's own. */
    bench_check(idle_wait_once(w->kind, 0.001), "idle warm-up wait");
    int64_t start = bench_now_ns(), cpu0 = bench_thread_cpu_ns();
    bench_check(idle_wait_once(w->kind, IDLE_WAIT_S), "idle wait");
    w->cpu_ms = (double)(bench_thread_cpu_ns() - cpu0) / 1e6;
    w->late_us = ((double)(bench_now_ns() - start) - IDLE_WAIT_S * 1e9) / 1e3;
    return NULL;
}

static void bench_idle(void)
{
    static const char *const names[N_IDLE] = {"weft_event", "mutex+condvar", "nanosleep"};
    double cpu[N_IDLE][IDLE_REPS], late[N_IDLE][IDLE_REPS];
    for (int r = 0; r < IDLE_REPS; r++) { /* all waits at once: same load, a third the time */
        idle_wait_t w[N_IDLE];
        pthread_t t[N_IDLE];
        for (int i = 0; i < N_IDLE; i++) {
            w[i] = (idle_wait_t){.kind = (enum idle_kind)i};
            bench_check(pthread_create(&t[i], NULL, idle_waiter, &w[i]) == 0, "pthread_create");
        }
        for (int i = 0; i < N_IDLE; i++) {
            pthread_join(t[i], NULL);
            cpu[i][r] = w[i].cpu_ms;
            late[i][r] = w[i].late_us;
        }
    }
    double med[N_IDLE];
    char fig[128];
    for (int i = 0; i < N_IDLE; i++) {
        med[i] = bench_median(cpu[i], IDLE_REPS);
        snprintf(fig, sizeof fig, "idle wait cpu %s", names[i]);
        bench_figure(fig, med[i], "ms per 1 s wait");
    }
    bench_speedup("idle wait cpu weft_event", "mutex+condvar", med[IDLE_CONDVAR] / med[IDLE_WEFT]);
    for (int i = 0; i < N_IDLE; i++) {
        snprintf(fig, sizeof fig, "idle wait late %s", names[i]);
        bench_figure(fig, bench_median(late[i], IDLE_REPS), "µs after timeout");
    }
}

int main(void)
{
    /* Before any weft call and any thread: see bench_child_start. */
    bench_child_t nospin = bench_child_start("WEFT_SPIN_NS", "0", handoff_serve);
    const char *spin = getenv("WEFT_SPIN_NS");
    bench_header("bench_handoff: waking a waiting thread, weft vs pthread", REPS);
    printf("# weft spin budget (WEFT_SPIN_NS): %s ns%s; each repetition ~%lld ms\n",
           spin ? spin : "20000", spin ? "" : " (default)", REP_NS / 1000000);
    bench_token(&nospin);
    bench_pingpong(&nospin);
    bench_loaded(&nospin);
    bench_child_stop(&nospin);
    bench_idle();
    return 0;
}
