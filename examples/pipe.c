/*
 * Notes §2 进程间通讯: 管道 / processes and IPC: the pipe.
 *
 * pipe — two processes with separate memory talk through a pipe with two ends
 * (multiprocessing.Pipe). The parent keeps one end, the child the other; messages are bytes,
 * whole or not at all. First the child changes a global variable to show that its memory is
 * its own (the notes: 进程之间不能直接空间数据); then client and server trade requests and
 * replies over the duplex pipe; closing the parent's end is the child's EOF.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"

static int counter = 100;
static weft_conn_t *parent_end, *child_end;

static int server(void *arg) /* the child: answers each request until EOF */
{
    (void)arg;
    counter = 999;                 /* the child's copy only */
    weft_conn_release(parent_end); /* the child does not use the parent's end */
    char buf[64], reply[96];
    size_t len;
    while (weft_conn_recv_bytes(child_end, buf, sizeof buf - 1, WEFT_FOREVER, &len) == 0) {
        buf[len] = '\0';
        int n = snprintf(reply, sizeof reply, "child <%d> got '%s'", (int)getpid(), buf);
        if (weft_conn_send_bytes(child_end, reply, (size_t)n, WEFT_FOREVER)) break;
    }
    printf("child: EOF, counter here is %d\n", counter);
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (weft_pipe_create(true, &parent_end, &child_end) != 0) return 1; /* Pipe(duplex=True) */
    weft_process_t *p;
    if (weft_process_start(server, NULL, NULL, &p) != 0) return 1;
    weft_conn_release(child_end); /* the parent does not use the child's end */

    const char *requests[] = {"hello", "what is 6 x 7?", "bye"};
    for (int i = 0; i < 3; i++) {
        char buf[128];
        size_t len;
        if (weft_conn_send_bytes(parent_end, requests[i], strlen(requests[i]), WEFT_FOREVER))
            return 1;
        if (weft_conn_recv_bytes(parent_end, buf, sizeof buf - 1, WEFT_FOREVER, &len)) return 1;
        buf[len] = '\0';
        printf("parent <%d> sent '%s', reply: %s\n", (int)getpid(), requests[i], buf);
    }
    weft_conn_release(parent_end); /* the child's recv sees EOF */
    weft_process_join(p, WEFT_FOREVER);
    weft_process_release(p);
    printf("parent: counter here is still %d\n", counter);
    return 0;
}
