/*
 * net.c — TCP and Unix-socket helpers (weft/net.h) and the stream server, on io.c's fd waits.
 *
 * Addresses: "host:port" is split here; a numeric host is parsed with inet_pton (no wait), a
 * name goes to libc's getaddrinfo on a thread of its own (lookup_main) while the caller waits
 * for it through the waiting core, so a coroutine parks and a timeout or a cancel ends the
 * wait; a caller that gives up leaves the lookup to its thread, which frees it when done.
 *
 * The server: an accept loop coroutine on the starting thread's hub spawns one handler
 * coroutine per connection, each with a `conn` node on the server's list (its fd, its
 * coroutine, whether it started). One lock (`lock`) guards the server's state, the list and
 * three wait queues: `slots` (the accept loop waiting below max_connections), `idle` (a stopper
 * waiting for the accept loop to end, then for the list to empty) and `served` (callers of
 * serve_forever, woken only when the server is stopped, or when the accept loop ended on an
 * error of its own, with that news in their waiter's data, so that they never touch a server
 * that may be freed once stopped). A handler that never started when the stop cancels the rest
 * is not canceled (a coroutine canceled before it starts never runs its function, and so would
 * never unlink its node): it starts, sees `canceling`, and closes its fd at once. The accept
 * loop the same: a stop before it started is seen when it starts.
 */
#include "io_internal.h"
#include "../core/sys_internal.h"
#include "weft/net.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

/* ---- addresses --------------------------------------------------------------------------- */

#define MAX_ADDRS 16

typedef struct addr {
    struct sockaddr_storage ss;
    socklen_t len;
} addr_t;

typedef struct addrs {
    addr_t a[MAX_ADDRS];
    size_t n;
} addrs_t;

static void addrs_add(addrs_t *as, const struct sockaddr *sa, socklen_t len)
{
    if (as->n == MAX_ADDRS || len > sizeof as->a[0].ss) return;
    memcpy(&as->a[as->n].ss, sa, len);
    as->a[as->n++].len = len;
}

static void add_v4(addrs_t *as, const struct in_addr *ip, int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr = *ip;
    addrs_add(as, (struct sockaddr *)&sin, sizeof sin);
}

static void add_v6(addrs_t *as, const struct in6_addr *ip, int port)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    sin6.sin6_addr = *ip;
    addrs_add(as, (struct sockaddr *)&sin6, sizeof sin6);
}

/* Splits "host:port" / "[v6]:port" / ":port": the host (without brackets) into host[cap], the
 * port; whether it was bracketed. 0 or WEFT_EINVAL. */
static int split(const char *hp, char *host, size_t cap, int *port, bool *bracketed)
{
    if (!hp) return WEFT_EINVAL;
    const char *colon, *h = hp, *hend;
    *bracketed = hp[0] == '[';
    if (*bracketed) {
        h = hp + 1;
        hend = strchr(h, ']');
        if (!hend || hend[1] != ':') return WEFT_EINVAL;
        colon = hend + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon) return WEFT_EINVAL;
        hend = colon;
        if (memchr(hp, ':', (size_t)(colon - hp))) return WEFT_EINVAL; /* IPv6 unbracketed */
    }
    size_t hl = (size_t)(hend - h);
    if (hl >= cap || (*bracketed && hl == 0)) return WEFT_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    const char *p = colon + 1;
    size_t pl = strlen(p);
    if (pl == 0 || pl > 5) return WEFT_EINVAL;
    int v = 0;
    for (size_t i = 0; i < pl; i++) {
        if (p[i] < '0' || p[i] > '9') return WEFT_EINVAL;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535) return WEFT_EINVAL;
    *port = v;
    return 0;
}

/* A glibc resolver's answer as a weft code. */
static int gai_code(int g)
{
    switch (g) {
    case 0:
        return 0;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return WEFT_ENXIO;
    case EAI_AGAIN:
        return WEFT_EAGAIN;
    case EAI_MEMORY:
        return WEFT_ENOMEM;
    case EAI_SYSTEM:
        return weft__errno(errno);
#ifdef EAI_CANCELED
    case EAI_CANCELED:
        return WEFT_ECANCELED;
#endif
    default:
        return WEFT_EIO;
    }
}

