/*
 * Notes §1 操作系统 / the operating system: 多道技术, time multiplexing.
 *
 * multiprogramming — "当一个程序遇到IO阻塞, cpu会切换到其他的程序就行运行": when a program
 * blocks on IO, the CPU goes to another one. Three "programs" share one thread, each as a
 * coroutine: compute a little, then wait for IO (a read on a pipe whose data arrives 50 ms
 * later, from a timer). While one waits, the thread's hub runs another that is ready, the
 * way an OS scheduler hands the CPU to a ready process. Each line is stamped with the time
 * since start: the programs interleave, and the three 3-step programs end in about 3 IO waits,
 * not 9.
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "weft.h"

enum { PROGRAMS = 3, STEPS = 3 };

typedef struct program {
    char name;
    int fds[2]; /* the program's "device": a pipe the timer writes to */
    weft_timer_t device;
    volatile uint64_t work; /* what the CPU part computes */
} program_t;

static double t0;

static void device_ready(void *arg) /* the timer thread plays the disk: data arrives */
{
    program_t *p = arg;
    (void)!write(p->fds[1], "x", 1);
}

static void run(void *arg)
{
    program_t *p = arg;
    for (int step = 1; step <= STEPS; step++) {
        for (int i = 0; i < 1000000; i++) p->work += (uint64_t)i; /* the CPU part of the step */
        printf("%5.3f s  %c runs step %d, then blocks on IO\n", weft_time_monotonic() - t0, p->name,
               step);
        weft_timer_start(&p->device, 0.05, device_ready, p); /* the IO completes in 50 ms */
        char c;
        size_t n;
        /* blocked: the CPU goes to another */
        if (weft_fd_read(p->fds[0], &c, 1, WEFT_FOREVER, &n)) return;
    }
    printf("%5.3f s  %c done\n", weft_time_monotonic() - t0, p->name);
}

int main(void)
{
    program_t progs[PROGRAMS];
    weft_co_t *cos[PROGRAMS];
    t0 = weft_time_monotonic();
    for (int i = 0; i < PROGRAMS; i++) {
        progs[i].name = (char)('A' + i);
        progs[i].work = 0;
        if (pipe(progs[i].fds) != 0 || weft_timer_init(&progs[i].device) != 0) return 1;
        if (weft_co_spawn(run, &progs[i], NULL, &cos[i]) != 0) return 1;
    }
    weft_co_join_all(cos, PROGRAMS, WEFT_FOREVER);
    double took = weft_time_monotonic() - t0;
    printf("%d programs x %d IO waits of 0.05 s: %.2f s (one after the other: %.2f s)\n", PROGRAMS,
           STEPS, took, PROGRAMS * STEPS * 0.05);
    for (int i = 0; i < PROGRAMS; i++) {
        weft_timer_join(&progs[i].device, WEFT_FOREVER);
        weft_co_release(cos[i]);
        weft_fd_close(progs[i].fds[0]);
        weft_fd_close(progs[i].fds[1]);
    }
    return 0;
}
