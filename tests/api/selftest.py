#!/usr/bin/python3
# build.api_checks_report_violations: the checks of check_api.py fail, naming the name and the
# rule, on a small tree made to break every rule once (and stay quiet about what only looks like
# a declaration: comments, the C++ branch, a static inline definition).
# Usage: selftest.py <cc>
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
cc = sys.argv[1] if len(sys.argv) > 1 else 'cc'
root = tempfile.mkdtemp(prefix='weft-api-selftest-')


def write(rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path


write('include/weft.h', '#include "weft/bad.h"\n')
write('include/weft/version.h', '#define WEFT_VERSION_MAJOR 1\n#define WEFT_VERSION_MINOR 2\n'
      '#define WEFT_VERSION_PATCH 3\n')
write('include/weft/bad.h', r'''
#ifdef __cplusplus
extern "C" {
WEFT_EXTERN int weft_cplusplus_only(void);
#endif
#define WEFT_EXTERN
typedef struct weft_lock weft_lock_t;
typedef struct weft_queue weft_queue_t;
typedef struct weft_thing weft_thing_t;
typedef void (*weft_thing_fn)(void *arg);
/* WEFT_EXTERN int weft_commented_out(void); */
// WEFT_EXTERN int weft_line_commented(void);
#define WEFT_MACRO(fn) \
    static void weft_macro_made_##fn(void)
WEFT_EXTERN int weft_pipe(int *a);
WEFT_EXTERN int weft_frob_it(void);
WEFT_EXTERN int weft_lock_init(weft_lock_t *l);
WEFT_EXTERN int weft_lock_acquire(weft_lock_t *l, double timeout);
WEFT_EXTERN int weft_queue_create(int kind, void (*dispose)(void *item, void *arg),
                                  weft_queue_t **q);
WEFT_EXTERN int weft_thing_create(weft_thing_fn fn, weft_thing_t **t);
WEFT_EXTERN void weft_thing_release(weft_thing_t *t);
int weft_thing_hidden(weft_thing_t *t);
static inline int weft_thing_inline(int x) { return x + 1; }
static inline int weft__helper_inline(int x) { return x; }
WEFT_EXTERN int weft__internal_declared(void);
#ifdef __cplusplus
}
#endif
''')
write('docs/API.md', '# rules\n\n### The nouns\n\n| noun | what |\n|---|---|\n'
      + ''.join(f'| `{n}` | x |\n' for n in ['pipe', 'lock', 'queue', 'thing', 'cplusplus']))
write('README.md', 'A block that does not compile:\n\n```c\n#include <weft.h>\n'
      'int f(void) { return undeclared; }\n```\n\nFrom examples/demo.c:\n\n```c\n'
      '    weft_lock_acquire(&l, 1.0);\n    /* ... */\n    not_a_line_of_demo();\n```\n')
write('examples/demo.c', 'int main(void)\n{\n    weft_lock_acquire(&l, 1.0);\n}\n')
lib_src = write('lib.c', '__attribute__((visibility("default"))) int weft_pipe(int *a) '
                '{ return *a; }\n__attribute__((visibility("default"))) int weft_stray_one(void) '
                '{ return 0; }\n')
lib = os.path.join(root, 'libweft.so')
subprocess.run([cc, '-shared', '-fPIC', '-fvisibility=hidden', '-o', lib, lib_src], check=True)

expect = {
    'names': ['weft_pipe (weft/bad.h): rule 1, weft_<noun>_<verb>: the noun `pipe` has no verb',
              'weft_frob_it (weft/bad.h): rule 1, weft_<noun>_<verb>: no noun of docs/API.md',
              'weft__internal_declared (weft/bad.h): rule 1: an internal name (weft__*) '
              'declared in a public header'],
    'init_destroy': ['weft_lock_init (weft/bad.h): rule 3, every _init has a _destroy: '
                     'weft_lock_destroy is not declared'],
    'create_release': ['weft_queue_create (weft/bad.h): rule 3, a handle made by _create/_start/'
                       '_spawn is dropped by _release: weft_queue_release is not declared'],
    'release_int': ['weft_thing_release (weft/bad.h): rule 3, _release returns int (0, '
                    'WEFT_EINVAL, WEFT_EBUSY): it returns void'],
    'exports': ['weft_stray_one: exported by libweft.so but declared in no public header',
                'weft_lock_init (weft/bad.h): declared but not exported by libweft.so '
                '(not defined in the library)',
                'weft_thing_hidden (weft/bad.h): declared but not exported by libweft.so '
                '(declared without WEFT_EXTERN)',
                'weft_pipe: exported by libweft.so with version "", not WEFT_1.x',
                'libweft.so: SONAME None, want libweft.so.1'],
    'version': ['include/weft/version.h says 1.2.3, CMakeLists.txt project(VERSION) says 1.0.0'],
    'readme': ['README.md:3: the C block does not compile',
               'an excerpt of examples/demo.c, but this line is not one of its lines: '
               'not_a_line_of_demo();'],
}
never = ['weft_commented_out', 'weft_line_commented', 'weft_cplusplus_only', 'weft_macro_made',
         'weft_thing_inline', 'weft__helper_inline']
extra = {'exports': ['--lib', lib], 'version': ['--version', '1.0.0'],
         'readme': ['--cc', cc, '--libdir', root]}
problems = []
for check, lines in expect.items():
    r = subprocess.run([sys.executable, os.path.join(here, 'check_api.py'), check, '--root', root,
                        '--min-functions', '1'] + extra.get(check, []),
                       capture_output=True, text=True)
    out = r.stdout + r.stderr
    if r.returncode != 1:
        problems.append(f'{check}: exit status {r.returncode}, want 1:\n{out}')
    for line in lines:
        if line not in out:
            problems.append(f'{check}: does not report "{line}":\n{out}')
    for name in never + (['weft_thing_create ('] if check == 'create_release' else []):
        if name in out:
            problems.append(f'{check}: reports {name}, which is no declaration of the API:\n{out}')
print('\n'.join(problems) if problems else
      'selftest: every check reports each violation of the fixture, and nothing else')
sys.exit(1 if problems else 0)
