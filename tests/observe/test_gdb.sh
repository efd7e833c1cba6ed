#!/bin/sh
# test_gdb.sh — tools/weft-gdb.py under `gdb -batch`, on tests/observe/gdb/scene.c stopped at
# its breakpoint scene_ready() (every task of its scene parked). One case per run:
#   test_gdb.sh <case> <gdb> <scene> <weft-gdb.py> [<build dir> <version>]
# Cases (CTest: observe.gdb.<case>):
#   info_names_the_tasks             info weft: the coroutines with their states and what each
#                                    waits on, the blocked thread, the pool, the child, the
#                                    process pool's tasks and its thread (one of weft's own)
#   info_ids_are_the_dumps           the ids info weft gives (coroutine ids, thread tids, the
#                                    running pool task's future, the child's pid) are those
#                                    weft_debug_dump printed for the same scene; weft bt
#                                    takes the dump's coroutine id
#   bt_shows_the_blocking_caller     weft bt by id, name and address: the scene's function
#                                    that made the blocking call, down to the coroutine's start
#   bt_restores_the_thread           after weft bt, the thread's registers and its bt are its own
#   bt_refuses_what_it_cannot_show   no id, an unknown id, the running context: an error each
#   info_reads_a_core_file           info weft on a core file (gcore); weft bt says it needs a
#                                    live process
#   auto_loads_from_the_install      cmake --install puts it where gdb loads it with libweft.so
# With WEFT_GDB_QEMU="<qemu-user> [options]" in the environment (the aarch64 cross build:
# observe.gdb.<case>.aarch64) the scene runs under qemu-user's gdb server (-g <socket>) and
# <gdb> (gdb-multiarch) connects to it where the cases say `run`; a missing gdb or qemu skips
# the case (exit 77) with a message.
set -u
case_=$1 gdb=$2 scene=$3 script=$4
qemu=${WEFT_GDB_QEMU:-}
if [ -n "$qemu" ]; then
    for prog in "$gdb" ${qemu%% *}; do
        command -v "$prog" >/dev/null 2>&1 ||
            { echo "SKIP ($case_): $prog not found (make cross-deps installs it)"; exit 77; }
    done
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/weft-gdb.XXXXXX")
trap 'rm -rf "$out"' EXIT

fail() {
    echo "FAIL ($case_): $*"
    echo "---- gdb's output:"
    cat "$out/log"
    exit 1
}

# Runs the scene under gdb to its breakpoint, then the commands given (-ex each); the output
# goes to $out/log.
run_gdb() {
    set -- -nx -batch -iex 'set debuginfod enabled off' -iex 'set pagination off' "$@"
    if [ -z "$qemu" ]; then
        timeout 50 "$gdb" "$@" >"$out/log" 2>&1
        return
    fi
    # qemu-user holds the scene at its first instruction until gdb connects to its server's
    # socket; `run` becomes connecting to it and continuing. The target's files are the
    # machine's own (the arm64 multiarch libc qemu -L / runs with).
    sock=$out/gdb.sock
    rm -f "$sock"
    timeout 50 $qemu -g "$sock" "$scene" >"$out/scene.log" 2>&1 &
    qpid=$!
    i=0
    while [ ! -S "$sock" ]; do
        i=$((i + 1))
        [ $i -le 1000 ] && kill -0 $qpid 2>/dev/null ||
            { cat "$out/scene.log" >"$out/log"; fail "qemu's gdb server did not start"; }
        sleep 0.01
    done
    n=$#
    while [ $n -gt 0 ]; do
        a=$1
        shift
        n=$((n - 1))
        if [ "$a" = run ]; then set -- "$@" "target remote $sock" -ex continue; else set -- "$@" "$a"; fi
    done
    timeout 50 "$gdb" -iex 'set sysroot /' "$@" >"$out/log" 2>&1
    kill $qpid 2>/dev/null
    wait $qpid 2>/dev/null
}


has() { grep -Eq -- "$1" "$out/log" || fail "no line matches: $1"; }
hasnt() { ! grep -Eq -- "$1" "$out/log" || fail "a line matches: $1"; }

