/*
 * weft/process.h — Python's multiprocessing for C: child processes (Process) with Python's
 * exit rules, shared memory, pipes between processes (Pipe / Connection), process-shared
 * synchronisation objects and shared values, and a queue between processes (Queue /
 * JoinableQueue).
 *
 * ---- Process ------------------------------------------------------------------------------
 * weft_process_start forks: the child runs fn(arg) in a copy of the caller's memory (fork is
 * the start method, as multiprocessing's "fork"), and its exit code is fn's return value
 * (the low 8 bits, as any exit status). The parent gets a library-allocated handle; free it
 * with weft_process_release once the child has finished.
 *
 * Exit codes (Python's Process.exitcode): 0..255 for a child that exited (fn returned, or
 * called exit/_exit), -N for a child killed by signal N (weft_process_terminate gives
 * -SIGTERM, weft_process_kill -SIGKILL).
 *
 * In the child: only the forking thread exists (weft's thread registry says so, see
 * weft/thread.h; for a daemon child that thread is weft's forker, see below, whose
 * thread-local data is not the caller's), and only fn runs on it: started from a coroutine (or from
 * a thread that has coroutines), the thread's other coroutines are copied with its memory but never
 * run in the child, and fn runs as a plain thread's code (it may start coroutines of its own); the
 * caller's cancel request, if it was a canceled task, is cleared; the handles of processes
 * started by the parent are "foreign" there: joining or testing them
 * fails with WEFT_ECHILD (Python: "can only join a child process"), closing them frees the
 * copy. When fn returns, the child applies the exit rules below to its own children, joins
 * its non-daemon weft threads, flushes stdio and ends with _exit(code): the atexit handlers
 * inherited from the parent do not run in the child (Python's os._exit after the target).
 * Before forking, the parent flushes its stdio buffers (fflush(NULL)), so buffered output is
 * never written twice.
 *
 * The exit rules (Python's multiprocessing.util._exit_function), applied when the process
 * exits normally (return from main, exit()) by an atexit handler registered at the first
 * weft_process_start, and in a child when its fn returns:
 *   - daemon children are terminated (SIGTERM), given 1 s, then killed (SIGKILL: the bound
 *     is weft's, Python waits forever), and reaped;
 *   - non-daemon children are joined, without limit (a child that never ends makes exit
 *     hang, as in Python).
 * And one rule Python lacks: a daemon child dies with its parent even when the parent dies
 * without running its exit rules (SIGKILL, _exit, a crash): it gets SIGKILL through
 * PR_SET_PDEATHSIG. Linux sends that signal when the THREAD that forked exits, not the
 * process, so weft forks daemon children from a thread of its own, the forker: started by
 * the first daemon start, living until every daemon child it forked has been reaped (the
 * next daemon start starts it again). A daemon child thus lives as long as the PROCESS that
 * started it, whichever thread started it and whenever that thread ends (Python's rule). The
 * daemon child's fn runs on the forker's copy (a default-sized stack, the starter's signal
 * mask); the starter parks (a coroutine parks only itself) until the child exists.
 *
 * Waiting (join, and the exit rules) watches the child's pidfd (Linux 5.3+), so it never
 * races another waitpid on a reused pid. A thread's wait blocks in poll(2): a cancel
 * request (weft_cancel_requested) is seen within 50 ms. A coroutine's wait parks only the
 * coroutine: its hub's poller watches the pidfd while the thread's other coroutines run. Timeouts
 * are seconds (WEFT_FOREVER blocks; 0 or any other negative value polls; see weft/core.h). Where
 * pidfd_open does not exist (Linux < 5.3, valgrind 3.19), waits poll waitid with a sleep of 20 us
 * doubling to 1 ms in between (a join returns up to 1 ms late), and signals go through kill(),
 * safe because weft only signals a child it has not reaped.
 *
 * Reaping: weft reaps its children itself (join, is_alive, exitcode). Code that reaps them
 * behind weft's back (waitpid(-1), SIGCHLD set to SIG_IGN) makes their exit status unknown:
 * join still returns 0 once they are gone, exitcode then fails with WEFT_ECHILD.
 *
 * Thread safety: every function may be called concurrently from any thread on the same
 * handle, except close, which must be the last call. Nothing here is async-signal-safe.
 * Fork from a thread while others run weft calls is supported (the registry of children is
 * held across fork), but, as with any fork from a multi-threaded process, only
 * async-signal-safe code is safe in the child while locks of other libraries may be held.
 *
 * What a child may use after fork (weft_process_start, or a plain fork(); Python's rule for
 * the "fork" start method), whatever the other threads were doing at the instant of fork:
 *   - weft's own state is whole: new threads, coroutines (a new hub, or the forking thread's
 *     with a poller of its own), IO, Timers (a new timer thread), executors, processes, all
 *     work in the child;
 *   - objects created in shared memory for that purpose (process-shared sync objects, values,
 *     the process queue) are shared with the parent and usable from both at any time;
 *   - a private object (Lock, Queue, Event, a future made by hand...) is a copy: usable if no
 *     other thread was inside a call on it at the instant of fork; one held, or in the middle
 *     of a call, by a thread that does not exist in the child stays so there (as with pthread
 *     objects: see weft/sync.h, weft/queue.h);
 *   - an executor inherited from the parent is not usable: WEFT_EBROKEN, and its pending
 *     futures fail (weft/executor.h); handles of the parent's children are foreign
 *     (WEFT_ECHILD).
 * Checked by tests/process/test_fork_torture.c: forks while threads are inside every family.
 */
