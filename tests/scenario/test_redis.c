/*
 * Scenario: a small RESP server (PING, SET, GET, and the CONFIG GET redis-benchmark asks first)
 * in plain blocking code under the monkey patch, one coroutine per connection, as a gevent user
 * writes one (gevent's examples/echoserver.py grown a protocol), driven by redis-benchmark
 * (Debian's redis-tools) with 1,000 clients: every request answered, no error.
 */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Every case runs patched. */
#undef WEFT_TEST
#define WEFT_TEST(NAME)                                                                            \
    cmocka_unit_test_setup_teardown(NAME, weft_test_setup_patched, weft_test_teardown_patched)

/* ---- the store: one hub's coroutines share it without a lock (none runs while another does,
 * as greenlets of one thread) ------------------------------------------------------------- */

#define BUCKETS     4096
#define ARG_MAX_LEN 256
#define ARGS_MAX    8

typedef struct entry {
    struct entry *next;
    size_t klen, vlen;
    char *key, *val;
} entry_t;

typedef struct store {
    entry_t *bucket[BUCKETS];
} store_t;

static size_t hash(const char *k, size_t n)
{
    size_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211u;
    return h % BUCKETS;
}

static entry_t *store_find(store_t *st, const char *k, size_t n)
{
    for (entry_t *e = st->bucket[hash(k, n)]; e != NULL; e = e->next)
        if (e->klen == n && memcmp(e->key, k, n) == 0) return e;
    return NULL;
}

static bool store_set(store_t *st, const char *k, size_t kn, const char *v, size_t vn)
{
    entry_t *e = store_find(st, k, kn);
    char *val = malloc(vn + 1);
    if (val == NULL) return false;
    memcpy(val, v, vn);
    if (e == NULL) {
        e = calloc(1, sizeof *e);
        char *key = malloc(kn + 1);
        if (e == NULL || key == NULL) {
            free(e);
            free(key);
            free(val);
            return false;
        }
        memcpy(key, k, kn);
        e->key = key;
        e->klen = kn;
        size_t b = hash(k, kn);
        e->next = st->bucket[b];
        st->bucket[b] = e;
    } else {
        free(e->val);
    }
    e->val = val;
    e->vlen = vn;
    return true;
}

static void store_clear(store_t *st)
{
    for (size_t b = 0; b < BUCKETS; b++)
        for (entry_t *e = st->bucket[b], *next; e != NULL; e = next) {
            next = e->next;
            free(e->key);
            free(e->val);
            free(e);
        }
}

/* ---- one connection: RESP arrays of bulk strings, or inline commands ---------------------- */

typedef struct conn {
    int fd;
    char in[4096];
    size_t pos, have;
    char out[4096];
    size_t outlen;
    size_t arglen[ARGS_MAX];
    char arg[ARGS_MAX][ARG_MAX_LEN];
    int argc;
    bool bad_input; /* a command the parser refused ended the connection */
} conn_t;

/* 1 with more input, 0 at the peer's close, -1 on an error (or a cancel). */
static int fill(conn_t *c)
{
    if (c->pos > 0) {
        memmove(c->in, c->in + c->pos, c->have - c->pos);
        c->have -= c->pos;
        c->pos = 0;
    }
    if (c->have == sizeof c->in) return -1;
    ssize_t n = read(c->fd, c->in + c->have, sizeof c->in - c->have);
    if (n > 0) c->have += (size_t)n;
    return n > 0 ? 1 : n == 0 ? 0 : -1;
}

static bool flush(conn_t *c)
{
    size_t done = 0;
    while (done < c->outlen) {
        ssize_t n = write(c->fd, c->out + done, c->outlen - done);
        if (n <= 0) return false;
        done += (size_t)n;
    }
    c->outlen = 0;
    return true;
}

static bool reply(conn_t *c, const char *data, size_t n)
{
    if (c->outlen + n > sizeof c->out && !flush(c)) return false;
    if (n > sizeof c->out) return false;
    memcpy(c->out + c->outlen, data, n);
    c->outlen += n;
    return true;
}

static bool reply_str(conn_t *c, const char *s)
{
    return reply(c, s, strlen(s));
}

static bool reply_bulk(conn_t *c, const char *v, size_t n)
{
    char head[32];
    int h = snprintf(head, sizeof head, "$%zu\r\n", n);
    return reply(c, head, (size_t)h) && reply(c, v, n) && reply(c, "\r\n", 2);
}

/* A line of input ending in \r\n, without it: its start and length; false when the peer
 * closed or failed first. */
static bool line(conn_t *c, char **start, size_t *len)
{
    for (;;) {
        char *p = memmem(c->in + c->pos, c->have - c->pos, "\r\n", 2);
        if (p != NULL) {
            *start = c->in + c->pos;
            *len = (size_t)(p - *start);
            c->pos += *len + 2;
            return true;
        }
        if (fill(c) <= 0) return false;
    }
}

static bool take_arg(conn_t *c, const char *p, size_t n)
{
    if (c->argc == ARGS_MAX || n >= ARG_MAX_LEN) return !(c->bad_input = true);
    memcpy(c->arg[c->argc], p, n);
    c->arg[c->argc][n] = '\0';
    c->arglen[c->argc++] = n;
    return true;
}

