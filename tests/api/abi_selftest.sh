#!/usr/bin/env bash
# build.abi_check_catches_breaks: abi/abi.sh, run on a small libweft.so made in a scratch
# directory, passes an unchanged library, an added function and a change to a private type, and
# fails a removed function and a public struct that grew. Usage: abi_selftest.sh <cc>
set -uo pipefail
cc=${1:-cc}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/weft-abi-selftest.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/h" "$work/build" "$work/abi"
export WEFT_ABI_BUILD=$work/build WEFT_ABI_DIR=$work/abi WEFT_ABI_HEADERS=$work/h

# lib VARIANT: builds $work/build/libweft.so from the variant's public header and source.
lib() {
  local pub_extra="" priv_extra="" funcs="int weft_demo_get(weft_demo_t *d) { return d->a; }"
  case $1 in
    added)   funcs="$funcs int weft_demo_added(void) { return 1; }" ;;
    removed) funcs="int weft_demo_other(void) { return 2; }" ;;
    grown)   pub_extra="int grown;" ;;
    private) priv_extra="long more;" ;;
  esac
  cat >"$work/h/demo.h" <<EOH
typedef struct weft_demo { int a; $pub_extra } weft_demo_t;
typedef struct weft_secret weft_secret_t;
int weft_demo_get(weft_demo_t *d);
int weft_secret_peek(weft_secret_t *s);
EOH
  cat >"$work/demo.c" <<EOC
#include "demo.h"
struct weft_secret { int x; $priv_extra };
#define API __attribute__((visibility("default")))
API int weft_secret_peek(weft_secret_t *s) { return s->x; }
$(echo "$funcs" | sed 's/int weft_/API int weft_/g')
EOC
  (cd "$work" && $cc -g -O2 -shared -fPIC -fvisibility=hidden -I h -o build/libweft.so demo.c \
     -Wl,--version-script="$root/cmake/weft.map" -Wl,-soname,libweft.so.1) || exit 2
}

problems=0
expect() { # VARIANT WANT(0|1) WHAT
  lib "$1"
  out=$("$root/abi/abi.sh" check 2>&1); rc=$?
  if (( (rc != 0) != $2 )); then
    echo "FAIL: $3: abi.sh check exited $rc"; echo "$out"; problems=1
  else
    echo "ok: $3: $(echo "$out" | grep '^abi:' | head -1)"
  fi
}
lib base
"$root/abi/abi.sh" baseline || exit 2
expect base    0 "an unchanged library passes"
expect added   0 "an added function passes (reported)"
expect private 0 "a change inside an opaque handle's private struct passes"
expect removed 1 "a removed function fails"
expect grown   1 "a public struct that grew fails"
exit $problems