#ifndef WEFT_PROCESS_H
#define WEFT_PROCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "weft/core.h"
#include "weft/sync.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A child process handle (multiprocessing.Process). */
typedef struct weft_process weft_process_t;

/* Longest process name, NUL included. */
#define WEFT_PROCESS_NAME_MAX 64

/* How to start a process. Zero-initialised (or a NULL opts) is Python's default: name
 * "Process-N", non-daemon.
 *   name    copied; NULL or "" picks "Process-N"; longer than 63 characters is WEFT_EINVAL
 *   daemon  terminated at exit instead of joined, and killed if the parent dies (above) */
typedef struct weft_process_opts {
    const char *name;      /* see above */
    bool daemon;           /* see above */
    uint64_t reserved_[6]; /* room to grow in 1.x; zero-initialise opts: {0} or {.field = ...} */
} weft_process_opts_t;

/* Forks a child that runs fn(arg) and exits with its return value; stores a handle in *p.
 * The call returns once the child exists (its pid is known, is_alive is true), without
 * waiting for it to run. The first call registers the exit rules.
 * fn: the child's function, run in the child only; its return value (low 8 bits) is the exit
 *   code. Not NULL.
 * arg: passed to fn, in the child's copy of the caller's memory; may be NULL.
 * opts: name and daemon (above; the name is copied); NULL: Python's default.
 * p: receives the handle on 0 (the caller frees it with weft_process_release once the child
 *   has finished), NULL on an error; not NULL.
 * Returns 0 (the child exists), WEFT_EINVAL (p or fn NULL, name too long), WEFT_ENOMEM,
 * WEFT_EAGAIN (fork refused: process limit; or, for a daemon, the forker thread could not be
 * started), WEFT_EMFILE (no fd for the pidfd); on an error no child is left behind (one that
 * was forked is killed and reaped). */
WEFT_EXTERN WEFT_NODISCARD int weft_process_start(int (*fn)(void *arg), void *arg,
                                                  const weft_process_opts_t *opts,
                                                  weft_process_t **p);

/* Waits until the child has ended and reaps it (Process.join). Any number of threads may join
 * the same child at once.
 * p: the handle (weft_process_start).
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 *   value) only looks.
 * Returns 0 once the child has ended (then 0 at once, forever after), WEFT_ETIMEDOUT,
 * WEFT_ECANCELED, WEFT_EINVAL (p NULL, timeout NaN), WEFT_ECHILD (a handle inherited from the
 * parent: not a child of the caller). */
WEFT_EXTERN int weft_process_join(weft_process_t *p, double timeout);

/* Whether the child is still running (Process.is_alive); reaps it if it has ended.
 * p: the handle.
 * Returns true while the child runs; false once it has ended, for NULL and for a foreign
 * handle. */
WEFT_EXTERN bool weft_process_is_alive(weft_process_t *p);

/* Stores the exit code (see above) in *code once the child has ended (reaping it if needed,
 * without waiting).
 * p: the handle.
 * code: receives the exit code on 0 (0..255, or -N for signal N); untouched on an error; not
 *   NULL.
 * Returns 0 (the child has ended), WEFT_EAGAIN while it runs (Python's None), WEFT_ECHILD if
 * its status was reaped behind weft's back or the handle is foreign, WEFT_EINVAL (p or code
 * NULL). */
WEFT_EXTERN int weft_process_exitcode(weft_process_t *p, int *code);

/* The child's pid (kept after it ended; the OS may reuse it then).
 * p: the handle.
 * Returns the pid; -1 for NULL. */
WEFT_EXTERN long weft_process_pid(const weft_process_t *p);

/* The process's name.
 * p: the handle.
 * Returns the name ("Process-N" or the one given), owned by the handle and valid until its
 * release; NULL for NULL. */
WEFT_EXTERN const char *weft_process_name(const weft_process_t *p);

/* Whether the child is a daemon (opts.daemon).
 * p: the handle.
 * Returns opts.daemon as given at the start; false for NULL. */
WEFT_EXTERN bool weft_process_is_daemon(const weft_process_t *p);

