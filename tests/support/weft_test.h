/*
 * weft_test.h — what every weft test uses on top of cmocka.
 *
 *   WEFT_TEST(case)       registers a case; CMake turns each into its own CTest entry, and the
 *                         case runs between the leak guard's setup and teardown.
 *   WEFT_TEST_MAIN(cases) the test program's main: runs the case named by argv[1] (or all).
 *
 * The leak guard (Go's goleak idea): at the end of a case the process must be back to the
 * baseline taken at its start — OS threads (/proc/self/task), open fds, child processes,
 * /dev/shm entries and bytes allocated through weft's allocator — or the case fails. It
 * retries for a few seconds, since a thread that was joined may still be leaving the kernel.
 *
 * The out-of-memory loop (SQLite's malloc tests): weft_test_oom(body, ctx) runs body with the
 * Nth allocation failing, N = 1, 2, ... until body succeeds, once failing only the Nth
 * (transient) and once every allocation from the Nth on (persistent). Each failing run must
 * return WEFT_ENOMEM, and every run must leave no allocation behind.
 *
 * The failpoint loop is the same for one system-call site of src/core/sys_internal.h:
 * weft_test_faults(site, body, ctx) runs body with the Nth call of that site failing, N = 1,
 * 2, ... until a run in which no call failed, transient then persistent.
 */
#ifndef WEFT_TEST_H
#define WEFT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <cmocka.h>

#include "weft.h"

int weft_test_setup(void **state);
int weft_test_teardown(void **state);
/* Spawns a coroutine on this thread's hub / joins it (60 s at most) and releases it; both fail
 * the case on any error. */
weft_co_t *weft_test_spawn(void (*fn)(void *arg), void *arg);
void weft_test_co_join(weft_co_t *co);
/* The same, with the monkey patch on for the case (the hook suites). */
int weft_test_setup_patched(void **state);
int weft_test_teardown_patched(void **state);
int weft_test_main(const struct CMUnitTest *cases, size_t n, int argc, char **argv);

#define WEFT_TEST(name) cmocka_unit_test_setup_teardown(name, weft_test_setup, weft_test_teardown)
#define WEFT_TEST_MAIN(cases)                                                                      \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return weft_test_main(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);                \
    }

/* SANITIZED is 1 in an ASan/UBSan or TSan build (gcc and clang), where stress cases scale
 * their iteration counts down. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* WEFT_TEST_ASAN is 1 in an ASan build (gcc and clang): ASan has its own SIGSEGV handler and
 * allocator, which some cases must leave alone. */
#if defined(__SANITIZE_ADDRESS__)
#define WEFT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_TEST_ASAN 1
#endif
#endif
#ifndef WEFT_TEST_ASAN
#define WEFT_TEST_ASAN 0
#endif

/* RUNNING_ON_VALGRIND: non-zero under valgrind (memcheck), where stress cases scale down too
 * and measures of memory mean nothing. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* WEFT_TEST_EMULATED: 1 where the tests run under an emulator (qemu-user, in the aarch64
 * presets: tests/CMakeLists.txt defines it), tens of times slower, where stress cases scale
 * down too. */
#ifndef WEFT_TEST_EMULATED
#define WEFT_TEST_EMULATED 0
#endif

/* (Re)installs the harness's counting allocator (main() does it once). */
void weft_test_install_allocator(void);

/* Allocations made through weft's allocator and not yet freed. */
long weft_test_live_allocs(void);

/* Fail the Nth allocation from now (1-based; 0 disables). persistent: also every later one. */
void weft_test_fail_alloc(long nth, int persistent);

/* The OOM loop described above. body returns 0 on success or a WEFT_E* code; it must release
 * whatever it created in either case. Returns the number of allocations the successful run
 * needed. */
long weft_test_oom(int (*body)(void *ctx), void *ctx);

/* The failpoint loop described above (site: a weft__site_t). Each run must return 0 (body
 * recovered) or a named WEFT_E* code, and leave threads, fds, children, /dev/shm entries and
 * allocations where they were. Returns how many calls of the site the clean run made. */
long weft_test_faults(int site, int (*body)(void *ctx), void *ctx);

/* Process tests: starts fn(arg) in a child with default options (the test fails if it cannot);
 * joins a child (within 60 s), closes it and returns its exit code. */
weft_process_t *weft_test_process_start(int (*fn)(void *arg), void *arg);
int weft_test_process_finish(weft_process_t *p);

/* Returns once the thread whose id *tid holds (0 until the thread stores its gettid()) sleeps
 * in the kernel: its /proc state is S. Fails the test after 10 s. */
