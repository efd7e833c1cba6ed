# weft-gdb.py — gdb commands that show weft's tasks in a live process or a core file.
#
#   info weft       the tasks, grouped as the dump groups them: each OS thread weft has seen
#                   (the registry of thread contexts, src/wait/observe.c) with what it is
#                   blocked on; each hub (src/coro/hub.c) with its live coroutines (id, name,
#                   state, what each is blocked on); the thread pools' workers and queued
#                   tasks (src/executor/thread_pool.c); the child processes
#                   (src/process/process.c). The ids are weft_debug_dump's: a thread's tid,
#                   a coroutine's id (its field `id`, the N of "Coroutine-N"), a pool task's
#                   future, a process's pid.
#   weft bt <id>    the stack of a parked coroutine: <id> is its id as `info weft` and
#                   weft_debug_dump give it (3, or #3), its name, or its address. The
#                   registers its switch saved on its stack (src/coro/arch/x86_64.S,
#                   aarch64.S) are loaded into the selected thread for the `bt`, and the
#                   thread's own registers are put back after.
#                   Both layouts run in CTest: x86-64 natively (observe.gdb.*), aarch64 on the
#                   cross build under qemu-user's gdb server (observe.gdb.*.aarch64).
#
# Loading: installed next to the library as
#   <prefix>/share/gdb/auto-load/<libdir>/libweft.so.<version>-gdb.py
# gdb loads it with libweft.so when that directory is in its auto-load safe-path (the
# installed prefix /usr or /usr/local is; else `set auto-load safe-path /`). By hand, for a
# program linked statically or from a build tree: `source tools/weft-gdb.py`.
#
# Everything is read through the debug information (the default preset is RelWithDebInfo):
# structures by their field names, the words for what a task waits on from the library's own
# table (observe.c's on_names), never by offsets written here. Nothing in the program is
# called, so it works on a core file too. The one layout written here is the switch's frame,
# which has no debug information (the .S files).

import time

import gdb

CO_STATES = {0: "ready", 1: "running", 2: "blocked", 3: "done"}
ON_FD = ("fd read", "fd write")


def _static(name, source):
    """The value of the file-static `name` defined in the file whose path ends with `source`
    (several weft files have a static reg_head), or None when no such symbol is loaded."""
    try:
        syms = gdb.lookup_static_symbols(name)
    except AttributeError:  # gdb < 10
        syms = []
    for sym in syms:
        if sym.symtab and sym.symtab.filename.endswith(source):
            return sym.value()
    try:
        return gdb.parse_and_eval("'%s'::%s" % (source.split("/")[-1], name))
    except gdb.error:
        return None


def _int(v):
    return int(v.cast(gdb.lookup_type("long"))) if v.type.code == gdb.TYPE_CODE_PTR else int(v)


def _load(v):
    """An _Atomic field's value (gdb shows it as the plain type)."""
    return _int(v)


def _on_words(on):
    table = _static("on_names", "wait/observe.c")
    if table is None:
        return "on %d" % on
    lo, hi = table.type.range()
    if on < lo or on > hi or _int(table[on]) == 0:
        return "?"
    return table[on].string()


def _names():
    """core's table of object names (src/core/names.c): address -> name."""
    out = {}
    table = _static("table", "core/names.c")
    cap = _static("cap", "core/names.c")
    if table is None or cap is None or _int(table) == 0:
        return out
    for i in range(int(cap)):
        e = table[i]
        obj = _int(e["obj"])
        if obj and _int(e["name"]):
            try:
                out[obj] = e["name"].string()
            except gdb.MemoryError:
                pass
    return out


def _target():
    """The inferior's target: 'native', 'core', 'remote' (gdbserver, qemu-user's gdb server)...;
    with gdb < 12 (no connection object) 'native' for a process, else 'core'."""
    try:
        conn = gdb.selected_inferior().connection
        return conn.type if conn is not None else "none"
    except AttributeError:
        return "native" if gdb.selected_inferior().pid != 0 else "core"


def _live():
    """Whether the inferior runs (its threads' registers can be written): not a core file."""
    return _target() not in ("core", "none")


