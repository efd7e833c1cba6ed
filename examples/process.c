/*
 * Notes §5 开启进程, Process模块 / starting a process, the Process class.
 *
 * process — the seed's "开启进程": start a child process, let it talk, join it; then a daemon
 * child that the exit rule terminates (Python's multiprocessing.Process, daemon=True).
 *
 * Every child prints its own pid, so you can see they are separate processes; the child's
 * exit code is what its function returns.
 */
#include <stdio.h>
#include <unistd.h>

#include "weft.h"

static int talk(void *arg)
{
    printf("child <%d> %s is talking\n", (int)getpid(), (const char *)arg);
    return 7;
}

static int forever(void *arg) /* would run forever: a daemon is not waited for */
{
    (void)arg;
    for (;;) pause();
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* each line out at once, even into a pipe */
    weft_process_t *p, *d;
    /* Process(target=talk, args=('alex',)).start() */
    if (weft_process_start(talk, "alex", NULL, &p)) return 1;
    printf("parent <%d>\n", (int)getpid());
    weft_process_join(p, WEFT_FOREVER); /* p.join() */
    int code;
    weft_process_exitcode(p, &code);
    printf("%s exited with code %d\n", weft_process_name(p), code);
    weft_process_release(p);

    weft_process_opts_t daemon = {.name = "heartbeat", .daemon = true};
    if (weft_process_start(forever, NULL, &daemon, &d)) return 1;
    printf("is_alive(%s) = %d; exiting: the exit rule terminates it\n", weft_process_name(d),
           weft_process_is_alive(d));
    return 0; /* exit: the daemon child gets SIGTERM and is reaped */
}
