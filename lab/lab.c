/*
 * lab.c — `weft-lab`: the load generator and the race of the IO models (models.c).
 *
 *   weft-lab models                      list the models
 *   weft-lab serve MODEL [PORT]          run one server in the foreground (loopback)
 *   weft-lab race [--levels 1,32,256] [--seconds S] [--models a,b] [--out DIR]
 *
 * race: for each model and each connection count, the server is started in a child process
 * on a fresh loopback port; the generator (this process, one thread, epoll) opens the
 * connections and runs 64-byte ping-pongs on all of them for S seconds, verifying every byte
 * echoed; then the server is stopped. Per run: requests/s, p50 and p99 latency, the server's
 * CPU time per request (utime + stime from /proc/PID/stat, children included for `fork`), its
 * peak RSS (VmHWM), and errors. A model that cannot serve a level is reported as such. Progress
 * goes to stderr while it runs; the table to stdout and DIR/race.txt, the chart to
 * DIR/race.svg (a grouped bar chart of requests/s, one group per model).
 */
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

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int listener(int port, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, len) || listen(fd, 4096) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("weft-lab: listen");
        exit(1);
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

static const lab_model_t *find_model(const char *name)
{
    for (size_t i = 0; i < lab_nmodels; i++)
        if (!strcmp(lab_models[i].name, name)) return &lab_models[i];
    return NULL;
}

/* ---- the server process ---------------------------------------------------------------------- */

static pid_t start_server(const lab_model_t *m, int *port)
{
    int lfd = listener(0, port);
    pid_t pid = fork();
    if (pid < 0) {
        perror("weft-lab: fork");
        exit(1);
    }
    if (pid == 0) {
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
static double cpu_seconds(pid_t pid)
{
    pid_t kids[4096];
    int n = children(pid, kids, 4096);
    double sum = cpu_seconds_of(pid);
    for (int i = 0; i < n; i++) sum += cpu_seconds_of(kids[i]);
    return sum;
}

/* CPU seconds of one process (and of the children it waited for). */
static double cpu_seconds_of(pid_t pid)
{
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
static long peak_rss_kib(pid_t pid)
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

static void stop_server(pid_t pid)
{
    kill(pid, SIGKILL); /* the fork model's children die with their connections */
    waitpid(pid, NULL, 0);
}

/* ---- the load generator --------------------------------------------------------------------- */

typedef struct conn {
    int fd;
    int64_t sent_at;
    size_t have;  /* bytes of the echo received */
    uint32_t seq; /* the message number: part of the payload, so every byte is checked */
} conn_t;

typedef struct result {
    double rps, p50_us, p99_us, cpu_us_per_req, rss_mib;
    long requests, errors;
    const char *skipped; /* why the level was not run, or NULL */
} result_t;

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

static result_t run_level(const lab_model_t *m, int conns, double seconds)
{
    result_t res = {0};
    if (m->max_conns && conns > m->max_conns) {
        res.skipped = "cannot: past FD_SETSIZE";
        return res;
    }
    int port;
    pid_t pid = start_server(m, &port);
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
    double cpu0 = cpu_seconds(pid);
    int64_t start = now_ns(), end = start + (int64_t)(seconds * 1e9);
    for (int i = 0; i < conns; i++) {
        fill(msg, c[i].seq, c[i].fd);
        c[i].sent_at = now_ns();
        if (write(c[i].fd, msg, LAB_MSG) != LAB_MSG) res.errors++;
    }
    struct epoll_event events[256];
    while (now_ns() < end && open) {
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
            int64_t t = now_ns();
            fill(msg, x->seq, x->fd);
            if (memcmp(got, msg, LAB_MSG)) res.errors++;
            if (nlat == cap) {
                cap *= 2;
                lat = realloc(lat, cap * sizeof *lat);
            }
            lat[nlat++] = t - x->sent_at;
            x->have = 0;
            x->seq++;
            fill(msg, x->seq, x->fd);
            x->sent_at = t;
            if (write(x->fd, msg, LAB_MSG) != LAB_MSG) res.errors++;
        }
    }
    double took = (double)(now_ns() - start) / 1e9;
    double cpu = cpu_seconds(pid) - cpu0;
    long rss = peak_rss_kib(pid);
    for (int i = 0; i < conns; i++) close(c[i].fd);
    close(ep);
    stop_server(pid);
    res.requests = (long)nlat;
    res.rps = (double)nlat / took;
    if (!nlat) res.errors++; /* a server that answered nothing failed the level */
    if (nlat) {
        qsort(lat, nlat, sizeof *lat, cmp_i64);
        res.p50_us = (double)lat[nlat / 2] / 1e3;
        res.p99_us = (double)lat[(size_t)((double)nlat * 0.99)] / 1e3;
        res.cpu_us_per_req = cpu * 1e6 / (double)nlat;
    }
    res.rss_mib = (double)rss / 1024;
    free(lat);
    free(c);
    return res;
}

/* ---- the race ---------------------------------------------------------------------------------
 */

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        out[n++] = atoi(s);
        s = strchr(s, ',');
        if (s) s++;
    }
    return n;
}

static const char *colors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"};

