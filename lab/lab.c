/*
 * lab.c — `weft-lab`: the load generator and the race of the IO models (models.c).
 *
 *   weft-lab models                      list the models
 *   weft-lab serve MODEL [PORT]          run one server in the foreground (loopback)
 *   weft-lab race [--levels 1,32,256] [--seconds S] [--repeat N] [--models a,b] [--out DIR]
 *   weft-lab trace MODEL FILE [--conns N] [--seconds S]   one model's server traced (trace.c)
 *
 * race: for each model and each connection count, the server is started in a child process
 * on a fresh loopback port (pinned to CPU 1, the generator to CPU 0, when there are two CPUs
 * or more: one core per server); the generator (this process, one thread, epoll) opens the
 * connections and runs 64-byte ping-pongs on all of them for S seconds, verifying every byte
 * echoed; then the server is stopped (--repeat N: N runs per cell, the median by requests/s
 * kept). Per run: requests/s, p50 and p99 latency, the server's CPU time per request (its
 * CPU-time clock: every thread, and the connection processes of `fork`), its peak RSS (VmHWM),
 * and errors. A model that cannot serve a level is reported as such. Progress
 * goes to stderr while it runs; the table and a few lines on who wins which column to stdout
 * and DIR/race.txt, the chart to DIR/race.svg (four panels: requests/s, p99, CPU per request,
 * RSS; a group of bars per model, one bar per level; "cannot" where a model cannot serve).
 */
#include "lab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
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

static const lab_model_t *find_model(const char *name)
{
    for (size_t i = 0; i < lab_nmodels; i++)
        if (!strcmp(lab_models[i].name, name)) return &lab_models[i];
    return NULL;
}

/* The CPU the race's servers run on (the generator has CPU 0), -1: not pinned. */
static int server_cpu = -1;

