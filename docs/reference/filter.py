#!/usr/bin/env python3
"""Doxygen's INPUT_FILTER for weft's headers (docs/reference/Doxyfile).

The headers are written in plain C comments, and stay so; this filter turns them into the
doc comments Doxygen reads, line for line (line numbers are kept, so warnings point at the
header itself):
  - the file's opening comment becomes its \\file page;
  - a comment that starts a line (the one above a declaration, a section's) becomes /** ;
  - <word> in a comment's prose is escaped (it is not an HTML tag);
  - a comment after a member (`int x; /* what x is */`) becomes /**< ;
  - a comment above several declarations with no blank line between them (weft_event_clear
    and weft_event_is_set under one comment) documents each of them: the declarations become
    a member group (DISTRIBUTE_GROUP_DOC), its markers put on existing lines;
  - the parameters and the return value, in plain words: in a comment above a function (or a
    function-like macro), a line after the first that starts with `name:`, where name is one
    of the declaration's parameters, becomes `\\param name`, and a line after the first that
    starts with `Returns` becomes `\\return`. Each such paragraph runs to the next one or to the
    end of the comment, so they close it (docs/API.md, section 12):

        /* Acquires the lock, waiting up to timeout.
         * l: the lock.
         * timeout: seconds; WEFT_FOREVER waits without a limit, 0 only tries.
         * Returns 0, WEFT_ETIMEDOUT, WEFT_ECANCELED (a cancel scope), WEFT_EINVAL (l NULL). */

    The Doxyfile has WARN_NO_PARAMDOC on: make docs fails on a parameter or a return value a
    comment does not name.
Nothing else changes: the text of every comment reaches the reference as written.
"""
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
lines = text.split("\n")
out = []
first = True
in_comment = False
for line in lines:
    stripped = line.lstrip()
    if not in_comment and stripped.startswith("/*") and not stripped.startswith("/**"):
        indent = line[: len(line) - len(stripped)]
        if first:
            line = indent + "/** \\file" + stripped[2:]
        else:
            line = indent + "/**" + stripped[2:]
    elif not in_comment and re.search(r"[;,{]\s*/\*[^*]", line) and not stripped.startswith("#"):
        line = re.sub(r"([;,{]\s*)/\*(?!\*)", r"\1/**<", line, count=1)
    if in_comment or stripped.startswith("/**"):
        # <word> in prose (`<seconds>`, `"<name>"`) is text, not an HTML tag: escaped outside
        # code spans.
        parts = line.split("`")
        parts[::2] = [re.sub(r"<(\w+)>", r"\\<\1\\>", p) for p in parts[::2]]
        line = "`".join(parts)
    if "/*" in line and "*/" not in line.split("/*", 1)[1]:
        in_comment = True
    elif in_comment and "*/" in line:
        in_comment = False
    if stripped.startswith("/*"):
        first = False
    out.append(line)


def doc_blocks(out):
    """Each doc comment but the file's, with the declarations after it: (first line of the
    comment, its last line, the line after the declarations: a blank one or the next comment)."""
    i = 0
    while i < len(out):
        if out[i].lstrip().startswith("/**") and not out[i].lstrip().startswith("/** \\file"):
            end = i
            while "*/" not in out[end]:
                end += 1
            j = end + 1
            while j < len(out) and out[j].strip() and not out[j].lstrip().startswith("/*"):
                j += 1
            yield i, end, j
            i = j
        else:
            i += 1


# Member groups: a doc comment, then two or more declarations up to the next blank line.
for i, end, j in doc_blocks(out):
    block = out[end + 1 : j]
    decls = [l for l in block if l.startswith(("WEFT_EXTERN", "#define", "typedef"))]
    if len(decls) >= 2 and not any("{" in l or "/*" in l for l in block) and not block[-1].endswith("\\"):
        out[end] += " /**@{*/"
        out[j] = "/**@}*/ " + out[j]  # the next line: after a #define's text, not in it

# Parameters and return values: a comment's `name:` and `Returns` lines, after its first line.
PARAM = re.compile(r"^(\s*\*?\s*)([A-Za-z_]\w*):(\s)")
RETURNS = re.compile(r"^(\s*\*?\s*)Returns\b\s*")
for i, end, j in doc_blocks(out):
    decl = " ".join(out[end + 1 : j])
    if "(" not in decl:
        continue
    names = set(re.findall(r"[A-Za-z_]\w*", decl))
    for k in range(i + 1, end + 1):
        line = out[k]
        m = PARAM.match(line)
        if m and m.group(2) in names:
            out[k] = f"{m.group(1)}\\param {m.group(2)}{m.group(3)}{line[m.end():]}"
            continue
        m = RETURNS.match(line)
        if m:
            out[k] = f"{m.group(1)}\\return {line[m.end():]}"
sys.stdout.write("\n".join(out))
