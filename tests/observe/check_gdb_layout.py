#!/usr/bin/env python3
"""check_gdb_layout.py <tools/weft-gdb.py> <src/coro/arch> — the switch frames `weft bt`
reads (weft-gdb.py's LAYOUTS) are the ones the assembly writes: for x86_64.S, the pushes of
weft__ctx_switch before it stores rsp (and the call's return address above them); for
aarch64.S, its `sub sp` and the stp pairs of x19-x30 before it stores sp (its `ret` goes
through x30). Runs without gdb (a stand-in module), so the aarch64 layout is checked on any
machine."""
import re
import sys
import types


def load_script(path):
    gdb = types.ModuleType("gdb")

    class Command:
        def __init__(self, *args, **kwargs):
            pass

    gdb.Command = Command
    for name in ("COMMAND_STATUS", "COMMAND_STACK", "COMMAND_DATA"):
        setattr(gdb, name, 0)
    sys.modules["gdb"] = gdb
    ns = {"__name__": "weft_gdb"}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), ns)
    return ns


def switch_body(path):
    """The instructions of weft__ctx_switch up to the store of the stack pointer into from."""
    lines, on = [], False
    with open(path) as f:
        for line in f:
            line = line.split("//")[0].strip()
            if line == "weft__ctx_switch:":
                on = True
                continue
            if not on or not line or line.startswith("."):
                continue
            lines.append(line)
            if re.match(r"(movq %rsp, \(%rdi\)|str x9, \[x0\])", line):
                break
    return lines


def x86_64(path):
    pushed, size = [], 0
    for ins in switch_body(path):
        m = re.match(r"pushq %(\w+)", ins)
        if m:
            pushed.append(m.group(1))
            size += 8
            continue
        m = re.match(r"subq \$(\d+), %rsp", ins)
        if m:
            pushed.append(None)  # the control words
            size += int(m.group(1))
    # each push goes below the last: the first pushed is highest, just under the return address
    slots, off = {}, size
    for reg in pushed:
        step = 8
        off -= step
        if reg:
            slots[reg] = off
    slots["rip"] = size  # the return address the call pushed
    return slots, ("rsp", size + 8)


def aarch64(path):
    slots, frame = {}, None
    for ins in switch_body(path):
        m = re.match(r"sub sp, sp, #(0x[0-9a-f]+|\d+)", ins)
        if m:
            frame = int(m.group(1), 0)
            continue
        m = re.match(r"stp x(\d+), x(\d+), \[sp, #(0x[0-9a-f]+|\d+)\]", ins)
        if m:
            off = int(m.group(3), 0)
            slots["x" + m.group(1)] = off
            slots["x" + m.group(2)] = off + 8
    slots["pc"] = slots["x30"]  # `ret` returns through x30
    return slots, ("sp", frame)


def main():
    script, arch = sys.argv[1], sys.argv[2]
    layouts = load_script(script)["LAYOUTS"]
    bad = 0
    for name, parse in (("x86_64", x86_64), ("aarch64", aarch64)):
        want_slots, want_sp = parse("%s/%s.S" % (arch, name))
        got = layouts[name]
        got_slots = dict(got["slots"])
        # every register the script loads is where the assembly saved it, and it loads every
        # callee-saved general register the assembly saved
        if got_slots != want_slots or tuple(got["sp"]) != want_sp:
            print("%s: weft-gdb.py reads %s, sp %s" % (name, sorted(got_slots.items()), got["sp"]))
            print("%s: the assembly saves %s, sp %s" % (name, sorted(want_slots.items()), want_sp))
            bad += 1
        else:
            print("%s: %d slots and the stack pointer agree" % (name, len(want_slots)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
