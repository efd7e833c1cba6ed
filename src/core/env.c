/*
 * env.c — weft's one reader of the environment. Every setting weft takes from it (WEFT_PATCH,
 * WEFT_POLLER, WEFT_STACK_SIZE, WEFT_WATCHDOG, WEFT_SPIN_NS, WEFT_SEGV_HANDLER) is read through
 * weft__getenv, which answers as glibc's secure_getenv: nothing in a secure-execution process.
 * The kernel marks one with AT_SECURE in the auxiliary vector (a setuid or setgid program, one
 * with file capabilities, an LSM's transition); there the environment belongs to a less
 * privileged user, who must not switch on libc interposition (WEFT_PATCH) or resize weft's
 * stacks.
 *
 * secure_getenv itself is not called so that a test can stand in for the auxiliary vector
 * (weft__getauxval): the answer is the same, AT_SECURE read through getauxval.
 */
#include "core_internal.h"

#include <stdlib.h>
#include <sys/auxv.h>

unsigned long (*weft__getauxval)(unsigned long type) = getauxval;

const char *weft__getenv(const char *name)
{
    if (weft__getauxval(AT_SECURE) != 0) return NULL;
    return getenv(name);
}
