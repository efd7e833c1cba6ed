/* Shared memory: anonymous regions inherited by children, named regions opened by name.
 * CPython mirrors: Lib/test/_test_multiprocessing.py _TestSharedMemory (test_shared_memory_basics,
 * test_shared_memory_across_processes), and sharedctypes' inheritance by a forked child. */
#include "weft_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char *region;

static int write_region(void *arg)
{
    strcpy(region, arg);
    return 0;
}

static void join_ok(weft_process_t *p)
{
    int code = -1;
    assert_int_equal(weft_process_join(p, 30), 0);
    assert_int_equal(weft_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(weft_process_release(p), 0);
}

/* sharedctypes / Value(lock=False) in a forked child: what the child writes to an anonymous
 * region allocated before the fork, the parent reads; the region starts zero-filled. */
static void shm_anonymous_region_is_shared_with_children(void **state)
{
    (void)state;
    size_t size = 3 * 4096 + 5;
    assert_int_equal(weft_shm_alloc(size, (void **)&region), 0);
    for (size_t i = 0; i < size; i++) assert_int_equal(region[i], 0);
    weft_process_t *p;
    assert_int_equal(weft_process_start(write_region, "from the child", NULL, &p), 0);
    join_ok(p);
    assert_string_equal(region, "from the child");
    assert_int_equal(weft_shm_free(region, size), 0);
}

static void unique_name(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/weft-test-%s-%d", tag, (int)getpid());
}

/* test_shared_memory_basics: create, open a second mapping by name (same bytes, another
 * address), a second create fails, the size check, unlink. */
static void shm_named_create_open_unlink(void **state)
{
    (void)state;
    char name[64];
    unique_name(name, sizeof name, "basics");
    void *a, *b, *c;
    size_t size = 0;
    assert_int_equal(weft_shm_open(name, 10000, true, &a, &size), 0);
    assert_int_equal(size, 10000);
    assert_int_equal(weft_shm_open(name, 10000, true, &c, NULL), WEFT_EEXIST);
    assert_null(c);
    assert_int_equal(weft_shm_open(name, 0, false, &b, &size), 0); /* 0: the whole object */
    assert_int_equal(size, 10000);
    assert_ptr_not_equal(a, b);
    strcpy(a, "same bytes");
    assert_string_equal(b, "same bytes");
    assert_int_equal(weft_shm_open(name, 20000, false, &c, NULL), WEFT_EINVAL); /* too short */
    assert_int_equal(weft_shm_unlink(name), 0);
    assert_int_equal(weft_shm_unlink(name), WEFT_ENOENT);
    assert_int_equal(weft_shm_open(name, 0, false, &c, NULL), WEFT_ENOENT);
    assert_string_equal(a, "same bytes"); /* mappings outlive the name */
    assert_int_equal(weft_shm_free(a, 10000), 0);
    assert_int_equal(weft_shm_free(b, 10000), 0);
}

/* test_shared_memory_across_processes: a process opens the region by name and writes. */
static int open_and_write(void *arg)
{
    void *p;
    size_t size;
    if (weft_shm_open(arg, 0, false, &p, &size)) return 1;
    strcpy(p, "written by name");
    return weft_shm_free(p, size) ? 2 : 0;
}

static void shm_named_region_across_processes(void **state)
{
    (void)state;
    char name[64];
    unique_name(name, sizeof name, "across");
    void *a;
    assert_int_equal(weft_shm_open(name, 4096, true, &a, NULL), 0);
    weft_process_t *p;
    assert_int_equal(weft_process_start(open_and_write, name, NULL, &p), 0);
    join_ok(p);
    assert_string_equal(a, "written by name");
    assert_int_equal(weft_shm_unlink(name), 0);
    assert_int_equal(weft_shm_free(a, 4096), 0);
}

static void shm_bad_input(void **state)
{
    (void)state;
    void *p = (void *)1;
    assert_int_equal(weft_shm_alloc(10, NULL), WEFT_EINVAL);
    assert_int_equal(weft_shm_alloc(0, &p), WEFT_EINVAL);
    assert_null(p);
    assert_int_equal(weft_shm_free(NULL, 10), WEFT_EINVAL);
    assert_int_equal(weft_shm_free((char *)&p + 1, 10), WEFT_EINVAL);
    assert_int_equal(weft_shm_open("/x", 10, true, NULL, NULL), WEFT_EINVAL);
    const char *bad[] = {NULL, "", "/", "noslash", "/a/b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(weft_shm_open(bad[i], 10, true, &p, NULL), WEFT_EINVAL);
        assert_int_equal(weft_shm_unlink(bad[i]), WEFT_EINVAL);
    }
    char longname[300];
    memset(longname, 'a', sizeof longname);
    longname[0] = '/';
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(weft_shm_open(longname, 10, true, &p, NULL), WEFT_EINVAL);
    char name[64];
    unique_name(name, sizeof name, "zero");
    assert_int_equal(weft_shm_open(name, 0, true, &p, NULL), WEFT_EINVAL); /* create needs a size */
    assert_int_equal(weft_shm_open(name, 0, false, &p, NULL), WEFT_ENOENT);
}

/* A name that is a symlink in /dev/shm: shm_open refuses to follow it (ELOOP), and weft says
 * so with a named code, not a raw errno weft_error_message cannot name. */
static void shm_open_through_a_symlink_is_a_named_error(void **state)
{
    (void)state;
    char name[64], path[96];
    unique_name(name, sizeof name, "link");
    snprintf(path, sizeof path, "/dev/shm%s", name);
    assert_int_equal(symlink("/dev/null", path), 0);
    void *p = (void *)1;
    int rc = weft_shm_open(name, 0, false, &p, NULL);
    unlink(path);
    assert_null(p);
    assert_int_equal(rc, WEFT_ELOOP);
    assert_string_not_equal(weft_error_name(rc), "WEFT_UNKNOWN");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(shm_open_through_a_symlink_is_a_named_error),
        WEFT_TEST(shm_anonymous_region_is_shared_with_children),
        WEFT_TEST(shm_named_create_open_unlink),
        WEFT_TEST(shm_named_region_across_processes),
        WEFT_TEST(shm_bad_input),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