/* A name lookup, shared by its caller and the thread that runs it; the last of the two to let
 * go frees it. Under `q`'s lock: done, refs, rc, res. */
typedef struct lookup {
    weft_waitq_t q; /* the caller, waiting for done */
    bool done;
    int refs;
    int rc;               /* getaddrinfo's answer */
    struct addrinfo *res; /* its addresses */
    struct addrinfo hints;
    char host[];
} lookup_t;

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);

/* libc's getaddrinfo, past the monkey patch's (which would hand the call to a helper thread of
 * its own: we are one). */
static getaddrinfo_fn libc_getaddrinfo;
static pthread_once_t libc_once = PTHREAD_ONCE_INIT;

static void libc_find(void)
{
    libc_getaddrinfo = (getaddrinfo_fn)(uintptr_t)dlsym(RTLD_NEXT, "getaddrinfo");
}

/* Drops one reference (l->q's lock held, and dropped here). */
static void lookup_put(lookup_t *l)
{
    bool last = --l->refs == 0;
    weft__waitq_unlock(&l->q);
    if (!last) return;
    if (l->res) freeaddrinfo(l->res);
    weft__free(l);
}

static void *lookup_main(void *p)
{
    lookup_t *l = p;
    struct addrinfo *res = NULL;
    int rc = libc_getaddrinfo(l->host, NULL, &l->hints, &res);
    int err = errno;
    weft__waitq_lock(&l->q);
    l->done = true;
    l->rc = rc == EAI_SYSTEM ? weft__errno(err) : gai_code(rc);
    l->res = res;
    weft__waiter_t *list = weft__waitq_take(&l->q, -1, 0);
    lookup_put(l); /* frees l when the caller gave up already (then list is empty) */
    weft__waiters_wake(list);
    return NULL;
}

static int lookup_over(void *p)
{
    return ((lookup_t *)p)->done ? 0 : WEFT__WAIT_PARK;
}

/* Starts the thread of a lookup, every signal blocked in it. */
static int lookup_start(lookup_t *l)
{
    pthread_once(&libc_once, libc_find);
    if (!libc_getaddrinfo) return WEFT_ENOTSUP;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_t tid;
    int e = pthread_attr_init(&attr);
    if (!e) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        e = weft__sys_pthread_create(&tid, &attr, lookup_main, l);
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e == ENOMEM ? WEFT_ENOMEM : e ? WEFT_EAGAIN : 0;
}

/* Resolves a host name until the deadline: its TCP addresses, with the port. The system
 * resolver blocks, so it runs on a thread of its own while the caller waits as for any weft
 * object (a coroutine parks); a caller that gives up leaves the rest to that thread. */
static int lookup(const char *host, int port, bool passive, int64_t deadline, addrs_t *as)
{
    size_t hl = strlen(host);
    lookup_t *l = weft__calloc(1, sizeof *l + hl + 1);
    if (!l) return WEFT_ENOMEM;
    memcpy(l->host, host, hl + 1);
    l->hints.ai_family = AF_UNSPEC;
    l->hints.ai_socktype = SOCK_STREAM;
    l->hints.ai_flags = passive ? AI_PASSIVE : 0;
    l->refs = 2;
    int rc = lookup_start(l);
    if (rc) {
        weft__free(l);
        return rc;
    }
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waiter_on(&w, WEFT__ON_RESOLVE, l);
    rc = weft__wait_until(NULL, &l->q, &w, lookup_over, l, deadline);
    weft__waitq_lock(&l->q);
    if (l->done) {
        rc = l->rc;
        for (struct addrinfo *ai = rc ? NULL : l->res; ai; ai = ai->ai_next) {
            if (ai->ai_family == AF_INET)
                add_v4(as, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, port);
            else if (ai->ai_family == AF_INET6)
                add_v6(as, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, port);
        }
        if (!rc && as->n == 0) rc = WEFT_ENXIO;
    }
    lookup_put(l);
    return rc;
}

/* The addresses of "host:port": for a listener (passive) an empty host is every address
 * (IPv6's, which takes IPv4 too, then IPv4's); for a connection the loopback. */
