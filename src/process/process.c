/*
 * process.c — child processes (multiprocessing.Process, start method "fork") and the exit
 * rules.
 *
 * The record (struct weft_process) is allocated by start and freed when its last reference
 * goes: the caller's handle holds one until close; the exit rule holds one while it joins.
 * Fields:
 *   pid, parent, daemon, name   set before the fork, read-only after (parent is the starter's
 *                               pid: a record copied into a forked child is "foreign" there)
 *   pidfd                       the child's pidfd, opened right after the fork and closed by
 *                               close (or in a fork child, where it is useless): so while a
 *                               handle is held its fd number stays valid to poll. -1 where
 *                               pidfd_open is missing (Linux < 5.3, valgrind 3.19): waits
 *                               then poll waitid with a backoff, signals go through kill()
 *                               with the record's lock held and the child not reaped (its
 *                               pid cannot be reused before weft reaps it)
 *   reaped, known, status       under `lock`: the child was reaped (by waitid), and its exit
 *                               code if that reap saw it (known); the exit rule reads
 *                               `reaped` under registry_lock as a hint only (re-checked)
 *   prev, next                  the registry: every record started here and not yet closed,
 *                               under registry_lock, in start order
 *
 * Daemon children are forked by the forker thread (below), not by the starting thread: the
 * kernel's parent-death signal follows the thread that forked, Python's daemon flag the
 * process.
 *
 * Locks: a record's `lock` is taken alone or before registry_lock, never after it; neither is
 * held across a wait. forker.lock comes after a record's lock, and is never held across fork. The
 * fork handlers hold registry_lock across fork, so a child sees every pidfd of the registry (and
 * closes it: it must not keep its siblings' pidfds) and no pidfd outside it: a pidfd is opened, and
 * closed, only under registry_lock.
 */
#include "process_internal.h"
#include "../core/sys_internal.h"
#include "../io/io_shared.h"
#include "weft/io.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct weft_process {
    weft__handle_t hd; /* debug mode: magic, the program's reference (core_internal.h) */
    _Atomic uint32_t refs;
    weft__mutex_t lock;
    pid_t pid, parent;
    int pidfd;
    bool daemon, known;
    bool terminated;     /* the exit rule sent SIGTERM (under registry_lock) */
    bool traced;         /* its start is in the trace: its reap goes there too */
    _Atomic bool reaped; /* written under `lock`; read without it only as a hint */
    int status;
    weft__list_node_t link; /* on `registry`, under registry_lock */
    char name[WEFT_PROCESS_NAME_MAX];
};

static weft__mutex_t registry_lock = WEFT__MUTEX_INIT;
static weft__list_t registry; /* every record not closed (weft_process_t.link), in start order */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_error;
/* Process-N numbering. Relaxed: only uniqueness matters. */
static _Atomic unsigned long name_counter;

/* How long the exit rule gives a terminated daemon child before it kills it. */
#define DAEMON_GRACE_NS (1000 * 1000000LL)

/* ---- small helpers --------------------------------------------------------------------------*/

static int pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Set once pidfd_open reported ENOSYS: later starts do not try again. Relaxed: a hint. */
static atomic_bool no_pidfd;

/* This process's pid, cached (getpid is a system call): set at init, and again in the fork
 * child handler, so it is right in every process that has weft records to ask about. */
static _Atomic pid_t self_pid;

static pid_t my_pid(void)
{
    pid_t pid = atomic_load_explicit(&self_pid, memory_order_relaxed);
    return pid ? pid : getpid();
}

static bool foreign(const weft_process_t *p)
{
    return p->parent != my_pid();
}

static void unref(weft_process_t *p)
{
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        weft__handle_free(p, &p->hd);
}

static weft_process_t *record_of(weft__list_node_t *n)
{
    return n ? weft__container_of(n, weft_process_t, link) : NULL;
}

