/*
 * stack.c — coroutine stacks: private anonymous mappings that cost RAM only for the pages a
 * coroutine touches, with an optional guard page below.
 *
 * The guard: MADV_GUARD_INSTALL (Linux 6.13+) marks the page in the page table and leaves
 * the mapping whole, so a million guarded stacks fit in the default vm.max_map_count (65530).
 * Where guard regions are missing, mprotect(PROT_NONE) guards the page instead, but it splits
 * the mapping in two (two mappings per stack, and no merging with the neighbours): a default
 * stack (guard 0) gets one while fewer than a budget of such stacks are mapped — a quarter of
 * vm.max_map_count, read once (16,382 for the default 65530) — and goes unguarded past it, so
 * that many coroutines still fit in the map count (an overflow is caught for the first ones
 * rather than for none). guard > 0 always gets one; guard < 0 never. Adjacent unguarded or
 * MADV-guarded stacks merge in the kernel and cost no mapping each.
 *
 * Carving: a stack of the default size and guard (the hub asks for it: `carve_it`; its guard page
 * included) is carved from a chunk of CHUNK_STACKS stacks mapped at once by the calling
 * thread, from its top down (the order mmap would have placed them in): one mmap for 64 spawns
 * instead of one each. Each piece is then exactly what its own mmap would have made — the
 * kernel merges adjacent anonymous mappings anyway — so it gets its guard, is freed (munmap of
 * its range) and counted alone. A chunk serves one stack size (WEFT_STACK_SIZE is read once);
 * any other request (another size, guard > 0 or < 0) is mapped alone.
 * The thread's uncarved remainder (untouched: no RAM) goes at its hub's end
 * (weft__stack_carve_release); a chunk that cannot be mapped falls back to one stack.
 *
 * Sanitizers: valgrind is told about each stack (else it takes a switch for a huge stack
 * change); ASan forgets the poison of frames left on a stack before it is reused.
 *
 * The overflow report: a coroutine that runs off the low end of its stack (a 200 KiB local
 * array on the default 64 KiB stack) faults there, and a SIGSEGV handler names it on stderr
 * before the process dies as it would have. The handler is installed once per process at the
 * first hub start that finds SIGSEGV at SIG_DFL (never over a handler the program or ASan
 * installed; not at all with WEFT_SEGV_HANDLER=0), with SA_ONSTACK: the faulting thread's
 * stack pointer is in the guard, so the handler runs on an alternate signal stack that each
 * hub gives its thread when it has none (mapped at the hub's start, removed at its end; a
 * thread of a TSan or ASan build has the sanitizer's already). Valgrind delivers the fault to
 * the handler as the kernel does (it shows the program SIG_DFL). The handler reads the
 * running coroutine through the thread's hub (initial-exec TLS), its stack bounds and name;
 * it formats by hand and writes with one write(2) (no stdio, no malloc, no lock). Then it
 * restores SIG_DFL and returns, the faulting instruction runs again and the process dies of
 * SIGSEGV (core dump and exit status as without the handler).
 *
 * What counts as an overflow: a fault address below the running coroutine's lowest usable
 * byte (`lo`) by at most GUARD_REACH (8 MiB). The guard is one page, and a frame larger than
 * a page that is first touched at its low end (`sub rsp, N` then a call, which pushes its
 * return address at the new stack pointer: what gcc and clang emit without
 * -fstack-clash-protection) jumps over it: the fault then lands anywhere down to a frame's
 * size below `lo`, and is only a fault when that address is a guard page or unmapped. The
 * stack below is usually another coroutine's (mmap places newer stacks just below older ones,
 * and guard regions leave the mappings adjacent), so such a frame may instead write into it
 * silently; code compiled with -fstack-clash-protection probes every page of a large frame in
 * order and always hits the guard first. A stack without a guard (guard < 0, or the default
 * on a kernel without guard regions) runs straight into what lies below. 8 MiB covers any frame
 * that would fit a default thread stack; a wild pointer that faults within 8 MiB below the running
 * coroutine's stack is reported as an overflow too (rare: the stacks there are mapped).
 */
