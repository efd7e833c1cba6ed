/*
 * bench_lock.c — weft's Lock, RLock and Semaphore against their pthread analogues.
 *
 * Uncontended: one thread takes and gives back the object in a loop; the figure is ns per
 * pair (acquire+release). Budget (DESIGN.md): weft_lock no slower than pthread_mutex.
 * Contended: two threads each add 1 to a shared counter N times under the lock; the figure
 * is increments per second (both threads together), and the counter must come out at 2N.
 * The weft side runs once more with WEFT_SPIN_NS=0 (in a child process, bench_child_start),
 * since under contention a waiter spends most of its wait in the thread parker's spin.
 *
 * Each repetition runs weft and its peer back to back (order rotating), so both see the same
 * load; figures are medians (bench_common.h).
 */
#include "bench_common.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "weft/sync.h"

enum {
    REPS = 11,
    PAIRS = 2000000,      /* uncontended pairs per repetition (~15-40 ms) */
    INCREMENTS = 2000000, /* contended increments per thread per repetition */
};

/* ---- uncontended: one loop per primitive -------------------------------------------------- */

static double per_pair(int64_t t0, long n)
{
    return (double)(bench_now_ns() - t0) / (double)n;
}

static double weft_lock_pairs(void *arg, double *extra)
{
    (void)arg, (void)extra;
    weft_lock_t l;
    weft_lock_init(&l);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < PAIRS; i++) {
        weft_lock_acquire(&l, WEFT_FOREVER);
        weft_lock_release(&l);
    }
    double ns = per_pair(t0, PAIRS);
    bench_check(weft_lock_destroy(&l) == 0, "weft_lock_destroy");
    return ns;
}

static double pthread_mutex_pairs(void *arg, double *extra)
{
    (void)arg, (void)extra;
    pthread_mutex_t m;
    pthread_mutex_init(&m, NULL);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < PAIRS; i++) {
        pthread_mutex_lock(&m);
        pthread_mutex_unlock(&m);
    }
    double ns = per_pair(t0, PAIRS);
    pthread_mutex_destroy(&m);
    return ns;
}

static double weft_rlock_pairs(void *arg, double *extra)
{
    (void)arg, (void)extra;
    weft_rlock_t r;
    weft_rlock_init(&r);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < PAIRS; i++) {
        weft_rlock_acquire(&r, WEFT_FOREVER);
        weft_rlock_release(&r);
    }
    double ns = per_pair(t0, PAIRS);
    bench_check(weft_rlock_destroy(&r) == 0, "weft_rlock_destroy");
    return ns;
}

static double pthread_recursive_pairs(void *arg, double *extra)
{
    (void)arg, (void)extra;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_t m;
    pthread_mutex_init(&m, &a);
    pthread_mutexattr_destroy(&a);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < PAIRS; i++) {
        pthread_mutex_lock(&m);
        pthread_mutex_unlock(&m);
    }
    double ns = per_pair(t0, PAIRS);
    pthread_mutex_destroy(&m);
    return ns;
}

static double weft_semaphore_pairs(void *arg, double *extra)
{
    (void)arg, (void)extra;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 1, false);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < PAIRS; i++) {
        weft_semaphore_acquire(&s, WEFT_FOREVER);
        weft_semaphore_release(&s, 1);
    }
    double ns = per_pair(t0, PAIRS);
    bench_check(weft_semaphore_value(&s) == 1, "weft_semaphore round trip");
    weft_semaphore_destroy(&s);
    return ns;
}

static double sem_t_pairs(void *arg, double *extra)
{
    (void)arg, (void)extra;
    sem_t s;
    sem_init(&s, 0, 1);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < PAIRS; i++) {
        sem_wait(&s);
        sem_post(&s);
    }
    double ns = per_pair(t0, PAIRS);
    sem_destroy(&s);
    return ns;
}

/* Runs weft's case against the peer's, prints both figures and the speedup (peer time over
 * weft time: > 1 means weft takes less time per pair). */
static void compare_pairs(const char *what, const char *weft_name, bench_case_t *weft_case,
                          const char *peer_name, bench_case_t *peer_case)
{
    bench_case_t cases[2] = {*weft_case, *peer_case};
    bench_interleave(cases, 2, REPS);
    char fig[128];
    snprintf(fig, sizeof fig, "%s uncontended %s", what, weft_name);
    bench_figure(fig, cases[0].median, "ns per acquire+release");
    snprintf(fig, sizeof fig, "%s uncontended %s", what, peer_name);
    bench_figure(fig, cases[1].median, "ns per acquire+release");
    snprintf(fig, sizeof fig, "%s uncontended", what);
    bench_speedup(fig, peer_name, cases[1].median / cases[0].median);
    fflush(stdout);
}

