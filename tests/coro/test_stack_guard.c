/*
 * The stack overflow report: a coroutine that runs off its stack dies of SIGSEGV as before,
 * but with a line on stderr naming it and its stack size (src/coro/stack.c's design note),
 * where Go prints "goroutine stack exceeds limit" and CPython a RecursionError. Faults that are
 * not an overflow print nothing, a program's own SIGSEGV handler is left in place, and
 * WEFT_SEGV_HANDLER=0 turns the report off.
 *
 * Each case runs in a forked child (the faulting cases must die) with its stderr on a pipe
 * and SIGSEGV back at SIG_DFL (cmocka catches it in the test process, and weft installs its
 * handler only over SIG_DFL); the parent checks how the child ended and what it printed.
 * Not under ASan: its own SIGSEGV handler reports overflows (weft installs nothing over it),
 * and the child's fault would be its report, so the faulting cases skip there. Under valgrind
 * they run (valgrind delivers the fault to weft's handler on the alternate stack as the kernel
 * does, then reports the death by SIGSEGV itself), but for the large frame's (see there).
 */
#include "weft_test.h"

#include "coro/coro_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

void weft__hub_shutdown(void); /* src/coro/hub.c, tests only */

/* The faulting cases cannot run under ASan (see the top). */
#define SKIP_FAULTS()                                                                              \
    do {                                                                                           \
        if (WEFT_TEST_ASAN) {                                                                      \
            print_message("skipped: ASan handles SIGSEGV its own way\n");                          \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- the child ----------------------------------------------------------------------------- */

typedef struct child {
    int status;
    char err[4096]; /* its stderr, NUL-terminated */
} child_t;

/* Runs body() in a forked child whose stderr is a pipe and whose SIGSEGV is at SIG_DFL, no
 * core file; the child exits 0 when body returns, and is killed after 30 s. */
static void run_child(void (*body)(void), child_t *out)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGSEGV, &dfl, NULL);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        alarm(30);
        body();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fds[0], out->err + n, sizeof out->err - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    out->err[n] = 0;
    close(fds[0]);
    assert_int_equal(waitpid(pid, &out->status, 0), pid);
}

static void assert_died_of_sigsegv(const child_t *c)
{
    if (!WIFSIGNALED(c->status) || WTERMSIG(c->status) != SIGSEGV)
        fail_msg("child status %#x, stderr: %s", c->status, c->err);
}

/* The "fault N bytes below" of the report in err; -1 when err has no report. */
static long reported_below(const char *err)
{
    const char *p = strstr(err, "weft: coroutine '");
    if (!p || !(p = strstr(p, " KiB (fault "))) return -1;
    return strtol(p + strlen(" KiB (fault "), NULL, 10);
}

/* Whether the thread's alternate signal stack is the one `was` describes. */
static bool same_altstack(const stack_t *was)
{
    stack_t now;
    return sigaltstack(NULL, &now) == 0 && now.ss_sp == was->ss_sp && now.ss_size == was->ss_size &&
           now.ss_flags == was->ss_flags;
}

/* Spawns fn with opts on a fresh hub and joins it (the faulting ones never come back). */
static void spawn_join(void (*fn)(void *), const weft_co_opts_t *opts)
{
    weft_co_t *co;
    if (weft_co_spawn(fn, NULL, opts, &co)) _exit(2);
    weft_co_join(co, 30);
    weft_co_release(co);
}

/* ---- overflows ----------------------------------------------------------------------------- */

static int deep(int n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    return n ? deep(n - 1) + pad[0] : 0;
}

static void recurse_forever(void *arg)
{
    (void)arg;
    deep(1 << 20);
}

static void overflow_by_recursion(void)
{
    weft_co_opts_t o = {.name = "parser", .stack_size = 64 * 1024, .guard = 1};
    spawn_join(recurse_forever, &o);
}

/* Recursion moves down a frame at a time (1 KiB here), so the fault lands in the guard page:
 * the report names the coroutine, its stack size and a distance within one page. */
static void recursion_overflow_names_coroutine_and_stack_size(void **state)
{
    (void)state;
    SKIP_FAULTS();
    child_t c;
    run_child(overflow_by_recursion, &c);
    assert_died_of_sigsegv(&c);
    if (!strstr(c.err, "weft: coroutine 'parser' (0x") ||
        !strstr(c.err, ") overflowed its stack of 64 KiB (fault ") ||
        !strstr(c.err, " bytes below its lowest page); give it more with "
                       "weft_co_opts_t.stack_size or move large locals to the heap\n"))
        fail_msg("no report: %s", c.err);
    long below = reported_below(c.err);
    assert_true(below > 0 && below <= 4096);
}