#include "coro_internal.h"
#include "../core/sys_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT__HAVE_VALGRIND 1
#endif
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static size_t page_size(void)
{
    static _Atomic size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

size_t weft__stack_round(size_t size)
{
    size_t page = page_size();
    return (size + page - 1) & ~(page - 1);
}

/* 1: MADV_GUARD_INSTALL works, -1: it does not, 0: not tried yet. */
static _Atomic int madv_guard;

/* Stacks with an mprotect'ed guard mapped now, and how many default stacks may have one (-1:
 * not read yet). Relaxed: counts; a race at the budget's edge guards one stack more or less. */
static _Atomic long mprotect_guards;
static _Atomic long mprotect_budget = -1;

/* A quarter of vm.max_map_count (no stdio in a hub's path). */
static long read_budget(void)
{
    long max = 65530;
    int fd = weft__sys_open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[32];
        long n = (long)weft__sys_read(fd, buf, sizeof buf - 1), v = 0;
        for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9' && v < (1L << 40); i++)
            v = v * 10 + (buf[i] - '0');
        if (v > 0) max = v;
        weft__sys_close(fd);
    }
    return max / 4;
}

static bool default_guard_allowed(void)
{
    long budget = atomic_load_explicit(&mprotect_budget, memory_order_relaxed);
    if (budget < 0) {
        budget = read_budget();
        atomic_store_explicit(&mprotect_budget, budget, memory_order_relaxed);
    }
    return atomic_load_explicit(&mprotect_guards, memory_order_relaxed) < budget;
}

void weft__stack_test_no_guard_regions(long budget)
{
    atomic_store_explicit(&madv_guard, -1, memory_order_relaxed);
    atomic_store_explicit(&mprotect_budget, budget, memory_order_relaxed);
}

/* Stacks mapped now, in use or in a hub's cache (weft__stack_count). */
static _Atomic long stacks_mapped;

long weft__stack_count(void)
{
    /* Relaxed: a count read for tests, ordering nothing else. */
    return atomic_load_explicit(&stacks_mapped, memory_order_relaxed);
}

#define CHUNK_STACKS 64

/* The calling thread's chunk: `left` stacks of `total` bytes not carved yet at [lo, ...). */
static WEFT__TLS struct carve {
    char *lo;
    size_t left, total;
} carve;