/* ---- contended: two threads race for one lock ---------------------------------------------- */

typedef struct race {
    weft_lock_t weft;
    pthread_mutex_t mutex;
    long counter;
    pthread_barrier_t start;
    int64_t began[2], ended[2];
} race_t;

typedef struct racer {
    race_t *race;
    int id;
} racer_t;

static void *weft_racer(void *arg)
{
    racer_t *me = arg;
    race_t *r = me->race;
    pthread_barrier_wait(&r->start);
    r->began[me->id] = bench_now_ns();
    for (long i = 0; i < INCREMENTS; i++) {
        weft_lock_acquire(&r->weft, WEFT_FOREVER);
        r->counter++;
        weft_lock_release(&r->weft);
    }
    r->ended[me->id] = bench_now_ns();
    return NULL;
}

static void *mutex_racer(void *arg)
{
    racer_t *me = arg;
    race_t *r = me->race;
    pthread_barrier_wait(&r->start);
    r->began[me->id] = bench_now_ns();
    for (long i = 0; i < INCREMENTS; i++) {
        pthread_mutex_lock(&r->mutex);
        r->counter++;
        pthread_mutex_unlock(&r->mutex);
    }
    r->ended[me->id] = bench_now_ns();
    return NULL;
}

typedef void *(*racer_fn)(void *);

/* One repetition: two threads running *arg (a racer_fn); returns millions of increments per
 * second, timed from the first thread's start to the last one's end. */
static double run_race(void *arg, double *extra)
{
    racer_fn racer = *(racer_fn *)arg;
    (void)extra;
    race_t r = {.counter = 0};
    weft_lock_init(&r.weft);
    pthread_mutex_init(&r.mutex, NULL);
    pthread_barrier_init(&r.start, NULL, 2);
    pthread_t t[2];
    racer_t who[2] = {{&r, 0}, {&r, 1}};
    for (int i = 0; i < 2; i++)
        bench_check(pthread_create(&t[i], NULL, racer, &who[i]) == 0, "pthread_create");
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    bench_check(r.counter == 2L * INCREMENTS, "mutual exclusion (counter mismatch)");
    int64_t began = r.began[0] < r.began[1] ? r.began[0] : r.began[1];
    int64_t ended = r.ended[0] > r.ended[1] ? r.ended[0] : r.ended[1];
    bench_check(weft_lock_destroy(&r.weft) == 0, "weft_lock_destroy");
    pthread_mutex_destroy(&r.mutex);
    pthread_barrier_destroy(&r.start);
    return 2.0 * INCREMENTS / (double)(ended - began) * 1e3; /* per ns * 1e9 / 1e6 */
}

/* The WEFT_SPIN_NS=0 child's side: the weft race (bench_child_start). */
static double race_serve(int which, double *extra)
{
    (void)which;
    racer_fn racer = weft_racer;
    return run_race(&racer, extra);
}

int main(void)
{
    /* Before any weft call and any thread: see bench_child_start. */
    bench_child_t nospin = bench_child_start("WEFT_SPIN_NS", "0", race_serve);
    bench_header("bench_lock: weft Lock/RLock/Semaphore vs pthread, uncontended and contended",
                 REPS);

    compare_pairs("lock", "weft_lock", &(bench_case_t){.run = weft_lock_pairs}, "pthread_mutex",
                  &(bench_case_t){.run = pthread_mutex_pairs});
    compare_pairs("rlock", "weft_rlock", &(bench_case_t){.run = weft_rlock_pairs},
                  "pthread_mutex_recursive", &(bench_case_t){.run = pthread_recursive_pairs});
    compare_pairs("semaphore", "weft_semaphore", &(bench_case_t){.run = weft_semaphore_pairs},
                  "sem_t", &(bench_case_t){.run = sem_t_pairs});

    racer_fn racers[2] = {weft_racer, mutex_racer};
    bench_case_t race[3] = {{.run = run_race, .arg = &racers[0]},
                            {.run = run_race, .arg = &racers[1]},
                            {.run = bench_remote_run, .arg = &(bench_remote_t){&nospin, 0}}};
    bench_interleave(race, 3, REPS);
    bench_child_stop(&nospin);
    char unit[64];
    snprintf(unit, sizeof unit, "Mops/s (2 threads x %d increments)", INCREMENTS);
    bench_figure("lock contended weft_lock", race[0].median, unit);
    bench_figure("lock contended pthread_mutex", race[1].median, unit);
    bench_figure("lock contended weft_lock WEFT_SPIN_NS=0", race[2].median, unit);
    bench_speedup("lock contended", "pthread_mutex", race[0].median / race[1].median);
    bench_speedup("lock contended WEFT_SPIN_NS=0", "pthread_mutex",
                  race[2].median / race[1].median);
    return 0;
}