static void park_until(void *arg)
{
    (void)weft_event_wait(arg, 30);
}

static void overflow_default_stack_without_guard_regions(void)
{
    weft__stack_test_no_guard_regions(-1); /* a kernel before 6.13 */
    weft_co_opts_t o = {.name = "parser"}; /* the defaults: 64 KiB, guard 0 */
    weft_co_t *co, *below;
    if (weft_co_spawn(recurse_forever, NULL, &o, &co)) _exit(2);
    /* The next stack is mapped just below: what an unguarded overflow runs into. */
    weft_event_t never = WEFT_EVENT_INIT;
    if (weft_co_spawn(park_until, &never, NULL, &below)) _exit(2);
    weft_co_join(co, 30);
}

/* On a kernel without guard regions a default stack still gets a guard page (mprotect, within
 * the map-count budget), so the overflow is caught in it and reported. (Before: no guard
 * unless asked for: the recursion ran on through the stack of the coroutine mapped below and
 * faulted far lower: "fault 72464 bytes below".) */
static void default_stack_without_guard_regions_gets_a_guard_page(void **state)
{
    (void)state;
    SKIP_FAULTS();
    child_t c;
    run_child(overflow_default_stack_without_guard_regions, &c);
    assert_died_of_sigsegv(&c);
    long below = reported_below(c.err);
    if (below <= 0 || below > 4096) fail_msg("no report within the guard page: %s", c.err);
}

/* The mappings of one page with no access (mprotect'ed guards) in /proc/self/maps. */
static int no_access_pages(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && hi - lo == 4096 &&
            strcmp(perms, "---p") == 0)
            n++;
    }
    fclose(f);
    return n;
}

/* The mprotect'ed guards of default stacks stop at the budget (each splits a mapping; past
 * the budget a default stack goes unguarded so that many coroutines still fit in
 * vm.max_map_count); a stack that asks for a guard (guard > 0) gets one past it too. */
static void default_guards_stop_at_the_budget(void **state)
{
    (void)state;
    weft__stack_test_no_guard_regions(2);
    int before = no_access_pages();
    weft_event_t go = WEFT_EVENT_INIT;
    weft_co_t *co[5];
    for (int i = 0; i < 4; i++) assert_int_equal(weft_co_spawn(park_until, &go, NULL, &co[i]), 0);
    weft_co_opts_t asks = {.guard = 1};
    assert_int_equal(weft_co_spawn(park_until, &go, &asks, &co[4]), 0);
    assert_int_equal(weft_co_yield(), 0); /* they start and park */
    int guards = no_access_pages() - before;
    assert_int_equal(weft_event_set(&go), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(weft_co_join(co[i], 30), 0);
        assert_int_equal(weft_co_release(co[i]), 0);
    }
    weft_event_destroy(&go);
    assert_int_equal(guards, 3); /* two by the budget, one asked for */
    weft__hub_shutdown();        /* unmaps the cached stacks */
    assert_int_equal(no_access_pages(), before);
    weft__stack_test_no_guard_regions(-1);
}

#define BIG_LOCAL (200 * 1024)

__attribute__((noinline)) static void use_bytes(volatile char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
}

/* A 200 KiB array touched from its low end (the call pushes its return address at the
 * bottom of the frame first; no -fstack-clash-protection here): the first touch is about
 * 136 KiB below a 64 KiB stack, past the one guard page. */
__attribute__((noinline)) static void big_frame(void)
{
    volatile char big[BIG_LOCAL];
    use_bytes(big, sizeof big);
    big[BIG_LOCAL - 1] = big[0];
}

/* Where the jump lands is a fault only when nothing is mapped there: another coroutine's
 * stack, or a sanitizer's memory, would be written instead. The child makes sure of it: it
 * maps an arena without access and unmaps a stack-sized window at its top, where the kernel
 * (top-down, the highest gap that fits) puts a new stack once the gaps above are used up; or
 * a stack placed elsewhere maps 256 KiB without access right below its guard page itself. A
 * coroutine whose stack has neither stays parked (its stack with it) and the next one tries. */
#define ARENA  ((size_t)4 << 20)
#define WINDOW ((size_t)68 << 10) /* the default 64 KiB stack and its guard page */
#define REACH  ((size_t)256 << 10)
static char *arena;