/* Sends SIGTERM / SIGKILL to the child (Process.terminate / kill), through its pidfd, so a
 * reused pid is never hit. Does not wait: join afterwards.
 * p: the handle.
 * Returns 0 (sent; also when the child has already ended: nothing is sent), WEFT_ECHILD for a
 * foreign handle, WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_process_terminate(weft_process_t *p);
WEFT_EXTERN int weft_process_kill(weft_process_t *p);

/* Frees the handle (Process.close), reaping the child first if it has ended; a foreign
 * handle (in a forked child) is freed at once.
 * p: the handle; not to be used after a 0.
 * Returns 0 (freed), WEFT_EBUSY while the child runs (nothing happens then: join first),
 * WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_process_release(weft_process_t *p);

/* ---- shared memory ---------------------------------------------------------------------------
 * Memory that several processes see, for weft's process-shared objects and the caller's own
 * data. Anonymous memory is shared with the children started (forked) after it was allocated:
 * they inherit it at the same address, so pointers into it stay valid in all of them. A named
 * region (a POSIX shared memory object, /dev/shm/<name> on Linux) can be opened by unrelated
 * processes, each mapping it at an address of its own: keep offsets, not pointers, in it.
 * Memory is zero-filled when created. Safe from any thread; not async-signal-safe. */

/* Maps size bytes of anonymous shared memory, page-aligned, zero-filled, into *p.
 * size: how many bytes (> 0); keep it for weft_shm_free.
 * p: receives the region's address on 0 (free it with weft_shm_free), NULL on an error; not
 *   NULL.
 * Returns 0, WEFT_EINVAL (p NULL, size 0), WEFT_ENOMEM. */
WEFT_EXTERN WEFT_NODISCARD int weft_shm_alloc(size_t size, void **p);

/* Unmaps a region from weft_shm_alloc or weft_shm_open in the calling process (others keep
 * theirs; the memory goes when the last process unmaps it, and, if named, is unlinked).
 * p: the region's address, as weft_shm_alloc or weft_shm_open gave it.
 * size: the size it was mapped with.
 * Returns 0 (unmapped), WEFT_EINVAL (p NULL or not page-aligned, size 0), WEFT_ENOMEM (the
 * kernel could not split a mapping, vm.max_map_count: the region stays mapped and may be
 * freed again). */
WEFT_EXTERN int weft_shm_free(void *p, size_t size);

/* Maps the named region `name` into *p. Free with weft_shm_free (with the size mapped: the
 * object's size when 0 was passed — weft_shm_open stores it in *size_out if not NULL), and
 * remove the name with weft_shm_unlink.
 * name: "/something": one leading slash, no other, at most 255 characters.
 * size: create: the new region's size in bytes (> 0; zero-filled). Otherwise: map the existing
 *   region's first `size` bytes; 0: all of it.
 * create: true makes a new region (WEFT_EEXIST if the name is taken); false opens an existing
 *   one (WEFT_ENOENT if there is none).
 * p: receives the mapping's address on 0, NULL on an error; not NULL.
 * size_out: receives the size mapped on 0 (the one to give weft_shm_free); may be NULL.
 * Returns 0, WEFT_EEXIST (create, and the name is taken), WEFT_ENOENT (no such region),
 * WEFT_EINVAL (an existing region smaller than size, bad name, p NULL, create with size 0, a
 * size too large for the file system), WEFT_EAGAIN (its creator has not sized it yet),
 * WEFT_EACCES, WEFT_ELOOP (the name is a symbolic link in /dev/shm: shm_open never follows
 * one), WEFT_EMFILE (the process's or the system's fd limit), WEFT_ENOMEM, WEFT_ENOSPC,
 * WEFT_EROFS, WEFT_ESYSTEM (an unexpected errno). */
WEFT_EXTERN WEFT_NODISCARD int weft_shm_open(const char *name, size_t size, bool create, void **p,
                                             size_t *size_out);

/* Removes the name (mappings stay valid until unmapped).
 * name: the region's name, as weft_shm_open took it.
 * Returns 0, WEFT_ENOENT, WEFT_EINVAL (bad name), WEFT_EACCES, WEFT_EPERM, WEFT_ELOOP,
 * WEFT_EROFS, WEFT_ESYSTEM (an unexpected errno). */
WEFT_EXTERN int weft_shm_unlink(const char *name);

