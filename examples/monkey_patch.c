/*
 * Notes §15 协程 / coroutines: monkey.patch_all().
 *
 * monkey_patch — gevent's "from gevent import monkey; monkey.patch_all()": after
 * weft_monkey_patch(), plain blocking libc calls made inside coroutines (here usleep, and
 * read/write on pipes) park only the calling coroutine, so unmodified blocking code runs
 * concurrently on one thread. Three "downloads" each sleep 0.1 s with plain usleep(): without
 * the patch they run one after the other (0.3 s), patched they overlap (0.1 s). Then a reader
 * blocks in a plain read() on a pipe while another coroutine of the same thread writes to it.
 */
#include <stdio.h>
#include <unistd.h>

#include "weft.h"

static void download(void *arg)
{
    usleep(100000); /* plain libc: 0.1 s of "network" */
    printf("  %s done\n", (const char *)arg);
}

static double three_downloads(void)
{
    double t0 = weft_time_monotonic();
    weft_co_t *co[3];
    const char *names[] = {"a.html", "b.html", "c.html"};
    for (int i = 0; i < 3; i++)
        if (weft_co_spawn(download, (void *)names[i], NULL, &co[i]) != 0) return -1;
    weft_co_join_all(co, 3, WEFT_FOREVER);
    for (int i = 0; i < 3; i++) weft_co_release(co[i]);
    return weft_time_monotonic() - t0;
}

static int fds[2];

static void reader(void *arg)
{
    (void)arg;
    char buf[32];
    ssize_t n = read(fds[0], buf, sizeof buf - 1); /* plain read: parks only this coroutine */
    buf[n > 0 ? n : 0] = '\0';
    printf("  reader got '%s'\n", buf);
}

static void writer(void *arg)
{
    (void)arg;
    printf("  writer runs while the reader waits\n");
    (void)!write(fds[1], "hello", 5);
}

int main(void)
{
    printf("unpatched: %.2f s\n", three_downloads());
    if (weft_monkey_patch() != 0) return 1; /* monkey.patch_all() */
    printf("patched:   %.2f s\n", three_downloads());

    if (pipe(fds) != 0) return 1;
    weft_co_t *r, *w;
    if (weft_co_spawn(reader, NULL, NULL, &r)) return 1;
    if (weft_co_spawn(writer, NULL, NULL, &w)) return 1;
    weft_co_t *both[] = {r, w};
    weft_co_join_all(both, 2, WEFT_FOREVER);
    weft_co_release(r);
    weft_co_release(w);
    close(fds[0]); /* patched close: wakes any waiter, forgets the fd */
    close(fds[1]);
    return 0;
}
