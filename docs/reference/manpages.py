#!/usr/bin/env python3
"""Section-3 man pages, one per public function and macro, from Doxygen's man output.

Usage: manpages.py MAN3_DIR
Doxygen (docs/reference/Doxyfile) writes one page per header (sync.h.3, titled weft/sync.h) and,
with MAN_LINKS, a `.so` link per member, which `man -l` cannot follow from another directory.
This replaces the links: every function and macro documented in a header page gets a page of
its own (NAME, SYNOPSIS with its #include and prototype, DESCRIPTION, SEE ALSO the header's
page), and the remaining links (struct fields, anonymous unions) are removed; the header and
struct pages stay. Exits 1 if a public function (a weft_* in a Functions section) got no page.
"""
import os
import re
import sys

man3 = sys.argv[1]
made = []
for link in os.listdir(man3):
    path = os.path.join(man3, link)
    with open(path, encoding="utf-8") as f:
        if f.read(4) == ".so ":
            os.remove(path)

for page in sorted(p for p in os.listdir(man3) if p.endswith(".h.3")):
    text = open(os.path.join(man3, page), encoding="utf-8").read()
    th = text.split("\n", 1)[0]  # .TH "weft/sync.h" 3 "date" "Version x" "weft"
    m = re.match(r'\.TH "([^"]+)" 3 (.*)', th)
    header, rest = m.group(1), m.group(2)
    include = header if header != "weft.h" else "weft.h"
    sections = re.split(r'^\.SH "?([^"\n]+)"?$', text, flags=re.M)
    wanted = {}
    for title, body in zip(sections[1::2], sections[2::2]):
        if title not in ("Function Documentation", "Macro Definition Documentation"):
            continue
        for block in re.split(r"^(?=\.SS )", body, flags=re.M):
            if not block.startswith(".SS "):
                continue
            proto, _, desc = block.partition("\n")
            proto = proto[4:].strip().strip('"')
            plain = re.sub(r"\\f[BPCIR]", "", proto)
            if plain.startswith("#define"):
                nm = re.match(r"#define\s+((?:weft|WEFT)_\w+)", plain)
            else:
                nm = re.search(r"\b(weft_\w+)\s*\(", plain)
            if not nm:
                continue
            wanted[nm.group(1)] = (proto, desc.strip())
    for name, (proto, desc) in wanted.items():
        first = re.sub(r"^\.PP\s*", "", desc).split("\n", 1)[0]
        first = re.sub(r"\\f[BPCIR]", "", first)
        first = re.sub(r"^-{3,}.*?-{3,}\s*", "", first)  # a section's title line ("---- Lock ----")
        brief = re.split(r"(?<=\\&\.)\s", first, 1)[0].strip()
        if proto.startswith("#define"):
            synopsis = proto
        else:
            synopsis = proto + ";"
        out = [
            f'.TH "{name}" 3 {rest}',
            ".ad l",
            ".nh",
            ".SH NAME",
            f"{name} \\- {brief}",
            ".SH SYNOPSIS",
            ".nf",
            f"\\fB#include <{include}>\\fP",
            ".sp",
            synopsis,
            ".fi",
            ".SH DESCRIPTION",
            desc,
            '.SH "SEE ALSO"',
            f"\\fB{page[:-2]}\\fP(3): the whole header, its rules for errors, timeouts and"
            " thread, coroutine and fork safety\\&.",
            "",
        ]
        with open(os.path.join(man3, name + ".3"), "w", encoding="utf-8") as f:
            f.write("\n".join(out))
        made.append(name)

# Every exported function declared in a header page's summary has a page.
missing = []
for page in (p for p in os.listdir(man3) if p.endswith(".h.3")):
    text = open(os.path.join(man3, page), encoding="utf-8").read()
    summary = text.split('.SH "Detailed Description"')[0]
    for fn in re.findall(r'\\fB(weft_\w+)\\fP \(', summary):
        if not os.path.exists(os.path.join(man3, fn + ".3")):
            missing.append(f"{fn} ({page})")
print(f"manpages.py: {len(made)} function and macro pages in {man3}")
if missing:
    print("manpages.py: no page for: " + ", ".join(sorted(missing)), file=sys.stderr)
    sys.exit(1)