static int resolve(const char *hp, bool passive, int64_t deadline, addrs_t *as, int *port)
{
    char host[256];
    bool bracketed;
    int rc = split(hp, host, sizeof host, port, &bracketed);
    if (rc) return rc;
    if (!passive && *port == 0) return WEFT_EINVAL; /* nobody listens on port 0 */
    as->n = 0;
    struct in_addr v4;
    struct in6_addr v6;
    if (bracketed) {
        if (inet_pton(AF_INET6, host, &v6) != 1) return WEFT_EINVAL;
        add_v6(as, &v6, *port);
    } else if (!host[0]) {
        v6 = passive ? in6addr_any : in6addr_loopback;
        v4.s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
        if (passive) add_v6(as, &v6, *port);
        add_v4(as, &v4, *port);
        if (!passive) add_v6(as, &v6, *port);
    } else if (inet_pton(AF_INET, host, &v4) == 1) {
        add_v4(as, &v4, *port);
    } else {
        return lookup(host, *port, passive, deadline, as);
    }
    return 0;
}

/* ---- sockets ------------------------------------------------------------------------------- */

static int new_socket(int family, int *fd)
{
    *fd = weft__sys_socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    return *fd < 0 ? weft__errno(errno) : 0;
}

/* Binds a new socket to a and listens. A socket nobody waited on: closed by the system call. */
static int listen_at(const struct sockaddr *a, socklen_t len, int backlog, int *fd)
{
    int s, rc = new_socket(a->sa_family, &s);
    if (rc) return rc;
    int one = 1, zero = 0;
    if (a->sa_family != AF_UNIX &&
        weft__sys_setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail;
    /* The IPv6 wildcard takes IPv4 connections too (whatever net.ipv6.bindv6only says). */
    if (a->sa_family == AF_INET6 &&
        IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr) &&
        weft__sys_setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)
        goto fail;
    if (bind(s, a, len) < 0 || listen(s, backlog) < 0) goto fail;
    *fd = s;
    return 0;
fail:
    rc = weft__errno(errno);
    weft__sys_close(s);
    return rc;
}

int weft_tcp_listen(const char *hostport, int backlog, int *fd)
{
    if (fd) *fd = -1;
    if (!fd || backlog < 0) return WEFT_EINVAL;
    addrs_t as;
    int port, rc = resolve(hostport, true, WEFT_NO_DEADLINE, &as, &port);
    for (size_t i = 0; rc == 0 && i < as.n; i++) {
        rc = listen_at((struct sockaddr *)&as.a[i].ss, as.a[i].len, backlog, fd);
        if (rc == 0) return 0;
        if (i + 1 < as.n) rc = 0; /* the next address */
    }
    return rc;
}

int weft_tcp_connect(const char *hostport, double timeout, int *fd)
{
    if (fd) *fd = -1;
    if (!fd || isnan(timeout)) return WEFT_EINVAL;
    int64_t deadline;
    weft__deadline(timeout, &deadline);
    addrs_t as;
    int port, rc = resolve(hostport, false, deadline, &as, &port);
    if (rc) return rc;
    for (size_t i = 0; i < as.n; i++) {
        int s;
        if ((rc = new_socket(as.a[i].ss.ss_family, &s)) != 0) continue;
        rc = weft__io_connect(s, (struct sockaddr *)&as.a[i].ss, as.a[i].len, deadline);
        if (rc == 0) {
            *fd = s;
            return 0;
        }
        weft_fd_close(s); /* it may have been waited on: the pollers forget it */
        if (rc == WEFT_ETIMEDOUT || rc == WEFT_ECANCELED) break;
    }
    return rc;
}

int weft_tcp_local_port(int fd, int *port)
{
    if (port) *port = 0;
    if (fd < 0 || !port) return WEFT_EINVAL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return weft__errno(errno);
    if (ss.ss_family == AF_INET)
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else
        return WEFT_EINVAL;
    return 0;
}

/* ---- Unix sockets ------------------------------------------------------------------------ */

