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
