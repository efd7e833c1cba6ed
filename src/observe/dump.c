/*
 * dump.c — weft_debug_dump (the task snapshot as text, weft/debug.h's format) and the dump on
 * a signal (WEFT_DUMP_SIGNAL).
 *
 * The signal path: the handler writes one byte (1) to a pipe and returns; the "weft-dump"
 * thread, a plain pthread blocked in read on the pipe's other end (never in a weft wait, so
 * it is no task of the program's until it dumps), builds the dump's text and writes it to the
 * chosen fd with the raw write (no FILE, nothing the monkey patch catches). A byte 0 ends the
 * thread (weft__dump_signal_stop). The pipe's write end is
 * non-blocking: signals arriving faster than dumps are printed are merged.
 */
#include "observe_internal.h"
#include "../core/sys_internal.h"
#include "weft/debug.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the words ------------------------------------------------------------------------------ */

/* How a wait's object is shown: named object ("Lock 'x'"), a number ("fd 7"), the joined
 * task ("thread 'a' join"), or nothing. */
enum { SHOW_OBJ, SHOW_NUM, SHOW_TASK, SHOW_NONE };

typedef struct word {
    const char *noun, *verb; /* "Queue", "get"; verb NULL: none */
    uint8_t show;
} word_t;

static const word_t words[WEFT__ON_COUNT] = {
    [WEFT__ON_NONE] = {"running", NULL, SHOW_NONE},
    [WEFT__ON_WAIT] = {"wait", NULL, SHOW_NONE},
    [WEFT__ON_LOCK] = {"Lock", NULL, SHOW_OBJ},
    [WEFT__ON_RLOCK] = {"RLock", NULL, SHOW_OBJ},
    [WEFT__ON_SEMAPHORE] = {"Semaphore", NULL, SHOW_OBJ},
    [WEFT__ON_EVENT] = {"Event", NULL, SHOW_OBJ},
    [WEFT__ON_CONDITION] = {"Condition", NULL, SHOW_OBJ},
    [WEFT__ON_BARRIER] = {"Barrier", NULL, SHOW_OBJ},
    [WEFT__ON_TIMER] = {"Timer", "cancel", SHOW_OBJ},
    [WEFT__ON_QUEUE_GET] = {"Queue", "get", SHOW_OBJ},
    [WEFT__ON_QUEUE_PUT] = {"Queue", "put", SHOW_OBJ},
    [WEFT__ON_QUEUE_JOIN] = {"Queue", "join", SHOW_OBJ},
    [WEFT__ON_FUTURE] = {"Future", NULL, SHOW_OBJ},
    [WEFT__ON_FUTURES] = {"Futures", NULL, SHOW_OBJ},
    [WEFT__ON_EXECUTOR] = {"executor", "shutdown", SHOW_OBJ},
    [WEFT__ON_THREAD_JOIN] = {"thread", "join", SHOW_TASK},
    [WEFT__ON_CO_JOIN] = {"coroutine", "join", SHOW_TASK},
    [WEFT__ON_GROUP] = {"Group", NULL, SHOW_OBJ},
    [WEFT__ON_SCOPE] = {"Scope", "join", SHOW_OBJ},
    [WEFT__ON_HUBS] = {"hubs", NULL, SHOW_OBJ},
    [WEFT__ON_FD_READ] = {"fd", "read", SHOW_NUM},
    [WEFT__ON_FD_WRITE] = {"fd", "write", SHOW_NUM},
    [WEFT__ON_PROCESS_JOIN] = {"process", "join", SHOW_NUM},
    [WEFT__ON_PIPE_SEND] = {"Pipe", "send", SHOW_OBJ},
    [WEFT__ON_PIPE_RECV] = {"Pipe", "recv", SHOW_OBJ},
    [WEFT__ON_MPQUEUE_GET] = {"process Queue", "get", SHOW_OBJ},
    [WEFT__ON_MPQUEUE_PUT] = {"process Queue", "put", SHOW_OBJ},
    [WEFT__ON_SHARED] = {"shared object", NULL, SHOW_OBJ},
    [WEFT__ON_SLEEP] = {"sleep", NULL, SHOW_NONE},
    [WEFT__ON_RESOLVE] = {"name lookup", NULL, SHOW_NONE},
};

/* The dump's text, built whole before it is written (so the signal path needs no FILE, and
 * a dump is written at once). */
typedef struct text {
    char *s;
    size_t n, cap;
    bool failed; /* out of memory */
} text_t;

__attribute__((format(printf, 2, 3))) static void put(text_t *t, const char *fmt, ...)
{
    if (t->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            t->failed = true;
            return;
        }
        if (t->s && t->n + (size_t)k < t->cap) {
            t->n += (size_t)k;
            return;
        }
        size_t ncap = t->cap ? t->cap * 2 : 1024;
        while (ncap < t->n + (size_t)k + 1) ncap *= 2;
        char *ns = weft__realloc(t->s, ncap);
        if (!ns) {
            t->failed = true;
            return;
        }
        t->s = ns;
        t->cap = ncap;
    }
}

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