static lab_result_t run_level(const lab_model_t *m, int conns, double seconds)
{
    if (m->max_conns && conns > m->max_conns)
        return (lab_result_t){.skipped = "cannot: past FD_SETSIZE"};
    int port;
    pid_t pid = lab_start_model(m, &port, server_cpu);
    lab_result_t r = lab_drive(pid, port, conns, seconds);
    lab_stop(pid);
    return r;
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

/* The four panels of the chart: one column of the table each, the better end named. */
typedef struct panel {
    const char *title; /* with its unit */
    double (*get)(const lab_result_t *r);
    bool higher_better;
    bool log; /* a log axis, one tick per decade: latencies and RSS span decades */
    bool us;  /* tick values are microseconds: labelled "20 us", "1 ms", "100 ms" */
} panel_t;

static double get_rps(const lab_result_t *r)
{
    return r->rps;
}
static double get_p99(const lab_result_t *r)
{
    return r->p99_us;
}
static double get_cpu(const lab_result_t *r)
{
    return r->cpu_us_per_req;
}
static double get_rss(const lab_result_t *r)
{
    return r->rss_mib;
}

static const panel_t panels[] = {
    {"requests per second (higher is better)", get_rps, true, false, false},
    {"p99 latency, log scale (lower is better)", get_p99, false, true, true},
    {"server CPU per request, us (lower is better)", get_cpu, false, false, false},
    {"server peak RSS, MiB, log scale (lower is better)", get_rss, false, true, false},
};
enum { NPANELS = sizeof panels / sizeof panels[0] };

/* A readable axis: the smallest 1-2-5 step that covers max in at most 5 steps. */
static double nice_step(double max)
{
    if (!(max > 0)) return 1;
    double raw = max / 5, mag = 1;
    while (mag * 10 <= raw) mag *= 10;
    while (mag > raw) mag /= 10;
    const double m[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++)
        if (mag * m[i] >= raw) return mag * m[i];
    return mag * 10;
}

/* A tick label: 150000 -> "150k", 2500000 -> "2.5M", 0.5 -> "0.5"; in microseconds (us):
 * 20 -> "20 us", 1000 -> "1 ms", 1e6 -> "1 s". */
static void tick_label(char *buf, size_t n, double v, bool us)
{
    if (us && v >= 1e6)
        snprintf(buf, n, "%g s", v / 1e6);
    else if (us && v >= 1e3)
        snprintf(buf, n, "%g ms", v / 1e3);
    else if (us)
        snprintf(buf, n, "%g us", v);
    else if (v >= 1e6)
        snprintf(buf, n, "%gM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, n, "%gk", v / 1e3);
    else
        snprintf(buf, n, "%g", v);
}

/* The lines under the table: which model wins which column, at each level, and who cannot. */
static void summarize(FILE *f, const char *prefix, const char *suffix, const lab_model_t **models,
                      int nm, const int *levels, int nl, const lab_result_t *res)
{
    for (int j = 0; j < nl; j++) {
        fprintf(f, "%sAt %d connection%s:", prefix, levels[j], levels[j] == 1 ? "" : "s");
        for (int p = 0; p < NPANELS; p++) {
            int best = -1;
            for (int i = 0; i < nm; i++) {
                const lab_result_t *r = &res[i * nl + j];
                if (r->skipped || r->errors) continue;
                double v = panels[p].get(r), b = best < 0 ? 0 : panels[p].get(&res[best * nl + j]);
                if (best < 0 || (panels[p].higher_better ? v > b : v < b)) best = i;
            }
            static const char *what[] = {"most requests/s", "lowest p99", "least CPU/request",
                                         "smallest RSS"};
            static const char *fmt[] = {"%.0f/s", "%.0f us", "%.2f us", "%.1f MiB"};
            char val[32] = "-";
            if (best >= 0) snprintf(val, sizeof val, fmt[p], panels[p].get(&res[best * nl + j]));
            fprintf(f, "%s %s %s (%s)", p ? ";" : "", what[p], best >= 0 ? models[best]->name : "-",
                    val);
        }
        fprintf(f, ".%s\n", suffix);
    }
    for (int i = 0; i < nm; i++)
        for (int j = 0; j < nl; j++)
            if (res[i * nl + j].skipped) {
                const char *why = res[i * nl + j].skipped;
                if (!strncmp(why, "cannot: ", 8)) why += 8;
                fprintf(f, "%s%s cannot serve %d connections (%s).%s\n", prefix, models[i]->name,
                        levels[j], why, suffix);
                break;
            }
}

/* The chart: four panels (requests/s, p99, CPU per request, RSS), each a group of bars per
 * model, one bar per connection count; a model that cannot serve a level has a labelled
 * "cannot" in place of its bar; the summary lines at the bottom. */
static void write_svg(const char *path, const lab_model_t **models, int nm, const int *levels,
                      int nl, lab_result_t *res)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return;
    }
    const int bw = 12, gap = 14, left = 70, top = 60;
    const int pw = left + nm * (nl * bw + gap) + 20, ph = 300, plot_h = 200;
    const int W = 2 * pw + 20, H = top + 2 * ph + 60 + (nl + 2) * 16;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"11\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"20\" y=\"24\" font-size=\"16\">weft-lab race: one echo service per IO "
            "model of the seed (64-byte ping-pong, loopback)</text>\n",
            W, H);
    for (int j = 0; j < nl; j++) /* legend */
        fprintf(f,
                "<rect x=\"%d\" y=\"34\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"44\">%d connection%s</text>\n",
                20 + j * 130, colors[j % 6], 36 + j * 130, levels[j], levels[j] == 1 ? "" : "s");
    for (int p = 0; p < NPANELS; p++) {
        int ox = 10 + (p % 2) * pw, oy = top + (p / 2) * ph;
        int bottom = oy + 30 + plot_h;
        double max = 0, min = INFINITY;
        for (int i = 0; i < nm * nl; i++) {
            if (res[i].skipped) continue;
            double v = panels[p].get(&res[i]);
            if (v > max) max = v;
            if (v > 0 && v < min) min = v;
        }
        /* Linear: 0 .. a 1-2-5 multiple; log: the decades around the values. */
        const bool lg = panels[p].log;
        double step = nice_step(max), axis = step * ceil(max / step);
        if (axis <= 0) axis = step;
        double lo = 1, hi = 10;
        if (lg) {
            lo = pow(10, floor(log10(isfinite(min) ? min : 1)));
            hi = pow(10, ceil(log10(max > lo ? max : lo * 10)));
            if (hi <= lo) hi = lo * 10;
        }
#define LAB_Y(v)                                                                                   \
    (lg ? (int)(plot_h * (log10((v) > lo ? (v) : lo) - log10(lo)) / (log10(hi) - log10(lo)))       \
        : (int)(plot_h * (v) / axis))
        fprintf(f,
                "<g class=\"panel\" id=\"panel%d\">\n<text x=\"%d\" y=\"%d\" font-size=\"13\" "
                "font-weight=\"bold\">%s</text>\n",
                p, ox + 10, oy + 16, panels[p].title);
        for (double v = lg ? lo : 0; v <= (lg ? hi * 1.01 : axis + step / 2);
             v = lg ? v * 10 : v + step) {
            int y = bottom - LAB_Y(v);
            char lab[32];
            tick_label(lab, sizeof lab, v, panels[p].us);
            fprintf(f,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
                    "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n",
                    ox + left, y, ox + pw - 20, y, ox + left - 6, y + 4, lab);
        }
        for (int i = 0; i < nm; i++) {
            int x0 = ox + left + 8 + i * (nl * bw + gap);
            for (int j = 0; j < nl; j++) {
                lab_result_t *r = &res[i * nl + j];
                int x = x0 + j * bw;
                if (r->skipped) {
                    fprintf(f,
                            "<text class=\"cannot\" x=\"%d\" y=\"%d\" font-size=\"10\" "
                            "fill=\"#c00\" transform=\"rotate(-90 %d %d)\">cannot</text>\n",
                            x + 9, bottom - 3, x + 9, bottom - 3);
                    continue;
                }
                double v = panels[p].get(r);
                int h = LAB_Y(v);
                if (h < 1) h = 1; /* a value at the axis' floor still shows */
                fprintf(f,
                        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                        "<title>%s, %d connections: %.4g</title></rect>\n",
                        x, bottom - h, bw - 2, h, colors[j % 6], models[i]->name, levels[j], v);
            }
            fprintf(f, "<text x=\"%d\" y=\"%d\" transform=\"rotate(40 %d %d)\">%s</text>\n", x0 + 2,
                    bottom + 12, x0 + 2, bottom + 12, models[i]->name);
        }
        fprintf(f, "</g>\n");
#undef LAB_Y
    }
    fprintf(f, "<g class=\"summary\">\n");
    int y = top + 2 * ph + 30;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (m) {
        summarize(m, "", "", models, nm, levels, nl, res);
        fclose(m);
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"), y += 16) {
            fprintf(f, "<text x=\"20\" y=\"%d\">", y);
            for (char *c = line; *c; c++) /* XML-escape */
                fputs(*c == '<'   ? "&lt;"
                      : *c == '>' ? "&gt;"
                      : *c == '&' ? "&amp;"
                                  : (char[]){*c, 0},
                      f);
            fprintf(f, "</text>\n");
        }
        free(buf);
    }
    fprintf(f, "</g>\n</svg>\n");
    fclose(f);
}