/* The next command into c->arg: false at the peer's close, on an error or bad input. */
static bool command(conn_t *c)
{
    char *p;
    size_t n;
    c->argc = 0;
    if (!line(c, &p, &n)) return false;
    if (n == 0 || p[0] != '*') { /* inline: words separated by spaces */
        for (size_t i = 0; i < n;) {
            while (i < n && p[i] == ' ') i++;
            size_t j = i;
            while (j < n && p[j] != ' ') j++;
            if (j > i && !take_arg(c, p + i, j - i)) return false;
            i = j;
        }
        return c->argc > 0 || command(c);
    }
    long count = strtol(p + 1, NULL, 10);
    if (count < 1 || count > ARGS_MAX) return !(c->bad_input = true);
    for (long k = 0; k < count; k++) {
        if (!line(c, &p, &n)) return false;
        long len = n >= 2 && p[0] == '$' ? strtol(p + 1, NULL, 10) : -1;
        if (len < 0 || len >= ARG_MAX_LEN) return !(c->bad_input = true);
        while (c->have - c->pos < (size_t)len + 2)
            if (fill(c) <= 0) return false;
        if (!take_arg(c, c->in + c->pos, (size_t)len)) return false;
        c->pos += (size_t)len + 2;
    }
    return true;
}

static bool execute(conn_t *c, store_t *st)
{
    const char *cmd = c->arg[0];
    if (strcasecmp(cmd, "PING") == 0 && c->argc == 1) return reply_str(c, "+PONG\r\n");
    if (strcasecmp(cmd, "SET") == 0 && c->argc == 3)
        return store_set(st, c->arg[1], c->arglen[1], c->arg[2], c->arglen[2])
                   ? reply_str(c, "+OK\r\n")
                   : reply_str(c, "-ERR out of memory\r\n");
    if (strcasecmp(cmd, "GET") == 0 && c->argc == 2) {
        entry_t *e = store_find(st, c->arg[1], c->arglen[1]);
        return e == NULL ? reply_str(c, "$-1\r\n") : reply_bulk(c, e->val, e->vlen);
    }
    if (strcasecmp(cmd, "CONFIG") == 0 && c->argc == 3 && strcasecmp(c->arg[1], "GET") == 0)
        return reply_str(c, "*2\r\n") && reply_bulk(c, c->arg[2], c->arglen[2]) &&
               reply_bulk(c, "", 0);
    return reply_str(c, "-ERR unknown command\r\n");
}

typedef struct redis {
    store_t store;
    _Atomic long bad; /* commands answered with an error */
} redis_t;

static void resp_serve(int fd, scenario_server_t *s)
{
    redis_t *r = s->user;
    conn_t *c = malloc(sizeof *c); /* 10 KiB: the heap, not the coroutine's stack */
    if (c == NULL) {
        atomic_fetch_add(&s->errors, 1);
        return;
    }
    c->fd = fd;
    c->pos = c->have = c->outlen = 0;
    c->bad_input = false;
    while (command(c)) {
        size_t before = c->outlen;
        if (!execute(c, &r->store)) break;
        if (c->out[before] == '-') atomic_fetch_add(&r->bad, 1);
        atomic_fetch_add(&s->requests, 1);
        /* Answer once every command already read is done (pipelined ones go out together). */
        if (c->pos == c->have && !flush(c)) break;
    }
    if (c->bad_input) atomic_fetch_add(&s->errors, 1);
    free(c);
}

/* ---- redis-benchmark ------------------------------------------------------------------------ */

#define REQUESTS "10000"

static void benchmark_round(scenario_server_t *s, void *arg)
{
    (void)arg;
    char port[16], out[8192];
    snprintf(port, sizeof port, "%d", s->port);
    long before = atomic_load(&s->requests);
    char *argv[] = {
        "redis-benchmark", "-h", "127.0.0.1", "-p", port,           "-c",    "1000", "-n",
        (char *)REQUESTS,  "-r", "10000",     "-t", "ping,set,get", "--csv", NULL};
    assert_int_equal(scenario_run(argv, out, sizeof out), 0);
    assert_null(strstr(out, "Error")); /* "Error from server: ...", "Error: <errno>" */
    const char *tests[] = {"PING_INLINE", "PING_MBULK", "SET", "GET"};
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        char label[32];
        snprintf(label, sizeof label, "\"%s\",\"", tests[i]);
        const char *p = strstr(out, label);
        assert_non_null(p);
        char *end;
        double rps = strtod(p + strlen(label), &end);
        double avg = strtod(end + 3, NULL); /* ","avg_latency_ms" */
        assert_true(rps > 0);
        printf("redis-benchmark %s: %.0f requests/s, avg latency %.3f ms\n", tests[i], rps, avg);
    }
    assert_true(atomic_load(&s->requests) - before >= 4 * strtol(REQUESTS, NULL, 10));
}

/* redis-benchmark -c 1000 over PING (inline and RESP), SET and GET on 10,000 random keys,
 * twice: every test completes, no error (redis-benchmark 7 exits at the first error reply or
 * socket error, printing "Error ..."), exit 0; the server's fds and RSS back after each run. */
static void redis_benchmark_1000_clients_no_errors(void **state)
{
    (void)state;
    scenario_raise_nofile(8192);
    redis_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    scenario_server_t s;
    memset(&s, 0, sizeof s);
    s.serve = resp_serve;
    s.user = r;
    scenario_server_start(&s);
    /* The first round's slack: the hub's cached stacks, 1,000 connections' 10 KiB buffers
     * left in the allocator, and the store's 10,000 keys. */
    scenario_rounds(&s, benchmark_round, NULL, 32768);
    printf("error replies: %ld\n", atomic_load(&r->bad));
    assert_int_equal(atomic_load(&r->bad), 0);
    scenario_server_stop(&s, 5);
    store_clear(&r->store);
    free(r);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(redis_benchmark_1000_clients_no_errors),
    };
    return weft_test_main(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