/* "blocked on <what>[ held by ...][ until +x s]" for t, into f. */
static void print_wait(text_t *f, const weft__tasks_t *ts, const weft__task_t *t)
{
    word_t w =
        t->on < WEFT__ON_COUNT && words[t->on].noun ? words[t->on] : (word_t){"?", NULL, SHOW_NONE};
    const weft__task_t *owner = t->owner != WEFT__TASK_NONE ? &ts->v[t->owner] : NULL;
    put(f, " on %s", w.noun);
    switch (w.show) {
    case SHOW_OBJ:
        if (t->obj_name[0])
            put(f, " '%s'", t->obj_name);
        else
            put(f, " %p", t->obj);
        break;
    case SHOW_NUM:
        put(f, " %" PRIdPTR, (intptr_t)t->obj);
        break;
    case SHOW_TASK:
        if (owner)
            put(f, " '%s'", owner->name);
        else
            put(f, " %p", t->obj);
        break;
    default:
        break;
    }
    if (w.verb) put(f, " %s", w.verb);
    if (owner && w.show != SHOW_TASK) {
        bool runs = t->on == WEFT__ON_FUTURE || t->on == WEFT__ON_FUTURES;
        put(f, " %s %s '%s'", runs ? "run by" : "held by", weft__task_kind_name(owner->kind),
            owner->name);
    }
    if (t->deadline != WEFT_NO_DEADLINE && t->deadline > 0)
        put(f, " until %+.2f s", secs(t->deadline - ts->taken));
}

static void print_task(text_t *f, const weft__tasks_t *ts, const weft__task_t *t)
{
    const char *indent = t->kind == WEFT__TASK_COROUTINE ? "  " : "";
    put(f, "%s%s ", indent, weft__task_kind_name(t->kind));
    if (t->kind == WEFT__TASK_POOL)
        put(f, "%p", t->handle);
    else
        put(f, "%" PRIu64, t->id);
    put(f, " '%s': %s", t->name, weft__task_state_name(t->state));
    if (t->kind == WEFT__TASK_PROCESS && !t->alive) put(f, " (exit %d)", t->status);
    if (t->state == WEFT__TASK_BLOCKED) print_wait(f, ts, t);
    if (t->kind == WEFT__TASK_POOL && t->thread[0]) put(f, " in thread '%s'", t->thread);
    if (t->kind == WEFT__TASK_POOL && t->pid)
        put(f, " %s process %d", t->state == WEFT__TASK_READY ? "queued for" : "in", t->pid);
    if (t->state == WEFT__TASK_BLOCKED && t->since > 0 && ts->taken >= t->since)
        put(f, " for %.2f s", secs(ts->taken - t->since));
    put(f, "\n");
}

/* Whether task i is a worker thread its running pool task stands for (the task's line says
 * "in thread '<worker>'"). A worker whose hub has coroutines keeps its line, which they are
 * listed under. */
static bool stands_behind(const weft__tasks_t *ts, size_t i)
{
    return ts->v[i].behind && !(i + 1 < ts->n && ts->v[i + 1].kind == WEFT__TASK_COROUTINE);
}

/* The dump's text in *t (t->failed: out of memory). */
static int dump_text(text_t *t)
{
    weft__tasks_t ts;
    int rc = weft__tasks_snapshot(&ts);
    if (rc) return rc;
    size_t own = 0, behind = 0;
    for (size_t i = 0; i < ts.n; i++) {
        own += ts.v[i].internal;
        behind += stands_behind(&ts, i);
    }
    put(t, "weft dump: pid %d, %zu tasks\n", (int)getpid(), ts.n - own - behind);
    for (size_t i = 0; i < ts.n; i++)
        if (!ts.v[i].internal && !stands_behind(&ts, i)) print_task(t, &ts, &ts.v[i]);
    if (own) put(t, "weft's own threads:\n");
    for (size_t i = 0; i < ts.n; i++)
        if (ts.v[i].internal) print_task(t, &ts, &ts.v[i]);
    weft__tasks_free(&ts);
    return t->failed ? WEFT_ENOMEM : 0;
}

int weft_debug_dump(FILE *out)
{
    if (!out) return WEFT_EINVAL;
    text_t t = {0};
    int rc = dump_text(&t);
    if (!rc && (fwrite(t.s, 1, t.n, out) != t.n || fflush(out) != 0)) rc = WEFT_EIO;
    weft__free(t.s);
    return rc;
}

int weft_debug_observe(bool on)
{
    const uint32_t bits = WEFT__OBSERVE_SINCE | WEFT__OBSERVE_OWNERS;
    if (on)
        atomic_fetch_or_explicit(&weft__observing, bits, memory_order_relaxed);
    else
        atomic_fetch_and_explicit(&weft__observing, ~bits, memory_order_relaxed);
    return 0;
}

/* ---- the dump on a signal ------------------------------------------------------------------- */

