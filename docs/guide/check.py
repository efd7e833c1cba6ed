#!/usr/bin/python3
# Checks the guide (docs/guide/*.md and docs/guide/zh/*.md) against the examples:
#  - every line of a ```c block is a line of the example named last before the block
#    (`examples/<name>.c`), blank lines and `/* ... */` elision lines aside, so each C snippet
#    is an excerpt of a program that builds with the library;
#  - every relative link resolves.
# Usage: python3 docs/guide/check.py   (exit status 1 and a line per problem when one fails)
import glob
import os
import re
import sys

root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
problems = []
for md in sorted(glob.glob(os.path.join(root, 'docs', 'guide', '**', '*.md'), recursive=True)):
    text = open(md, encoding='utf-8').read()
    rel = os.path.relpath(md, root)
    for m in re.finditer(r'```c\n(.*?)```', text, re.S):
        named = re.findall(r'examples/(\w+)\.c', text[:m.start()])
        if not named:
            problems.append(f'{rel}: a C block names no example before it')
            continue
        src = os.path.join(root, 'examples', named[-1] + '.c')
        lines = {l.strip() for l in open(src, encoding='utf-8')} if os.path.exists(src) else set()
        for line in m.group(1).splitlines():
            s = line.strip()
            if s and not re.fullmatch(r'/\* \.\.\..*\*/', s) and s not in lines:
                problems.append(f'{rel}: not a line of examples/{named[-1]}.c: {s}')
    for link in re.findall(r'\]\(([^)#]+)\)', text):
        if not re.match(r'[a-z]+:', link) and not os.path.exists(
                os.path.join(os.path.dirname(md), link)):
            problems.append(f'{rel}: broken link {link}')
print('\n'.join(problems) if problems else 'guide: every C snippet is an excerpt of its example')
sys.exit(1 if problems else 0)