/* The registered record after p (the first for NULL); the caller holds registry_lock. */
static weft_process_t *registry_next_locked(weft_process_t *p)
{
    return record_of(p ? weft__list_next(&p->link) : weft__list_first(&registry));
}

/* ---- reaping --------------------------------------------------------------------------------*/

static void forker_reaped(void);

/* Reaps p if it has ended, without waiting; the caller holds p->lock. Returns whether p is
 * reaped now. */
static bool reap_locked(weft_process_t *p)
{
    /* Relaxed: written only under p->lock, which the caller holds. */
    if (atomic_load_explicit(&p->reaped, memory_order_relaxed)) return true;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG) == 0) {
        if (si.si_pid != p->pid) return false; /* still running */
        p->known = true;
        p->status = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
    } else if (errno == EINTR) {
        return false;
    }
    /* Reaped now, or (ECHILD) behind weft's back: its status is lost, but it has ended. */
    atomic_store_explicit(&p->reaped, true, memory_order_release); /* status first (snapshot) */
    if (p->traced) {
        weft__trace_ev_t ev = {.type = WEFT__TR_PROC_EXIT,
                               .t0 = weft_time_monotonic_ns(),
                               .id = (uint64_t)p->pid,
                               .obj = p,
                               .arg = p->status,
                               .flow = p->known,
                               .name = p->name};
        weft__trace_emit(&ev);
    }
    if (p->daemon) forker_reaped();
    return true;
}

static bool reap(weft_process_t *p)
{
    weft__mutex_lock(&p->lock);
    bool reaped = reap_locked(p);
    weft__mutex_unlock(&p->lock);
    return reaped;
}

static bool reaped_now(void *p)
{
    return reap(p);
}

/* Waits until p has ended and reaps it (nocancel: a cancel request does not end the wait).
 * A caller that may block its thread (no deadline, a thread nobody can cancel) waits in
 * waitid itself, without reaping (WNOWAIT: so without p->lock, which others may need
 * meanwhile), then reaps: two system calls, where a wait on the pidfd costs a failed reap, a
 * poll (with its wake-up fd) and the reap. Without a pidfd: polls waitid between the waiting
 * core's backoff naps. */
static int join_wait(weft_process_t *p, int64_t deadline, bool nocancel);

/* join_wait, described as "process <pid> join" for the task dump (its fd waits and naps keep
 * that description). */
static int join_until(weft_process_t *p, int64_t deadline, bool nocancel)
{
    weft__waitctx_t *ctx = weft__waitctx_current();
    bool mark = weft__blocked_enter(ctx, WEFT__ON_PROCESS_JOIN, (const void *)(intptr_t)p->pid,
                                    weft__scoped_deadline(ctx, deadline));
    int rc = join_wait(p, deadline, nocancel);
    weft__blocked_leave(ctx, mark);
    return rc;
}

static int join_wait(weft_process_t *p, int64_t deadline, bool nocancel)
{
    /* Relaxed: a hint, re-checked under the lock by reap. */
    if (deadline == WEFT_NO_DEADLINE && weft__may_block(nocancel) &&
        !atomic_load_explicit(&p->reaped, memory_order_relaxed)) {
        siginfo_t si;
        while (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
        }
        if (reap(p)) return 0; /* else (ECHILD: reaped meanwhile, or not ours) as below */
    }
    if (p->pidfd < 0) return weft__nap_until(reaped_now, p, deadline, nocancel);
    for (;;) {
        if (reap(p)) return 0;
        /* The pidfd turns readable when the child exits; it stays open while the caller holds
         * its reference, so polling it without the lock is safe. */
        int rc = nocancel ? weft__io_wait_nocancel(p->pidfd, WEFT_READ, deadline)
                          : weft__io_wait(p->pidfd, WEFT_READ, deadline);
        if (rc < 0) return reap(p) ? 0 : rc;
    }
}

/* join_until without limit for the exit rules, which must not give up: if poll itself fails
 * (out of memory), wait in the kernel without reaping, then reap as usual. */