/* ---- Pipe / Connection -----------------------------------------------------------------------
 * multiprocessing.Pipe: two connected ends that carry messages of bytes, of any size, each
 * delivered whole and in order (a length-prefixed frame on a Unix stream socket pair, or, for a
 * one-way Pipe, on a pipe(2) as Python's Pipe(False) uses). Make the
 * pipe before starting the process that uses one end: the child inherits both ends; each side
 * usually closes the end it does not use.
 *
 * Errors: WEFT_EEOF when the other end is closed (every copy of it, in every process) and
 * nothing is left to read; WEFT_EPIPE when sending to an end that is closed — never SIGPIPE.
 * Timeouts are seconds (WEFT_FOREVER blocks; 0 or any other negative value polls; see
 * weft/core.h). recv's covers the whole message: a peer that stalls in the middle of one
 * cannot hold the receiver past it. A recv that times
 * out (or is canceled) in the middle of a message keeps the part received inside the
 * connection, and the next recv continues that same message (WEFT_EOVERFLOW still applies to
 * its full length): nothing is lost, nothing misparsed. Only if that part cannot be kept (out
 * of memory) is the message lost; the end is then broken for receiving, every later recv
 * failing with WEFT_EBROKEN. send's timeout covers the wait for the peer to take the first
 * byte; a message whose sending has begun is always sent to its end (never half-sent). A
 * peer that dies or closes in the middle of a message gives WEFT_EEOF / WEFT_EPIPE, and that
 * message is lost. A frame header is a 64-bit length: any value is legal, a length beyond
 * every buffer is reported by WEFT_EOVERFLOW (as SIZE_MAX when it does not fit a size_t) and
 * stays next in line like any message too long for the buffer.
 * Thread safety: any number of threads may send and receive on one end at once (each
 * direction is serialised by a lock; messages never interleave). A thread's wait blocks it:
 * with a deadline, or inside an executor task, in poll(2) (inside a task in slices of at most
 * 50 ms, so a cancel request is seen); otherwise in the system call itself (a one-way Pipe's
 * ends are non-blocking: a receiver with nothing to read, or a sender with a full pipe, waits in
 * poll(2); a sender looks every 100 ms whether the receiving ends were closed meanwhile). A
 * coroutine's wait
 * parks only the coroutine, through its hub's poller. Cost: a small message is one write(2) and
 * less than one read(2) (the receiver reads many at once); a one-way Pipe's write is a pipe's,
 * a duplex one's a socket's sendmsg, about 3 times dearer; weft_mpqueue is the fast path
 * between processes. Fork: both processes may use their copies, but two processes receiving on
 * copies of the same end race for messages byte-wise, and two processes SENDING on copies of
 * the same end interleave the bytes of messages larger than the pipe's atomic unit (a few
 * KiB), which corrupts the stream for good (as Python's multiprocessing documents): give each
 * end to one process, or let several children report through a weft_mpqueue. */
typedef struct weft_conn weft_conn_t;

/* Makes a connected pair (Pipe(duplex)). A one-way pair uses five fds (its pipe, a second
 * pipe that tells the sender whether a receiving end is open, a copy of the read end that
 * keeps SIGPIPE away), a duplex pair two.
 * duplex: true: both ends send and receive; false: *a only receives and *b only sends
 *   (Pipe(False)).
 * a: receives the first end on 0 (free with weft_conn_release), NULL on an error; not NULL.
 * b: receives the second end the same way; not NULL.
 * Returns 0, WEFT_EINVAL (a or b NULL), WEFT_ENOMEM, WEFT_EMFILE. */
WEFT_EXTERN WEFT_NODISCARD int weft_pipe_create(bool duplex, weft_conn_t **a, weft_conn_t **b);

/* Sends len bytes from buf as one message.
 * c: an end that sends.
 * buf: the message's bytes, copied out before the call returns; may be NULL when len is 0.
 * len: the message's length (0 is a valid, empty message).
 * timeout: seconds to wait for the peer to take the first byte (above); WEFT_FOREVER waits
 *   without a limit, 0 (or any other negative value) only tries.
 * Returns 0 (sent whole), WEFT_EPIPE, WEFT_ETIMEDOUT, WEFT_ECANCELED (nothing sent in these
 * two cases), WEFT_EBADF (a receive-only end), WEFT_EINVAL (c NULL, buf NULL with len > 0,
 * NaN). */
WEFT_EXTERN WEFT_NODISCARD int weft_conn_send_bytes(weft_conn_t *c, const void *buf, size_t len,
                                                    double timeout);

/* Receives the next message into buf and stores its length in *len.
 * c: an end that receives.
 * buf: where the message goes, cap bytes of room; may be NULL when cap is 0. Its contents are
 *   unspecified after WEFT_ETIMEDOUT or WEFT_ECANCELED.
 * cap: buf's size in bytes.
 * timeout: seconds for the whole message (above); WEFT_FOREVER waits without a limit, 0 (or
 *   any other negative value) only tries.
 * len: receives the message's length on 0, and on WEFT_EOVERFLOW its full length (SIZE_MAX if
 *   it does not fit a size_t); set only in those two cases; not NULL.
 * Returns 0, WEFT_EOVERFLOW if the message is longer than cap (it stays next in line:
 * Python's BufferTooShort, without losing it; call again with a big enough buffer),
 * WEFT_ETIMEDOUT, WEFT_ECANCELED: the message is not complete (nothing of it may have come,
 * or part of it: that part is kept for the next call). WEFT_EEOF, WEFT_EBROKEN (an earlier
 * timed-out recv could not keep its part of a message: the stream is out of step), WEFT_EBADF
 * (a send-only end), WEFT_EINVAL (c or len NULL, buf NULL with cap > 0, NaN). */
