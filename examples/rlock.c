/*
 * Notes §9 递归锁Rlock / the recursive lock (RLock).
 *
 * rlock — a lock its owner may take again (Python's threading.RLock).
 *
 * An account guards its balance with a lock, and every operation takes it. transfer() takes
 * it, then calls withdraw() and deposit(), which take it again: with a plain Lock the second
 * acquire would wait for ourselves forever; an RLock counts the levels and is free again only
 * after as many releases. And an RLock has an owner: another thread cannot release it
 * (WEFT_EPERM, Python's RuntimeError), it can only wait for it.
 */
#include <stdio.h>

#include "weft.h"

typedef struct account {
    weft_rlock_t lock;
    long balance;
} account_t;

static int deposit(account_t *a, long amount)
{
    weft_rlock_acquire(&a->lock, WEFT_FOREVER);
    a->balance += amount;
    weft_rlock_release(&a->lock);
    return 0;
}

static int withdraw(account_t *a, long amount)
{
    weft_rlock_acquire(&a->lock, WEFT_FOREVER);
    int rc = a->balance >= amount ? 0 : WEFT_ERANGE;
    if (rc == 0) a->balance -= amount;
    weft_rlock_release(&a->lock);
    return rc;
}

/* Moves money within one account's books: check and move under one hold of the lock, so no
 * other thread sees (or changes) the balance in between. */
static int transfer_to_savings(account_t *a, account_t *savings, long amount)
{
    weft_rlock_acquire(&a->lock, WEFT_FOREVER); /* level 1 */
    int rc = withdraw(a, amount);               /* level 2, inside */
    if (rc == 0) deposit(savings, amount);
    weft_rlock_release(&a->lock);
    return rc;
}

/* Another thread tries to release the RLock main holds, then waits for it briefly. */
static void intruder(void *arg)
{
    account_t *a = arg;
    printf("  intruder: owns it? %s; release: %s; acquire(20 ms): %s\n",
           weft_rlock_is_owned(&a->lock) ? "yes" : "no",
           weft_error_name(weft_rlock_release(&a->lock)),
           weft_error_name(weft_rlock_acquire(&a->lock, 0.02)));
}

int main(void)
{
    account_t checking = {.balance = 100}, savings = {.balance = 0};
    weft_rlock_init(&checking.lock);
    weft_rlock_init(&savings.lock);

    int rc = transfer_to_savings(&checking, &savings, 30);
    printf("transfer 30 (locks checking twice, nested): %s -> checking %ld, savings %ld\n",
           weft_error_name(rc), checking.balance, savings.balance);

    /* The same nesting with a plain Lock: the inner acquire waits for the outer one. */
    weft_lock_t plain;
    weft_lock_init(&plain);
    weft_lock_acquire(&plain, WEFT_FOREVER);
    printf("a plain Lock taken twice by its holder: %s (it would deadlock without a timeout)\n",
           weft_error_name(weft_lock_acquire(&plain, 0.02)));
    weft_lock_release(&plain);
    weft_lock_destroy(&plain);

    /* Held twice by main: another thread can neither release it nor get it. */
    weft_rlock_acquire(&checking.lock, WEFT_FOREVER);
    weft_rlock_acquire(&checking.lock, WEFT_FOREVER);
    printf("main holds checking's RLock twice; owns it? %s\n",
           weft_rlock_is_owned(&checking.lock) ? "yes" : "no");
    weft_thread_t *t;
    if (weft_thread_start(intruder, &checking, NULL, &t) != 0) return 1;
    weft_thread_join(t, WEFT_FOREVER);
    weft_thread_release(t);
    weft_rlock_release(&checking.lock);
    printf("after one release main still owns it? %s\n",
           weft_rlock_is_owned(&checking.lock) ? "yes" : "no");
    weft_rlock_release(&checking.lock);
    printf("after the second: owns it? %s; one release too many: %s\n",
           weft_rlock_is_owned(&checking.lock) ? "yes" : "no",
           weft_error_name(weft_rlock_release(&checking.lock)));

    return weft_rlock_destroy(&checking.lock) == 0 && weft_rlock_destroy(&savings.lock) == 0 ? 0
                                                                                             : 1;
}