static void join_forever(weft_process_t *p)
{
    while (join_until(p, WEFT_NO_DEADLINE, true) != 0) {
        siginfo_t si;
        waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT);
    }
}

/* Sends sig to p unless it was reaped (a pidfd never hits a reused pid; without one, kill()
 * is as safe while p is not reaped). 0, or the error. */
static int signal_child(weft_process_t *p, int sig)
{
    int rc = 0;
    weft__mutex_lock(&p->lock);
    /* Relaxed: written only under p->lock, which we hold. */
    if (!atomic_load_explicit(&p->reaped, memory_order_relaxed)) {
        int r = p->pidfd >= 0 ? pidfd_signal(p->pidfd, sig) : kill(p->pid, sig);
        if (r < 0 && errno != ESRCH) rc = weft__errno(errno);
    }
    weft__mutex_unlock(&p->lock);
    return rc;
}

/* ---- the forker: the parent thread of daemon children ----------------------------------------
 * PR_SET_PDEATHSIG fires when the *thread* that forked the child ends (the kernel reparents the
 * child to another thread of the process and signals it), so a daemon child forked by a
 * short-lived thread died with that thread. Daemon children are therefore forked by one thread
 * that lives while any of them may: the forker, started by the first daemon start, ending once
 * every daemon child it forked has been reaped (the next daemon start starts a new one). It ends
 * only with the process otherwise, and then, SIGKILL included, the kernel kills them.
 *
 * A starter queues a request that lives on its stack, parks (nocancel: the forker writes the
 * result into it) and is woken with the pid. The forker blocks every signal; the child restores
 * the starter's mask, and runs fn on its copy of the forker's stack (a default-sized one). In a
 * fork child there is no forker (fork_child resets this state). `forker.lock` guards it all;
 * `bell` is the futex word the idle forker sleeps on, bumped by every request and by the last
 * reap. */
typedef struct fork_request {
    weft__list_node_t node; /* on forker.requests */
    int (*fn)(void *);
    void *arg;
    weft_process_t *self; /* the record being started */
    sigset_t mask;
    pid_t pid; /* the result: the child's pid, or -1 and err */
    int err;
    weft__waiter_t waiter;
} fork_request_t;

static struct {
    weft__mutex_t lock;
    weft_waitq_t starters; /* parked starters (a list only: `lock` guards it) */
    weft__list_t requests; /* fork_request_t.node, in order */
    _Atomic uint32_t bell;
    bool running;
    bool idle;      /* parked without a request: counted in weft__idle_helpers */
    size_t daemons; /* daemon children it forked that weft has not reaped */
} forker = {.lock = WEFT__MUTEX_INIT, .starters = WEFT_WAITQ_INIT};

static _Noreturn void child_main(int (*fn)(void *), void *arg, weft_process_t *self);

/* The forker stops (or starts) counting as an idle helper; the caller holds forker.lock. */
static void forker_set_idle(bool idle)
{
    if (forker.idle == idle) return;
    forker.idle = idle;
    atomic_fetch_add_explicit(&weft__idle_helpers, idle ? 1 : -1, memory_order_release);
}

/* The caller holds forker.lock. */
static void forker_ring(void)
{
    atomic_fetch_add_explicit(&forker.bell, 1, memory_order_release);
    weft__futex_wake(&forker.bell, 1, false);
}

