/*
 * lab.h — the IO-models lab (`weft-lab`): one echo service per IO model of the seed, a load
 * generator, and the race that runs them side by side.
 *
 * Every server runs in a child process of its own (so its CPU time and memory can be read
 * from /proc), serves the listening socket it inherits, echoes what it reads, and ends on
 * SIGTERM. The load generator (lab.c) drives it over loopback with 64-byte ping-pongs.
 */
#ifndef WEFT_LAB_H
#define WEFT_LAB_H

#include <stdbool.h>
#include <stddef.h>

/* One IO model: its name, a line saying what it is, and its server. `max_conns` is how many
 * connections it can serve at most (select: FD_SETSIZE), 0 for no limit. */
typedef struct lab_model {
    const char *name;
    const char *what;
    void (*serve)(int listen_fd); /* never returns; the process ends on SIGTERM */
    int max_conns;
} lab_model_t;

extern const lab_model_t lab_models[];
extern const size_t lab_nmodels;

/* Echo message size. */
enum { LAB_MSG = 64 };

#endif /* WEFT_LAB_H */
