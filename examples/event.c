/*
 * Notes §11 event信号 / the event.
 *
 * event — threads wait until another thread says "go" (Python's threading.Event).
 *
 * The classic from the notes: clients may connect to a database only once a checker has seen
 * it come up. Each client waits on the event a little at a time, counting its attempts and
 * giving up after too many; the checker probes the (pretend) server and sets the event when
 * it answers, which wakes every waiting client at once. Shows weft_event_wait with a timeout
 * (WEFT_ETIMEDOUT when it expires), weft_event_set waking all waiters, and is_set / clear.
 */
#include <stdio.h>
#include <time.h>

#include "weft.h"

enum { CLIENTS = 3, MAX_ATTEMPTS = 10 };

static weft_event_t server_up;

static void sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void client(void *arg)
{
    const char *me = weft_thread_name(weft_thread_current());
    (void)arg;
    for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        /* Wait at most 30 ms, then report and try again (Python: event.wait(0.03)). */
        int rc = weft_event_wait(&server_up, 0.03);
        if (rc == 0) {
            printf("  %s: connected on attempt %d\n", me, attempt);
            return;
        }
        printf("  %s: attempt %d: %s, server not up yet\n", me, attempt, weft_error_message(rc));
    }
    printf("  %s: gave up\n", me);
}

static void checker(void *arg)
{
    (void)arg;
    for (int probe = 1; probe <= 3; probe++) {
        sleep_ms(40); /* pretend to probe the server; it answers the third time */
        printf("checker: probe %d: %s\n", probe, probe < 3 ? "no answer" : "server is up");
    }
    weft_event_set(&server_up); /* every waiting client wakes now */
}

int main(void)
{
    weft_event_init(&server_up);
    printf("server up? %s\n", weft_event_is_set(&server_up) ? "yes" : "no");

    weft_thread_t *threads[CLIENTS + 1];
    for (int i = 0; i < CLIENTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "client-%d", i + 1);
        weft_thread_opts_t opts = {.name = name};
        if (weft_thread_start(client, NULL, &opts, &threads[i]) != 0) return 1;
    }
    weft_thread_opts_t opts = {.name = "checker"};
    if (weft_thread_start(checker, NULL, &opts, &threads[CLIENTS]) != 0) return 1;
    for (int i = 0; i <= CLIENTS; i++) {
        weft_thread_join(threads[i], WEFT_FOREVER);
        weft_thread_release(threads[i]);
    }

    /* Once set, the flag stays set: a wait returns at once, until someone clears it. */
    printf("server up? %s; wait(0) now: %s\n", weft_event_is_set(&server_up) ? "yes" : "no",
           weft_error_name(weft_event_wait(&server_up, 0)));
    weft_event_clear(&server_up);
    printf("after clear: wait(0): %s\n", weft_error_name(weft_event_wait(&server_up, 0)));
    return weft_event_destroy(&server_up) == 0 ? 0 : 1;
}