case $case_ in
info_names_the_tasks)
    run_gdb -ex "source $script" -ex 'break scene_ready' -ex run -ex 'info weft' "$scene"
    has "hit Breakpoint 1, scene_ready"
    has "^hub 0x[0-9a-f]+ on gdb thread 1 .*: 3 live coroutine"
    has "^  coroutine [0-9]+ 'getter' 0x[0-9a-f]+ blocked on Queue get 0x[0-9a-f]+( for [0-9.]+ s)? until \+"
    has "^  coroutine [0-9]+ 'sleeper' 0x[0-9a-f]+ blocked on "
    has "^  coroutine [0-9]+ 'locker' 0x[0-9a-f]+ blocked on Lock 0x[0-9a-f]+ held by gdb thread 1 "
    has "^  gdb thread [0-9]+ \(tid [0-9]+, 'waiter'\): blocked on Event 0x[0-9a-f]+( for [0-9.]+ s)? until \+"
    has "^thread pool 0x[0-9a-f]+ 'crew': 1 worker\(s\) of 1"
    has "^  worker 0 'crew_0': runs future 0x[0-9a-f]+ \(running\)"
    has "^  1 task\(s\) queued"
    has "^  process 'child' pid [0-9]+ running"
    has "^process pool 0x[0-9a-f]+ 'pp': 1 worker\(s\) at most"
    has "^  future 0x[0-9a-f]+ \(running\): runs in process [0-9]+"
    has "^  future 0x[0-9a-f]+ \(running\): waits in process [0-9]+'s pipe"
    has "^  gdb thread [0-9]+ \(tid [0-9]+, 'pp'\) \(weft's own\): "
    ;;
info_ids_are_the_dumps)
    SCENE_DUMP=$out/dump run_gdb -ex "source $script" -ex 'break scene_ready' -ex run \
        -ex 'info weft' "$scene"
    [ -s "$out/dump" ] || fail "the scene wrote no dump"
    # same() <what> <the dump's id> <info weft's id>
    same() { [ -n "$2" ] && [ "$2" = "$3" ] || fail "$1: the dump's id '$2', info weft's '$3'"; }
    for name in getter sleeper locker; do
        same "coroutine '$name'" "$(sed -nE "s/^  coroutine ([0-9]+) '$name':.*/\1/p" "$out/dump")" \
            "$(sed -nE "s/^  coroutine ([0-9]+) '$name' 0x.*/\1/p" "$out/log")"
    done
    same "thread 'waiter'" "$(sed -nE "s/^thread ([0-9]+) 'waiter':.*/\1/p" "$out/dump")" \
        "$(sed -nE "s/^  gdb thread [0-9]+ \(tid ([0-9]+), 'waiter'\):.*/\1/p" "$out/log")"
    same "the running pool task" \
        "$(sed -nE "s/^pool task (0x[0-9a-f]+) .* in thread 'crew_0'.*/\1/p" "$out/dump")" \
        "$(sed -nE "s/^  worker 0 'crew_0': runs future (0x[0-9a-f]+) .*/\1/p" "$out/log")"
    same "process 'child'" "$(sed -nE "s/^process ([0-9]+) 'child':.*/\1/p" "$out/dump")" \
        "$(sed -nE "s/^  process 'child' pid ([0-9]+) .*/\1/p" "$out/log")"
    # weft bt takes the dump's id (a fresh run: the scene's coroutine ids are the same)
    id=$(sed -nE "s/^  coroutine ([0-9]+) 'getter':.*/\1/p" "$out/dump")
    run_gdb -ex "source $script" -ex 'break scene_ready' -ex run -ex "weft bt $id" "$scene"
    has "^coroutine 'getter' 0x[0-9a-f]+ \(parked\):"
    has "in getter_waits_for_an_item \("
    ;;
bt_shows_the_blocking_caller)
    run_gdb -ex "source $script" -ex 'break scene_ready' -ex run -ex 'info weft' \
        -ex 'weft bt getter' -ex 'weft bt sleeper' "$scene"
    # the locker by its id, and by its address, as info weft lists them
    line=$(grep -E "^  coroutine [0-9]+ 'locker'" "$out/log") || fail "info weft lists no locker"
    id=$(echo "$line" | sed -E 's/^  coroutine ([0-9]+) .*/\1/')
    addr=$(echo "$line" | sed -E "s/.*'locker' (0x[0-9a-f]+) .*/\1/")
    cp "$out/log" "$out/first"
    run_gdb -ex "source $script" -ex 'break scene_ready' -ex run -ex "weft bt $id" \
        -ex 'echo ----\n' -ex "weft bt $addr" "$scene"
    cat "$out/first" >>"$out/log"
    has "^coroutine 'getter' 0x[0-9a-f]+ \(parked\):"
    has "in weft_queue_get \(.*\) at .*queue\.c"
    has "in getter_waits_for_an_item \(.*\) at .*scene\.c:[0-9]+"
    has "in sleeper_naps \(.*\) at .*scene\.c:[0-9]+"
    has "in weft_time_sleep \("
    [ "$(grep -Ec "in locker_wants_it \(.*\) at .*scene\.c:[0-9]+" "$out/log")" = 2 ] ||
        fail "weft bt $id and weft bt $addr do not both show locker_wants_it"
    # clang makes weft_lock_acquire a tail call: its frame is its slow path's
    has "in weft(_lock_acquire|__lock_acquire_slow) \("
    # the entry label as the assembler named it: weft__ctx_start (gas) or weft.ctx_start (clang)
    has "weft(__|\.)ctx_start \(\) at .*(x86_64|aarch64)\.S"
    ;;