void weft_test_wait_thread_asleep(_Atomic int *tid);

/* Runs fn(arg, i) on n plain pthreads, i = 0..n-1, and joins them all (tests of a primitive
 * should not depend on weft's own thread layer). */
void weft_test_run_threads(int n, void (*fn)(void *arg, int i), void *arg);

/* Background threads: weft_test_bg_add starts fn(arg, first + k) for k < n on plain pthreads
 * (at most 16 per set; a zeroed weft_test_bg_t is an empty set) and returns at once;
 * weft_test_bg_join joins every thread of the set and empties it. weft_test_bg_start is
 * bg_add with first 0 on an emptied set. (weft_test_run_threads starts and joins in one.) */
typedef struct weft_test_bg {
    int n;
    pthread_t tid[16];
    struct weft_test_bg_arg {
        void (*fn)(void *arg, int i);
        void *arg;
        int i;
    } args[16];
} weft_test_bg_t;

void weft_test_bg_add(weft_test_bg_t *bg, int n, int first, void (*fn)(void *arg, int i),
                      void *arg);
void weft_test_bg_start(weft_test_bg_t *bg, int n, void (*fn)(void *arg, int i), void *arg);
void weft_test_bg_join(weft_test_bg_t *bg);

/* A plain pthread running fn(arg), and its join; both fail the case on error. */
pthread_t weft_test_start(void *(*fn)(void *), void *arg);
void weft_test_join(pthread_t t);

/* A helper thread doing one acquire of a Lock, Semaphore, ... through `acquire` (and, when
 * `release` is set, the matching release after a successful acquire), so the main thread can
 * check what it returned and how long it took. It publishes its waiting context (a
 * weft__waitctx_t *) in `ctx` so the main thread can cancel it, and when `order` is set takes
 * a position from that shared counter once through. Only the main thread asserts. Start it
 * with weft_test_start(weft_test_acquire_thread, &a). */
typedef struct weft_test_acquirer {
    int (*acquire)(void *obj, double timeout);
    int (*release)(void *obj);
    void *obj;
    double timeout;
    _Atomic int *order;
    _Atomic(void *) ctx;
    _Atomic int done;
    int result, release_result, position;
    int64_t elapsed_ns;
} weft_test_acquirer_t;
void *weft_test_acquire_thread(void *acquirer);
/* White-box: what weft__waitctx_cancel does to a thread's context `ctx` (a weft__waitctx_t *)
 * and its sleeping waiter `waiter` (a weft__waiter_t * in WEFT__W_SLEEPING), for a caller that
 * already holds the context's lock: the waiter wakes canceled but cannot reach the core's
 * leave() (which takes that lock) until the caller lets go, however fast it wakes. */
void weft_test_cancel_holding_ctx_lock(void *ctx, void *waiter);
/* Yields until *v >= n; fails the case after 10 s. */
void weft_test_wait_at_least(_Atomic int *v, int n);

/* White-box: how many waiters are parked on an object's wait queue, and a wait (yielding,
 * never sleeping) until at least n are; the wait fails the case after 10 s. */
int weft_test_queue_length(weft_waitq_t *q);
void weft_test_wait_queued(weft_waitq_t *q, int n);

/* weft_debug_dump's text now (malloc'd: the caller frees it); fails the case if it cannot. */
char *weft_test_dump_text(void);

/* Seconds of CPU time the calling process has used (user + system). */
double weft_test_cpu_seconds(void);

/* Bounded calls, for the timeout rules (a call that wrongly blocks forever must fail the case,
 * not hang it). weft_test_call_start runs fn(arg) on a plain pthread; weft_test_call_wait waits
 * at most `seconds` for it: true once it returned (its result in *rc, its duration in
 * *elapsed; the call is finished and freed), false while it still blocks (wait again later).
 * weft_test_polls runs fn and asserts it returns within 10 s and took under 2 s ("at once"),
 * and returns its result; a call still blocked is left behind, as the case fails anyway.
 * weft_test_blocks_until asserts fn is still blocked after 0.1 s, calls release(release_arg),
 * then asserts fn returns `expect` (within 30 s). */
typedef struct weft_test_call weft_test_call_t;
weft_test_call_t *weft_test_call_start(int (*fn)(void *arg), void *arg);
bool weft_test_call_wait(weft_test_call_t *c, double seconds, int *rc, double *elapsed);
int weft_test_polls(int (*fn)(void *arg), void *arg);
void weft_test_blocks_until(int (*fn)(void *arg), void *arg, void (*release)(void *arg),
                            void *release_arg, int expect);

#endif /* WEFT_TEST_H */
