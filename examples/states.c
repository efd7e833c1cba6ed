/*
 * Notes §4 进程状态 / process states: blocked, running, ready.
 *
 * states — the notes' three states (阻塞, 运行, 就绪), watched on a task: a coroutine is READY
 * after spawn (runnable, waiting for the CPU), RUNNING while it runs, BLOCKED while it waits in
 * a blocking call (an Event here, standing for IO), READY again once the event is set (it can
 * run, but the CPU is still with main), and DONE when its function has returned.
 * weft_co_state reads the state; main looks at it between its own steps.
 */
#include <stdio.h>

#include "weft.h"

static const char *names[] = {"READY", "RUNNING", "BLOCKED", "DONE"};
static weft_event_t io_done;

static void task(void *arg)
{
    weft_co_t *self = weft_co_current();
    (void)arg;
    printf("  task: I am %s\n", names[weft_co_state(self)]);
    weft_event_wait(&io_done, WEFT_FOREVER); /* blocks: the CPU goes back to main */
    printf("  task: woken, %s again; returning\n", names[weft_co_state(self)]);
}

int main(void)
{
    weft_co_t *co;
    weft_event_init(&io_done);
    if (weft_co_spawn(task, NULL, NULL, &co) != 0) return 1;
    printf("after spawn:            %s\n", names[weft_co_state(co)]);
    weft_co_yield(); /* main lets the ready task run; it runs until it blocks */
    printf("task waits for IO:      %s\n", names[weft_co_state(co)]);
    weft_event_set(&io_done); /* the "IO" completes */
    printf("after the event is set: %s\n", names[weft_co_state(co)]);
    weft_co_join(co, WEFT_FOREVER);
    printf("after join:             %s\n", names[weft_co_state(co)]);
    weft_co_release(co);
    weft_event_destroy(&io_done);
    return 0;
}
