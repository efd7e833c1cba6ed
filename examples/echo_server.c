/*
 * Notes §16 IO模型: 多路复用 / IO models: IO multiplexing.
 *
 * echo_server — a TCP echo server in one thread: weft_server accepts and serves each
 * connection in a coroutine of its own (gevent's StreamServer), written as plain blocking code
 * (weft_fd_recv, weft_fd_send). When a call would block, the poller (epoll or io_uring by
 * default; WEFT_POLLER=select|poll|epoll|io_uring to choose) watches the socket and the thread
 * serves the others. The seed's IO models: this is IO multiplexing without callbacks.
 *
 * To stay self-contained and bounded it also runs its own clients (coroutines too): five
 * clients send three lines each on loopback, check the echoes, and then the server stops.
 */
#include <stdio.h>
#include <string.h>

#include "weft.h"

enum { CLIENTS = 5, LINES = 3 };

/* One connection: echo until the client closes. The server closes fd when this returns. */
static void echo(int fd, void *arg)
{
    (void)arg;
    char buf[256];
    size_t n;
    while (weft_fd_recv(fd, buf, sizeof buf, 0, 10, &n) == 0 && n > 0)
        if (weft_fd_send(fd, buf, n, 0, 10, NULL) != 0) break;
}

static char server_addr[32];

static void client(void *arg)
{
    int id = (int)(intptr_t)arg, ok = 0, fd;
    if (weft_tcp_connect(server_addr, 10, &fd) == 0) {
        for (int i = 0; i < LINES; i++) {
            char line[64], back[64];
            int len = snprintf(line, sizeof line, "client %d line %d", id, i);
            size_t n = 0;
            if (weft_fd_send(fd, line, (size_t)len, 0, 10, NULL) == 0 &&
                weft_fd_recv(fd, back, sizeof back, 0, 10, &n) == 0)
                ok += n == (size_t)len && memcmp(back, line, n) == 0;
        }
        weft_fd_close(fd);
    }
    printf("client %d: %d/%d echoes right\n", id, ok, LINES);
}

int main(void)
{
    int lfd, port;
    if (weft_tcp_listen("127.0.0.1:0", 16, &lfd) || weft_tcp_local_port(lfd, &port)) return 1;
    snprintf(server_addr, sizeof server_addr, "127.0.0.1:%d", port);
    printf("echo server on %s\n", server_addr);
    weft_server_t *srv;
    if (weft_server_create(lfd, echo, NULL, NULL, &srv) || weft_server_start(srv)) return 1;
    weft_co_t *c[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        if (weft_co_spawn(client, (void *)(intptr_t)i, NULL, &c[i])) return 1;
    weft_co_join_all(c, CLIENTS, 30);
    printf("served %d clients in one thread with the %s poller\n", CLIENTS, weft_poller_name());
    weft_server_stop(srv, 5); /* closes the listener; handlers get 5 s to finish */
    weft_server_release(srv);
    for (int i = 0; i < CLIENTS; i++) weft_co_release(c[i]);
    return 0;
}
