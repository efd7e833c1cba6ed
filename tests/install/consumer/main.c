#include <stdio.h>
#include <weft.h>

int main(void)
{
    weft_lock_t l = WEFT_LOCK_INIT;
    if (weft_lock_acquire(&l, 0) != 0 || weft_lock_acquire(&l, 0) != WEFT_ETIMEDOUT) return 1;
    if (weft_lock_release(&l) != 0) return 1;
    /* The library found at run time is the one of the headers (same major: the SONAME). */
    if (weft_version_number() / 1000000 != WEFT_VERSION_MAJOR) return 1;
    printf("installed weft %s works: %s\n", weft_version_string(),
           weft_error_message(WEFT_ETIMEDOUT));
    return 0;
}
