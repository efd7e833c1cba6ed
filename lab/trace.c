/*
 * trace.c — `weft-lab trace MODEL FILE [--conns N] [--seconds S]`: one model's server under
 * weft's trace (weft/trace.h), for Perfetto (https://ui.perfetto.dev) or chrome://tracing.
 *
 * The server runs in a child process, as in the race; a forked child does not inherit its
 * parent's trace, so the child starts its own (weft_trace_start) before it serves. The server
 * never returns (the race ends it with SIGKILL), so a helper thread of the child stops the
 * trace, which writes FILE, once the load has run for most of S seconds, and says so on a
 * pipe; the generator then ends the server as the race does.
 */
#include "lab.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

static double trace_seconds;
static int done_fd = -1;

static void *stopper(void *arg)
{
    (void)arg;
    struct timespec ts = {(time_t)trace_seconds,
                          (long)((trace_seconds - (double)(time_t)trace_seconds) * 1e9)};
    nanosleep(&ts, NULL);
    char rc = (char)(weft_trace_stop() == 0 ? 0 : 1);
    if (write(done_fd, &rc, 1) != 1) _exit(1);
    return NULL;
}

int lab_trace(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: weft-lab trace MODEL FILE [--conns N] [--seconds S]\n");
        return 2;
    }
    const char *name = argv[0], *file = argv[1];
    int conns = 16;
    double seconds = 0.5;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--conns") && i + 1 < argc)
            conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "weft-lab trace: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    const lab_model_t *m = NULL;
    for (size_t i = 0; i < lab_nmodels; i++)
        if (!strcmp(lab_models[i].name, name)) m = &lab_models[i];
    if (!m || conns < 1 || seconds <= 0) {
        fprintf(stderr, "weft-lab trace: no model %s, or a bad count (weft-lab models)\n", name);
        return 2;
    }
    int pfd[2];
    if (pipe(pfd) != 0) return 1;
    int port;
    int lfd = lab_listener(0, &port);
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        close(pfd[0]);
        done_fd = pfd[1];
        trace_seconds = seconds * 0.8; /* within the load */
        int rc = weft_trace_start(file);
        if (rc) {
            fprintf(stderr, "weft-lab trace: %s: %s\n", file, weft_error_message(rc));
            _exit(1);
        }
        pthread_t t;
        if (pthread_create(&t, NULL, stopper, NULL) != 0) _exit(1);
        m->serve(lfd);
        _exit(0);
    }
    close(pfd[1]);
    close(lfd);
    lab_result_t r = lab_drive(pid, port, conns, seconds);
    struct pollfd p = {pfd[0], POLLIN, 0};
    char ok = 1;
    if (poll(&p, 1, 10000) != 1 || read(pfd[0], &ok, 1) != 1) ok = 1;
    close(pfd[0]);
    lab_stop(pid);
    printf("%s: %.0f requests/s over %d connections, %ld errors\n", m->name, r.rps, conns,
           r.errors);
    if (ok)
        printf("trace: %s NOT written\n", file);
    else
        printf("trace: %s (open it in https://ui.perfetto.dev or chrome://tracing)\n", file);
    return ok || r.errors ? 1 : 0;
}