WEFT_EXTERN WEFT_NODISCARD int weft_conn_recv_bytes(weft_conn_t *c, void *buf, size_t cap,
                                                    double timeout, size_t *len);

/* Waits until there is something to receive (Connection.poll).
 * c: an end that receives.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 *   value) only looks.
 * Returns 0 when a message (or part of one, such as the part a timed-out recv kept) is there,
 * the other end is closed (recv then reports WEFT_EEOF) or the end is broken (recv reports
 * WEFT_EBROKEN); WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_EBADF (send-only), WEFT_EINVAL (c
 * NULL, timeout NaN). */
WEFT_EXTERN int weft_conn_poll(weft_conn_t *c, double timeout);

/* The end's socket (a one-way Pipe's: its pipe), to watch it with poll/epoll (readable:
 * weft_conn_poll would return 0, unless data is already buffered in the connection: call
 * weft_conn_poll(c, 0) first).
 * c: the end.
 * Returns the fd, owned by c (do not close it; valid until weft_conn_release); -1 for NULL. */
WEFT_EXTERN int weft_conn_fileno(const weft_conn_t *c);

/* Closes this process's copy of the end and frees c. The peer sees EOF once every copy is
 * closed.
 * c: the end; must not be in use by another thread, nor used after.
 * Returns 0, WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_conn_release(weft_conn_t *c);
/* Names c for the task dump and the deadlock report (weft/debug.h): the Pipe end ("Pipe 'name'
 * recv") shows as
 * "'name'" there. From any thread or coroutine; not from a signal handler (it locks and
 * allocates).
 * c: the end.
 * name: the name; a copy is kept (up to 47 bytes, longer is cut); NULL or "" removes it; its
 *   last release drops it.
 * Returns 0, WEFT_EINVAL (c NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_conn_set_name(weft_conn_t *c, const char *name);

/* ---- process-shared Lock, RLock, Semaphore, Event, Condition ------------------------------
 * multiprocessing.Lock & co: the weft_lock_t, weft_rlock_t, weft_semaphore_t, weft_event_t and
 * weft_condition_t of weft/sync.h, initialised with the functions below instead of their
 * plain init, in memory every process using them maps (weft_shm_alloc before starting the
 * children, or a named region). From then on the ordinary functions of weft/sync.h work on
 * them, from any thread of any of those processes, with these differences:
 *   - Lock is owned, and robust. Only the thread that acquired it may release it (others get
 *     WEFT_EPERM; Python's multiprocessing.Lock lets anyone release); re-acquiring it from
 *     the context that holds it fails at once with WEFT_EDEADLK, while another coroutine of
 *     the holder's thread waits for it as any other waiter. If its owner dies holding it
 *     (its process killed, its thread gone), the next acquire succeeds with
 *     WEFT_EOWNERDEAD: the caller holds the lock, but the data it protects may be
 *     half-updated — repair or discard it. A waiter blocked on the lock when that happens is
 *     woken with it. Same for RLock, whose owner is the thread (coroutines of one thread
 *     share its levels).
 *   - Semaphore and Condition do not serve waiters in FIFO order; a Condition's notify(n)
 *     still wakes at most n waiters (a notification racing with a waiter's timeout counts as
 *     received, as in Python); the condition's lock must be a process-shared Lock or RLock in
 *     the same mapping as the condition (or NULL for its own RLock), which may be mapped at
 *     different addresses in different processes.
 *   - Nothing is allocated and no pointer is stored, except by weft_condition_init_shared's
 *     offset to the lock. A thread's blocking call sleeps on a process-shared futex word of
 *     the object (for Lock, its pthread robust mutex's), inside an executor task in 50 ms slices so
 *     that a cancel request (WEFT_ECANCELED) is seen. A coroutine's cannot sleep there (that
 *     would stop every coroutine of its thread): it looks at the word (tries the mutex)
 *     between naps of 20 us doubling to 1 ms, parking only itself; it may so see a change up
 *     to 1 ms late, and is canceled like any coroutine wait.
 *   - A process killed while it waits, or while it holds a Semaphore unit, leaves nothing
 *     behind but that unit (Semaphore has no owner to give it back).
 *   - destroy: WEFT_EBUSY while held or waited on; a process must not destroy an object that
 *     others may still use.
 * Init errors: WEFT_EINVAL (NULL; for the condition, both locks given, or a lock that is not
 * process-shared), WEFT_ENOSYS (the C library lacks robust process-shared mutexes).
 * Init must not race with any other use.
 * No static initializers (WEFT_LOCK_INIT & co make process-private objects): a shared object
 * lives in memory mapped at run time (weft_shm_alloc, a named region), never in static storage,
 * a shared Lock is a robust pthread mutex that only pthread_mutex_init can set up, and a shared
 * Condition stores its lock's offset from itself. */

