/*
 * shm.c — shared memory: anonymous shared mappings (inherited by forked children at the same
 * address) and named POSIX shared memory objects. Thin on purpose: what weft adds is the
 * error convention, name checking, zero-sized and short-object checks, and the
 * create-exclusive rule that keeps two creators from sharing one region by accident.
 */
#include "process_internal.h"
#include "../core/sys_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static bool page_aligned(const void *p)
{
    return ((uintptr_t)p & ((uintptr_t)sysconf(_SC_PAGESIZE) - 1)) == 0;
}

int weft_shm_alloc(size_t size, void **p)
{
    if (!p) return WEFT_EINVAL;
    *p = NULL;
    if (size == 0) return WEFT_EINVAL;
    void *m = weft__sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return WEFT_ENOMEM;
    *p = m;
    return 0;
}

int weft_shm_free(void *p, size_t size)
{
    if (!p || size == 0 || !page_aligned(p)) return WEFT_EINVAL;
    /* EINVAL cannot come from a page-aligned p and size > 0 but for a range past the address
     * space; ENOMEM is the kernel failing to split a mapping: it stays mapped. */
    if (weft__sys_munmap(p, size) == 0) return 0;
    return errno == ENOMEM ? WEFT_ENOMEM : WEFT_EINVAL;
}

static bool valid_name(const char *name)
{
    if (!name || name[0] != '/' || name[1] == '\0') return false;
    size_t len = strlen(name);
    return len <= NAME_MAX && !strchr(name + 1, '/');
}

/* errno of shm_open / ftruncate / mmap as a weft code. */
static int shm_error(void)
{
    switch (errno) {
    case ENFILE:
        return WEFT_EMFILE;
    case EFBIG:
    case ENAMETOOLONG:
        return WEFT_EINVAL;
    default:
        return weft__errno(errno);
    }
}

int weft_shm_open(const char *name, size_t size, bool create, void **p, size_t *size_out)
{
    if (!p) return WEFT_EINVAL;
    *p = NULL;
    if (!valid_name(name) || (create && size == 0) || size > (size_t)INT64_MAX) return WEFT_EINVAL;
    int fd = weft__sys_shm_open(name, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
    if (fd < 0) return shm_error();
    int rc = 0;
    struct stat st;
    if (create) {
        if (weft__sys_ftruncate(fd, (off_t)size) < 0) rc = shm_error();
    } else if (fstat(fd, &st) < 0) {
        rc = shm_error();
    } else if (st.st_size == 0) {
        rc = WEFT_EAGAIN; /* created, not sized yet */
    } else if (size == 0) {
        size = (size_t)st.st_size;
    } else if ((size_t)st.st_size < size) {
        rc = WEFT_EINVAL;
    }
    void *m = MAP_FAILED;
    if (rc == 0) {
        m = weft__sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) rc = shm_error();
    }
    weft__sys_close(fd); /* the mapping keeps the object */
    if (rc) {
        if (create) shm_unlink(name);
        return rc;
    }
    *p = m;
    if (size_out) *size_out = size;
    return 0;
}

int weft_shm_unlink(const char *name)
{
    if (!valid_name(name)) return WEFT_EINVAL;
    return shm_unlink(name) == 0 ? 0 : shm_error();
}
