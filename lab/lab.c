/*
 * lab.c — `weft-lab`: the load generator and the race of the IO models (models.c).
 *
 *   weft-lab models                      list the models
 *   weft-lab serve MODEL [PORT]          run one server in the foreground (loopback)
 *   weft-lab race [--levels 1,32,256] [--seconds S] [--models a,b] [--out DIR]
 *   weft-lab trace MODEL FILE [--conns N] [--seconds S]   one model's server traced (trace.c)
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

static const lab_model_t *find_model(const char *name)
{
    for (size_t i = 0; i < lab_nmodels; i++)
        if (!strcmp(lab_models[i].name, name)) return &lab_models[i];
    return NULL;
}

static lab_result_t run_level(const lab_model_t *m, int conns, double seconds)
{
    if (m->max_conns && conns > m->max_conns)
        return (lab_result_t){.skipped = "cannot: past FD_SETSIZE"};
    int port;
    pid_t pid = lab_start_model(m, &port, -1);
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

static void write_svg(const char *path, const lab_model_t **models, int nm, const int *levels,
                      int nl, lab_result_t *res)
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
            lab_result_t *r = &res[i * nl + j];
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
    lab_result_t *res = calloc((size_t)(nm * nl), sizeof *res);
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
                lab_result_t *r = &res[i * nl + j];
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
                    "[--seconds S] [--models a,b] [--out DIR]\n");
    return 2;
}
