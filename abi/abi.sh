#!/usr/bin/env bash
# abi/abi.sh check|baseline — the ABI of libweft.so (and libweft_mpi.so when MPI is built)
# against the committed baseline abi/<lib>.abi (docs/API.md, "ABI and SONAME").
#
#   check     (make abi-check, CI) describes the libraries of build/abi with abidw and compares
#             them with the baseline by abidiff: fails on any change to what 1.0 already had
#             (a function removed or changed, a public type changed: size, layout, a field's
#             type); functions added on top are compatible: reported, not a failure.
#   baseline  (make abi-baseline) writes the baseline from build/abi. Only on purpose: with a
#             release, after reviewing `make abi-check`'s report (docs/API.md says when).
#
# build/abi is the preset "abi" (CMakePresets.json): Release with -g, the libraries alone, with
# -ffile-prefix-map so that no path of the machine (/work/..., CI's /check/...) enters the
# debug info; abidw leaves out the corpus and compilation-directory paths. Types count as
# public when they are defined in include/weft/*.h; changes to types private to src/ (the
# insides of an opaque handle) are not ABI changes. abi/<lib>.abignore, if present, holds
# libabigail suppressions for changes reviewed as compatible (each with a comment saying why).
#
# The environment can point it elsewhere (tests/api/abi_selftest.sh does): WEFT_ABI_BUILD (the
# libraries, default build/abi), WEFT_ABI_DIR (the baseline, default abi), WEFT_ABI_HEADERS
# (the public headers, default include/weft); relative paths are from the repository's root.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
build=${WEFT_ABI_BUILD:-build/abi}
dir=${WEFT_ABI_DIR:-abi}
headers=${WEFT_ABI_HEADERS:-include/weft}
[[ $mode == check || $mode == baseline ]] || { echo "usage: abi/abi.sh check|baseline" >&2; exit 2; }
for tool in abidw abidiff; do
  command -v $tool >/dev/null || { echo "abi: $tool not found (Debian: abigail-tools; make deps)" >&2; exit 2; }
done
libs=(libweft)
[[ -e $build/libweft_mpi.so ]] && libs+=(libweft_mpi)
[[ -e $build/libweft.so ]] || { echo "abi: no $build/libweft.so (make abi-check builds it)" >&2; exit 2; }

describe() { # lib out
  abidw --no-corpus-path --no-comp-dir-path --headers-dir "$headers" --drop-private-types \
        --out-file "$2" "$build/$1.so"
}

status=0
for lib in "${libs[@]}"; do
  if [[ $mode == baseline ]]; then
    describe $lib $dir/$lib.abi
    echo "abi: wrote $dir/$lib.abi ($(grep -c '<elf-symbol ' $dir/$lib.abi) symbols) from $build/$lib.so"
    continue
  fi
  if [[ ! -e $dir/$lib.abi ]]; then
    echo "abi: FAIL: no baseline $dir/$lib.abi (make abi-baseline writes it)"; status=1; continue
  fi
  describe $lib $build/$lib.abi
  opts=(--headers-dir1 "$headers" --headers-dir2 "$headers")
  [[ -e $dir/$lib.abignore ]] && opts+=(--suppressions $dir/$lib.abignore)
  # Everything 1.0 had, unchanged: additions left out of this comparison.
  rc=0; abidiff "${opts[@]}" --no-added-syms $dir/$lib.abi $build/$lib.abi >$build/$lib.abidiff || rc=$?
  if (( rc & 3 )); then
    cat $build/$lib.abidiff; echo "abi: FAIL: abidiff could not compare $lib (status $rc)"; status=1
  elif (( rc )); then
    cat $build/$lib.abidiff
    echo "abi: FAIL: $lib.so changes the ABI of the baseline $dir/$lib.abi$( ((rc & 8)) && echo ' (incompatible: a symbol is gone)')."
    echo "     Restore it, or (a new MAJOR version) bump the SONAME and make abi-baseline."
    status=1
  else
    rc=0; abidiff "${opts[@]}" $dir/$lib.abi $build/$lib.abi >$build/$lib.abidiff || rc=$?
    if (( rc )); then
      cat $build/$lib.abidiff
      echo "abi: ok: $lib.so only adds to $dir/$lib.abi (compatible; the baseline follows at the release)"
    else
      echo "abi: ok: $lib.so has the ABI of $dir/$lib.abi"
    fi
  fi
done
exit $status
