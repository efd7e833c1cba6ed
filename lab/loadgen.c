/*
 * loadgen.c — the lab's load generator and server plumbing (see lab.h): start a server in a
 * child process on a loopback port (optionally pinned to a CPU), drive it with 64-byte
 * ping-pongs on N connections from one thread (epoll), verify every echoed byte, and read the
 * server's CPU time and peak RSS from /proc.
 */
#include "lab.h"
#include "lab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sched.h>

#include "weft.h"

int64_t lab_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int lab_listener(int port, int *bound)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int fd, rc = weft_tcp_listen(addr, 4096, &fd);
    if (rc == 0) rc = weft_tcp_local_port(fd, bound);
    if (rc) {
        fprintf(stderr, "weft-lab: listen on %s: %s\n", addr, weft_error_message(rc));
        exit(1);
    }
    /* The blocking models accept with plain blocking calls: give them a blocking listener. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

void lab_pin(int cpu)
{
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

pid_t lab_start_model(const lab_model_t *m, int *port, int cpu)
{
    int lfd = lab_listener(0, port);
    pid_t pid = fork();
    if (pid < 0) {
        perror("weft-lab: fork");
        exit(1);
    }
    if (pid == 0) {
        lab_pin(cpu);
        signal(SIGPIPE, SIG_IGN);
        m->serve(lfd);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static double cpu_seconds_of(pid_t pid);

/* The pids of pid's children (for `fork`'s connection processes). */
static int children(pid_t pid, pid_t *out, int max)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (!f) return 0;
    int c;
    while (n < max && fscanf(f, "%d", &c) == 1) out[n++] = c;
    fclose(f);
    return n;
}

/* CPU seconds of the server process and of its live children. */
double lab_cpu_seconds(pid_t pid)
{
    pid_t kids[4096];
    int n = children(pid, kids, 4096);
    double sum = cpu_seconds_of(pid);
    for (int i = 0; i < n; i++) sum += cpu_seconds_of(kids[i]);
    return sum;
}

/* CPU seconds of one process, all its threads, to the nanosecond: its CPU-time clock
 * (clock_getcpuclockid). /proc/PID/stat counts in clock ticks (10 ms), so a fork model's
 * connection process, each busy a few ms, read as 0 there and the model showed 0.00 us per
 * request. The stat fields (utime + stime + cutime + cstime) remain the fallback. */
static double cpu_seconds_of(pid_t pid)
{
    clockid_t cid;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &cid) == 0 && clock_gettime(cid, &ts) == 0)
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long v[20] = {0};
    int field = 2;
    for (; p && *p && field < 18; p++)
        if (*p == ' ') {
            field++;
            v[field] = strtoull(p + 1, NULL, 10);
        }
    /* utime 14, stime 15, cutime 16, cstime 17 */
    return (double)(v[14] + v[15] + v[16] + v[17]) / (double)sysconf(_SC_CLK_TCK);
}

static long peak_rss_of(pid_t pid);

/* Peak resident set of the server and its live children (sum of VmHWM), in KiB. */
long lab_peak_rss_kib(pid_t pid)
{
    pid_t kids[4096];
    int n = children(pid, kids, 4096);
    long sum = peak_rss_of(pid);
    for (int i = 0; i < n; i++) sum += peak_rss_of(kids[i]);
    return sum;
}

static long peak_rss_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kib = atol(line + 6);
    fclose(f);
    return kib;
}

void lab_stop(pid_t pid)
{
    kill(pid, SIGKILL); /* the fork model's children die with their connections */
    waitpid(pid, NULL, 0);
}

typedef struct conn {
    int fd;
    int64_t sent_at;
    size_t have;  /* bytes of the echo received */
    uint32_t seq; /* the message number: part of the payload, so every byte is checked */
} conn_t;

