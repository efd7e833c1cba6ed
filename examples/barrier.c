/*
 * Notes §11 event信号, beyond the notes: 栅栏 Barrier / the event, and Barrier.
 *
 * barrier — workers meet at the end of every round (Python's threading.Barrier).
 *
 * Three workers each compute a part of a round; nobody starts round r+1 before everybody has
 * finished round r. The barrier's action runs once per round, in the last worker to arrive,
 * before anybody is released: it adds up the round's parts. Then a lone caller with a timeout
 * shows how a barrier breaks (WEFT_ETIMEDOUT for it, WEFT_EBROKEN for everyone after) and
 * how reset mends it. Shows weft_barrier_wait's arrival index, the action, broken and reset.
 */
#include <stdio.h>

#include "weft.h"

enum { WORKERS = 3, ROUNDS = 3 };

typedef struct team {
    weft_barrier_t barrier;
    long part[WORKERS]; /* written by each worker, read by the action: the barrier orders it */
    int round;
} team_t;

/* Runs in the last arrival of each round, while the others are still held. */
static int end_of_round(void *arg)
{
    team_t *t = arg;
    long total = 0;
    for (int w = 0; w < WORKERS; w++) total += t->part[w];
    printf("--- round %d complete: parts add up to %ld ---\n", ++t->round, total);
    return 0; /* nonzero would break the barrier */
}

typedef struct member {
    team_t *team;
    int id;
} member_t;

static void worker(void *arg)
{
    team_t *t = ((member_t *)arg)->team;
    int id = ((member_t *)arg)->id;
    const char *me = weft_thread_name(weft_thread_current());
    for (int r = 1; r <= ROUNDS; r++) {
        t->part[id] = (long)r * 100 + id; /* this round's share of the work */
        int index = weft_barrier_wait(&t->barrier, WEFT_FOREVER);
        if (index < 0) {
            printf("%s: %s\n", me, weft_error_message(index));
            return;
        }
        printf("%s: past round %d (arrived %s)\n", me, r,
               index == WORKERS - 1 ? "last, ran the action"
               : index == 0         ? "first"
                                    : "second");
    }
}

int main(void)
{
    team_t t = {.round = 0};
    weft_barrier_init(&t.barrier, WORKERS, end_of_round, &t);

    weft_thread_t *threads[WORKERS];
    member_t members[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "worker-%d", i + 1);
        members[i] = (member_t){&t, i};
        weft_thread_opts_t opts = {.name = name};
        if (weft_thread_start(worker, &members[i], &opts, &threads[i]) != 0) return 1;
    }
    for (int i = 0; i < WORKERS; i++) {
        weft_thread_join(threads[i], WEFT_FOREVER);
        weft_thread_release(threads[i]);
    }

    /* One party alone cannot complete a round: its timeout expires and breaks the barrier. */
    int rc = weft_barrier_wait(&t.barrier, 0.05);
    printf("lone wait with a 50 ms timeout: %s; broken: %s\n", weft_error_name(rc),
           weft_barrier_broken(&t.barrier) ? "yes" : "no");
    printf("next wait: %s\n", weft_error_name(weft_barrier_wait(&t.barrier, WEFT_FOREVER)));
    weft_barrier_reset(&t.barrier);
    printf("after reset: broken: %s, waiting: %u\n", weft_barrier_broken(&t.barrier) ? "yes" : "no",
           weft_barrier_n_waiting(&t.barrier));
    return weft_barrier_destroy(&t.barrier) == 0 ? 0 : 1;
}
