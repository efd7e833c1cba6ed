#!/bin/sh
# build.docs_fail_on_an_undocumented_parameter: the reference's check (make docs, docs/API.md
# section 12) fails on a parameter or a return value a header comment leaves out. A copy of
# include/ loses weft_lock_acquire's "l:" line and weft_lock_release's "Returns" line; Doxygen
# must then exit non-zero naming both. Usage: docs_param_selftest.sh SOURCE_DIR
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src/include" "$src/docs" "$tmp/"
python3 - "$tmp/include/weft/sync.h" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
def drop(decl, pattern):
    global s
    end = s.index(decl)
    start = s.rindex("/*", 0, end)
    comment = s[start:end]
    cut = re.sub(pattern, "", comment, count=1, flags=re.M)
    assert cut != comment, (decl, pattern)
    s = s[:start] + cut + s[end:]
drop("WEFT_EXTERN int weft_lock_acquire(", r"^ \* l: .*\n")
drop("WEFT_EXTERN int weft_lock_release(", r"^ \* Returns ")
open(p, "w").write(s)
PY
cd "$tmp"
mkdir out
if WEFT_DOCS_OUT="$tmp/out" WEFT_VERSION=0 doxygen docs/reference/Doxyfile >/dev/null 2>&1; then
    echo "doxygen passed a header with an undocumented parameter and return value"
    exit 1
fi
grep -q "parameter 'l'" out/warnings.log || { echo "no warning for weft_lock_acquire's l"; cat out/warnings.log; exit 1; }
grep -q "return type of member weft_lock_release" out/warnings.log ||
    { echo "no warning for weft_lock_release's return"; cat out/warnings.log; exit 1; }
echo "ok: $(grep -c . out/warnings.log) warning line(s), both named"
