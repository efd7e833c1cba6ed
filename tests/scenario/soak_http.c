/*
 * soak_http.c — `make soak`: the HTTP scenario of test_http.c (its server, scenario_http_serve:
 * plain blocking code under the monkey patch, one coroutine per connection) under wrk's load
 * for a long time, watching the server process for what grows.
 *
 * The load: consecutive runs of wrk -t2 -c1000, each the length of the sampling interval. At
 * the end of each run wrk closes its 1,000 connections; once the server has closed its side of
 * every one, the process is sampled: VmRSS, open fds and threads (/proc/self), coroutine
 * stacks mapped (weft__stack_count: those in use, and those the hubs keep for reuse) and
 * weft's live allocations (the test harness's counting allocator). Consecutive runs rather than
 * one long run with a sampler thread: each sample is then taken at the same quiet point, where
 * fds, threads and stacks must be exactly back to what they were (under load they move with
 * the connections open at that instant), and every run reconnects 1,000 connections, so a
 * leak per connection shows (60,000 connections in 10 minutes instead of 1,000). wrk starting
 * and the drain cost a fraction of a second per run: the time column is the true time.
 *
 * The verdict compares each sample with the reference: the sample at the end of the warm-up
 * (the first minute, at most half the runs), when the hub's stack cache and the allocator's
 * arenas have reached their size. Flat means: 0 errors (wrk's socket errors and non-2xx
 * answers, a wrk that failed, the server's own error count, a connection still open 30 s after
 * wrk ended); after the warm-up, fds, threads and stacks equal to the reference's in every
 * sample; the last RSS at most max(2 MiB, 10%) above the reference's (not judged under ASan
 * or valgrind, whose own bookkeeping holds freed memory). Weft's live allocations are printed,
 * not judged: the leak guard at the end of the case checks that they all went.
 *
 * Usage: soak_http [--seconds N] [--interval N]; the environment's SOAK_SECONDS and
 * SOAK_INTERVAL are the defaults (else 600 and 10). Exits 0 when flat, non-zero otherwise.
 * CTest runs it briefly (scenario.soak.http_20_seconds) so that it cannot rot.
 */
#include "scenario.h"

#include "coro/coro_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every case runs patched. */
#undef WEFT_TEST
#define WEFT_TEST(NAME)                                                                            \
    cmocka_unit_test_setup_teardown(NAME, weft_test_setup_patched, weft_test_teardown_patched)

#define CONNECTIONS    1000
#define WARMUP_SECONDS 60
#define RSS_SLACK_KIB  2048L /* the bound on RSS growth: this or RSS_SLACK_PCT, the larger */
#define RSS_SLACK_PCT  10
#define DRAIN_SECONDS  30

static long soak_seconds = 600, soak_interval = 10;

typedef struct sample {
    double t;        /* seconds since the start */
    double requests; /* wrk's requests so far */
    long errors;     /* every error so far */
    long rss_kib, stacks, allocs;
    int fds, threads;
} sample_t;

static int threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    assert_true(n > 0);
    return n;
}

