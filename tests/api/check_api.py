#!/usr/bin/python3
# The mechanical rules of docs/API.md, checked on the public headers, the built libraries and
# the README. Each subcommand is one CTest entry (tests/CMakeLists.txt, build.api_* and
# build.readme_examples_compile); each prints every name that breaks its rule and the rule it
# breaks, and exits 1 if there is any.
#
#   check_api.py names        --root R             rule 1: weft_<noun>_<verb>, nouns from docs/API.md
#   check_api.py init_destroy --root R             rule 3: every weft_X_init has weft_X_destroy
#   check_api.py create_release --root R           rule 3: a _create/_start/_spawn whose last
#                                                  parameter is weft_X_t ** has weft_X_release
#   check_api.py release_int  --root R             rule 3: every _release returns int
#   check_api.py exports      --root R --lib L...  the exported set equals the headers' functions;
#                                                  every one versioned WEFT_<major>.x; SONAME
#   check_api.py version      --root R --version V the CMake project VERSION equals weft/version.h
#   check_api.py readme       --root R --cc CC --libdir D [--cflags F]   README's C blocks build
#
# The headers are read as C, not grepped: comments and preprocessor lines are removed (the
# __cplusplus branches dropped, the others kept), then every top-level declaration is parsed.
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

# Fewer functions than this in the headers means the parser is broken (selftest.py lowers it).
MIN_FUNCTIONS = 50


def fail(problems, what):
    if problems:
        print('\n'.join(problems))
        print(f'{len(problems)} problem(s): {what}')
        sys.exit(1)


# ---- reading the headers -------------------------------------------------------------------

def strip_comments(text):
    """Block and line comments become a space; string and character literals stay."""
    def repl(m):
        s = m.group(0)
        return ' ' if s.startswith('/') else s
    return re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*', repl, text,
                  flags=re.S)


def drop_preprocessor(text):
    """Removes directives (with their continuation lines) and the #ifdef __cplusplus branches."""
    text = re.sub(r'\\\n', ' ', text)
    out, stack = [], []  # stack: True where the current branch is dropped
    for line in text.split('\n'):
        m = re.match(r'\s*#\s*(\w+)(.*)', line)
        if not m:
            if not any(stack):
                out.append(line)
            continue
        d, rest = m.group(1), m.group(2)
        if d in ('if', 'ifdef', 'ifndef'):
            stack.append(d == 'ifdef' and rest.strip() == '__cplusplus')
        elif d in ('else', 'elif'):
            if stack:
                stack[-1] = False if stack[-1] else stack[-1]
        elif d == 'endif':
            if stack:
                stack.pop()
    return '\n'.join(out)


def statements(text):
    """Top-level declarations: text up to a ';' at brace depth 0, or a function definition."""
    out, cur, depth = [], [], 0
    for ch in text:
        cur.append(ch)
        if ch == '{':
            depth += 1
        elif ch == '}':
            depth -= 1
            if depth == 0:
                s = ''.join(cur)
                head = s[:s.index('{')].strip()
                if head.endswith(')'):  # a function definition (static inline): no ';'
                    out.append(('definition', ' '.join(s.split())))
                    cur = []
        elif ch == ';' and depth == 0:
            out.append(('declaration', ' '.join(''.join(cur).split())))
            cur = []
    return out


def split_params(params):
    parts, depth, cur = [], 0, ''
    for ch in params:
        if ch in '([':
            depth += 1
        elif ch in ')]':
            depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur.strip())
            cur = ''
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


class Function:
    def __init__(self, name, ret, params, header, extern, definition):
        self.name, self.ret, self.params = name, ret, params
        self.header, self.extern, self.definition = header, extern, definition


