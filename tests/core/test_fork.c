/*
 * The core's fork hooks and exit rules (src/core/fork.c): every layer registers its part, and
 * the core runs them in layer order, as glibc runs pthread_atfork handlers in registration
 * order (prepare reversed) — but by rank, whatever order the layers happened to register in.
 * White-box: the cases register hooks of their own at chosen ranks and record the order in
 * which they run.
 */
#include "weft_test.h"

#include "core/core_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What ran, in order: one letter per hook, per phase (the hooks below are one function per
 * letter and phase: a hook takes no argument). */
static char prepared[16], parented[16], childed[16], freshened[16], exited[16];

static void note(char *log, char c)
{
    size_t n = strlen(log);
    if (n + 1 < sizeof prepared) log[n] = c;
}

#define HOOKS(x)                                                                                   \
    static void prepare_##x(void)                                                                  \
    {                                                                                              \
        note(prepared, #x[0]);                                                                     \
    }                                                                                              \
    static void parent_##x(void)                                                                   \
    {                                                                                              \
        note(parented, #x[0]);                                                                     \
    }                                                                                              \
    static void child_##x(void)                                                                    \
    {                                                                                              \
        note(childed, #x[0]);                                                                      \
    }                                                                                              \
    static void fresh_##x(void)                                                                    \
    {                                                                                              \
        note(freshened, #x[0]);                                                                    \
    }
HOOKS(a) /* thread, registered first */
HOOKS(b) /* thread, registered second */
HOOKS(i) /* io */
HOOKS(e) /* executor */
#undef HOOKS

#define HOOK_SET(x, layer)                                                                         \
    {                                                                                              \
        .rank = layer, .prepare = prepare_##x, .parent = parent_##x, .child = child_##x,           \
        .fresh = fresh_##x                                                                         \
    }
static const weft__fork_hooks_t hooks_a = HOOK_SET(a, WEFT__LAYER_THREAD),
                                hooks_b = HOOK_SET(b, WEFT__LAYER_THREAD),
                                hooks_i = HOOK_SET(i, WEFT__LAYER_IO),
                                hooks_e = HOOK_SET(e, WEFT__LAYER_EXECUTOR);
#undef HOOK_SET

/* Registered out of layer order: io, thread (a), executor, thread (b). */
static void register_scrambled(void)
{
    assert_int_equal(weft__fork_register(&hooks_i), 0);
    assert_int_equal(weft__fork_register(&hooks_a), 0);
    assert_int_equal(weft__fork_register(&hooks_e), 0);
    assert_int_equal(weft__fork_register(&hooks_b), 0);
}

/* Reaps pid and returns its exit status (-1 when it did not exit normally). */
static int child_status(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* prepare runs top layer first (the later of two registrations of a rank first); parent and
 * child run bottom layer first (the earlier first): pthread_atfork's rule, by layer. */
static void fork_hooks_run_in_layer_order(void **state)
{
    (void)state;
    register_scrambled();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(strcmp(prepared, "eiba") ? 1 : strcmp(childed, "abie") ? 2 : parented[0] ? 3 : 0);
    assert_int_equal(child_status(pid), 0);
    assert_string_equal(prepared, "eiba");
    assert_string_equal(parented, "abie");
    assert_string_equal(childed, "");
    assert_string_equal(freshened, "");
}

/* Registering the same hooks again adds nothing: each runs once per fork. */
static void fork_hooks_registered_twice_run_once(void **state)
{
    (void)state;
    register_scrambled();
    register_scrambled();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(strcmp(childed, "abie") ? 1 : 0);
    assert_int_equal(child_status(pid), 0);
    assert_string_equal(prepared, "eiba");
    assert_string_equal(parented, "abie");
}

/* A child that runs one function alone resets top layer first (weft__fork_fresh); a plain
 * fork runs no fresh hook. */
static void fresh_hooks_run_top_layer_first(void **state)
{
    (void)state;
    register_scrambled();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freshened[0]) _exit(1);
        weft__fork_fresh();
        _exit(strcmp(freshened, "eiba") ? 2 : 0);
    }
    assert_int_equal(child_status(pid), 0);
    assert_string_equal(freshened, "");
}

static int report_fd = -1;

static void exit_a(void)
{
    note(exited, 'a');
}

static void exit_i(void)
{
    note(exited, 'i');
}

static void exit_e(void)
{
    note(exited, 'e');
}

/* The last rule (the bottom layer's, registered last): notes itself and reports the order. */
static void exit_late(void)
{
    note(exited, 'l');
    ssize_t w = write(report_fd, exited, strlen(exited));
    (void)w;
}

static const weft__exit_rule_t rule_a = {WEFT__LAYER_THREAD, exit_a},
                               rule_i = {WEFT__LAYER_IO, exit_i},
                               rule_late = {WEFT__LAYER_CORE, exit_late};

/* The executor's rule registers another (as a rule that starts a thread would): it runs too. */
static void exit_e_registering(void)
{
    exit_e();
    weft__exit_register(&rule_late);
}

static const weft__exit_rule_t rule_e = {WEFT__LAYER_EXECUTOR, exit_e_registering};

/* Exit rules run top layer first, once each, at exit() through the core's one atexit
 * handler; a rule registered while they run runs as well. (In a child, so that this test's
 * own exit does not run them.) */
static void exit_rules_run_top_layer_first_at_exit(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        report_fd = fds[1];
        if (weft__exit_register(&rule_i) || weft__exit_register(&rule_a) ||
            weft__exit_register(&rule_e) || weft__exit_register(&rule_i))
            _exit(2);
        exit(0);
    }
    close(fds[1]);
    assert_int_equal(child_status(pid), 0);
    char got[16] = {0};
    ssize_t n = read(fds[0], got, sizeof got - 1);
    close(fds[0]);
    assert_true(n > 0);
    assert_string_equal(got, "eial");
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(fork_hooks_run_in_layer_order),
    WEFT_TEST(fork_hooks_registered_twice_run_once),
    WEFT_TEST(fresh_hooks_run_top_layer_first),
    WEFT_TEST(exit_rules_run_top_layer_first_at_exit),
};

WEFT_TEST_MAIN(cases)
