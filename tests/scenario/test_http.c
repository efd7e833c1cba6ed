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

static const char body[] = "Hello from weft\n";

/* ---- the server: plain blocking code ----------------------------------------------------- */

/* Writes all of buf (a blocking write transfers everything or fails). */
static bool write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) return false; /* canceled */
        if (n <= 0) return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/* Whether the header block hdr (NUL-terminated) has a header whose line contains `what`. */
static bool header_has(const char *hdr, const char *what)
{
    return strcasestr(hdr, what) != NULL;
}

/* One connection: requests (GET, no body) read up to their blank line, answered 200 with a
 * Content-Length; kept alive as HTTP/1.1 says (or as HTTP/1.0's "Connection: keep-alive",
 * which ab -k sends). GET /slow sleeps 100 ms first (the crawler's slow page). */
static void http_serve(int fd, scenario_server_t *s)
{
    char buf[8192];
    size_t have = 0;
    for (;;) {
        char *end;
        while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
            if (have == sizeof buf - 1) {
                atomic_fetch_add(&s->errors, 1); /* a header block too long */
                return;
            }
            ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
            if (n == 0) return; /* the client closed */
            if (n < 0) {
                if (errno != ECONNRESET && errno != EINTR) atomic_fetch_add(&s->errors, 1);
                return;
            }
            have += (size_t)n;
        }
        size_t hlen = (size_t)(end + 4 - buf);
        char saved = buf[hlen];
        buf[hlen] = '\0';
        bool http11 = strstr(buf, " HTTP/1.1\r\n") != NULL;
        bool keep = http11 ? !header_has(buf, "\nConnection: close")
                           : header_has(buf, "\nConnection: keep-alive");
        bool slow = strncmp(buf, "GET /slow", 9) == 0;
        bool get = strncmp(buf, "GET ", 4) == 0;
        buf[hlen] = saved;
        if (slow && usleep(100000) != 0) return; /* canceled */
        char resp[256];
        int n = get ? snprintf(resp, sizeof resp,
                               "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                               "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s",
                               sizeof body - 1, keep ? "keep-alive" : "close", body)
                    : snprintf(resp, sizeof resp,
                               "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n");
        if (!write_all(fd, resp, (size_t)n)) return;
        atomic_fetch_add(&s->requests, 1);
        if (!get || !keep) return;
        memmove(buf, buf + hlen, have - hlen); /* a pipelined next request */
        have -= hlen;
    }
}

static void http_start(scenario_server_t *s)
{
    memset(s, 0, sizeof *s);
    s->serve = http_serve;
    scenario_server_start(s);
}

/* ---- the clients' output ------------------------------------------------------------------- */

/* The number after `label` in out, or `absent` when out has no such label. */
static double figure(const char *out, const char *label, double absent)
{
    const char *p = strstr(out, label);
    return p == NULL ? absent : strtod(p + strlen(label), NULL);
}

/* ---- wrk ----------------------------------------------------------------------------------- */

static void wrk_round(scenario_server_t *s, void *arg)
{
    (void)arg;
    char url[64], out[8192];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s->port);
    char *argv[] = {"wrk", "-t2", "-c1000", "-d3s", "--timeout", "20s", url, NULL};
    assert_int_equal(scenario_run(argv, out, sizeof out), 0);
    const char *p = strstr(out, " requests in "); /* "  N requests in 3.00s, ..." */
    assert_non_null(p);
    while (p > out && p[-1] != ' ') p--;
    double requests = strtod(p, NULL);
    double rps = figure(out, "Requests/sec:", 0);
    assert_null(strstr(out, "Socket errors:"));
    assert_null(strstr(out, "Non-2xx or 3xx responses:"));
    assert_true(requests > 0);
    assert_true(rps > 0);
    printf("wrk: %.0f requests, %.0f requests/s, latency avg %.2f ms, 0 socket errors, "
           "0 non-2xx\n",
           requests, rps, figure(out, "Latency", 0));
}

/* wrk -c 1000 for 3 s, twice: every response 2xx, no socket error of any kind (connect, read,
 * write, timeout; wrk prints those lines only when a count is not 0), the server's fds and
 * RSS back after each run. */
static void wrk_1000_connections_no_errors(void **state)
{
    (void)state;
    scenario_raise_nofile(8192);
    scenario_server_t s;
    http_start(&s);
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
    assert_true(figure(out, "Complete requests:", -1) == want);
    assert_true(figure(out, "Failed requests:", -1) == 0);
    assert_true(figure(out, "Non-2xx responses:", 0) == 0);
    assert_true(figure(out, "Keep-Alive requests:", -1) == want);
    printf("ab -k: %.0f requests, %.0f requests/s, %.3f ms mean per request, 0 failed\n", want,
           figure(out, "Requests per second:", 0), figure(out, "Time per request:", 0));
}

/* ab -k (HTTP/1.0 keep-alive), 1,000 concurrent, twice: every request complete, none failed,
 * none non-2xx, every one on a kept-alive connection; fds and RSS back after each run. */
static void ab_keepalive_no_failures(void **state)
{
    (void)state;
    scenario_raise_nofile(8192);
    scenario_server_t s;
    http_start(&s);
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
    if (rc == CURLE_OK && status == 200 && got == sizeof body - 1) {
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
    http_start(&s);
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