bt_restores_the_thread)
    # the registers the switch frame gives (x86_64.S, aarch64.S)
    arch=$(uname -m)
    [ -z "$qemu" ] || arch=aarch64
    case $arch in
    aarch64) regs="pc sp x19 x20 x21 x22 x23 x24 x25 x26 x27 x28 x29 x30" ;;
    *) regs="pc sp rbp rbx r12 r13 r14 r15" ;;
    esac
    run_gdb -ex "source $script" -ex 'break scene_ready' -ex run \
        -ex 'echo ==before\n' -ex "info registers $regs" -ex 'bt' \
        -ex 'weft bt getter' -ex 'weft bt locker' \
        -ex 'echo ==after\n' -ex "info registers $regs" -ex 'bt' \
        "$scene"
    sed -n '/^==before/,/^coroutine /p' "$out/log" | sed '1d;$d' >"$out/before"
    sed -n '/^==after/,$p' "$out/log" | sed '1d' >"$out/after"
    grep -q "scene_ready" "$out/before" || fail "no bt before"
    grep -q "in main ()" "$out/after" || fail "the bt after weft bt is not the thread's own"
    diff "$out/before" "$out/after" >/dev/null || fail "registers or bt differ after weft bt"
    ;;
bt_refuses_what_it_cannot_show)
    run_gdb -ex "source $script" -ex 'break scene_ready' -ex run -ex 'weft bt' \
        -ex 'weft bt nosuch' -ex 'weft bt 99' -ex 'bt 1' "$scene"
    has "^usage: weft bt <id \| name \| address>"
    has "^weft bt: no live coroutine nosuch"
    has "^weft bt: no live coroutine 99"
    has "^#0  scene_ready \(\)"
    hasnt "Traceback|Python Exception"
    ;;
info_reads_a_core_file)
    run_gdb -ex 'break scene_ready' -ex run -ex "gcore $out/core" "$scene"
    [ -s "$out/core" ] || fail "gcore wrote no core file"
    run_gdb -ex "source $script" -ex 'info weft' -ex 'weft bt getter' "$scene" "$out/core"
    has "^  coroutine [0-9]+ 'getter' 0x[0-9a-f]+ blocked on Queue get 0x[0-9a-f]+( since [0-9]+ ns \(monotonic\))? until [0-9]+ ns"
    has "^  coroutine [0-9]+ 'locker' 0x[0-9a-f]+ blocked on Lock 0x[0-9a-f]+ held by gdb thread 1 "
    has "^weft bt: needs a live process"
    hasnt "Traceback|Python Exception"
    ;;
auto_loads_from_the_install)
    build=$5 version=$6
    cmake --install "$build" --prefix "$out/prefix" >"$out/install.log" 2>&1 ||
        { cat "$out/install.log"; exit 1; }
    lib=$(find "$out/prefix" -name "libweft.so.$version" | head -1)
    [ -n "$lib" ] || { echo "FAIL: no libweft.so.$version installed"; exit 1; }
    libdir=$(dirname "$lib")
    auto="$out/prefix/share/gdb/auto-load$libdir/libweft.so.$version-gdb.py"
    [ -f "$auto" ] || { echo "FAIL: not installed: $auto"; find "$out/prefix" -name '*gdb.py'; exit 1; }
    # The scene linked with libweft.so finds the installed one first (its runpath is the
    # build tree's), and gdb looks in the prefix's auto-load directory as it would in /usr's.
    LD_LIBRARY_PATH=$libdir run_gdb -iex "add-auto-load-scripts-directory $out/prefix/share/gdb/auto-load" \
        -iex 'set auto-load safe-path /' -ex 'break scene_ready' -ex run \
        -ex 'info sharedlibrary libweft' -ex 'info weft' "$scene"
    has "$libdir/libweft\.so"
    has "^  coroutine [0-9]+ 'getter' 0x[0-9a-f]+ blocked on Queue get"
    hasnt "Undefined info command"
    ;;
*)
    echo "test_gdb.sh: no case $case_"
    exit 2
    ;;
esac
echo "ok ($case_)"