def parse_headers(root):
    """Every function declared at file scope in include/weft/*.h (and include/weft.h)."""
    funcs = {}
    paths = sorted(glob.glob(os.path.join(root, 'include', 'weft', '*.h')))
    paths += [os.path.join(root, 'include', 'weft.h')]
    for path in paths:
        header = os.path.relpath(path, os.path.join(root, 'include'))
        text = drop_preprocessor(strip_comments(open(path, encoding='utf-8').read()))
        text = re.sub(r'\bextern\s+"C"\s*\{', ' ', text)
        for kind, st in statements(text):
            if st.startswith('typedef') or st.startswith('struct') and '(' not in st:
                continue
            st = re.sub(r'__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)', ' ', st)
            m = re.search(r'\b(weft_[A-Za-z0-9_]+)\s*\(', st)
            if not m:
                continue
            pre = st[:m.start()]
            if '(' in pre or '=' in pre or '{' in pre:
                continue
            # the parameter list: from the '(' to its matching ')'
            i, depth = m.end() - 1, 0
            for j in range(i, len(st)):
                depth += {'(': 1, ')': -1}.get(st[j], 0)
                if depth == 0:
                    break
            params = split_params(st[i + 1:j])
            if params == ['void']:
                params = []
            extern = 'WEFT_EXTERN' in pre.split()
            ret = ' '.join(w for w in pre.split()
                           if w not in ('WEFT_EXTERN', 'WEFT_NODISCARD', 'extern'))
            funcs[m.group(1)] = Function(m.group(1), ret, params, header, extern,
                                         kind == 'definition')
    if len(funcs) < MIN_FUNCTIONS:
        print(f'only {len(funcs)} functions found in {root}/include: the parser is broken')
        sys.exit(1)
    return funcs


def api_functions(funcs):
    """The functions a library exports: declared, not defined in the header."""
    return {n: f for n, f in funcs.items() if not f.definition}


# ---- rule 1: names -------------------------------------------------------------------------

def nouns_from_doc(root):
    """The nouns of docs/API.md: the first cell (`noun`) of each row of the table under the
    heading that contains 'nouns'."""
    path = os.path.join(root, 'docs', 'API.md')
    nouns, inside = [], False
    for line in open(path, encoding='utf-8'):
        if line.startswith('#'):
            inside = 'nouns' in line.lower()
            continue
        m = re.match(r'\|\s*`([a-z][a-z0-9_]*)`\s*\|', line)
        if inside and m:
            nouns.append(m.group(1))
    if len(nouns) < min(10, MIN_FUNCTIONS):
        print(f'{path}: no table of nouns found under a heading naming "nouns"')
        sys.exit(1)
    return nouns


def check_names(args):
    nouns = nouns_from_doc(args.root)
    funcs = parse_headers(args.root)  # static inline ones too: they are API as well
    problems = []
    for name, f in sorted(funcs.items()):
        fitting = [n for n in nouns if re.fullmatch(f'weft_{n}_[a-z0-9][a-z0-9_]*', name)]
        if name.startswith('weft__'):
            if not f.definition:
                problems.append(f'{name} ({f.header}): rule 1: an internal name (weft__*) '
                                f'declared in a public header (only a static inline helper may be)')
        elif not fitting:
            bare = name[len('weft_'):]
            why = f'the noun `{bare}` has no verb after it' if bare in nouns else \
                'no noun of docs/API.md begins it'
            problems.append(f'{name} ({f.header}): rule 1, weft_<noun>_<verb>: {why}')
        elif '__' in name:
            problems.append(f'{name} ({f.header}): rule 1: a double underscore is for internal '
                            f'names (weft__*)')
    fail(problems, 'names that are not weft_<noun>_<verb> with a noun listed in docs/API.md')
    print(f'names: all {len(funcs)} public functions are weft_<noun>_<verb> '
          f'({len(nouns)} nouns in docs/API.md)')


# ---- rule 3: lifecycle pairs ---------------------------------------------------------------

def check_init_destroy(args):
    funcs = api_functions(parse_headers(args.root))
    problems, n = [], 0
    for name, f in sorted(funcs.items()):
        m = re.fullmatch(r'weft_(.+?)_init(?:_[a-z0-9]+)?', name)
        if not m:
            continue
        n += 1
        want = f'weft_{m.group(1)}_destroy'
        if want not in funcs:
            problems.append(f'{name} ({f.header}): rule 3, every _init has a _destroy: '
                            f'{want} is not declared')
    if n < min(5, MIN_FUNCTIONS):
        problems.append(f'only {n} _init functions found: the header parser is broken')
    fail(problems, 'an _init without its _destroy')
    print(f'init_destroy: all {n} _init functions have their _destroy')