static void *map_anon(size_t len)
{
    return weft__sys_mmap(NULL, len, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
}

/* A default stack's mapping of `total` bytes, carved from the thread's chunk (see above). */
static void *map_carved(size_t total)
{
    if (carve.left && carve.total != total) return map_anon(total); /* the chunk's size only */
    if (!carve.left) {
        size_t len;
        void *p = weft__size_mul(total, CHUNK_STACKS, &len) ? map_anon(len) : MAP_FAILED;
        if (p == MAP_FAILED) return map_anon(total);
        carve = (struct carve){p, CHUNK_STACKS, total};
    }
    carve.left--;
    return carve.lo + carve.left * carve.total;
}

void weft__stack_carve_release(void)
{
    if (carve.left) weft__sys_munmap(carve.lo, carve.left * carve.total);
    carve = (struct carve){NULL, 0, 0};
}

int weft__stack_alloc(weft__stack_t *s, size_t size, int guard, bool carve_it)
{
    size_t page = page_size();
    size = weft__stack_round(size);
    bool want_guard = guard >= 0;
    size_t total = size + (want_guard ? page : 0);
    void *base = carve_it && guard == 0 ? map_carved(total) : map_anon(total);
    if (base == MAP_FAILED) return WEFT_ENOMEM;
    s->guard = 0;
    if (want_guard) {
        int g = atomic_load_explicit(&madv_guard, memory_order_relaxed);
        if (g >= 0 && weft__sys_madvise(base, page, MADV_GUARD_INSTALL) == 0) {
            s->guard = 1;
            if (!g) atomic_store_explicit(&madv_guard, 1, memory_order_relaxed);
        } else {
            if (!g) atomic_store_explicit(&madv_guard, -1, memory_order_relaxed);
            if ((guard > 0 || default_guard_allowed()) &&
                weft__sys_mprotect(base, page, PROT_NONE) == 0) {
                s->guard = 2;
                atomic_fetch_add_explicit(&mprotect_guards, 1, memory_order_relaxed);
            }
        }
        if (!s->guard) { /* no guard after all: the page is plain stack */
            size += page;
        }
    }
    s->base = base;
    s->total = total;
    s->lo = (char *)base + (total - size);
    s->size = size;
#ifdef WEFT__HAVE_VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#endif
    atomic_fetch_add_explicit(&stacks_mapped, 1, memory_order_relaxed); /* a count, see above */
    return 0;
}

void weft__stack_reset(weft__stack_t *s)
{
#if WEFT__ASAN
    __asan_unpoison_memory_region(s->lo, s->size);
#else
    (void)s;
#endif
}

void weft__stack_free(weft__stack_t *s)
{
#ifdef WEFT__HAVE_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    weft__stack_reset(s);
    weft__sys_munmap(s->base, s->total);
    s->base = NULL;
    if (s->guard == 2) atomic_fetch_sub_explicit(&mprotect_guards, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&stacks_mapped, 1, memory_order_relaxed); /* a count, see above */
}

/* ---- the overflow report ----------------------------------------------------------------- */

#define GUARD_REACH    ((uintptr_t)8 << 20)
#define ALTSTACK_BYTES ((size_t)64 << 10) /* the kernel's frame (xsave) and the handler */

/* 1 once weft's handler was installed in this process (then never again). */
static _Atomic int segv_installed;

static char *put_str(char *p, char *end, const char *s)
{
    while (*s && p < end) *p++ = *s++;
    return p;
}

static char *put_num(char *p, char *end, uintptr_t v, unsigned base)
{
    char digits[2 * sizeof v];
    int k = 0;
    do digits[k++] = "0123456789abcdef"[v % base];
    while ((v /= base) && k < (int)sizeof digits);
    while (k && p < end) *p++ = digits[--k];
    return p;
}

/* The message of the design note, in one write(2). Async-signal-safe. */
static void report_overflow(const weft_co_t *co, uintptr_t below)
{
    char buf[384];
    char *p = buf, *end = buf + sizeof buf;
    p = put_str(p, end, "weft: coroutine '");
    p = put_str(p, end, co->name);
    p = put_str(p, end, "' (0x");
    p = put_num(p, end, (uintptr_t)co, 16);
    p = put_str(p, end, ") overflowed its stack of ");
    p = put_num(p, end, co->stack.size >> 10, 10);
    p = put_str(p, end, " KiB (fault ");
    p = put_num(p, end, below, 10);
    p = put_str(p, end, below == 1 ? " byte" : " bytes");
    p = put_str(p, end,
                " below its lowest page); give it more with "
                "weft_co_opts_t.stack_size or move large locals to the heap\n");
    (void)!weft__sys_write(2, buf, (size_t)(p - buf));
}

/* The SIGSEGV handler (see the design note). weft_co_current only reads the thread's hub. */
static void on_segv(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    int saved = errno;
    weft_co_t *co = weft_co_current();
    if (co && si->si_code > 0) { /* a fault of this thread (not a kill): si_addr is real */
        uintptr_t addr = (uintptr_t)si->si_addr, lo = (uintptr_t)co->stack.lo;
        if (addr < lo && lo - addr <= GUARD_REACH) report_overflow(co, lo - addr);
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGSEGV, &dfl, NULL);
    if (si->si_code <= 0) raise(sig); /* sent: no instruction to fault again; it is pending */
    errno = saved;
}

/* Installs the handler unless already done, opted out, or SIGSEGV has a disposition of the
 * program's (or a sanitizer's) own; whether weft's handler is (or was) installed. */
static bool segv_install(void)
{
    if (atomic_load_explicit(&segv_installed, memory_order_acquire)) return true;
    const char *env = weft__getenv("WEFT_SEGV_HANDLER");
    if (env && strcmp(env, "0") == 0) return false;
    struct sigaction old, sa;
    if (sigaction(SIGSEGV, NULL, &old) || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
        return false;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL)) return false;
    atomic_store_explicit(&segv_installed, 1, memory_order_release);
    return true;
}

void *weft__stack_guard_start(void)
{
    if (!segv_install()) return NULL;
    stack_t cur;
    if (sigaltstack(NULL, &cur) || !(cur.ss_flags & SS_DISABLE)) return NULL; /* has one */
    void *p = weft__sys_mmap(NULL, ALTSTACK_BYTES, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return NULL; /* then an overflow dies unnamed, as without weft's */
    stack_t ss = {.ss_sp = p, .ss_flags = 0, .ss_size = ALTSTACK_BYTES};
    if (sigaltstack(&ss, NULL)) {
        weft__sys_munmap(p, ALTSTACK_BYTES);
        return NULL;
    }
    return p;
}

void weft__stack_guard_stop(void *altstack)
{
    if (!altstack) return;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == altstack && !(cur.ss_flags & SS_DISABLE)) {
        stack_t off = {.ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0};
        sigaltstack(&off, NULL);
    }
    weft__sys_munmap(altstack, ALTSTACK_BYTES);
}
