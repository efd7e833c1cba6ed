/*
 * Notes §16 IO模型: 多路复用 / IO models: IO multiplexing.
 *
 * echo_server — a TCP echo server in one thread: a coroutine accepts, one coroutine serves
 * each connection, written as plain blocking code (weft_accept, weft_recv, weft_send). When a
 * call would block, the poller (epoll or io_uring by default; WEFT_POLLER=select|poll|epoll|
 * io_uring to choose) watches the socket and the thread serves the others. The seed's IO
 * models: this is IO multiplexing without callbacks.
 *
 * To stay self-contained and bounded it also runs its own clients (coroutines too): five
 * clients send three lines each on loopback, check the echoes, and then the server stops.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "weft.h"

enum { CLIENTS = 5, LINES = 3 };

static void serve_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[256];
    ssize_t n;
    while ((n = weft_recv(fd, buf, sizeof buf, 0, 10)) > 0) weft_send(fd, buf, (size_t)n, 0, 10);
    weft_close(fd);
}

static void acceptor(void *arg)
{
    int lfd = *(int *)arg;
    for (int i = 0; i < CLIENTS; i++) {
        int fd = weft_accept(lfd, NULL, NULL, 10);
        if (fd < 0) {
            printf("accept: %s\n", weft_error_message(fd));
            return;
        }
        weft_co_spawn(serve_one, (void *)(intptr_t)fd, NULL, NULL);
    }
}

static struct sockaddr_in server_addr;

static void client(void *arg)
{
    int id = (int)(intptr_t)arg, ok = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (weft_connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr, 10) == 0) {
        for (int i = 0; i < LINES; i++) {
            char line[64], echo[64];
            int len = snprintf(line, sizeof line, "client %d line %d", id, i);
            weft_send(fd, line, (size_t)len, 0, 10);
            ssize_t n = weft_recv(fd, echo, sizeof echo - 1, 0, 10);
            ok += n == len && memcmp(echo, line, (size_t)len) == 0;
        }
    }
    printf("client %d: %d/%d echoes right\n", id, ok, LINES);
    weft_close(fd);
}

int main(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    server_addr =
        (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof server_addr;
    if (bind(lfd, (struct sockaddr *)&server_addr, len) || listen(lfd, 16) ||
        getsockname(lfd, (struct sockaddr *)&server_addr, &len))
        return 1;
    printf("echo server on 127.0.0.1:%d\n", ntohs(server_addr.sin_port));
    weft_co_t *a;
    weft_co_spawn(acceptor, &lfd, NULL, &a);
    weft_co_t *c[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) weft_co_spawn(client, (void *)(intptr_t)i, NULL, &c[i]);
    weft_co_join_all(c, CLIENTS, 30);
    weft_co_join(a, 30);
    printf("served %d clients in one thread with the %s poller\n", CLIENTS, weft_poller_name());
    for (int i = 0; i < CLIENTS; i++) weft_co_release(c[i]);
    weft_co_release(a);
    weft_close(lfd);
    return 0;
}
