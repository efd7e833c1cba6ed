/*
 * Notes §16 IO模型: 多路复用 / IO models: IO multiplexing, on every core.
 *
 * echo_server_multicore — echo_server.c on all cores: weft_hubs_start runs one hub per CPU,
 * each on a thread of its own, and the server (weft_server_opts_t.hubs) spawns each accepted
 * connection's handler on the least loaded hub. A handler is the same plain blocking code;
 * it stays on its hub's thread for its whole life (coroutines never migrate).
 *
 * To stay self-contained and bounded it runs its own clients (coroutines of the main thread,
 * which also runs the accept loop): twenty clients send three lines each on loopback and
 * check the echoes; then the server stops, then the hubs.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "weft.h"

enum { CLIENTS = 20, LINES = 3 };

static weft_hubs_t *hubs;
static _Atomic int served_on[WEFT_HUBS_MAX]; /* connections each hub served */
static _Thread_local int my_hub = -1;        /* set once per hub thread, by its first handler */
static _Atomic int hubs_seen;

/* One connection: echo until the client closes. The server closes fd when this returns. */
static void echo(int fd, void *arg)
{
    (void)arg;
    if (my_hub < 0) my_hub = atomic_fetch_add(&hubs_seen, 1); /* (a coroutine stays on it) */
    atomic_fetch_add(&served_on[my_hub], 1);
    char buf[256];
    size_t n;
    while (weft_fd_recv(fd, buf, sizeof buf, 0, 10, &n) == 0 && n > 0)
        if (weft_fd_send(fd, buf, n, 0, 10, NULL) != 0) break;
}

static char server_addr[32];
static _Atomic int right;

static void client(void *arg)
{
    int id = (int)(intptr_t)arg, fd;
    if (weft_tcp_connect(server_addr, 10, &fd) != 0) return;
    for (int i = 0; i < LINES; i++) {
        char line[64], back[64];
        int len = snprintf(line, sizeof line, "client %d line %d", id, i);
        size_t n = 0;
        if (weft_fd_send(fd, line, (size_t)len, 0, 10, NULL) == 0 &&
            weft_fd_recv(fd, back, sizeof back, 0, 10, &n) == 0 && n == (size_t)len &&
            memcmp(back, line, n) == 0)
            atomic_fetch_add(&right, 1);
    }
    weft_fd_close(fd);
}

int main(void)
{
    if (weft_hubs_start(0, NULL, &hubs)) return 1; /* 0: one hub per CPU */
    int lfd, port;
    if (weft_tcp_listen("127.0.0.1:0", 64, &lfd) || weft_tcp_local_port(lfd, &port)) return 1;
    snprintf(server_addr, sizeof server_addr, "127.0.0.1:%d", port);
    printf("echo server on %s, %zu hubs\n", server_addr, weft_hubs_count(hubs));
    weft_server_opts_t opts = {.hubs = hubs};
    weft_server_t *srv;
    if (weft_server_create(lfd, echo, NULL, &opts, &srv) || weft_server_start(srv)) return 1;
    weft_co_t *c[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        if (weft_co_spawn(client, (void *)(intptr_t)i, NULL, &c[i])) return 1;
    weft_co_join_all(c, CLIENTS, 30);
    for (int i = 0; i < CLIENTS; i++) weft_co_release(c[i]);
    weft_server_stop(srv, 5); /* first the server: its handlers run on the hubs */
    weft_server_release(srv);
    weft_hubs_stop(hubs, 5);
    weft_hubs_release(hubs);
    printf("%d/%d echoes right\n", atomic_load(&right), CLIENTS * LINES);
    for (int i = 0; i < atomic_load(&hubs_seen); i++)
        printf("a hub's thread served %d connections\n", atomic_load(&served_on[i]));
    return atomic_load(&right) == CLIENTS * LINES ? 0 : 1;
}
