/*
 * scenario.h — what the network scenarios share: a server written the way a gevent user writes
 * one (a blocking listening socket, a plain accept loop, one coroutine per connection running
 * plain blocking libc code under the monkey patch), on a thread of its own; a runner for an
 * outside client program (wrk, ab, redis-benchmark) that captures its output; and the
 * process's open fds and resident memory, measured before and after a run.
 *
 * The server: scenario_server_start binds a blocking TCP listener on 127.0.0.1 (a port the
 * system picks) and starts a thread whose hub runs the accept loop; accept() parks the loop,
 * each connection gets a coroutine in a weft group that calls serve(fd, server) and then closes
 * fd. scenario_server_stop cancels the accept loop, gives the connections `grace` seconds to
 * end on their own, cancels the rest, closes the listener and joins the thread.
 *
 * The HTTP server of test_http.c and soak_http.c (scenario_http_serve) is one such serve;
 * scenario_wrk drives it with wrk.
 */
#ifndef WEFT_SCENARIO_H
#define WEFT_SCENARIO_H

#include "weft_test.h"

#include <stddef.h>
#include <stdint.h>

typedef struct scenario_server scenario_server_t;

struct scenario_server {
    void (*serve)(int fd, scenario_server_t *s); /* one connection, plain blocking code */
    void *user;                                  /* the scenario's state */
    int lfd, port;
    pthread_t thread;
    weft_event_t ready, stop, idle; /* idle: set when live drops to 0 */
    weft_group_t *conns;
    double grace;
    _Atomic long accepted, live, requests, errors;
};

/* Starts s (serve and user set by the caller; the rest is filled in here). */
void scenario_server_start(scenario_server_t *s);
/* Waits (at most `seconds`) until no connection is open; false when some still are. */
bool scenario_server_drained(scenario_server_t *s, double seconds);
void scenario_server_stop(scenario_server_t *s, double grace);

/* Runs round(s, arg) twice against the started server s, measuring the process's fds and
 * resident set at the start and after each round, once every connection has closed. The fds
 * must be back to the start (or below: one closing at the start) after each round. The RSS after
 * the first round must be within first_slack_kib of the start (what the process keeps for reuse:
 * the hub's cache of up to 1,024 coroutine stacks, the allocator's free blocks), and after the
 * second within SCENARIO_STEADY_KIB of the first: the same load again keeps little more (glibc's
 * heap still settles in the second round: the crawler's grows 3.6 MiB in its second round, 2.3 in
 * its third, then stays flat over eight). (Printed only, not checked, under ASan, whose quarantine
 * holds freed memory, and valgrind.) */
#define SCENARIO_STEADY_KIB 8192L
void scenario_rounds(scenario_server_t *s, void (*round)(scenario_server_t *s, void *arg),
                     void *arg, long first_slack_kib);

/* Runs argv (PATH searched) with stdout and stderr into out (NUL-terminated, truncated at
 * cap) and returns its exit status (-1 when it did not exit normally). Prints the output. */
int scenario_run(char *const argv[], char *out, size_t cap);

/* The number after `label` in a client's output out, or `absent` when out has no such label. */
double scenario_figure(const char *out, const char *label, double absent);

/* The HTTP/1.1 server of test_http.c and soak_http.c, in plain blocking code: requests (GET,
 * no body) read up to their blank line, answered 200 with SCENARIO_HTTP_BODY; kept alive as
 * HTTP/1.1 says (or as HTTP/1.0's "Connection: keep-alive", which ab -k sends); GET /slow
 * sleeps 100 ms first. Counts each answer in s->requests, and in s->errors what no client
 * should cause (a read error other than a reset, a header block over 8 KiB).
 * scenario_http_start zeroes s and starts it with that serve. */
#define SCENARIO_HTTP_BODY "Hello from weft\n"
void scenario_http_serve(int fd, scenario_server_t *s);
void scenario_http_start(scenario_server_t *s);

/* What one run of wrk reported: requests done, their rate and mean latency, socket errors
 * (connect, read, write and timeout together) and non-2xx/3xx answers; exit is wrk's status. */
typedef struct scenario_wrk {
    double requests, rps, latency_ms;
    long socket_errors, non_2xx;
    int exit;
} scenario_wrk_t;

/* Runs wrk -t2 -c<connections> -d<seconds>s --timeout 20s against GET / of the started server
 * s and parses its output into *w; the output is printed when echo is set or the run had an
 * error. */
void scenario_wrk(scenario_server_t *s, int connections, int seconds, bool echo, scenario_wrk_t *w);

/* Open fds of this process, and its resident set in KiB (VmRSS). */
int scenario_fds(void);
long scenario_rss_kib(void);

/* Raises RLIMIT_NOFILE's soft limit to `want` (or to the hard limit if lower); returns it. */
long scenario_raise_nofile(long want);

/* A 64-bit mixer (murmur3's finalizer): the scenarios' stand-in for CPU work and checksums. */
static inline uint64_t scenario_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

#endif /* WEFT_SCENARIO_H */