def check_create_release(args):
    funcs = api_functions(parse_headers(args.root))
    problems, n = [], 0
    for name, f in sorted(funcs.items()):
        if not re.search(r'_(create|start|spawn)$', name) or not f.params:
            continue
        m = re.match(r'(?:const\s+)?weft_([a-z0-9_]+)_t\s*\*\s*\*', f.params[-1])
        if not m:
            continue
        n += 1
        want = f'weft_{m.group(1)}_release'
        if want not in funcs:
            problems.append(f'{name} ({f.header}): rule 3, a handle made by _create/_start/'
                            f'_spawn is dropped by _release: {want} is not declared')
    if n < min(5, MIN_FUNCTIONS):
        problems.append(f'only {n} constructors with a weft_X_t ** last parameter found: '
                        f'the header parser is broken')
    fail(problems, 'a constructor without its _release')
    print(f'create_release: all {n} constructors of handles have their _release')


def check_release_int(args):
    funcs = api_functions(parse_headers(args.root))
    problems, n = [], 0
    for name, f in sorted(funcs.items()):
        if name.endswith('_release'):
            n += 1
            if f.ret != 'int':
                problems.append(f'{name} ({f.header}): rule 3, _release returns int '
                                f'(0, WEFT_EINVAL, WEFT_EBUSY): it returns {f.ret}')
    fail(problems, '_release functions that do not return int')
    print(f'release_int: all {n} _release functions return int')


# ---- the exported set ----------------------------------------------------------------------

def header_version(root):
    text = open(os.path.join(root, 'include', 'weft', 'version.h'), encoding='utf-8').read()
    parts = []
    for p in ('MAJOR', 'MINOR', 'PATCH'):
        m = re.search(rf'#define WEFT_VERSION_{p} (\d+)', text)
        if not m:
            print(f'include/weft/version.h: no WEFT_VERSION_{p}')
            sys.exit(1)
        parts.append(int(m.group(1)))
    return parts


def dynamic_symbols(lib):
    """(name, version) of every symbol lib defines in its dynamic table."""
    out = subprocess.run(['readelf', '--dyn-syms', '-W', lib], capture_output=True, text=True,
                         check=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) < 8 or not f[0].rstrip(':').isdigit() or f[6] == 'UND':
            continue
        if f[3] not in ('FUNC', 'OBJECT', 'IFUNC') or f[4] not in ('GLOBAL', 'WEAK'):
            continue
        name, _, version = f[7].partition('@')
        syms.append((name, version.lstrip('@')))
    return syms


def soname(lib):
    out = subprocess.run(['readelf', '-d', '-W', lib], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r'\(SONAME\)\s+Library soname: \[([^\]]+)\]', out)
    return m.group(1) if m else None


def check_exports(args):
    funcs = api_functions(parse_headers(args.root))
    major = header_version(args.root)[0]
    problems, total = [], 0
    libs = [l for l in args.lib if l]
    have_mpi = any(os.path.basename(l).startswith('libweft_mpi') for l in libs)
    for lib in libs:
        base = os.path.basename(lib).split('.so')[0]  # libweft, libweft_mpi
        mine = {n for n, f in funcs.items()
                if (f.header == 'weft/mpi.h') == (base == 'libweft_mpi')}
        syms = dynamic_symbols(lib)
        exported = {n for n, v in syms if n.startswith('weft_')}
        total += len(exported)
        for n in sorted(exported - mine):
            where = funcs[n].header if n in funcs else None
            why = f'declared in {where}, which belongs to the other library' if where else \
                'declared in no public header (make it static or weft__*, or declare it)'
            problems.append(f'{n}: exported by {base}.so but {why}')
        for n in sorted(mine - exported):
            f = funcs[n]
            why = 'declared without WEFT_EXTERN' if not f.extern else 'not defined in the library'
            problems.append(f'{n} ({f.header}): declared but not exported by {base}.so ({why})')
        for n, v in syms:
            if n.startswith('weft_') and not re.fullmatch(rf'WEFT_{major}\.\d+', v):
                problems.append(f'{n}: exported by {base}.so with version "{v}", not '
                                f'WEFT_{major}.x (cmake/{base[3:]}.map)')
        want = f'{base}.so.{major}'
        got = soname(lib)
        if got != want:
            problems.append(f'{base}.so: SONAME {got}, want {want} (the major version)')
    if not have_mpi:
        print('(libweft_mpi.so not built: the functions of weft/mpi.h are not checked)')
    fail(problems, 'the exported set differs from the headers\' declarations')
    print(f'exports: the {total} exported weft_* functions are exactly the headers\', all '
          f'versioned WEFT_{major}.x, SONAMEs .so.{major}')