def _now_ns():
    """CLOCK_MONOTONIC now, for a process debugged on this machine (natively, or under
    qemu-user, whose clock is the host's); None otherwise (a core file's clock stopped at its
    dump: the deadlines and starts are shown as they are)."""
    if _target() not in ("native", "remote", "extended-remote"):
        return None
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def _owner(ctx_addr, owners):
    """Words for the task whose weft__waitctx_t is at ctx_addr (a Lock's owner_)."""
    if ctx_addr in owners["ctx"]:
        t = owners["ctx"][ctx_addr]
        return _thread_label(t.ptid[1], owners["gdb"])
    ctx = gdb.Value(ctx_addr).cast(gdb.lookup_type("weft__waitctx_t").pointer()).dereference()
    try:
        if int(ctx["kind"]) == 1:  # WEFT__CTX_COROUTINE: the wctx of a weft_co
            co_t = gdb.lookup_type("struct weft_co")
            off = [f.bitpos for f in co_t.fields() if f.name == "wctx"][0] // 8
            co = gdb.Value(ctx_addr - off).cast(co_t.pointer())
            return "coroutine '%s'" % co["name"].string()
        tid = _load(ctx["tid"])
        if tid:
            return _thread_label(tid, owners["gdb"])
    except gdb.MemoryError:
        pass
    return "context 0x%x" % ctx_addr


def _lock_owner(words, obj, owners):
    """' held by ...' for a Lock or RLock that is not process-shared, else ''."""
    try:
        if words == "Lock":
            lock = gdb.Value(obj).cast(gdb.lookup_type("weft_lock_t").pointer())
            if int(lock["shared_"]):
                return ""
            owner = _int(lock["owner_"])
        elif words == "RLock":
            rl = gdb.Value(obj).cast(gdb.lookup_type("weft_rlock_t").pointer())
            if int(rl["lock_"]["shared_"]):
                return ""
            owner = _int(rl["owner_"])
        else:
            return ""
    except (gdb.error, gdb.MemoryError):
        return ""
    return " held by " + _owner(owner, owners) if owner else ""


def _blocked(ctx, names, owners):
    """What a weft__waitctx_t is blocked on, as words: 'Queue get 0x... 'jobs' for 1.20 s'."""
    on = _load(ctx["on"])
    if on == 0:
        return None
    words = _on_words(on)
    obj = _int(ctx["obj"])
    if words in ON_FD:
        text = "fd %d %s" % (obj, words.split()[1])
    elif words == "process join":
        text = "process %d join" % obj
    elif obj:
        text = "%s 0x%x" % (words, obj)
        if obj in names:
            text += " '%s'" % names[obj]
        text += _lock_owner(words, obj, owners)
    else:
        text = words
    deadline = _load(ctx["deadline"])
    since = _load(ctx["since"])
    now = _now_ns()
    if since:
        text += (" for %.2f s" % ((now - since) / 1e9) if now is not None
                 else " since %d ns (monotonic)" % since)
    if 0 < deadline < (1 << 62):
        text += (" until %+.2f s" % ((deadline - now) / 1e9) if now is not None
                 else " until %d ns (monotonic)" % deadline)
    return text


def _gdb_threads():
    """kernel tid -> gdb's thread, for the selected inferior."""
    out = {}
    for t in gdb.selected_inferior().threads():
        out[t.ptid[1]] = t
    return out


def _threads():
    """The registry of thread contexts: a list of weft__waitctx_t values."""
    out = []
    head = _static("reg_head", "wait/observe.c")
    if head is None:
        return out
    c = head
    while _int(c):
        out.append(c.dereference())
        c = c["reg_next"]
    return out


def _hubs():
    out = []
    head = _static("reg_head", "coro/hub.c")
    if head is None:
        return out
    h = head
    while _int(h):
        out.append(h)
        h = h["reg_next"]
    return out


def _coroutines(hub):
    cos = []
    node = hub["all"]["head"]
    while _int(node):
        cos.append(_container_of(node, "struct weft_co", "alln"))
        node = node["next"]
    return cos


def _co_id(co):
    """A coroutine's id, as weft_debug_dump prints it (struct weft_co's id, from 1 per process
    in spawn order: the N of its default name "Coroutine-N")."""
    return int(co["id"])


def _all_coroutines():
    """(id, hub, co) for every live coroutine of every hub."""
    return [(_co_id(co), hub, co) for hub in _hubs() for co in _coroutines(hub)]


