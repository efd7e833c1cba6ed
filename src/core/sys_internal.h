/*
 * sys_internal.h — the system calls weft makes for itself, past the monkey patch.
 *
 * Every layer below the hook calls these instead of the libc names the hook redefines (see
 * sys.c for why). Same arguments, results and errno as the libc calls they stand for, except
 * that weft__sys_ppoll takes no signal mask and weft__sys_nanosleep sleeps on
 * CLOCK_MONOTONIC and resumes after a signal.
 *
 * The calls no hook redefines but that get or can lose a kernel resource (mappings, shared
 * memory, processes, threads, pollers, futex waits) come through here too, so that fault
 * injection reaches all of them: each wrapper first asks weft__failpoint(site), and a call
 * whose failpoint fires fails as the kernel would (result and errno of the site's table in
 * sys.c) without doing anything.
 */
#ifndef WEFT_SYS_INTERNAL_H
#define WEFT_SYS_INTERNAL_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

struct iovec;

ssize_t weft__sys_read(int fd, void *buf, size_t n);
ssize_t weft__sys_write(int fd, const void *buf, size_t n);
ssize_t weft__sys_recv(int fd, void *buf, size_t n, int flags);
ssize_t weft__sys_send(int fd, const void *buf, size_t n, int flags);
ssize_t weft__sys_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t weft__sys_writev(int fd, const struct iovec *iov, int n);
/* read(2) that never blocks, whatever the fd's flags: preadv2(RWF_NOWAIT) at the current
 * position. -1 with EAGAIN when it would block; EOPNOTSUPP where the file cannot (a pipe before
 * Linux 5.x). */
ssize_t weft__sys_read_nowait(int fd, void *buf, size_t n);
ssize_t weft__sys_recvmsg(int fd, struct msghdr *msg, int flags);
int weft__sys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int weft__sys_connect(int fd, const struct sockaddr *addr, socklen_t len);
int weft__sys_socket(int domain, int type, int protocol);
int weft__sys_socketpair(int domain, int type, int protocol, int sv[2]);
int weft__sys_pipe2(int fds[2], int flags);
int weft__sys_setsockopt(int fd, int level, int name, const void *value, socklen_t len);
int weft__sys_open(const char *path, int flags); /* openat(AT_FDCWD, path, flags) */
int weft__sys_close(int fd);
/* Closes every fd from first to last (inclusive): close_range(2); where it is missing (a
 * kernel before 5.9, valgrind 3.19) the open ones listed in /proc/self/fd; without /proc, one
 * close per fd up to the fd limit. Allocates nothing (fit for a fork child). Returns 0 (a
 * range with nothing open is fine). */
int weft__sys_close_range(unsigned first, unsigned last);
int weft__sys_dup3(int fd, int to, int flags);
int weft__sys_fcntl(int fd, int cmd, long arg);
int weft__sys_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts);
int weft__sys_poll(struct pollfd *fds, nfds_t n, int ms);
int weft__sys_nanosleep(const struct timespec *ts);

/* Not hooked names, behind failpoints: libc's behaviour, except weft__sys_futex_wait
 * (FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC timeout, NULL: none) and
 * weft__sys_io_uring_setup (liburing's io_uring_queue_init: -errno, built WEFT_HAVE_LIBURING). */
void *weft__sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int weft__sys_munmap(void *addr, size_t len);
int weft__sys_mprotect(void *addr, size_t len, int prot);
int weft__sys_madvise(void *addr, size_t len, int advice);
int weft__sys_shm_open(const char *name, int oflag, mode_t mode);
int weft__sys_ftruncate(int fd, off_t len);
pid_t weft__sys_fork(void);
int weft__sys_eventfd(unsigned value, int flags);
int weft__sys_epoll_create1(int flags);
int weft__sys_epoll_ctl(int epfd, int op, int fd, void *event);
struct io_uring;
int weft__sys_io_uring_setup(unsigned entries, struct io_uring *ring, unsigned flags);
long weft__sys_futex_wait(_Atomic uint32_t *word, int op, uint32_t expect,
                          const struct timespec *abs);
int weft__sys_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                             void *arg);
int weft__sys_pidfd_open(pid_t pid);

/*
 * Fault injection (tests only; the names are local to libweft.so, cmake/weft.map). Each site
 * is one wrapper. weft__failpoint_set(site, nth, persistent) makes the nth call of that site
 * from now fail (1-based), and with persistent every later one too; nth 0 disarms it. Any
 * thread's calls count. Returns 0, or WEFT_EINVAL for a bad site or a negative nth.
 * weft__failpoint_failed(site) is how many calls it failed since it was set.
 *
 * Cost when nothing is armed: one relaxed load and a not-taken branch per wrapped call.
 */
typedef enum weft__site {
    WEFT__SITE_MMAP,
    WEFT__SITE_MUNMAP,
    WEFT__SITE_MPROTECT,
    WEFT__SITE_MADVISE,
    WEFT__SITE_SHM_OPEN,
    WEFT__SITE_FTRUNCATE,
    WEFT__SITE_FORK,
    WEFT__SITE_SOCKET,
    WEFT__SITE_SOCKETPAIR,
    WEFT__SITE_ACCEPT4,
    WEFT__SITE_DUP3,
    WEFT__SITE_EVENTFD,
    WEFT__SITE_EPOLL_CREATE1,
    WEFT__SITE_EPOLL_CTL,
    WEFT__SITE_IO_URING_SETUP,
    WEFT__SITE_FUTEX_WAIT,
    WEFT__SITE_PTHREAD_CREATE,
    WEFT__SITE_PIDFD_OPEN,
    WEFT__SITE_PIPE2,
    WEFT__SITE_COUNT
} weft__site_t;

int weft__failpoint_set(int site, long nth, bool persistent);
long weft__failpoint_failed(int site);
const char *weft__failpoint_name(int site);

extern _Atomic int weft__failpoints_armed; /* how many sites are armed */
bool weft__failpoint_fire(weft__site_t site);

/* True when this call of `site` must fail. Relaxed is enough for the flag: a test arms a site
 * before it makes (or starts the thread that makes) the calls it targets, which orders them. */
static inline bool weft__failpoint(weft__site_t site)
{
    return __builtin_expect(atomic_load_explicit(&weft__failpoints_armed, memory_order_relaxed),
                            0) &&
           weft__failpoint_fire(site);
}

#endif /* WEFT_SYS_INTERNAL_H */