def check_version(args):
    v = '.'.join(str(p) for p in header_version(args.root))
    if v != args.version:
        fail([f'include/weft/version.h says {v}, CMakeLists.txt project(VERSION) says '
              f'{args.version}'], 'one version, in two places that must agree')
    print(f'version: {v} in CMakeLists.txt and weft/version.h')


# ---- README.md's C blocks ------------------------------------------------------------------

def check_readme(args):
    """Every ```c block of README.md builds as it stands: a block with main() is a program
    (compiled, linked against the built libweft, run: exit status 0 within 60 s); a block
    with #include but no main is a translation unit (compiled); any other block is an excerpt
    of the example it names last before it (examples/<name>.c, which the build compiles):
    each of its lines is a line of that file, `/* ... */` elision lines aside."""
    text = open(os.path.join(args.root, 'README.md'), encoding='utf-8').read()
    problems, n = [], 0
    work = tempfile.mkdtemp(prefix='weft-readme-')
    inc = os.path.join(args.root, 'include')
    flags = ['-std=c17', '-Wall', '-Wextra', '-Werror', '-I', inc] + args.cflags.split()
    for m in re.finditer(r'```c\n(.*?)```', text, re.S):
        n += 1
        code = m.group(1)
        line = text[:m.start()].count('\n') + 1
        where = f'README.md:{line}'
        if re.search(r'\bint\s+main\s*\(', code) or '#include' in code:
            src = os.path.join(work, f'block{n}.c')
            open(src, 'w', encoding='utf-8').write(code)
            program = re.search(r'\bint\s+main\s*\(', code) is not None
            exe = os.path.join(work, f'block{n}')
            cmd = [args.cc] + flags + [src]
            cmd += ['-o', exe, '-L', args.libdir, '-Wl,-rpath,' + args.libdir, '-lweft'] \
                if program else ['-c', '-o', exe + '.o']
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                problems.append(f'{where}: the C block does not compile:\n{r.stderr.strip()}')
                continue
            if program:
                try:
                    r = subprocess.run([exe], capture_output=True, text=True, timeout=60)
                    if r.returncode:
                        problems.append(f'{where}: the program exits {r.returncode}:\n'
                                        f'{r.stdout}{r.stderr}')
                    else:
                        print(f'{where}: built and ran: ' + ' | '.join(r.stdout.split('\n')[:4]))
                except subprocess.TimeoutExpired:
                    problems.append(f'{where}: the program did not end within 60 s')
            else:
                print(f'{where}: compiled')
            continue
        named = re.findall(r'examples/(\w+)\.c', text[:m.start()])
        if not named:
            problems.append(f'{where}: a C block that is neither a program (main), nor a '
                            f'translation unit (#include), nor an excerpt of a named '
                            f'examples/<name>.c')
            continue
        src = os.path.join(args.root, 'examples', named[-1] + '.c')
        lines = {l.strip() for l in open(src, encoding='utf-8')} if os.path.exists(src) else set()
        bad = [l.strip() for l in code.splitlines()
               if l.strip() and not re.fullmatch(r'/\* \.\.\..*\*/', l.strip())
               and l.strip() not in lines]
        for b in bad:
            problems.append(f'{where}: an excerpt of examples/{named[-1]}.c, but this line '
                            f'is not one of its lines: {b}')
        if not bad:
            print(f'{where}: an excerpt of examples/{named[-1]}.c (built with the examples)')
    fail(problems, 'README.md C blocks that do not build as they stand')
    print(f'readme: all {n} C blocks build')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('check', choices=['names', 'init_destroy', 'create_release', 'release_int',
                                     'exports', 'version', 'readme'])
    p.add_argument('--root', required=True)
    p.add_argument('--lib', action='append', default=[])
    p.add_argument('--version')
    p.add_argument('--cc', default='cc')
    p.add_argument('--libdir')
    p.add_argument('--cflags', default='')
    p.add_argument('--min-functions', type=int, default=50)
    args = p.parse_args()
    global MIN_FUNCTIONS
    MIN_FUNCTIONS = args.min_functions
    globals()['check_' + args.check](args)


if __name__ == '__main__':
    main()