static weft__mutex_t sig_lock = WEFT__MUTEX_INIT; /* start and stop */
static int sig_pipe[2] = {-1, -1};
static int sig_no, sig_out = -1;
static pthread_t sig_thread;
static struct sigaction sig_old;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    char one = 1;
    (void)weft__sys_write(sig_pipe[1], &one, 1); /* full: a dump is coming anyway */
    errno = saved;
}

static void dump_to_fd(int fd)
{
    text_t t = {0};
    if (dump_text(&t) == 0) {
        for (size_t done = 0; done < t.n;) {
            ssize_t k = weft__sys_write(fd, t.s + done, t.n - done);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break; /* nobody to tell */
            done += (size_t)k;
        }
    }
    weft__free(t.s);
}

static void *dump_thread(void *arg)
{
    int fd = *(int *)arg;
    (void)pthread_setname_np(pthread_self(), "weft-dump");
    (void)weft__ctx_list_internal(); /* unlisted: its dumps list it as a plain thread */
    for (;;) {
        char c;
        ssize_t n = weft__sys_read(fd, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || c == 0) break;
        dump_to_fd(sig_out);
    }
    return NULL;
}

/* In a forked child the dump thread does not exist: it no longer counts among the threads
 * that never wake a waiter, the signal gets its old action back (a group signal, as Ctrl-\\
 * sends, would otherwise make the child write into the pipe's fd number, which the child may
 * since have reused for a file of its own), and the child closes its copy of the pipe. */
static void dump_fork_child(void)
{
    if (!sig_no) return;
    atomic_fetch_sub_explicit(&weft__idle_helpers, 1, memory_order_release);
    sigaction(sig_no, &sig_old, NULL);
    weft__sys_close(sig_pipe[0]);
    weft__sys_close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
    sig_no = 0;
    sig_out = -1;
    sig_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
}

static const weft__fork_hooks_t dump_fork_hooks = {.rank = WEFT__LAYER_EXECUTOR,
                                                   .child = dump_fork_child};

int weft__dump_signal_start(int sig, int fd)
{
    if (weft__fork_register(&dump_fork_hooks) != 0) return WEFT_ENOMEM;
    if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP || fd < 0) return WEFT_EINVAL;
    weft__mutex_lock(&sig_lock);
    int rc = WEFT_EBUSY;
    if (sig_no) goto out;
    rc = 0;
    if (weft__sys_pipe2(sig_pipe, O_CLOEXEC) != 0 ||
        weft__sys_fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK) != 0) {
        rc = weft__errno(errno);
        goto fail;
    }
    sig_out = fd;
    /* The thread takes no signal: the handler runs on the program's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    /* It never wakes a waiter: not a thread a hub's "nothing can wake us" may count on (see
     * deadlock.c's watchdog); counted before it exists, for a fork meanwhile. */
    atomic_fetch_add_explicit(&weft__idle_helpers, 1, memory_order_release);
    int prc = pthread_create(&sig_thread, NULL, dump_thread, &sig_pipe[0]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc) {
        atomic_fetch_sub_explicit(&weft__idle_helpers, 1, memory_order_release);
        rc = weft__errno(prc);
        goto fail;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, &sig_old);
    sig_no = sig;
    weft_debug_observe(true);
    goto out;
fail:
    if (sig_pipe[0] >= 0) weft__sys_close(sig_pipe[0]);
    if (sig_pipe[1] >= 0) weft__sys_close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
out:
    weft__mutex_unlock(&sig_lock);
    return rc;
}

void weft__dump_signal_stop(void)
{
    weft__mutex_lock(&sig_lock);
    if (sig_no) {
        sigaction(sig_no, &sig_old, NULL);
        char zero = 0;
        while (weft__sys_write(sig_pipe[1], &zero, 1) < 0 && errno == EINTR) {
        }
        pthread_join(sig_thread, NULL);
        atomic_fetch_sub_explicit(&weft__idle_helpers, 1, memory_order_release);
        weft__sys_close(sig_pipe[0]);
        weft__sys_close(sig_pipe[1]);
        sig_pipe[0] = sig_pipe[1] = -1;
        sig_no = 0;
        sig_out = -1;
    }
    weft__mutex_unlock(&sig_lock);
}

/* WEFT_DUMP_SIGNAL: a name (QUIT, SIGQUIT, USR1, USR2, HUP, INT, TERM) or a number; 0 when
 * unset or not understood. */
int weft__dump_signal_parse(const char *v)
{
    static const struct {
        const char *name;
        int sig;
    } names[] = {{"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
                 {"HUP", SIGHUP},   {"INT", SIGINT},   {"TERM", SIGTERM}};
    if (!v || !*v) return 0;
    if (strncmp(v, "SIG", 3) == 0) v += 3;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(v, names[i].name) == 0) return names[i].sig;
    char *end;
    long n = strtol(v, &end, 10);
    return *end == '\0' && n > 0 && n < NSIG ? (int)n : 0;
}

__attribute__((constructor)) static void dump_signal_from_env(void)
{
    int sig = weft__dump_signal_parse(weft__getenv("WEFT_DUMP_SIGNAL"));
    if (sig) (void)weft__dump_signal_start(sig, STDERR_FILENO); /* failing: no dump, no harm */
}
