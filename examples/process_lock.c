/*
 * Notes §6 互斥锁lock (进程) / the lock between processes.
 *
 * process_lock — the seed's 互斥锁 for processes: several processes append to one file, and a
 * process-shared Lock (in shared memory) keeps their lines whole. Then the robust part: a
 * process killed while holding the lock does not block the others forever; the next one to
 * acquire it is told (WEFT_EOWNERDEAD) and repairs what was half-written.
 */
#include <stdio.h>
#include <unistd.h>

#include "weft.h"

typedef struct shared {
    weft_lock_t lock;
    weft_value_t lines;
} shared_t;

static shared_t *sh;
static FILE *out;

static int writer(void *arg)
{
    for (int i = 0; i < 3; i++) {
        weft_lock_acquire(&sh->lock, WEFT_FOREVER);
        fprintf(out, "%s <%d> line %d\n", (const char *)arg, (int)getpid(), i);
        fflush(out);
        weft_value_add(&sh->lines, 1, NULL);
        weft_lock_release(&sh->lock);
    }
    return 0;
}

static int die_holding(void *arg)
{
    (void)arg;
    weft_lock_acquire(&sh->lock, WEFT_FOREVER);
    _exit(1); /* gone, with the lock held */
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (weft_shm_alloc(sizeof *sh, (void **)&sh)) return 1;
    if (weft_lock_init_shared(&sh->lock)) return 1;
    weft_value_init(&sh->lines, 0);
    out = stdout;
    const char *names[] = {"alice", "bob", "carol"};
    weft_process_t *p[3];
    for (int i = 0; i < 3; i++)
        if (weft_process_start(writer, (void *)names[i], NULL, &p[i])) return 1;
    for (int i = 0; i < 3; i++) {
        weft_process_join(p[i], WEFT_FOREVER);
        weft_process_release(p[i]);
    }
    int64_t n;
    weft_value_get(&sh->lines, &n);
    printf("%lld whole lines\n", (long long)n);

    weft_process_t *d;
    if (weft_process_start(die_holding, NULL, NULL, &d)) return 1;
    weft_process_join(d, WEFT_FOREVER);
    weft_process_release(d);
    int rc = weft_lock_acquire(&sh->lock, 5);
    printf("acquire after the holder died: %s\n", weft_error_name(rc)); /* WEFT_EOWNERDEAD */
    weft_lock_release(&sh->lock);
    weft_shm_free(sh, sizeof *sh);
    return 0;
}