static void *forker_main(void *unused)
{
    (void)unused;
    weft__mutex_lock(&forker.lock);
    for (;;) {
        weft__list_node_t *n = weft__list_first(&forker.requests);
        if (!n && forker.daemons == 0) break;
        if (!n) {
            /* Relaxed: the lock orders it with the rings made under it; a later ring changes
             * the word, and the futex wait then returns at once. */
            uint32_t bell = atomic_load_explicit(&forker.bell, memory_order_relaxed);
            forker_set_idle(true);
            weft__mutex_unlock(&forker.lock);
            weft__futex_wait(&forker.bell, bell, WEFT_NO_DEADLINE, false);
            weft__mutex_lock(&forker.lock);
            forker_set_idle(false);
            continue;
        }
        weft__list_pop_head(&forker.requests, n);
        fork_request_t *r = weft__container_of(n, fork_request_t, node);
        int (*fn)(void *) = r->fn;
        void *arg = r->arg;
        weft_process_t *self = r->self;
        sigset_t mask = r->mask;
        weft__mutex_unlock(&forker.lock);
        pid_t pid = weft__sys_fork();
        if (pid == 0) {
            pthread_sigmask(SIG_SETMASK, &mask, NULL);
            child_main(fn, arg, self);
        }
        int err = errno;
        weft__mutex_lock(&forker.lock);
        if (pid > 0) forker.daemons++;
        r->pid = pid;
        r->err = err;
        weft__waitq_remove(&forker.starters, &r->waiter);
        weft__waiter_wake(&r->waiter); /* r is gone once it is woken */
    }
    forker.running = false;
    weft__mutex_unlock(&forker.lock);
    return NULL;
}

/* Forks the daemon child of record `self`, running fn(arg), from the forker: its pid, or -1
 * with *err set. */
static pid_t fork_daemon(int (*fn)(void *), void *arg, weft_process_t *self, int *err)
{
    fork_request_t r = {.fn = fn, .arg = arg, .self = self, .pid = -1};
    pthread_sigmask(SIG_SETMASK, NULL, &r.mask);
    weft__mutex_lock(&forker.lock);
    if (!forker.running) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_t t;
        int rc = weft__sys_pthread_create(&t, NULL, forker_main, NULL); /* it waits for our lock */
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc) {
            weft__mutex_unlock(&forker.lock);
            *err = rc;
            return -1;
        }
        pthread_detach(t);
        forker.running = true;
    }
    weft__list_push_back(&forker.requests, &r.node);
    weft__waiter_init(&r.waiter);
    r.waiter.nocancel = true;
    weft__waitq_push(&forker.starters, &r.waiter);
    forker_set_idle(false); /* it can wake us now: before we park, for a deadlock probe */
    forker_ring();
    weft__mutex_unlock(&forker.lock);
    /* No deadline, no cancel: the park ends with the forker's wake (a hub's deadlock probe
     * counts the forker as a thread that can wake us, which it is). */
    weft__waiter_park_in(&forker.lock, &forker.starters, &r.waiter, WEFT_NO_DEADLINE);
    *err = r.err;
    return r.pid;
}

/* A daemon child of this process was reaped (or taken back): the forker may end after the
 * last one. */
static void forker_reaped(void)
{
    weft__mutex_lock(&forker.lock);
    if (forker.daemons && --forker.daemons == 0) forker_ring();
    weft__mutex_unlock(&forker.lock);
}

/* ---- the exit rules and fork ----------------------------------------------------------------*/

/* Retains the first registered record that matches (daemon or not) and is not reaped. */
static weft_process_t *next_unreaped(bool daemon)
{
    weft__mutex_lock(&registry_lock);
    weft_process_t *p = registry_next_locked(NULL);
    /* Relaxed: `reaped` only ever turns true; a stale false costs one more join, which
     * re-checks under the record's lock. */
    while (p && (p->daemon != daemon || atomic_load_explicit(&p->reaped, memory_order_relaxed)))
        p = registry_next_locked(p);
    if (p) atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    weft__mutex_unlock(&registry_lock);
    return p;
}

/* Retains the next daemon child the exit rule has not terminated yet, marking it. */
static weft_process_t *next_to_terminate(void)
{
    weft__mutex_lock(&registry_lock);
    weft_process_t *p = registry_next_locked(NULL);
    while (p && (!p->daemon || p->terminated)) p = registry_next_locked(p);
    if (p) {
        p->terminated = true;
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    }
    weft__mutex_unlock(&registry_lock);
    return p;
}