def _per_thread():
    """From each thread's thread-local storage: (hub address -> gdb's thread running it, from
    weft__tls_hub; thread context address -> gdb's thread, from &weft__thread_ctx). A hub's
    thread is in the registry only once it blocked as a thread; a Lock's owner is a context."""
    hubs, ctxs = {}, {}
    try:
        selected, frame = gdb.selected_thread(), gdb.selected_frame()
    except gdb.error:
        return hubs, ctxs
    try:
        for t in gdb.selected_inferior().threads():
            try:
                t.switch()
                hub = _int(gdb.parse_and_eval("weft__tls_hub"))
                ctxs[_int(gdb.parse_and_eval("&weft__thread_ctx"))] = t
            except gdb.error:
                continue
            if hub:
                hubs[hub] = t
    finally:
        selected.switch()
        try:
            frame.select()
        except gdb.error:
            pass
    return hubs, ctxs


def _thread_label(tid, gthreads, name=None):
    """'gdb thread N (tid T, 'name')': the name gdb knows (the kernel's), else `name` (weft's:
    qemu-user's gdb server tells no thread names)."""
    t = gthreads.get(tid)
    if t is None:
        return "tid %d" % tid
    name = t.name or name
    return "gdb thread %d (tid %d%s)" % (t.num, tid, ", '%s'" % name if name else "")


def _weft_thread_name(ctx):
    """The name of the weft_thread_t a thread context belongs to (its `who`), or None."""
    try:
        who = _int(ctx["who"])
        if not who:
            return None
        t = gdb.Value(who).cast(gdb.lookup_type("struct weft_thread").pointer())
        return t["name"].string() or None
    except (gdb.error, gdb.MemoryError):
        return None


def _info(out):
    names = _names()
    gthreads = _gdb_threads()
    ctxs = _threads()
    hubs = _hubs()
    root_of = {}  # a hub's root address -> its thread's context
    for ctx in ctxs:
        root_of[_int(ctx["park_arg"])] = ctx
    hub_thread, ctx_thread = _per_thread()
    owners = {"ctx": ctx_thread, "gdb": gthreads}
    seen = set()

    out("threads (weft's registry of thread contexts):\n")
    for ctx in ctxs:
        tid = _load(ctx["tid"])
        seen.add(tid)
        what = _blocked(ctx, names, owners)
        hub = " runs a hub" if _int(ctx["parker"]) else ""
        own = " (weft's own)" if _has_field(ctx, "internal") and ctx["internal"] else ""
        out("  %s%s%s: %s\n" % (_thread_label(tid, gthreads, _weft_thread_name(ctx)), own, hub,
                                "blocked on " + what if what else "running"))
    hub_tids = set(t.ptid[1] for t in hub_thread.values())
    for tid, t in sorted(gthreads.items()):
        if tid not in seen:
            out("  %s%s: not listed (it has not blocked as a thread in weft)\n"
                % (_thread_label(tid, gthreads), " runs a hub" if tid in hub_tids else ""))

    for hub in hubs:
        root = hub["root"].address
        ctx = root_of.get(_int(root))
        if _int(hub) in hub_thread:
            owner = _thread_label(hub_thread[_int(hub)].ptid[1], gthreads)
        elif ctx is not None:
            owner = _thread_label(_load(ctx["tid"]), gthreads)
        else:
            owner = "thread ?"
        current = _int(hub["current"])
        out("hub 0x%x on %s: %d live coroutine(s)%s\n"
            % (_int(hub), owner, _load(hub["nlive"]), ", closing" if hub["closing"] else ""))
        for co in _coroutines(hub):
            state = _load(co["state"])
            words = CO_STATES.get(state, "state %d" % state)
            what = _blocked(co["wctx"], names, owners)
            line = "  coroutine %d '%s' 0x%x %s" % (_co_id(co), co["name"].string(), _int(co),
                                                    words)
            if what:
                line += " on " + what
            if _int(co) == current:
                line += " (on its thread's stack now)"
            out(line + "\n")

    pools = _static("pools", "executor/thread_pool.c")
    node = pools["head"] if pools is not None else None
    while node is not None and _int(node):
        _pool(_container_of(node, "struct pool", "link"), out)
        node = node["next"]

    ppools = _static("ppools", "executor/process_pool.c")
    if ppools is not None:
        node = ppools["head"]
        while _int(node):
            _process_pool(_container_of(node, "struct ppool", "link"), out)
            node = node["next"]

    procs = _static("registry", "process/process.c")
    node = procs["head"] if procs is not None else None
    first = True
    while node is not None and _int(node):
        p = _container_of(node, "struct weft_process", "link")
        if first:
            out("child processes:\n")
            first = False
        reaped = _load(p["reaped"])
        state = "ended, status 0x%x" % int(p["status"]) if reaped else "running"
        out("  process '%s' pid %d %s%s\n" % (p["name"].string(), int(p["pid"]), state,
                                            ", daemon" if p["daemon"] else ""))
        node = node["next"]