static void loadavg(char *buf, size_t n)
{
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = '\0';
    if (f == NULL) return;
    if (fgets(buf, (int)n, f) == NULL) buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

static sample_t take(int64_t t0, double requests, long errors)
{
    return (sample_t){.t = (double)(weft_time_monotonic_ns() - t0) / 1e9,
                      .requests = requests,
                      .errors = errors,
                      .rss_kib = scenario_rss_kib(),
                      .stacks = weft__stack_count(),
                      .allocs = weft_test_live_allocs(),
                      .fds = scenario_fds(),
                      .threads = threads_now()};
}

static void print_sample(const sample_t *s, const char *note)
{
    printf("%7.1f %11.0f %7ld %9ld %5d %8d %7ld %7ld  %s\n", s->t, s->requests, s->errors,
           s->rss_kib, s->fds, s->threads, s->stacks, s->allocs, note);
    fflush(stdout);
}

/* The soak described at the top of the file. */
static void http_soak(void **state)
{
    (void)state;
    scenario_raise_nofile(8192);
    long rounds = soak_seconds / soak_interval;
    if (rounds < 2) rounds = 2;
    long warmup = WARMUP_SECONDS / soak_interval;
    if (warmup > rounds / 2) warmup = rounds / 2;
    if (warmup < 1) warmup = 1;
    char load[128];
    loadavg(load, sizeof load);
    printf("soak: wrk -t2 -c%d, %ld runs of %ld s; reference after run %ld (warm-up); "
           "load average at the start: %s\n",
           CONNECTIONS, rounds, soak_interval, warmup, load);
    printf("%7s %11s %7s %9s %5s %8s %7s %7s\n", "time_s", "requests", "errors", "rss_kib", "fds",
           "threads", "stacks", "allocs");

    scenario_server_t s;
    scenario_http_start(&s);
    int64_t t0 = weft_time_monotonic_ns();
    sample_t first = take(t0, 0, 0), ref = first, last = first;
    print_sample(&first, "before the load");
    double requests = 0;
    long errors = 0;
    bool steady = true; /* fds, threads, stacks equal to the reference after the warm-up */
    for (long r = 1; r <= rounds; r++) {
        scenario_wrk_t w;
        scenario_wrk(&s, CONNECTIONS, (int)soak_interval, false, &w);
        requests += w.requests;
        errors += w.socket_errors + w.non_2xx + (w.exit != 0);
        if (!scenario_server_drained(&s, DRAIN_SECONDS)) {
            printf("run %ld: %ld connections still open %d s after wrk ended\n", r,
                   atomic_load(&s.live), DRAIN_SECONDS);
            errors++;
        }
        last = take(t0, requests, errors + atomic_load(&s.errors));
        const char *note = "";
        if (r == warmup) {
            ref = last;
            note = "reference";
        } else if (r > warmup && (last.fds != ref.fds || last.threads != ref.threads ||
                                  last.stacks != ref.stacks)) {
            steady = false;
            note = "fds, threads or stacks moved";
        }
        print_sample(&last, note);
    }
    scenario_server_stop(&s, 5);

    loadavg(load, sizeof load);
    long bound = ref.rss_kib * RSS_SLACK_PCT / 100;
    if (bound < RSS_SLACK_KIB) bound = RSS_SLACK_KIB;
    bool judge_rss = !SANITIZED && !RUNNING_ON_VALGRIND;
    bool rss_ok = !judge_rss || last.rss_kib <= ref.rss_kib + bound;
    printf("soak: %.0f requests in %.0f s (%.0f/s), %ld connections, %ld errors; load average "
           "at the end: %s\n",
           requests, last.t, requests / last.t, atomic_load(&s.accepted), last.errors, load);
    printf("soak: RSS %ld KiB at the reference, %ld KiB at the end (%+ld KiB, bound +%ld%s); "
           "fds %d, threads %d, stacks %ld at the reference, %s after it\n",
           ref.rss_kib, last.rss_kib, last.rss_kib - ref.rss_kib, bound,
           judge_rss ? "" : ", not judged in this build", ref.fds, ref.threads, ref.stacks,
           steady ? "the same in every sample" : "NOT the same in every sample");
    bool flat = last.errors == 0 && steady && rss_ok;
    printf("soak: verdict: %s\n", flat ? "flat" : "NOT flat");
    fflush(stdout);
    assert_int_equal(last.errors, 0);
    assert_true(steady);
    assert_true(rss_ok);
}

/* A positive whole number of seconds from an option or the environment. */
static long seconds_arg(const char *what, const char *text, long fallback)
{
    if (text == NULL || text[0] == '\0') return fallback;
    char *end;
    long v = strtol(text, &end, 10);
    if (*end != '\0' || v < 1 || v > 86400) {
        fprintf(stderr, "soak_http: %s must be a whole number of seconds (1 to 86400), not '%s'\n",
                what, text);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    soak_seconds = seconds_arg("SOAK_SECONDS", getenv("SOAK_SECONDS"), soak_seconds);
    soak_interval = seconds_arg("SOAK_INTERVAL", getenv("SOAK_INTERVAL"), soak_interval);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            soak_seconds = seconds_arg("--seconds", argv[++i], soak_seconds);
        } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            soak_interval = seconds_arg("--interval", argv[++i], soak_interval);
        } else {
            fprintf(stderr, "usage: soak_http [--seconds N] [--interval N]\n");
            return 2;
        }
    }
    const struct CMUnitTest cases[] = {WEFT_TEST(http_soak)};
    return weft_test_main(cases, 1, 1, argv);
}