static bool fault_below(const weft__stack_t *s)
{
    char *below = (char *)s->base - REACH;
    if (below >= arena && (char *)s->base <= arena + ARENA - WINDOW) return true;
    void *m =
        mmap(below, REACH, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == below) return true;
    if (m != MAP_FAILED) munmap(m, REACH); /* a kernel that took it as a hint */
    return false;
}

static void big_local(void *arg)
{
    if (!fault_below(&weft_co_current()->stack)) {
        *(bool *)arg = true;
        weft_time_sleep(60);
        return;
    }
    big_frame();
}

static void overflow_by_big_local(void)
{
    arena = mmap(NULL, ARENA, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED || munmap(arena + ARENA - WINDOW, WINDOW)) _exit(4);
    weft_co_opts_t o = {.guard = 1}; /* the default size, 64 KiB */
    for (int i = 0; i < 256; i++) {
        bool taken = false;
        if (weft_co_spawn(big_local, &taken, &o, NULL)) _exit(2);
        weft_co_yield(); /* it runs: overflows (the end), or finds no room and parks */
        if (!taken) _exit(3);
    }
    _exit(77);
}

/* The common first mistake: a 200 KiB local array in a coroutine of the default stack. The
 * frame jumps the guard page; the fault below it is still reported (up to 8 MiB below). */
static void big_local_array_jumping_the_guard_is_reported(void **state)
{
    (void)state;
    SKIP_FAULTS();
    if (RUNNING_ON_VALGRIND) {
        print_message("skipped: valgrind places the program's mappings by rules of its own; "
                      "none of 256 stacks got unmapped memory below it there\n");
        skip();
    }
    child_t c;
    run_child(overflow_by_big_local, &c);
    if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 77) {
        print_message("skipped: the range below every one of 256 stacks was taken\n");
        skip();
    }
    assert_died_of_sigsegv(&c);
    if (!strstr(c.err, "weft: coroutine 'Coroutine-") ||
        !strstr(c.err, ") overflowed its stack of 64 KiB (fault "))
        fail_msg("no report: %s", c.err);
    long below = reported_below(c.err);
    assert_true(below > 4096 && below < BIG_LOCAL); /* past the guard page */
}

/* ---- faults that are not overflows ------------------------------------------------------- */

static void null_deref(void *arg)
{
    (void)arg;
    volatile int *volatile p = NULL;
    *p = 1;
}

static void null_deref_child(void)
{
    spawn_join(null_deref, NULL);
}

/* A NULL dereference in a coroutine dies of SIGSEGV with no word from weft. */
static void null_dereference_in_coroutine_prints_nothing(void **state)
{
    (void)state;
    SKIP_FAULTS();
    child_t c;
    run_child(null_deref_child, &c);
    assert_died_of_sigsegv(&c);
    if (strstr(c.err, "weft:")) fail_msg("unexpected report: %s", c.err);
}

static void raise_segv(void *arg)
{
    (void)arg;
    raise(SIGSEGV);
}

static void raise_segv_child(void)
{
    spawn_join(raise_segv, NULL);
}

/* A SIGSEGV sent (kill, raise) rather than caused by a fault still kills the process, as it
 * did at SIG_DFL, though the handler has no faulting instruction to run again. */
static void sent_sigsegv_still_kills_silently(void **state)
{
    (void)state;
    SKIP_FAULTS();
    child_t c;
    run_child(raise_segv_child, &c);
    assert_died_of_sigsegv(&c);
    if (strstr(c.err, "weft:")) fail_msg("unexpected report: %s", c.err);
}

/* ---- whose handler ------------------------------------------------------------------------- */

static void nothing(void *arg)
{
    (void)arg;
}

static void on_user_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
    static const char msg[] = "user handler\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(42);
}

static void user_handler_child(void)
{
    struct sigaction sa, now;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_user_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    stack_t was; /* none, or TSan's */
    if (sigaction(SIGSEGV, &sa, NULL) || sigaltstack(NULL, &was)) _exit(3);
    spawn_join(nothing, NULL); /* the hub starts */
    if (sigaction(SIGSEGV, NULL, &now) || now.sa_sigaction != on_user_segv) _exit(4);
    if (!same_altstack(&was)) _exit(5); /* none given: weft's handler is not there to use it */
    /* The fault reaches the program's handler. (Valgrind counts a caught invalid write as an
     * error, which would change the exit status: a raised SIGSEGV there.) */
    spawn_join(RUNNING_ON_VALGRIND ? raise_segv : null_deref, NULL);
}

