/*
 * debug_dump — a program that looks stuck, and shows why (Go's SIGQUIT dump, gevent's
 * print_run_info): a worker thread waits for a Lock main holds, two coroutines wait on a
 * Queue nobody feeds and in a long sleep, a pool task waits for an Event. Main names the
 * objects, turns observing on, and prints every task with what it is blocked on, who holds
 * it, and for how long. Run it with WEFT_DUMP_SIGNAL=QUIT and press Ctrl-\ during the pause
 * for the same dump from the signal.
 */
#include <stdio.h>

#include "weft.h"

static weft_lock_t db;
static weft_event_t go;
static weft_queue_t *jobs;

static void worker(void *arg)
{
    (void)arg;
    weft_lock_acquire(&db, WEFT_FOREVER); /* main holds it: stuck here */
    weft_lock_release(&db);
}

static void consumer(void *arg)
{
    void *job;
    (void)arg;
    if (weft_queue_get(jobs, WEFT_FOREVER, &job) != 0) return; /* nobody puts: stuck here */
}

static void napper(void *arg)
{
    (void)arg;
    weft_time_sleep(30);
}

static int task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return weft_event_wait(&go, WEFT_FOREVER);
}

int main(void)
{
    weft_debug_observe(true); /* "for 0.20 s" in the dump */
    weft_lock_init(&db);
    weft_event_init(&go);
    if (weft_queue_create(WEFT_QUEUE_FIFO, 0, &jobs) != 0) return 1;
    weft_lock_set_name(&db, "db");
    weft_event_set_name(&go, "go");
    weft_queue_set_name(jobs, "jobs");

    weft_lock_acquire(&db, WEFT_FOREVER);
    weft_thread_opts_t topts = {.name = "worker"};
    weft_thread_t *t;
    if (weft_thread_start(worker, NULL, &topts, &t) != 0) return 1;
    weft_co_opts_t c1 = {.name = "consumer"}, c2 = {.name = "napper"};
    weft_co_t *cc, *cn;
    if (weft_co_spawn(consumer, NULL, &c1, &cc) != 0 || weft_co_spawn(napper, NULL, &c2, &cn) != 0)
        return 1;
    weft_executor_t *pool;
    weft_future_t *f;
    if (weft_thread_pool_create(1, NULL, &pool) != 0 ||
        weft_executor_submit(pool, task, NULL, &f) != 0)
        return 1;

    weft_time_sleep(0.2); /* everyone gets stuck; a signal's dump would show it now */
    weft_debug_dump(stdout);

    /* Unstick everything and end cleanly. */
    weft_lock_release(&db);
    weft_event_set(&go);
    if (weft_queue_put(jobs, NULL, WEFT_FOREVER) != 0) return 1;
    weft_co_cancel(cn);
    weft_co_join(cc, WEFT_FOREVER);
    weft_co_join(cn, WEFT_FOREVER);
    weft_co_release(cc);
    weft_co_release(cn);
    weft_thread_join(t, WEFT_FOREVER);
    weft_thread_release(t);
    if (weft_future_result(f, WEFT_FOREVER, NULL) != 0) return 1;
    weft_future_release(f);
    weft_executor_shutdown(pool, true, false, WEFT_FOREVER);
    weft_executor_release(pool);
    weft_queue_release(jobs);
    weft_lock_destroy(&db);
    weft_event_destroy(&go);
    return 0;
}