/* Python's _exit_function: terminate the daemon children, then join every child. */
static void apply_exit_rules(void)
{
    for (weft_process_t *p; (p = next_to_terminate());) {
        signal_child(p, SIGTERM);
        unref(p);
    }

    int64_t grace = 0; /* read at the first daemon child: most processes have none */
    for (weft_process_t *p; (p = next_unreaped(true));) {
        if (!grace) grace = weft_time_monotonic_ns() + DAEMON_GRACE_NS;
        if (join_until(p, grace, true) != 0) {
            signal_child(p, SIGKILL);
            join_forever(p);
        }
        unref(p);
    }
    for (weft_process_t *p; (p = next_unreaped(false));) {
        join_forever(p);
        unref(p);
    }
}

static void fork_prepare(void)
{
    weft__mutex_lock(&registry_lock);
    /* Taken and let go at once (never held across fork): orders the forker's last writes to
     * its state, made under this lock, before fork_child resets them in the child. fork itself
     * orders them in fact, but is no synchronisation to TSan. */
    weft__mutex_lock(&forker.lock);
    weft__mutex_unlock(&forker.lock);
}

static void fork_parent(void)
{
    weft__mutex_unlock(&registry_lock);
}

/* The parent's children are not ours: close their pidfds and forget them. Their records stay
 * valid (handles copied into the child must still be closed: close frees a foreign one). */
static void fork_child(void)
{
    for (weft_process_t *p; (p = record_of(weft__list_pop_front(&registry)));) {
        if (p->pidfd >= 0) weft__sys_close(p->pidfd);
        p->pidfd = -1;
        p->lock = (weft__mutex_t)WEFT__MUTEX_INIT; /* maybe held by a thread that is gone */
    }
    registry_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    /* No forker here (even when it forked us): requests queued were other threads'. */
    forker.lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    forker.starters = (weft_waitq_t)WEFT_WAITQ_INIT;
    forker.requests = (weft__list_t){0};
    forker.running = false;
    forker.daemons = 0;
    forker_set_idle(false); /* the forker thread is not here */
    atomic_store_explicit(&self_pid, getpid(), memory_order_relaxed);
}

static const weft__fork_hooks_t fork_hooks = {
    .rank = WEFT__LAYER_PROCESS,
    .prepare = fork_prepare,
    .parent = fork_parent,
    .child = fork_child,
};

/* Only in the process that registered it, or in a fork child whose function calls exit()
 * (the registry was reset there: the rules apply to its own children). */
static const weft__exit_rule_t exit_rule = {WEFT__LAYER_PROCESS, apply_exit_rules};

static void init(void)
{
    /* Relaxed: a plain value; pthread_once orders it for the threads that ran the init. */
    atomic_store_explicit(&self_pid, getpid(), memory_order_relaxed);
    init_error = weft__fork_register(&fork_hooks);
    if (!init_error) init_error = weft__exit_register(&exit_rule);
}

/* The child's end once fn returned: every layer's exit rules (its own children terminated or
 * joined, its non-daemon threads joined, ...), stdio flushed, and _exit (the parent's atexit
 * handlers are not the child's). */
static _Noreturn void child_exit(int code)
{
    weft__exit_run();
    fflush(NULL);
    _exit(code & 0xff);
}

/* In a child: the record its parent was starting, kept reachable (the pointers to it were on
 * the stacks of the parent's threads; a leak checker would call it lost). */
static weft_process_t *volatile started_as; /* volatile: written, never read */