/* A program's own SIGSEGV handler stays: weft installs nothing over it, and a fault in a
 * coroutine reaches it. */
static void user_segv_handler_is_left_in_place(void **state)
{
    (void)state;
    SKIP_FAULTS();
    child_t c;
    run_child(user_handler_child, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 42)
        fail_msg("child status %#x, stderr: %s", c.status, c.err);
    assert_string_equal(c.err, "user handler\n");
}

static void opt_out_child(void)
{
    stack_t was;
    if (setenv("WEFT_SEGV_HANDLER", "0", 1) || sigaltstack(NULL, &was)) _exit(3);
    spawn_join(nothing, NULL);
    struct sigaction now;
    if (sigaction(SIGSEGV, NULL, &now) || (now.sa_flags & SA_SIGINFO) || now.sa_handler != SIG_DFL)
        _exit(4);
    if (!same_altstack(&was)) _exit(5);
    overflow_by_recursion();
}

/* WEFT_SEGV_HANDLER=0: SIGSEGV stays at SIG_DFL and an overflow dies unnamed, as before. */
static void opt_out_leaves_sigsegv_alone(void **state)
{
    (void)state;
    SKIP_FAULTS();
    child_t c;
    run_child(opt_out_child, &c);
    assert_died_of_sigsegv(&c);
    if (strstr(c.err, "weft:")) fail_msg("unexpected report: %s", c.err);
}

/* ---- the hub's alternate signal stack ------------------------------------------------------ */

static void altstack_child(void)
{
    /* A thread without one (TSan gives every thread its own: off with it). */
    stack_t ss = {.ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0};
    struct sigaction now;
    if (sigaltstack(&ss, NULL)) _exit(3);
    spawn_join(nothing, NULL);
    if (sigaction(SIGSEGV, NULL, &now) || !(now.sa_flags & SA_SIGINFO) ||
        !(now.sa_flags & SA_ONSTACK))
        _exit(4);
    if (sigaltstack(NULL, &ss) || (ss.ss_flags & SS_DISABLE) || ss.ss_size < 16384) _exit(5);
    weft__hub_shutdown();
    if (sigaltstack(NULL, &ss) || !(ss.ss_flags & SS_DISABLE)) _exit(6); /* taken back */
    /* A second hub on the thread gives it one again. */
    spawn_join(nothing, NULL);
    if (sigaltstack(NULL, &ss) || (ss.ss_flags & SS_DISABLE)) _exit(7);
    weft__hub_shutdown();
}

/* The hub gives its thread an alternate signal stack (the handler must run somewhere when the
 * stack pointer is in the guard) and removes it when the hub ends. */
static void hub_gives_and_takes_back_an_altstack(void **state)
{
    (void)state;
    child_t c;
    run_child(altstack_child, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child status %#x, stderr: %s", c.status, c.err);
}

static void own_altstack_child(void)
{
    static char mine[65536];
    stack_t ss = {.ss_sp = mine, .ss_flags = 0, .ss_size = sizeof mine};
    if (sigaltstack(&ss, NULL)) _exit(3);
    spawn_join(nothing, NULL);
    if (sigaltstack(NULL, &ss) || ss.ss_sp != mine) _exit(4);
    weft__hub_shutdown();
    if (sigaltstack(NULL, &ss) || ss.ss_sp != mine || (ss.ss_flags & SS_DISABLE)) _exit(5);
}

/* A thread that has an alternate signal stack of its own keeps it, through the hub's end. */
static void thread_keeps_its_own_altstack(void **state)
{
    (void)state;
    child_t c;
    run_child(own_altstack_child, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child status %#x, stderr: %s", c.status, c.err);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(recursion_overflow_names_coroutine_and_stack_size),
    WEFT_TEST(default_stack_without_guard_regions_gets_a_guard_page),
    WEFT_TEST(default_guards_stop_at_the_budget),
    WEFT_TEST(big_local_array_jumping_the_guard_is_reported),
    WEFT_TEST(null_dereference_in_coroutine_prints_nothing),
    WEFT_TEST(sent_sigsegv_still_kills_silently),
    WEFT_TEST(user_segv_handler_is_left_in_place),
    WEFT_TEST(opt_out_leaves_sigsegv_alone),
    WEFT_TEST(hub_gives_and_takes_back_an_altstack),
    WEFT_TEST(thread_keeps_its_own_altstack),
};

WEFT_TEST_MAIN(cases)