/* path ("@name": abstract) as a sockaddr_un. */
static int unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
    if (!path || !path[0]) return WEFT_EINVAL;
    size_t n = strlen(path);
    *sun = (struct sockaddr_un){.sun_family = AF_UNIX};
    if (path[0] == '@') { /* abstract: a NUL, then the name (no NUL at the end) */
        if (n > sizeof sun->sun_path) return WEFT_ENAMETOOLONG;
        memcpy(sun->sun_path + 1, path + 1, n - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        if (n >= sizeof sun->sun_path) return WEFT_ENAMETOOLONG;
        memcpy(sun->sun_path, path, n + 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

int weft_unix_listen(const char *path, int backlog, int *fd)
{
    if (fd) *fd = -1;
    if (!fd || backlog < 0) return WEFT_EINVAL;
    struct sockaddr_un sun;
    socklen_t len;
    int rc = unix_addr(path, &sun, &len);
    return rc ? rc : listen_at((struct sockaddr *)&sun, len, backlog, fd);
}

typedef struct unix_try {
    int fd;
    const struct sockaddr_un *sun;
    socklen_t len;
    int err; /* errno of the last connect(2); 0 connected */
} unix_try_t;

/* One non-blocking connect(2): done unless the listener's backlog is full (EAGAIN: a Unix
 * socket then is not connecting, and no fd event says when room comes: try again). */
static bool unix_try(void *p)
{
    unix_try_t *t = p;
    do t->err = weft__sys_connect(t->fd, (const struct sockaddr *)t->sun, t->len) < 0 ? errno : 0;
    while (t->err == EINTR);
    return t->err != EAGAIN;
}

int weft_unix_connect(const char *path, double timeout, int *fd)
{
    if (fd) *fd = -1;
    if (!fd || isnan(timeout)) return WEFT_EINVAL;
    struct sockaddr_un sun;
    socklen_t len;
    int rc = unix_addr(path, &sun, &len);
    if (rc) return rc;
    int64_t deadline;
    weft__deadline(timeout, &deadline);
    unix_try_t t = {-1, &sun, len, 0};
    if ((rc = new_socket(AF_UNIX, &t.fd)) != 0) return rc;
    if (!unix_try(&t)) rc = weft__nap_until(unix_try, &t, deadline, false);
    if (!rc && t.err) rc = weft__errno(t.err);
    if (rc) {
        weft__sys_close(t.fd); /* nobody waited on it */
        return rc;
    }
    *fd = t.fd;
    return 0;
}

/* ---- the stream server ------------------------------------------------------------------- */

enum { CREATED, RUNNING, STOPPING, STOPPED };

/* What a serve_forever waiter is handed (its waiter's data): the server stopped, or the
 * accept loop ended on an error of its own (the error is in the server, which stays). */
enum { SERVED_STOPPED = 1, SERVED_FAILED = 2 };

typedef struct conn {
    weft__list_node_t node; /* on its server's `conns` */
    weft_server_t *srv;
    weft_co_t *co;
    int fd;
    bool started, known; /* known: dev and ino were read */
    dev_t dev;           /* the accepted socket, to tell it from a later one under its number */
    ino_t ino;
} conn_t;

/* Whether fd is still the socket c accepted: a handler may close its fd against the rule
 * (net.h), and the number may then belong to the next connection. */
static bool still_ours(const conn_t *c)
{
    struct stat st;
    if (!c->known) return true;
    return fstat(c->fd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino;
}

struct weft_server {
    weft__mutex_t lock;
    weft_waitq_t slots, idle, served;
    int state;
    int lfd;
    weft_server_handler_fn handler;
    void *arg;
    size_t max, count; /* handlers allowed at once (0: any), handlers on the list */
    size_t stack_size;
    weft_hubs_t *hubs;   /* where the handlers run (NULL: the accept loop's hub) */
    weft__list_t conns;  /* conn_t.node, the newest first */
    weft_co_t *acceptor; /* the accept loop (a reference of its own) */
    bool acceptor_started, acceptor_done;
    bool canceling;    /* the stop cancels the handlers: those not started yet skip theirs */
    int error;         /* what ended the accept loop on its own */
    weft__handle_t hd; /* debug mode: magic, the program's reference (core_internal.h) */
};

/* The connection after c on s->conns (the first for NULL); the caller holds s->lock. */
static conn_t *next_conn(weft_server_t *s, conn_t *c)
{
    weft__list_node_t *n = c ? weft__list_next(&c->node) : weft__list_first(&s->conns);
    return n ? weft__container_of(n, conn_t, node) : NULL;
}

int weft_server_create(int listen_fd, weft_server_handler_fn handler, void *arg,
                       const weft_server_opts_t *opts, weft_server_t **srv)
{
    if (srv) *srv = NULL;
    if (listen_fd < 0 || !handler || !srv) return WEFT_EINVAL;
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (getsockopt(listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) < 0 || !listening)
        return WEFT_EINVAL; /* not a socket, or not listening: accept could never succeed */
    weft_server_opts_t o = {0};
    if (opts) o = *opts;
    for (size_t i = 0; i < sizeof o.reserved_ / sizeof o.reserved_[0]; i++)
        if (o.reserved_[i]) return WEFT_EINVAL;
    if (o.stack_size && (o.stack_size < 16 * 1024 || o.stack_size > (size_t)1 << 30))
        return WEFT_EINVAL; /* weft_co_spawn's bounds: refused now rather than at each accept */
    weft_server_t *s = weft__handle_calloc(sizeof *s);
    if (!s) return WEFT_ENOMEM;
    weft__handle_init(&s->hd, WEFT__ID_SERVER, 1);
    s->state = CREATED;
    s->lfd = listen_fd;
    s->handler = handler;
    s->arg = arg;
    s->max = o.max_connections;
    s->stack_size = o.stack_size;
    s->hubs = o.hubs;
    *srv = s;
    return 0;
}

/* Wakes every waiter of q with data (s->lock held): the list to wake after unlocking. */
static weft__waiter_t *take_all(weft_waitq_t *q, uintptr_t data)
{
    return weft__waitq_take(q, -1, data);
}

/* A handler coroutine: runs the handler (unless the stop came first), closes the fd, leaves
 * the list. */
static void serve_conn(void *p)
{
    conn_t *c = p;
    weft_server_t *s = c->srv;
    weft__mutex_lock(&s->lock);
    bool run = !s->canceling;
    c->started = true;
    weft__mutex_unlock(&s->lock);
    if (run) s->handler(c->fd, s->arg);
    if (still_ours(c)) weft_fd_close(c->fd); /* else the handler closed it: not ours to close */
    weft__mutex_lock(&s->lock);
    weft__list_remove(&s->conns, &c->node);
    s->count--;
    weft__waiter_t *slot = weft__waitq_take(&s->slots, 1, 0);
    weft__waiter_t *idle = s->count == 0 ? take_all(&s->idle, 0) : NULL;
    weft_co_t *co = c->co;
    weft__mutex_unlock(&s->lock); /* s may be freed from here on */
    weft__waiters_wake(slot);
    weft__waiters_wake(idle);
    weft__free(c);
    weft_co_release(co); /* our own handle: we run on, detached */
}

static int slot_free(void *p)
{
    weft_server_t *s = p;
    return s->max == 0 || s->count < s->max ? 0 : WEFT__WAIT_PARK;
}

/* Whether the loop must end on an accept error (else it naps and accepts again: out of fds,
 * memory or buffers, a connection aborted before it was taken). */
static bool accept_fatal(int rc)
{
    return rc == WEFT_ECANCELED || rc == WEFT_EBADF || rc == WEFT_EINVAL || rc == WEFT_ENOTSOCK ||
           rc == WEFT_ENOTSUP || rc == WEFT_EDEADLK;
}

/* Spawns the handler of fd (s->lock not held): 0, or the error (fd closed). */
static int spawn_conn(weft_server_t *s, int fd)
{
    conn_t *c = weft__calloc(1, sizeof *c);
    if (!c) {
        weft_fd_close(fd);
        return WEFT_ENOMEM;
    }
    c->srv = s;
    c->fd = fd;
    struct stat st;
    if (fstat(fd, &st) == 0) { /* (a socket accepted a moment ago: it does not fail) */
        c->known = true;
        c->dev = st.st_dev;
        c->ino = st.st_ino;
    }
    weft_co_opts_t o = {.name = "weft-server-conn", .stack_size = s->stack_size};
    int rc;
    if (!s->hubs) {
        rc = weft_co_spawn(serve_conn, c, &o, &c->co);
        if (rc) {
            weft__free(c);
            weft_fd_close(fd);
            return rc;
        }
        weft__mutex_lock(&s->lock); /* c cannot run before we block: it is on our hub */
        weft__list_push_front(&s->conns, &c->node);
        s->count++;
        weft__mutex_unlock(&s->lock);
        return 0;
    }
    /* On another hub c may run at once: it is on the list, with its handle, before it can take
     * the lock (its first step). */
    weft__mutex_lock(&s->lock);
    rc = weft_hubs_spawn(s->hubs, WEFT_HUBS_ANY, serve_conn, c, &o, &c->co);
    if (rc == 0) {
        weft__list_push_front(&s->conns, &c->node);
        s->count++;
    }
    weft__mutex_unlock(&s->lock);
    if (rc) {
        weft__free(c);
        weft_fd_close(fd);
    }
    return rc;
}

static void accept_loop(void *p)
{
    weft_server_t *s = p;
    weft__mutex_lock(&s->lock);
    s->acceptor_started = true;
    bool stopping = s->state != RUNNING;
    weft__mutex_unlock(&s->lock);
    int rc = 0;
    while (!stopping) {
        rc = weft__wait_until(&s->lock, &s->slots, NULL, slot_free, s, WEFT_NO_DEADLINE);
        if (rc == WEFT_ECANCELED || rc == WEFT_EDEADLK) break;
        if (rc) continue; /* a wake: look again */
        int fd;
        rc = weft_fd_accept(s->lfd, NULL, NULL, WEFT_FOREVER, &fd);
        if (rc == 0) rc = spawn_conn(s, fd);
        if (rc == 0) continue;
        if (accept_fatal(rc)) break;
        if (weft_time_sleep(0.01) == WEFT_ECANCELED) { /* (gevent waits and accepts again too) */
            rc = WEFT_ECANCELED;
            break;
        }
    }
    weft__mutex_lock(&s->lock);
    s->acceptor_done = true;
    weft__waiter_t *failed = NULL;
    if (s->state == RUNNING && rc != WEFT_ECANCELED) { /* ended on its own */
        s->error = rc ? rc : WEFT_EIO;
        failed = take_all(&s->served, SERVED_FAILED);
    }
    weft__waiter_t *idle = take_all(&s->idle, 0);
    weft_co_t *co = s->acceptor;
    s->acceptor = NULL;
    weft__mutex_unlock(&s->lock); /* s may be freed from here on */
    weft__waiters_wake(failed);
    weft__waiters_wake(idle);
    weft_co_release(co);
}

int weft_server_start(weft_server_t *s)
{
    WEFT__HANDLE_CHECK(s, WEFT__ID_SERVER, "server");
    if (!s) return WEFT_EINVAL;
    weft__mutex_lock(&s->lock);
    int rc = s->state == CREATED ? 0 : s->state == RUNNING ? WEFT_EALREADY : WEFT_ESHUTDOWN;
    if (rc == 0) {
        weft_co_opts_t o = {.name = "weft-server"};
        /* The loop runs on our hub, after we block: it takes the lock only then. */
        weft_co_t *co;
        rc = weft_co_spawn(accept_loop, s, &o, &co);
        if (rc == 0) {
            s->acceptor = co;
            s->state = RUNNING;
        }
    }
    weft__mutex_unlock(&s->lock);
    return rc;
}

static int stopped_or_failed(void *p)
{
    weft_server_t *s = p;
    if (s->state == STOPPED) return 0;
    if (s->acceptor_done && s->state == RUNNING) return s->error;
    return WEFT__WAIT_PARK;
}

int weft_server_serve_forever(weft_server_t *s)
{
    WEFT__HANDLE_CHECK(s, WEFT__ID_SERVER, "server");
    if (!s) return WEFT_EINVAL;
    int rc = weft_server_start(s);
    if (rc && rc != WEFT_EALREADY && rc != WEFT_ESHUTDOWN) return rc;
    weft__waiter_t w;
    weft__waiter_init(&w);
    rc = weft__wait_until(&s->lock, &s->served, &w, stopped_or_failed, s, WEFT_NO_DEADLINE);
    if (rc) return rc;
    /* Woken: the news is in w.data (s may be gone when it says STOPPED). */
    if (w.data == SERVED_FAILED) {
        weft__mutex_lock(&s->lock);
        rc = s->error;
        weft__mutex_unlock(&s->lock);
    }
    return rc;
}

/* The stopper's waits (s->lock held by wait_until). */
static int acceptor_ended(void *p)
{
    weft_server_t *s = p;
    return !s->acceptor || s->acceptor_done ? 0 : WEFT__WAIT_PARK;
}

static int no_conns(void *p)
{
    return ((weft_server_t *)p)->count == 0 ? 0 : WEFT__WAIT_PARK;
}

static int server_stopped(void *p)
{
    return ((weft_server_t *)p)->state == STOPPED ? 0 : WEFT__WAIT_PARK;
}

/* Waits on q until check holds, immune to cancellation (the stop's cleanup must end). A wake
 * says only that something changed: look again. */
static void wait_nocancel(weft_server_t *s, weft_waitq_t *q, int (*check)(void *))
{
    for (;;) {
        weft__mutex_lock(&s->lock);
        bool done = check(s) == 0;
        weft__mutex_unlock(&s->lock);
        if (done) return;
        weft__waiter_t w;
        weft__waiter_init(&w);
        w.nocancel = true;
        weft__wait_until(&s->lock, q, &w, check, s, WEFT_NO_DEADLINE);
    }
}

int weft_server_stop(weft_server_t *s, double timeout)
{
    WEFT__HANDLE_CHECK(s, WEFT__ID_SERVER, "server");
    if (!s || isnan(timeout)) return WEFT_EINVAL;
    int64_t deadline;
    weft__deadline(timeout, &deadline);
    weft__mutex_lock(&s->lock);
    weft_co_t *self = weft_co_current();
    for (conn_t *c = next_conn(s, NULL); self && c; c = next_conn(s, c))
        if (c->co == self) {
            weft__mutex_unlock(&s->lock);
            return WEFT_EDEADLK; /* it would wait for itself */
        }
    if (s->state == STOPPING || s->state == STOPPED) { /* another stop: wait for it */
        weft__mutex_unlock(&s->lock);
        weft__waiter_t w;
        weft__waiter_init(&w);
        w.nocancel = true;
        weft__wait_until(&s->lock, &s->served, &w, server_stopped, s, WEFT_NO_DEADLINE);
        return 0; /* (woken only by the stop: s may be gone) */
    }
    bool started = s->state == RUNNING;
    s->state = STOPPING;
    /* 1. The accept loop: canceled if it runs (one not started yet sees STOPPING). */
    if (s->acceptor && s->acceptor_started && !s->acceptor_done) weft_co_cancel(s->acceptor);
    weft__mutex_unlock(&s->lock);
    if (started) {
        wait_nocancel(s, &s->idle, acceptor_ended);
        /* 2. The handlers: a grace period (a cancel of ours ends it early), then canceled. */
        if (weft__wait_until(&s->lock, &s->idle, NULL, no_conns, s, deadline) != 0) {
            weft__mutex_lock(&s->lock);
            s->canceling = true;
            for (conn_t *c = next_conn(s, NULL); c; c = next_conn(s, c))
                if (c->started) weft_co_cancel(c->co);
            weft__mutex_unlock(&s->lock);
        }
        wait_nocancel(s, &s->idle, no_conns);
    }
    /* 3. Nobody accepts or waits on the listener now. */
    weft_fd_close(s->lfd);
    weft__mutex_lock(&s->lock);
    s->lfd = -1;
    s->state = STOPPED;
    weft__waiter_t *served = take_all(&s->served, SERVED_STOPPED);
    weft__mutex_unlock(&s->lock);
    weft__waiters_wake(served);
    return 0;
}

int weft_server_release(weft_server_t *s)
{
    WEFT__HANDLE_RELEASE(s, WEFT__ID_SERVER, "server");
    if (!s) return WEFT_EINVAL;
    weft__mutex_lock(&s->lock);
    int state = s->state;
    weft__mutex_unlock(&s->lock);
    if (state == RUNNING || state == STOPPING) {
        WEFT__HANDLE_GIVE(s); /* nothing happened: still the program's */
        return WEFT_EBUSY;
    }
    if (state == CREATED) weft_fd_close(s->lfd);
    weft__handle_free(s, &s->hd);
    return 0;
}
