/* The intrusive list (src/core/list.h) every FIFO of weft is built on: wait queues, the hub's
 * ready queue, the executors' queues. Order, removal anywhere (a waiter that times out leaves
 * the middle of its queue), and the head's unkept `prev` after pops. */
#include "weft_test.h"

#include "core/core_internal.h"

typedef struct item {
    int id;
    weft__list_node_t node;
} item_t;

static int id_of(const weft__list_node_t *n)
{
    return weft__container_of(n, item_t, node)->id;
}

/* The ids from head to tail, and checks the tail is the last node reached. */
static int ids(const weft__list_t *l, int *out, int max)
{
    int n = 0;
    const weft__list_node_t *last = NULL;
    for (const weft__list_node_t *x = l->head; x; x = x->next) {
        assert_true(n < max);
        out[n++] = id_of(x);
        last = x;
    }
    assert_ptr_equal(l->tail, last);
    return n;
}

static void expect(const weft__list_t *l, const int *want, int n)
{
    int got[16];
    assert_int_equal(ids(l, got, 16), n);
    for (int i = 0; i < n; i++) assert_int_equal(got[i], want[i]);
}

static void list_push_back_pop_front_is_fifo(void **state)
{
    (void)state;
    weft__list_t l = {0};
    item_t it[5];
    assert_true(weft__list_empty(&l));
    assert_null(weft__list_pop_front(&l));
    for (int i = 0; i < 5; i++) {
        it[i].id = i;
        weft__list_push_back(&l, &it[i].node);
    }
    expect(&l, (int[]){0, 1, 2, 3, 4}, 5);
    for (int i = 0; i < 5; i++) assert_int_equal(id_of(weft__list_pop_front(&l)), i);
    assert_true(weft__list_empty(&l));
    assert_null(l.tail);
    weft__list_push_back(&l, &it[3].node); /* reusable once empty */
    expect(&l, (int[]){3}, 1);
}

/* Removal of the head, the tail, a middle node and the last one, after pops left the head's
 * `prev` stale; pushes after each removal land at the right end. */
static void list_remove_anywhere_keeps_order(void **state)
{
    (void)state;
    weft__list_t l = {0};
    item_t it[8];
    for (int i = 0; i < 8; i++) {
        it[i].id = i;
        weft__list_push_back(&l, &it[i].node);
    }
    weft__list_pop_front(&l);
    weft__list_pop_front(&l); /* head: 2, whose prev still names 1 */
    weft__list_remove(&l, &it[2].node);
    expect(&l, (int[]){3, 4, 5, 6, 7}, 5);
    weft__list_remove(&l, &it[5].node);
    expect(&l, (int[]){3, 4, 6, 7}, 4);
    weft__list_remove(&l, &it[7].node);
    expect(&l, (int[]){3, 4, 6}, 3);
    weft__list_push_back(&l, &it[0].node);
    expect(&l, (int[]){3, 4, 6, 0}, 4);
    weft__list_remove(&l, &it[0].node);
    weft__list_remove(&l, &it[4].node);
    expect(&l, (int[]){3, 6}, 2);
    weft__list_remove(&l, &it[6].node); /* the tail, right after the head */
    expect(&l, (int[]){3}, 1);
    weft__list_remove(&l, &it[3].node); /* the only one */
    assert_true(weft__list_empty(&l));
    assert_null(l.tail);
    weft__list_push_back(&l, &it[1].node);
    weft__list_push_back(&l, &it[2].node);
    expect(&l, (int[]){1, 2}, 2);
}

/* push_front puts a node first (the process pool's requeue of a task a dead worker never
 * began); removal after it still sees a consistent list. */
static void list_push_front_goes_first(void **state)
{
    (void)state;
    weft__list_t l = {0};
    item_t it[4];
    for (int i = 0; i < 4; i++) it[i].id = i;
    weft__list_push_front(&l, &it[1].node); /* into an empty list: head and tail */
    expect(&l, (int[]){1}, 1);
    weft__list_push_back(&l, &it[2].node);
    weft__list_pop_front(&l);
    weft__list_push_front(&l, &it[0].node);
    weft__list_push_front(&l, &it[3].node);
    expect(&l, (int[]){3, 0, 2}, 3);
    weft__list_remove(&l, &it[2].node);
    weft__list_remove(&l, &it[0].node);
    expect(&l, (int[]){3}, 1);
    weft__list_node_t *n = l.head;
    weft__list_pop_head(&l, n);
    assert_true(weft__list_empty(&l));
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(list_push_back_pop_front_is_fifo),
    WEFT_TEST(list_remove_anywhere_keeps_order),
    WEFT_TEST(list_push_front_goes_first),
};
WEFT_TEST_MAIN(cases)