static _Noreturn void child_main(int (*fn)(void *), void *arg, weft_process_t *self)
{
    started_as = self;
    bool daemon = self->daemon;
    pid_t parent = self->parent;
    if (daemon) {
        /* Dies with the parent even if the parent dies without its exit rules: our parent
         * thread is the forker, which lives as long as we may. A parent that died before this
         * line is seen through getppid. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) raise(SIGKILL);
    }
    /* A fresh process: fn alone runs here. What the forking thread was doing (its coroutines,
     * its task, its cancel request) was copied with its memory, but is not ours: every layer
     * drops its part, and fn goes on as a plain thread (which may start coroutines of its own). */
    weft__fork_fresh();
    child_exit(fn(arg));
}

/* ---- the API --------------------------------------------------------------------------------*/

int weft_process_start(int (*fn)(void *arg), void *arg, const weft_process_opts_t *opts,
                       weft_process_t **out)
{
    if (!out) return WEFT_EINVAL;
    *out = NULL;
    weft_process_opts_t o = opts ? *opts : (weft_process_opts_t){0};
    if (!fn || (o.name && strlen(o.name) >= WEFT_PROCESS_NAME_MAX)) return WEFT_EINVAL;
    pthread_once(&init_once, init);
    if (init_error) return init_error;

    weft_process_t *p = weft__handle_alloc(sizeof *p);
    if (!p) return WEFT_ENOMEM;
    weft__handle_init(&p->hd, WEFT__ID_PROCESS, 1);
    atomic_init(&p->refs, 1);
    p->lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    p->pid = 0;
    p->parent = my_pid();
    p->pidfd = -1;
    p->daemon = o.daemon;
    p->terminated = false;
    atomic_init(&p->reaped, false);
    p->known = false;
    p->traced = false;
    p->status = 0;
    if (o.name && o.name[0]) {
        snprintf(p->name, sizeof p->name, "%s", o.name);
    } else {
        unsigned long n = atomic_fetch_add_explicit(&name_counter, 1, memory_order_relaxed) + 1;
        snprintf(p->name, sizeof p->name, "Process-%lu", n);
    }

    fflush(NULL); /* or the child would write the parent's buffered output a second time */
    int err = 0;
    pid_t pid;
    if (o.daemon) {
        pid = fork_daemon(fn, arg, p, &err);
    } else {
        pid = weft__sys_fork();
        if (pid == 0) child_main(fn, arg, p);
        err = errno;
    }
    if (pid < 0) {
        int rc = err == ENOMEM ? WEFT_ENOMEM : WEFT_EAGAIN;
        weft__handle_free(p, &p->hd);
        return rc;
    }
    p->pid = pid;
    /* Before the registry: from there another thread (the exit rule) may reap it. */
    if (weft__observe(WEFT__OBSERVE_TRACE)) {
        p->traced = true;
        weft__trace_ev_t ev = {.type = WEFT__TR_PROC_START,
                               .t0 = weft_time_monotonic_ns(),
                               .id = (uint64_t)pid,
                               .obj = p,
                               .name = p->name};
        weft__trace_emit(&ev);
    }
    weft__mutex_lock(&registry_lock);
    int rc = 0;
    if (!atomic_load_explicit(&no_pidfd, memory_order_relaxed)) {
        p->pidfd = weft__sys_pidfd_open(pid);
        if (p->pidfd < 0 && errno == ENOSYS)
            atomic_store_explicit(&no_pidfd, true, memory_order_relaxed); /* fall back */
        else if (p->pidfd < 0)
            rc = weft__errno(errno);
    }
    if (rc == 0) weft__list_push_back(&registry, &p->link);
    weft__mutex_unlock(&registry_lock);
    if (rc) {
        /* Nothing could ever wait for it safely: take it back. */
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        if (p->daemon) forker_reaped();
        weft__handle_free(p, &p->hd);
        return rc == WEFT_ENFILE ? WEFT_EMFILE : rc;
    }
    *out = p;
    return 0;
}

int weft_process_join(weft_process_t *p, double timeout)
{
    WEFT__HANDLE_CHECK(p, WEFT__ID_PROCESS, "process");
    int64_t deadline;
    if (!p || isnan(timeout) || weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (foreign(p)) return WEFT_ECHILD;
    return join_until(p, deadline, false);
}

bool weft_process_is_alive(weft_process_t *p)
{
    WEFT__HANDLE_CHECK(p, WEFT__ID_PROCESS, "process");
    return p && !foreign(p) && !reap(p);
}

int weft_process_exitcode(weft_process_t *p, int *code)
{
    WEFT__HANDLE_CHECK(p, WEFT__ID_PROCESS, "process");
    if (!p || !code) return WEFT_EINVAL;
    if (foreign(p)) return WEFT_ECHILD;
    weft__mutex_lock(&p->lock);
    int rc = !reap_locked(p) ? WEFT_EAGAIN : p->known ? 0 : WEFT_ECHILD;
    if (rc == 0) *code = p->status;
    weft__mutex_unlock(&p->lock);
    return rc;
}

long weft_process_pid(const weft_process_t *p)
{
    WEFT__HANDLE_CHECK(p, WEFT__ID_PROCESS, "process");
    return p ? (long)p->pid : -1;
}

const char *weft_process_name(const weft_process_t *p)
{
    WEFT__HANDLE_CHECK(p, WEFT__ID_PROCESS, "process");
    return p ? p->name : NULL;
}

bool weft_process_is_daemon(const weft_process_t *p)
{
    WEFT__HANDLE_CHECK(p, WEFT__ID_PROCESS, "process");
    return p && p->daemon;
}

static int send_signal(weft_process_t *p, int sig)
{
    if (!p) return WEFT_EINVAL;
    if (foreign(p)) return WEFT_ECHILD;
    return signal_child(p, sig);
}

int weft_process_terminate(weft_process_t *p)
{
    WEFT__HANDLE_CHECK(p, WEFT__ID_PROCESS, "process");
    return send_signal(p, SIGTERM);
}

int weft_process_kill(weft_process_t *p)
{
    WEFT__HANDLE_CHECK(p, WEFT__ID_PROCESS, "process");
    return send_signal(p, SIGKILL);
}

int weft_process_release(weft_process_t *p)
{
    WEFT__HANDLE_RELEASE(p, WEFT__ID_PROCESS, "process");
    if (!p) return WEFT_EINVAL;
    if (foreign(p)) {
        /* the fork child's copy: its pidfd was closed by the fork handler */
        weft__handle_free(p, &p->hd);
        return 0;
    }
    if (!reap(p)) {
        WEFT__HANDLE_GIVE(p); /* nothing happened: still the program's */
        return WEFT_EBUSY;
    }
    weft__mutex_lock(&registry_lock);
    weft__list_remove(&registry, &p->link);
    int pidfd = p->pidfd;
    p->pidfd = -1;
    weft__mutex_unlock(&registry_lock);
    /* Through the io layer: a hub that watched the pidfd (a join from a coroutine or a root
     * with coroutines) must forget it before the number is reused. */
    if (pidfd >= 0) weft_fd_close(pidfd);
    unref(p);
    return 0;
}

void weft__processes_visit(void (*fn)(const weft__process_view_t *v, void *arg), void *arg)
{
    weft__mutex_lock(&registry_lock);
    for (weft_process_t *p = registry_next_locked(NULL); p; p = registry_next_locked(p)) {
        /* Relaxed: `reaped` is a hint here (as the exit rule reads it); status is read only
         * once reaped says it was stored, which the hint's writer did first, under p->lock —
         * not taken here (its order is before registry_lock): a report may show "alive" for a
         * child reaped a moment ago. */
        bool reaped = atomic_load_explicit(&p->reaped, memory_order_acquire);
        weft__process_view_t v = {p, p->pid, reaped, reaped && p->known ? p->status : 0, p->name};
        fn(&v, arg);
    }
    weft__mutex_unlock(&registry_lock);
}

pid_t weft__process_self_pid(void)
{
    return my_pid();
}

/* -1 also without pidfd support: the caller then polls weft_process_is_alive. */
int weft__process_pidfd(const weft_process_t *p)
{
    return foreign(p) ? -1 : p->pidfd;
}
