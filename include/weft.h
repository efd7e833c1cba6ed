/*
 * weft.h — the whole public API. Each layer has its own header under weft/; this one
 * includes them all. The headers are the reference manual.
 */
#ifndef WEFT_H
#define WEFT_H

#include "weft/core.h"
#include "weft/version.h"
#include "weft/wait.h"
#include "weft/thread.h"
#include "weft/sync.h"
#include "weft/timer.h"
#include "weft/queue.h"
#include "weft/future.h"
#include "weft/executor.h"
#include "weft/coro.h"
#include "weft/io.h"
#include "weft/net.h"
#include "weft/hook.h"
#include "weft/process.h"
#include "weft/scope.h"
#include "weft/debug.h"
#include "weft/trace.h"

#endif /* WEFT_H */
