/*
 * peer_echo_uv.c — bench_echo's libuv peer: the canonical libuv TCP echo server (uv_read_start
 * / uv_write of what was read) on an inherited listening socket.
 */
#ifdef WEFT_HAVE_LIBUV
#include <stdlib.h>
#include <uv.h>

typedef struct wreq {
    uv_write_t req;
    uv_buf_t buf;
} wreq_t;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = suggested;
}

static void on_close(uv_handle_t *h)
{
    free(h);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    wreq_t *w = (wreq_t *)req;
    free(w->buf.base);
    free(w);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n > 0) {
        wreq_t *w = malloc(sizeof *w);
        w->buf = uv_buf_init(buf->base, (unsigned)n);
        uv_write(&w->req, s, &w->buf, 1, on_written);
        return;
    }
    free(buf->base);
    if (n < 0) uv_close((uv_handle_t *)s, on_close);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(server->loop, c);
    if (uv_accept(server, (uv_stream_t *)c) == 0)
        uv_read_start((uv_stream_t *)c, on_alloc, on_read);
    else
        uv_close((uv_handle_t *)c, on_close);
}

void peer_uv_echo_serve(int lfd);
void peer_uv_echo_serve(int lfd)
{
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    uv_tcp_open(&server, lfd);
    uv_listen((uv_stream_t *)&server, 4096, on_connection);
    uv_run(loop, UV_RUN_DEFAULT);
}
#endif