/* Initialises an unlocked process-shared Lock (robust and owned: above).
 * l: the lock, in memory every process using it maps; destroy it with weft_lock_destroy.
 * Returns 0, WEFT_EINVAL (l NULL), WEFT_ENOSYS (the C library lacks robust process-shared
 * mutexes), WEFT_ENOMEM (no memory for the mutex attributes). */
WEFT_EXTERN WEFT_NODISCARD int weft_lock_init_shared(weft_lock_t *l);

/* Initialises an unlocked process-shared RLock (robust, owned by a thread: above).
 * r: the lock, in memory every process using it maps; destroy it with weft_rlock_destroy.
 * Returns 0, WEFT_EINVAL (r NULL), WEFT_ENOSYS (the C library lacks robust process-shared
 * mutexes), WEFT_ENOMEM (no memory for the mutex attributes). */
WEFT_EXTERN WEFT_NODISCARD int weft_rlock_init_shared(weft_rlock_t *r);

/* Initialises a process-shared Semaphore (waiters not served in FIFO order: above).
 * s: the semaphore, in memory every process using it maps.
 * value: the initial units (<= WEFT_SEMAPHORE_MAX).
 * bounded: true: a BoundedSemaphore (a release that would raise the value above its initial
 *   value fails with WEFT_EOVERFLOW, as weft_semaphore_init's).
 * Returns 0, WEFT_EINVAL (s NULL, value above WEFT_SEMAPHORE_MAX). */
WEFT_EXTERN WEFT_NODISCARD int weft_semaphore_init_shared(weft_semaphore_t *s, unsigned value,
                                                          bool bounded);

/* Initialises a process-shared Event, not set.
 * e: the event, in memory every process using it maps.
 * Returns 0, WEFT_EINVAL (e NULL). */
WEFT_EXTERN WEFT_NODISCARD int weft_event_init_shared(weft_event_t *e);

/* Initialises a process-shared Condition bound to lock, to rlock, or (both NULL) to an RLock
 * of its own.
 * c: the condition, in memory every process using it maps.
 * lock: a process-shared Lock in the same mapping as c (kept as an offset from c); NULL: none.
 * rlock: a process-shared RLock in the same mapping as c; NULL: none. Not both with lock.
 * Returns 0, WEFT_EINVAL (c NULL, both locks given, or a lock that is not process-shared),
 * WEFT_ENOSYS (the C library lacks robust process-shared mutexes, for its own RLock),
 * WEFT_ENOMEM (no memory for the mutex attributes). */
WEFT_EXTERN WEFT_NODISCARD int weft_condition_init_shared(weft_condition_t *c, weft_lock_t *lock,
                                                          weft_rlock_t *rlock);

/* ---- Value -------------------------------------------------------------------------------
 * multiprocessing.Value('q') for C: a 64-bit signed integer, caller-allocated in shared memory
 * (or anywhere), read and changed atomically without a lock, so a process killed in the middle
 * of a change leaves either the old or the new value. add is Python's `with v.get_lock():
 * v.value += delta` in one atomic step. All calls are safe from any thread or process, from
 * signal handlers, and never block. WEFT_EINVAL for NULL pointers. */
typedef struct weft_value {
    WEFT__ATOMIC(int64_t) v_;
    uint64_t reserved_[1]; /* room to grow within 1.x; zero */
} weft_value_t;

/* A static initializer, the same as weft_value_init(v, initial). For a Value in shared memory
 * made at run time (weft_shm_alloc), use weft_value_init. */
