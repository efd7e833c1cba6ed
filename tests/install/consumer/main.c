#include <stdio.h>
#include <weft.h>

int main(void)
{
    weft_lock_t l = WEFT_LOCK_INIT;
    if (weft_lock_acquire(&l, 0) != 0 || weft_lock_acquire(&l, 0) != WEFT_ETIMEDOUT) return 1;
    if (weft_lock_release(&l) != 0) return 1;
    printf("installed weft works: %s\n", weft_error_message(WEFT_ETIMEDOUT));
    return 0;
}