def _has_field(v, name):
    return any(f.name == name for f in v.type.strip_typedefs().fields())


def _container_of(ptr, type_name, member):
    """The struct `type_name` whose field `member` is at ptr."""
    t = gdb.lookup_type(type_name)
    for f in t.fields():
        if f.name == member:
            return gdb.Value(_int(ptr) - f.bitpos // 8).cast(t.pointer())
    raise gdb.GdbError("%s has no field %s" % (type_name, member))


def _process_pool(p, out):
    """A process pool: the futures handed to each worker process (the first of a worker's
    runs, the others wait in its pipe) and those queued, as weft_debug_dump lists them."""
    out("process pool 0x%x '%s': %d worker(s) at most%s\n"
        % (_int(p), p["prefix"].string(), int(p["max_workers"]),
           ", shut down" if p["shut"] else ""))
    seen = set()
    node = p["flight"]["head"]
    while _int(node):
        f = _container_of(node, "struct weft_future", "node")
        task = gdb.Value(_int(f["arg"])).cast(gdb.lookup_type("ptask_t").pointer())
        pid = int(task["pid"])
        where = "waits in process %d's pipe" % pid if pid in seen else "runs in process %d" % pid
        seen.add(pid)
        out("  future 0x%x (%s): %s\n" % (_int(f), _future_state(f), where))
        node = node["next"]
    queued = 0
    node = p["queue"]["head"]
    while _int(node):
        queued += 1
        node = node["next"]
    if queued:
        out("  %d task(s) queued\n" % queued)


def _future_of_link(link):
    fut = gdb.lookup_type("struct weft_future")
    for f in fut.fields():
        if f.name == "link":
            addr = _int(link) - f.bitpos // 8
            return gdb.Value(addr).cast(fut.pointer())
    return None


FUTURE_STATES = None


def _future_state(f):
    global FUTURE_STATES
    if FUTURE_STATES is None:
        FUTURE_STATES = {}
        try:
            for fld in gdb.lookup_type("weft_future_state_t").fields():
                FUTURE_STATES[fld.enumval] = fld.name.replace("WEFT_FUTURE_", "").lower()
        except gdb.error:
            pass
    s = _load(f["state"])
    return FUTURE_STATES.get(s, str(s))


def _pool(p, out):
    out("thread pool 0x%x '%s': %d worker(s) of %d%s\n"
        % (_int(p), p["prefix"].string(), int(p["nlive"]), int(p["max_workers"]),
           ", shut down" if p["shut"] else ""))
    for i in range(int(p["nslots"])):
        w = p["slots"][i]
        if not _int(w):
            continue
        t = w["thread"]
        name = t["name"].string() if _int(t) else "(starting)"
        run = w["running"]
        if _int(run):
            out("  worker %d '%s': runs future 0x%x (%s)\n" % (i, name, _int(run),
                                                           _future_state(run)))
        else:
            out("  worker %d '%s': idle\n" % (i, name))
    # The queue's links from its head, the dummy link not counted (the head is the dummy, or
    # the oldest task once a pop found more behind it: thread_pool.c's fifo_pop).
    queued = 0
    dummy = _int(p["dummy"].address)
    link = p["head"]
    while _int(link):
        if _int(link) != dummy:
            queued += 1
        link = link["next"]
    if queued:
        out("  %d task(s) queued\n" % queued)


class InfoWeft(gdb.Command):
    """The weft tasks of the program: threads, hubs and their coroutines, pool tasks, child
processes, with their states and what each is blocked on."""

    def __init__(self):
        super().__init__("info weft", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        _info(gdb.write)


# ---- weft bt ---------------------------------------------------------------------------------
#
# What weft__ctx_switch leaves on a parked coroutine's stack; co->ctx.sp points at its lowest
# word. x86_64.S pushes rbp, rbx, r12, r13, r14, r15, then 8 bytes of MXCSR and x87 control
# word: from sp up, the control words, r15, r14, r13, r12, rbx, rbp, and the return address
# the call pushed; after its `ret` the stack pointer is sp + 64. aarch64.S: d8-d15 at
# sp+0x00..0x38, x19..x28 at 0x40..0x88, x29 (fp) at 0x90, x30 (lr, where `ret` goes) at
# 0x98, FPCR at 0xa0, and the frame is 0xb0 bytes.
LAYOUTS = {
    "x86_64": {
        "slots": [("r15", 8), ("r14", 16), ("r13", 24), ("r12", 32), ("rbx", 40), ("rbp", 48),
                  ("rip", 56)],
        "sp": ("rsp", 64),
    },
    "aarch64": {
        "slots": [("x%d" % (19 + i), 0x40 + 8 * i) for i in range(10)]
        + [("x29", 0x90), ("x30", 0x98), ("pc", 0x98)],
        "sp": ("sp", 0xB0),
    },
}


def _layout():
    arch = gdb.selected_frame().architecture().name()
    if "x86-64" in arch or "x86_64" in arch:
        return LAYOUTS["x86_64"]
    if "aarch64" in arch:
        return LAYOUTS["aarch64"]
    raise gdb.GdbError("weft bt: no switch layout for architecture %s" % arch)


def _find(arg):
    arg = arg.strip()
    cos = _all_coroutines()
    if not arg:
        raise gdb.GdbError("usage: weft bt <id | name | address> (ids: info weft)")
    key = arg.lstrip("#")
    for ident, hub, co in cos:
        if key.isdigit() and int(key) == ident:
            return ident, hub, co
    for ident, hub, co in cos:
        if co["name"].string() == arg:
            return ident, hub, co
    try:
        addr = int(gdb.parse_and_eval(arg).cast(gdb.lookup_type("long")))
    except gdb.error:
        addr = None
    for ident, hub, co in cos:
        if addr is not None and _int(co) == addr:
            return ident, hub, co
    raise gdb.GdbError("weft bt: no live coroutine %s (see info weft)" % arg)


def _coroutine_bt(co, hub, bt_args):
    if "sp" not in [f.name for f in co["ctx"].type.fields()]:
        raise gdb.GdbError("weft bt: this library switches with ucontext (WEFT_CORO_UCONTEXT);"
                           " only the assembly switch's frame is known")
    if _int(co) == _int(hub["current"]):
        raise gdb.GdbError("weft bt: coroutine '%s' is on its thread's stack now: select that "
                           "thread and use bt" % co["name"].string())
    if _load(co["state"]) == 3:
        raise gdb.GdbError("weft bt: coroutine '%s' has ended" % co["name"].string())
    sp = _int(co["ctx"]["sp"])
    if not sp:
        raise gdb.GdbError("weft bt: coroutine '%s' has not run yet" % co["name"].string())
    if not _live():
        raise gdb.GdbError("weft bt: needs a live process (it loads the coroutine's registers "
                           "into a thread, which a core file's threads do not allow)")
    layout = _layout()
    inferior = gdb.selected_inferior()
    word = gdb.lookup_type("unsigned long")

    def read(off):
        mem = inferior.read_memory(sp + off, 8)
        return int(gdb.Value(mem.tobytes(), word))

    level = gdb.selected_frame().level()
    gdb.execute("frame 0", to_string=True)
    frame = gdb.selected_frame()
    names = [n for n, _ in layout["slots"]] + [layout["sp"][0]]
    saved = {}
    for n in names:
        saved[n] = int(frame.read_register(n).cast(word))
    values = {n: read(off) for n, off in layout["slots"]}
    values[layout["sp"][0]] = sp + layout["sp"][1]
    try:
        for n, v in values.items():
            gdb.execute("set $%s = 0x%x" % (n, v), to_string=True)
        gdb.write("coroutine '%s' 0x%x (parked):\n" % (co["name"].string(), _int(co)))
        gdb.execute("bt " + bt_args, to_string=False)
    finally:
        for n in names:
            gdb.execute("set $%s = 0x%x" % (n, saved[n]), to_string=True)
        gdb.execute("frame %d" % level, to_string=True)


class Weft(gdb.Command):
    """weft commands: weft bt <id | name | address> [bt options] — a parked coroutine's stack."""

    def __init__(self):
        super().__init__("weft", gdb.COMMAND_STACK, prefix=True)


class WeftBt(gdb.Command):
    """weft bt <id | name | address> [full | N]: the stack of a parked coroutine (ids and names
as `info weft` and weft_debug_dump list them). Its saved registers are loaded into the selected thread for the
backtrace and the thread's own are restored after."""

    def __init__(self):
        super().__init__("weft bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        parts = arg.split(None, 1)
        if not parts:
            raise gdb.GdbError("usage: weft bt <id | name | address> (ids: info weft)")
        ident, hub, co = _find(parts[0])
        _coroutine_bt(co, hub, parts[1] if len(parts) > 1 else "")


InfoWeft()
Weft()
WeftBt()