static void write_svg(const char *path, const lab_model_t **models, int nm, const int *levels,
                      int nl, result_t *res)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return;
    }
    double max = 1;
    for (int i = 0; i < nm * nl; i++)
        if (res[i].rps > max) max = res[i].rps;
    int W = 120 + nm * (nl * 22 + 24), H = 420, top = 50, bottom = 330, left = 90;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"24\" font-size=\"16\">weft-lab race: echo requests per second "
            "(64-byte ping-pong, loopback)</text>\n",
            W, H, left);
    for (int g = 0; g <= 4; g++) { /* grid */
        double v = max * g / 4;
        int y = bottom - (int)((bottom - top) * g / 4.0);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n"
                "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.0fk</text>\n",
                left, y, W - 20, y, left - 6, y + 4, v / 1000);
    }
    for (int i = 0; i < nm; i++) {
        int x0 = left + 12 + i * (nl * 22 + 24);
        for (int j = 0; j < nl; j++) {
            result_t *r = &res[i * nl + j];
            int x = x0 + j * 22;
            if (r->skipped) {
                fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"#999\">x</text>\n",
                        x + 6, bottom - 4);
                continue;
            }
            int h = (int)((bottom - top) * r->rps / max);
            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"18\" height=\"%d\" fill=\"%s\">"
                    "<title>%s, %d connections: %.0f req/s, p99 %.0f us</title></rect>\n",
                    x, bottom - h, h, colors[j % 6], models[i]->name, levels[j], r->rps, r->p99_us);
        }
        fprintf(f, "<text x=\"%d\" y=\"%d\" transform=\"rotate(35 %d %d)\">%s</text>\n", x0,
                bottom + 16, x0, bottom + 16, models[i]->name);
    }
    for (int j = 0; j < nl; j++)
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%d\">%d connections</text>\n",
                left + j * 140, H - 24, colors[j % 6], left + j * 140 + 16, H - 14, levels[j]);
    fprintf(f, "</svg>\n");
    fclose(f);
}

static int race(int argc, char **argv)
{
    int levels[8] = {1, 32, 256}, nl = 3;
    double seconds = 1.0;
    const char *only = NULL, *out = "demo-out";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--levels") && i + 1 < argc)
            nl = parse_list(argv[++i], levels, 8);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--models") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "weft-lab race: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    const lab_model_t *models[32];
    int nm = 0;
    for (size_t i = 0; i < lab_nmodels; i++) {
        if (only) {
            char pat[64];
            snprintf(pat, sizeof pat, ",%s,", lab_models[i].name);
            char list[256];
            snprintf(list, sizeof list, ",%s,", only);
            if (!strstr(list, pat)) continue;
        }
        models[nm++] = &lab_models[i];
    }
    if (!nm || !nl || seconds <= 0) {
        fprintf(stderr, "weft-lab race: nothing to run\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    mkdir(out, 0755);
    result_t *res = calloc((size_t)(nm * nl), sizeof *res);
    int total = nm * nl;
    for (int i = 0; i < nm; i++)
        for (int j = 0; j < nl; j++) {
            int k = i * nl + j;
            fprintf(stderr, "\r[race %2d/%d] %-10s %4d connections, ~%.0f s left   ", k + 1, total,
                    models[i]->name, levels[j], (total - k) * (seconds + 0.1));
            res[k] = run_level(models[i], levels[j], seconds);
        }
    fprintf(stderr, "\r%70s\r", "");
    char path[512];
    snprintf(path, sizeof path, "%s/race.txt", out);
    FILE *txt = fopen(path, "w");
    for (int pass = 0; pass < 2; pass++) {
        FILE *f = pass ? txt : stdout;
        if (!f) continue;
        fprintf(f, "%-10s %6s %10s %9s %9s %12s %8s %7s\n", "model", "conns", "req/s", "p50 us",
                "p99 us", "cpu us/req", "rss MiB", "errors");
        for (int i = 0; i < nm; i++)
            for (int j = 0; j < nl; j++) {
                result_t *r = &res[i * nl + j];
                if (r->skipped)
                    fprintf(f, "%-10s %6d %s\n", models[i]->name, levels[j], r->skipped);
                else
                    fprintf(f, "%-10s %6d %10.0f %9.1f %9.1f %12.2f %8.1f %7ld\n", models[i]->name,
                            levels[j], r->rps, r->p50_us, r->p99_us, r->cpu_us_per_req, r->rss_mib,
                            r->errors);
            }
    }
    if (txt) fclose(txt);
    snprintf(path, sizeof path, "%s/race.svg", out);
    write_svg(path, models, nm, levels, nl, res);
    printf("(table: %s/race.txt, chart: %s/race.svg)\n", out, out);
    long errors = 0;
    for (int i = 0; i < total; i++) errors += res[i].errors;
    free(res);
    return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "models")) {
        for (size_t i = 0; i < lab_nmodels; i++)
            printf("%-10s %s\n", lab_models[i].name, lab_models[i].what);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "serve")) {
        const lab_model_t *m = find_model(argv[2]);
        if (!m) {
            fprintf(stderr, "weft-lab: no model %s (weft-lab models)\n", argv[2]);
            return 2;
        }
        int port;
        int lfd = listener(argc >= 4 ? atoi(argv[3]) : 0, &port);
        printf("%s echo server on 127.0.0.1:%d\n", m->name, port);
        fflush(stdout);
        signal(SIGPIPE, SIG_IGN);
        m->serve(lfd);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "race")) return race(argc - 2, argv + 2);
    fprintf(stderr, "usage: weft-lab models | serve MODEL [PORT] | race [--levels 1,32,256] "
                    "[--seconds S] [--models a,b] [--out DIR]\n");
    return 2;
}
