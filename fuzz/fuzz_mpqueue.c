/*
 * fuzz_mpqueue.c — the cross-process Queue's shared memory as a hostile peer writes it: the
 * input overwrites the mapping (header, both sides' positions, counts, journals, seen
 * values, wake words, the ring) between calls of get, put, qsize, empty, full, task_done and
 * join made by this process. The two side locks are left alone: they are glibc's robust
 * mutexes, whose bytes a peer that shares them can corrupt past anything a library can check.
 *
 * Input: steps, each a control byte c:
 *   c % 8 == 0  overwrite: offset (2 bytes, modulo the mapping), count ((c >> 3) + 1), bytes
 *   c % 8 == 1  get (timeout 0) into a buffer of (c >> 3) * 64 bytes
 *   c % 8 == 2  put (timeout 0) of (c >> 3) * 37 bytes
 *   c % 8 == 3  qsize, empty, full
 *   c % 8 == 4  task_done, join(0)
 *   c % 8 == 5  put_nowait of a small message, get_nowait of it
 *   c % 8 == 6  close
 *   c % 8 == 7  overwrite a 64-bit word at an 8-aligned offset with one of a few extreme values
 * Checked: every call ends, returns 0 or a documented code, a length returned with 0 fits the
 * buffer, nothing outside the mapping is touched (ASan), nothing leaks.
 */
#include "weft.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "process/process_internal.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_mpqueue: check failed at line %d: %s\n", __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The two side locks in the mapping (mpqueue.c's shared_t: 40 bytes of sizes and flags, then
 * side_t prod and cons, each 192 bytes from a 64-aligned start with its weft_lock_t first).
 * Checked at start-up by the lock's shared_ flag. */
#define LOCK_BYTES 64u
static const size_t lock_at[2] = {64, 256};

static unsigned char buf[16 * 1024];
static unsigned char msg[16 * 1024];

static void overwrite(unsigned char *shared, size_t size, size_t off, const uint8_t *src, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        size_t at = (off + k) % size;
        bool in_lock = false;
        for (int s = 0; s < 2; s++)
            if (at >= lock_at[s] && at < lock_at[s] + LOCK_BYTES) in_lock = true;
        if (!in_lock) shared[at] = src[k];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weft_mpqueue_t *q;
    CHECK(weft_mpqueue_create(4096, size % 2 ? 7 : 0, true, &q) == 0);
    size_t map_size;
    unsigned char *shared = weft__mpqueue_shared(q, &map_size);
    for (int s = 0; s < 2; s++) {
        uint32_t flag;
        memcpy(&flag, shared + lock_at[s] + 4, sizeof flag);
        CHECK(flag == 1); /* the layout this target assumes */
    }
    static const uint64_t extremes[] = {0,
                                        1,
                                        7,
                                        8,
                                        4088,
                                        4089,
                                        4096,
                                        UINT64_MAX,
                                        UINT64_MAX - 7,
                                        INT64_MAX,
                                        (uint64_t)1 << 32,
                                        (uint64_t)1 << 63};
    size_t i = 0;
    while (i < size) {
        uint8_t c = data[i++];
        size_t arg = c >> 3, len = 0;
        int rc;
        switch (c % 8) {
        case 0: {
            if (size - i < 2) return weft_mpqueue_release(q), 0;
            size_t off = (size_t)data[i] | (size_t)data[i + 1] << 8;
            i += 2;
            size_t n = arg + 1 < size - i ? arg + 1 : size - i;
            overwrite(shared, map_size, off, data + i, n);
            i += n;
            break;
        }
        case 1: {
            size_t cap = arg * 64;
            rc = weft_mpqueue_get(q, buf, cap, 0, &len);
            CHECK(rc == 0 || rc == WEFT_ETIMEDOUT || rc == WEFT_EOVERFLOW || rc == WEFT_ESHUTDOWN ||
                  rc == WEFT_EBROKEN);
            if (rc == 0) CHECK(len <= cap);
            if (rc == WEFT_EOVERFLOW) CHECK(len > cap && len <= 4096 - 8);
            break;
        }
        case 2:
            memset(msg, c, arg * 37);
            rc = weft_mpqueue_put(q, msg, arg * 37, 0);
            CHECK(rc == 0 || rc == WEFT_ETIMEDOUT || rc == WEFT_ESHUTDOWN);
            break;
        case 3:
            (void)weft_mpqueue_qsize(q);
            (void)weft_mpqueue_empty(q);
            (void)weft_mpqueue_full(q, arg * 100);
            break;
        case 4:
            rc = weft_mpqueue_task_done(q);
            CHECK(rc == 0 || rc == WEFT_EINVAL);
            rc = weft_mpqueue_join(q, 0);
            CHECK(rc == 0 || rc == WEFT_ETIMEDOUT);
            break;
        case 5:
            rc = weft_mpqueue_put_nowait(q, "abc", 3);
            CHECK(rc == 0 || rc == WEFT_ETIMEDOUT || rc == WEFT_ESHUTDOWN);
            rc = weft_mpqueue_get_nowait(q, buf, 3, &len);
            CHECK(rc == 0 || rc == WEFT_ETIMEDOUT || rc == WEFT_EOVERFLOW || rc == WEFT_ESHUTDOWN ||
                  rc == WEFT_EBROKEN);
            break;
        case 6:
            CHECK(weft_mpqueue_close(q) == 0);
            break;
        default: {
            if (size - i < 1) return weft_mpqueue_release(q), 0;
            size_t off = ((size_t)data[i++] * 8) % map_size;
            uint64_t v = extremes[arg % (sizeof extremes / sizeof extremes[0])];
            overwrite(shared, map_size, off, (const uint8_t *)&v, sizeof v);
            break;
        }
        }
    }
    CHECK(weft_mpqueue_release(q) == 0);
    return 0;
}