/* Of `repeat` runs of one cell, the one with the median requests/s (its other columns with it). */
static int cmp_rps(const void *a, const void *b)
{
    double x = ((const lab_result_t *)a)->rps, y = ((const lab_result_t *)b)->rps;
    return x < y ? -1 : x > y;
}

static int race(int argc, char **argv)
{
    int levels[8] = {1, 32, 256}, nl = 3;
    double seconds = 1.0;
    int repeat = 1;
    const char *only = NULL, *out = "demo-out";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--levels") && i + 1 < argc)
            nl = parse_list(argv[++i], levels, 8);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
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
    if (!nm || !nl || seconds <= 0 || repeat < 1 || repeat > 15) {
        fprintf(stderr, "weft-lab race: nothing to run\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    /* With two CPUs or more, the generator runs on CPU 0 and every server on CPU 1: each model
     * gets one core of its own, whatever its threads and processes. Left to the scheduler,
     * a server sometimes shared the generator's CPU and sometimes not, and the same cell
     * swung by up to 50% between two runs (poll at 64 connections: 82k and 125k requests/s). */
    if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
        lab_pin(0);
        server_cpu = 1;
    }
    mkdir(out, 0755);
    lab_result_t *res = calloc((size_t)(nm * nl), sizeof *res);
    lab_result_t *runs = calloc((size_t)(nm * nl * repeat), sizeof *runs);
    int total = nm * nl;
    /* Each cell `repeat` times, the median by requests/s kept, the repeats in rounds over all
     * the cells (not back to back): a burst of load from elsewhere on the machine then lands on
     * one run of several models rather than on every run of one, and the median drops it. */
    for (int t = 0; t < repeat; t++)
        for (int k = 0; k < total; k++) {
            int i = k / nl, j = k % nl, done = t * total + k;
            fprintf(stderr, "\r[race %3d/%d] %-10s %4d connections, ~%.0f s left   ", done + 1,
                    total * repeat, models[i]->name, levels[j],
                    (total * repeat - done) * (seconds + 0.1));
            runs[k * repeat + t] = run_level(models[i], levels[j], seconds);
        }
    for (int k = 0; k < total; k++) {
        lab_result_t *r = &runs[k * repeat];
        long errs = 0;
        for (int t = 0; t < repeat; t++) errs += r[t].errors; /* an errored run counts as is */
        if (r[0].skipped) {
            res[k] = r[0];
            continue;
        }
        qsort(r, (size_t)repeat, sizeof *r, cmp_rps);
        res[k] = r[repeat / 2];
        res[k].errors = errs;
    }
    free(runs);
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
                lab_result_t *r = &res[i * nl + j];
                if (r->skipped)
                    fprintf(f, "%-10s %6d %s\n", models[i]->name, levels[j], r->skipped);
                else
                    fprintf(f, "%-10s %6d %10.0f %9.1f %9.1f %12.2f %8.1f %7ld\n", models[i]->name,
                            levels[j], r->rps, r->p50_us, r->p99_us, r->cpu_us_per_req, r->rss_mib,
                            r->errors);
            }
        fprintf(f, "\n");
        summarize(f, "", "", models, nm, levels, nl, res);
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
        int lfd = lab_listener(argc >= 4 ? atoi(argv[3]) : 0, &port);
        printf("%s echo server on 127.0.0.1:%d\n", m->name, port);
        fflush(stdout);
        signal(SIGPIPE, SIG_IGN);
        m->serve(lfd);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "race")) return race(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "trace")) return lab_trace(argc - 2, argv + 2);
    fprintf(stderr, "usage: weft-lab models | serve MODEL [PORT] | race [--levels 1,32,256] "
                    "[--seconds S] [--repeat N] [--models a,b] [--out DIR]\n");
    return 2;
}