#define WEFT_VALUE_INIT(initial)                                                                   \
    {                                                                                              \
        (initial),                                                                                 \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Initialises v holding initial.
 * v: the Value (in shared memory, or anywhere).
 * initial: the value it holds.
 * Returns 0, WEFT_EINVAL if v is NULL. */
WEFT_EXTERN int weft_value_init(weft_value_t *v, int64_t initial);
/* Ends v's use. A Value holds no resource and is never busy: this only completes the
 * init/destroy pair; v may then be freed or initialised again.
 * v: the Value.
 * Returns 0, WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_value_destroy(weft_value_t *v);

/* Reads the value into *out (atomic).
 * v: the Value.
 * out: receives the value on 0; not NULL.
 * Returns 0, WEFT_EINVAL (v or out NULL). */
WEFT_EXTERN int weft_value_get(const weft_value_t *v, int64_t *out);

/* Stores value (atomic).
 * v: the Value.
 * value: the new value.
 * Returns 0, WEFT_EINVAL (v NULL). */
WEFT_EXTERN int weft_value_set(weft_value_t *v, int64_t value);

/* Adds delta (wrapping around on overflow, as two's complement), in one atomic step.
 * v: the Value.
 * delta: what to add (negative subtracts).
 * result: receives the new value on 0; may be NULL.
 * Returns 0, WEFT_EINVAL (v NULL). */
WEFT_EXTERN int weft_value_add(weft_value_t *v, int64_t delta, int64_t *result);

/* ---- Queue / JoinableQueue between processes ------------------------------------------------
 * multiprocessing.Queue and JoinableQueue for C: messages of bytes, any size up to the
 * capacity, passed between processes through a ring buffer in anonymous shared memory. Create
 * it before starting the processes that use it: they inherit it (the handle is private memory
 * that a forked child gets a copy of, pointing at the shared mapping, which the child inherits
 * at the same address). Unlike Python's there is no feeder thread:
 * put copies the message into the ring and returns, so a put that returned 0 is in the queue,
 * visible to every process at once, and stays there if its sender dies.
 *
 * Order: FIFO across all producers (the order their puts took the queue's lock). Bounds: the
 * ring's byte capacity (each message takes its length plus 8 bytes, rounded up to 8) and
 * optionally maxsize messages; put blocks while either is exhausted.
 *
 * Robustness: the queue's state lives behind a robust process-shared lock and changes under
 * a journal, so a process SIGKILLed at any instant — inside put, get or task_done, holding the
 * lock or not — costs at most the one message it was putting or had just got: never a message
 * delivered twice, never half a message, never a queue left locked. (A process killed while
 * it slept in put/get leaves a stale sleeper count behind: later calls may wake nobody in
 * vain, which costs time, not correctness.) A consumer killed between get and task_done
 * leaves that task unfinished: join then waits for it, as in Python.
 *
 * A thread's wait spins for the waiting core's budget (WEFT_SPIN_NS in the environment, read
 * once, as secure_getenv reads it: ignored in a setuid/setgid or file-capability program), then
 * sleeps on process-shared futex words of the queue (inside an executor task in 50 ms slices
 * so that a cancel request, WEFT_ECANCELED, is seen); a coroutine's wait parks only the coroutine
 * and looks again between naps of 20 us doubling to 1 ms (as the shared Lock & co above). Timeouts
 * are seconds (WEFT_FOREVER blocks; 0 or any other negative value polls; see weft/core.h). Thread
 * safety: every call but release may be made from any thread of any process sharing the queue. Not
 * async-signal-safe.
 *
 * Trust: a process sharing the queue can write anything into the shared memory. It can lose,
 * garble or invent messages (as any process with the memory could), but cannot make a call
 * in another process touch memory outside the queue: the sizes a process maps, masks and
 * bounds with are its own private copies, and a record length in the ring longer than the
 * ring is refused (WEFT_EBROKEN) instead of read. */
typedef struct weft_mpqueue weft_mpqueue_t;

/* Creates a queue (in anonymous shared memory: create it before starting its processes).
 * capacity: the ring's size in bytes (rounded up to a power of two, at least 4 KiB; 0: 1 MiB;
 *   at most 2^40).
 * maxsize: the most messages queued at once; 0: as many as fit.
 * joinable: true counts unfinished tasks for task_done / join (JoinableQueue).
 * q: receives the queue on 0 (free with weft_mpqueue_release), NULL on an error; not NULL.
 * Returns 0, WEFT_EINVAL (q NULL, capacity above 2^40), WEFT_ENOMEM, WEFT_ENOSYS (the C
 * library lacks robust process-shared mutexes). */
WEFT_EXTERN WEFT_NODISCARD int weft_mpqueue_create(size_t capacity, size_t maxsize, bool joinable,
                                                   weft_mpqueue_t **q);

/* Unmaps the queue in the calling process (the size it mapped, whatever the shared memory
 * says) and frees this process's handle (other processes keep theirs; the memory goes with
 * the last).
 * q: the queue; no thread of this process may be using it, nor use it after.
 * Returns 0, WEFT_EINVAL for NULL; WEFT_ENOMEM if the kernel refused the unmap (the memory
 * stays mapped in this process; the handle is freed all the same). */
WEFT_EXTERN int weft_mpqueue_release(weft_mpqueue_t *q);
/* Names q for the task dump and the deadlock report (weft/debug.h): the process Queue shows as
 * "'name'" there. From any thread or coroutine; not from a signal handler (it locks and
 * allocates).
 * q: the queue (this process's handle).
 * name: the name; a copy is kept (up to 47 bytes, longer is cut); NULL or "" removes it; its
 *   last release drops it.
 * Returns 0, WEFT_EINVAL (q NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_mpqueue_set_name(weft_mpqueue_t *q, const char *name);

/* Puts a copy of len bytes from buf at the tail, waiting up to timeout for room.
 * q: the queue.
 * buf: the message's bytes, copied into the ring; may be NULL when len is 0.
 * len: the message's length (0 is a valid, empty message).
 * timeout: seconds to wait for room; WEFT_FOREVER waits without a limit, 0 (or any other
 *   negative value) only tries.
 * Returns 0 (queued), WEFT_ETIMEDOUT (queue.Full), WEFT_ECANCELED, WEFT_EOVERFLOW (the
 * message could never fit the ring: longer than the capacity less 8 bytes, any len up to
 * SIZE_MAX included), WEFT_ESHUTDOWN (closed), WEFT_EINVAL (q NULL, buf NULL with len > 0,
 * NaN). */
WEFT_EXTERN WEFT_NODISCARD int weft_mpqueue_put(weft_mpqueue_t *q, const void *buf, size_t len,
                                                double timeout);

/* Takes the message at the head into buf and stores its length in *len, waiting up to timeout
 * for one.
 * q: the queue.
 * buf: where the message goes, cap bytes of room; may be NULL when cap is 0.
 * cap: buf's size in bytes.
 * timeout: seconds to wait for a message; WEFT_FOREVER waits without a limit, 0 (or any other
 *   negative value) only tries.
 * len: receives the message's length on 0 and on WEFT_EOVERFLOW; not NULL.
 * Returns 0 (taken), WEFT_EOVERFLOW when it is longer than cap (*len is set to its length and
 * it stays at the head: call again with a big enough buffer), WEFT_ETIMEDOUT (queue.Empty),
 * WEFT_ECANCELED, WEFT_ESHUTDOWN (closed and empty), WEFT_EBROKEN (the record at the head
 * claims more bytes than the ring holds: the shared memory was overwritten; it stays there),
 * WEFT_EINVAL (q or len NULL, buf NULL with cap > 0, NaN). */
WEFT_EXTERN WEFT_NODISCARD int weft_mpqueue_get(weft_mpqueue_t *q, void *buf, size_t cap,
                                                double timeout, size_t *len);

/* put with timeout 0 (Queue.put_nowait). (A busy lock is still waited for, up to 5 ms.)
 * q: the queue.
 * buf: the message's bytes; may be NULL when len is 0.
 * len: the message's length.
 * Returns 0 (queued), WEFT_ETIMEDOUT (queue.Full: no room now), other codes as
 * weft_mpqueue_put's. */
WEFT_EXTERN WEFT_NODISCARD int weft_mpqueue_put_nowait(weft_mpqueue_t *q, const void *buf,
                                                       size_t len);

/* get with timeout 0 (Queue.get_nowait). (A busy lock is still waited for, up to 5 ms.)
 * q: the queue.
 * buf: where the message goes, cap bytes of room; may be NULL when cap is 0.
 * cap: buf's size in bytes.
 * len: receives the message's length on 0 and on WEFT_EOVERFLOW; not NULL.
 * Returns 0 (taken), WEFT_ETIMEDOUT (queue.Empty: none now), other codes as
 * weft_mpqueue_get's. */
WEFT_EXTERN WEFT_NODISCARD int weft_mpqueue_get_nowait(weft_mpqueue_t *q, void *buf, size_t cap,
                                                       size_t *len);

/* Closes the queue for every process sharing it (Python's Queue.close, which only stops the
 * caller's feeder, plus 3.13's shutdown: there is no feeder here to stop). From then on put
 * fails with WEFT_ESHUTDOWN; get still takes what is queued, then fails with WEFT_ESHUTDOWN
 * instead of waiting; callers blocked in put or get wake and do the same. task_done and join
 * are unaffected. Idempotent; the memory stays until release.
 * q: the queue.
 * Returns 0 (closed, or already was), WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_mpqueue_close(weft_mpqueue_t *q);

/* Snapshot: the number of messages queued (it may have changed when the caller looks).
 * q: the queue.
 * Returns the messages queued; 0 for NULL. */
WEFT_EXTERN size_t weft_mpqueue_qsize(weft_mpqueue_t *q);

/* Snapshot: whether no message is queued.
 * q: the queue.
 * Returns true when none is queued; false when one is, and for NULL. */
WEFT_EXTERN bool weft_mpqueue_empty(weft_mpqueue_t *q);

/* Snapshot: whether there is no room for a message of len bytes.
 * q: the queue.
 * len: the message length to ask about.
 * Returns true when a put of len bytes would not go in now (ring or maxsize exhausted, or len
 * could never fit the ring); false when it fits, and for NULL. */
WEFT_EXTERN bool weft_mpqueue_full(weft_mpqueue_t *q, size_t len);

/* JoinableQueue.task_done: marks one message taken with get as processed.
 * q: a joinable queue.
 * Returns 0, WEFT_EINVAL when called more times than messages were put (Python's ValueError)
 * or q is NULL, WEFT_ENOTSUP on a queue not created joinable. */
WEFT_EXTERN int weft_mpqueue_task_done(weft_mpqueue_t *q);

/* JoinableQueue.join: waits until every message ever put has been marked done.
 * q: a joinable queue.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 *   value) only looks.
 * Returns 0 (all done), WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_ENOTSUP (not joinable),
 * WEFT_EINVAL (q NULL, timeout NaN). */
WEFT_EXTERN int weft_mpqueue_join(weft_mpqueue_t *q, double timeout);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_PROCESS_H */
