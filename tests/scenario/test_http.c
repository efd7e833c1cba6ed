/*
 * Scenario: an HTTP/1.1 server in plain blocking code under the monkey patch (one coroutine
 * per connection, libc's accept/read/write), as a gevent user writes it (gevent's
 * examples/webserver.py, gevent.pywsgi over a patched socket), driven by clients nobody here
 * wrote: wrk at 1,000 connections, ab -k, and a crawler of 500 coroutines using libcurl's
 * blocking easy API under the patch. Every client error count must be 0, and the server's fds
 * and resident memory must be back where they started once the clients are gone.
 */
#include "scenario.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Every case runs patched. */
#undef WEFT_TEST
#define WEFT_TEST(NAME)                                                                            \
    cmocka_unit_test_setup_teardown(NAME, weft_test_setup_patched, weft_test_teardown_patched)

/* How far above its start the resident set may be after the first round: the hub keeps up to
 * 1,024 default-sized coroutine stacks for reuse (a few touched pages each), libcurl and the
 * allocator their free blocks. */
#define FIRST_ROUND_SLACK_KIB 32768L

/* ---- wrk ----------------------------------------------------------------------------------- */

static void wrk_round(scenario_server_t *s, void *arg)
{
    (void)arg;
    scenario_wrk_t w;
    scenario_wrk(s, 1000, 3, true, &w);
    assert_int_equal(w.exit, 0);
    assert_int_equal(w.socket_errors, 0);
    assert_int_equal(w.non_2xx, 0);
    assert_true(w.requests > 0);
    assert_true(w.rps > 0);
    printf("wrk: %.0f requests, %.0f requests/s, latency avg %.2f ms, 0 socket errors, "
           "0 non-2xx\n",
           w.requests, w.rps, w.latency_ms);
}

/* wrk -c 1000 for 3 s, twice: every response 2xx, no socket error of any kind (connect, read,
 * write, timeout; wrk prints those lines only when a count is not 0), the server's fds and
 * RSS back after each run. */
static void wrk_1000_connections_no_errors(void **state)
{
    (void)state;
    scenario_raise_nofile(8192);
    scenario_server_t s;
    scenario_http_start(&s);
    scenario_rounds(&s, wrk_round, NULL, FIRST_ROUND_SLACK_KIB);
    assert_true(atomic_load(&s.accepted) >= 2000);
    scenario_server_stop(&s, 5);
}

/* ---- ab -k --------------------------------------------------------------------------------- */

static void ab_round(scenario_server_t *s, void *arg)
{
    (void)arg;
    char url[64], out[16384];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s->port);
    const char *n = SANITIZED ? "10000" : "30000";
    char *argv[] = {"ab", "-q", "-k", "-c", "1000", "-n", (char *)n, "-s", "20", url, NULL};
    assert_int_equal(scenario_run(argv, out, sizeof out), 0);
    double want = strtod(n, NULL);
    assert_true(scenario_figure(out, "Complete requests:", -1) == want);
    assert_true(scenario_figure(out, "Failed requests:", -1) == 0);
    assert_true(scenario_figure(out, "Non-2xx responses:", 0) == 0);
    assert_true(scenario_figure(out, "Keep-Alive requests:", -1) == want);
    printf("ab -k: %.0f requests, %.0f requests/s, %.3f ms mean per request, 0 failed\n", want,
           scenario_figure(out, "Requests per second:", 0),
           scenario_figure(out, "Time per request:", 0));
}

/* ab -k (HTTP/1.0 keep-alive), 1,000 concurrent, twice: every request complete, none failed,
 * none non-2xx, every one on a kept-alive connection; fds and RSS back after each run. */
static void ab_keepalive_no_failures(void **state)
{
    (void)state;
    scenario_raise_nofile(8192);
    scenario_server_t s;
    scenario_http_start(&s);
    scenario_rounds(&s, ab_round, NULL, FIRST_ROUND_SLACK_KIB);
    scenario_server_stop(&s, 5);
}

/* ---- the crawler --------------------------------------------------------------------------- */

#define CRAWLERS 500

typedef struct crawl {
    char url[64];
    _Atomic int ok, failed;
} crawl_t;

static size_t crawl_body(char *data, size_t size, size_t n, void *p)
{
    size_t *got = p;
    (void)data;
    *got += size * n;
    return size * n;
}

/* One crawler: libcurl's blocking easy API, as a user's program calls it. */
static void crawler(void *p)
{
    crawl_t *c = p;
    CURL *h = curl_easy_init();
    size_t got = 0;
    long status = 0;
    CURLcode rc = CURLE_FAILED_INIT;
    if (h != NULL) {
        curl_easy_setopt(h, CURLOPT_URL, c->url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, crawl_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
        rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
    }
    if (rc == CURLE_OK && status == 200 && got == sizeof SCENARIO_HTTP_BODY - 1) {
        atomic_fetch_add(&c->ok, 1);
    } else {
        atomic_fetch_add(&c->failed, 1);
        printf("crawler: %s, status %ld, %zu bytes\n", curl_easy_strerror(rc), status, got);
    }
}

/* 500 crawler coroutines on this thread, joined: all succeed, well under 25 s. */
static void crawl_round(scenario_server_t *s, void *arg)
{
    crawl_t *c = arg;
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:%d/slow", s->port);
    atomic_store(&c->ok, 0);
    atomic_store(&c->failed, 0);
    static weft_co_t *cos[CRAWLERS];
    /* libcurl's frames are deep (and ASan's deeper): more than the default stack. */
    weft_co_opts_t opts = {.stack_size = 512 * 1024};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < CRAWLERS; i++)
        assert_int_equal(weft_co_spawn(crawler, c, &opts, &cos[i]), 0);
    assert_int_equal(weft_co_join_all(cos, CRAWLERS, 60), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int i = 0; i < CRAWLERS; i++) assert_int_equal(weft_co_release(cos[i]), 0);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("crawler: %d of %d fetched in %.2f s (one after another: %.0f s)\n", atomic_load(&c->ok),
           CRAWLERS, secs, CRAWLERS * 0.1);
    assert_int_equal(atomic_load(&c->failed), 0);
    assert_int_equal(atomic_load(&c->ok), CRAWLERS);
    assert_true(secs < 25);
}

/* 500 coroutines of one thread each fetch the slow page (100 ms in the handler) through
 * libcurl, twice: all succeed, in far less than the 50 s one after another would take; fds
 * and RSS back after each run. */
static void crawler_500_coroutines_with_libcurl(void **state)
{
    (void)state;
    scenario_raise_nofile(8192);
    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
    scenario_server_t s;
    scenario_http_start(&s);
    /* One fetch first: this thread's hub makes its poller (two fds) at its first fd wait, and
     * libcurl sets up what it keeps, before the measures start. */
    crawl_t c;
    snprintf(c.url, sizeof c.url, "http://127.0.0.1:%d/slow", s.port);
    atomic_store(&c.ok, 0);
    atomic_store(&c.failed, 0);
    weft_test_co_join(weft_test_spawn(crawler, &c));
    assert_int_equal(atomic_load(&c.ok), 1);
    scenario_rounds(&s, crawl_round, &c, FIRST_ROUND_SLACK_KIB);
    scenario_server_stop(&s, 5);
    curl_global_cleanup();
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(wrk_1000_connections_no_errors),
        WEFT_TEST(ab_keepalive_no_failures),
        WEFT_TEST(crawler_500_coroutines_with_libcurl),
    };
    return weft_test_main(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