static void fill(char *msg, uint32_t seq, int fd)
{
    for (int i = 0; i < LAB_MSG; i++)
        msg[i] = (char)('a' + (seq * 7 + (uint32_t)fd + (uint32_t)i) % 26);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

lab_result_t lab_drive(pid_t pid, int port, int conns, double seconds)
{
    lab_result_t res = {0};
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    conn_t *c = calloc((size_t)conns, sizeof *c);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    size_t cap = 1 << 20, nlat = 0;
    int64_t *lat = malloc(cap * sizeof *lat);
    char msg[LAB_MSG], got[LAB_MSG];
    int open = 0;
    for (int i = 0; i < conns; i++) {
        c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* Blocking connect (the server may still be starting: retry for a while). */
        int tries = 0;
        while (connect(c[i].fd, (struct sockaddr *)&a, sizeof a) < 0 && tries++ < 200) {
            close(c[i].fd);
            c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
        open++;
    }
    /* A warm-up round trip on every connection first (the server may still be starting, or
     * not have accepted them all): the clock starts when all have answered once. */
    bool warm = true;
    int warmed = 0;
    int64_t warm_until = lab_now_ns() + 10000000000LL;
    double cpu0 = 0;
    struct timespec g0 = {0, 0}, g1;
    int64_t start = 0, end = 0;
    for (int i = 0; i < conns; i++) {
        fill(msg, c[i].seq, c[i].fd);
        c[i].sent_at = lab_now_ns();
        if (write(c[i].fd, msg, LAB_MSG) != LAB_MSG) res.errors++;
    }
    struct epoll_event events[256];
    while (open && lab_now_ns() < (warm ? warm_until : end)) {
        if (warm && warmed >= open) {
            warm = false;
            cpu0 = lab_cpu_seconds(pid);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &g0);
            start = lab_now_ns();
            end = start + (int64_t)(seconds * 1e9);
        }
        int n = epoll_wait(ep, events, 256, 100);
        for (int k = 0; k < n; k++) {
            conn_t *x = &c[events[k].data.u32];
            ssize_t r = read(x->fd, got + x->have, LAB_MSG - x->have);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                res.errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
                open--;
                continue;
            }
            x->have += (size_t)r;
            if (x->have < LAB_MSG) continue;
            int64_t t = lab_now_ns();
            fill(msg, x->seq, x->fd);
            if (memcmp(got, msg, LAB_MSG)) res.errors++;
            if (warm) {
                warmed++;
            } else {
                if (nlat == cap) {
                    cap *= 2;
                    lat = realloc(lat, cap * sizeof *lat);
                }
                lat[nlat++] = t - x->sent_at;
            }
            x->have = 0;
            x->seq++;
            fill(msg, x->seq, x->fd);
            x->sent_at = t;
            if (write(x->fd, msg, LAB_MSG) != LAB_MSG) res.errors++;
        }
    }
    if (warm) { /* never all answered: the level failed */
        res.errors++;
        start = lab_now_ns();
        cpu0 = lab_cpu_seconds(pid);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &g0);
    }
    double took = (double)(lab_now_ns() - start) / 1e9;
    double cpu = lab_cpu_seconds(pid) - cpu0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &g1);
    double gen_cpu = (double)(g1.tv_sec - g0.tv_sec) + (double)(g1.tv_nsec - g0.tv_nsec) / 1e9;
    long rss = lab_peak_rss_kib(pid);
    for (int i = 0; i < conns; i++) close(c[i].fd);
    close(ep);
    res.requests = (long)nlat;
    res.rps = (double)nlat / took;
    if (!nlat) res.errors++; /* a server that answered nothing failed the level */
    if (nlat) {
        qsort(lat, nlat, sizeof *lat, cmp_i64);
        res.p50_us = (double)lat[nlat / 2] / 1e3;
        res.p99_us = (double)lat[(size_t)((double)nlat * 0.99)] / 1e3;
        res.cpu_us_per_req = cpu * 1e6 / (double)nlat;
        res.gen_cpu_us_per_req = gen_cpu * 1e6 / (double)nlat;
    }
    res.rss_mib = (double)rss / 1024;
    free(lat);
    free(c);
    return res;
}
