#!/bin/bash
# make package-test: builds the Debian packages (make package: libweft<major> and libweft-dev,
# with the man pages of make docs), installs them with apt on a FRESH Debian root (the base root
# of ../shared/tools/fresh-machine, through a throwaway overlay, as that tool does; apt fetches
# the packages' own dependencies, liburing), and there, with no LD_LIBRARY_PATH:
#   - compiles examples/thread_pool.c with `pkg-config --cflags --libs weft` and runs it;
#   - builds tests/package/consumer (find_package(weft); examples/coroutines.c, shared and
#     static) with cmake and runs both;
#   - checks that the program needs libweft.so.<major> and finds it in the system libdir,
#     and that the man pages are installed.
# Needs root (chroot, mount) and network for apt on the fresh root. Prints its time.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
SECONDS=0
fresh=${FRESH_MACHINE:-$top/../shared/tools/fresh-machine}
[ -x "$fresh" ] || fresh=/work/shared/tools/fresh-machine
base=/tmp/fresh-machine
ROOT=$base/root
[ "$(id -u)" = 0 ] || { echo "test_package: needs root (chroot, mount)" >&2; exit 2; }

make --no-print-directory package >/dev/null
debs=(build/package/packages/libweft*_"$(sed -n 's/^project(weft VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)"-1_*.deb)
[ ${#debs[@]} = 2 ] || { echo "test_package: expected 2 packages, got: ${debs[*]}" >&2; exit 1; }
echo "test_package: built ${debs[*]##*/} (${SECONDS}s)"

# The fresh root: fresh-machine builds its base on first use (a few minutes, once per machine).
if [[ ! -x $ROOT/usr/bin/gcc ]]; then
  "$fresh" true
fi
run=$(mktemp -d $base/pkgtest.XXXX); mkdir -p $run/upper $run/work $run/merged
cleanup() {
  for m in sys dev proc; do umount -l $run/merged/$m 2>/dev/null || true; done
  umount -l $run/merged 2>/dev/null || true
  rm -rf $run
}
trap cleanup EXIT
mount -t overlay overlay -o lowerdir=$ROOT,upperdir=$run/upper,workdir=$run/work $run/merged
mount -t proc proc $run/merged/proc && mount --rbind /dev $run/merged/dev && mount -t sysfs sys $run/merged/sys
cp /etc/resolv.conf $run/merged/etc/resolv.conf 2>/dev/null || true
t=$run/merged/root/pkgtest; mkdir -p $t/consumer
cp "${debs[@]}" $t/
cp examples/thread_pool.c $t/
cp tests/package/consumer/CMakeLists.txt examples/coroutines.c $t/consumer/
major=$(sed -n 's/^project(weft VERSION \([0-9]*\).*/\1/p' CMakeLists.txt)

chroot $run/merged /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root MAJOR=$major /bin/bash -euo pipefail -c '
cd /root/pkgtest
if dpkg-query -W libweft-dev >/dev/null 2>&1; then echo "not a fresh root: libweft-dev is there" >&2; exit 1; fi
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ./libweft*.deb >/dev/null
dpkg-query -W -f="installed \${Package} \${Version}\n" "libweft$MAJOR" libweft-dev
[ -z "${LD_LIBRARY_PATH:-}" ]
echo "== pkg-config: $(pkg-config --cflags --libs weft)"
cc -Wall -Wextra -Werror thread_pool.c $(pkg-config --cflags --libs weft) -o thread_pool
./thread_pool >thread_pool.out
tail -2 thread_pool.out
readelf -d thread_pool | grep -q "\[libweft.so.$MAJOR\]"
ldd thread_pool | grep -E "libweft.so.$MAJOR => /(usr/)?lib/" 
echo "== find_package(weft)"
cmake -S consumer -B consumer/build -G Ninja >/dev/null
cmake --build consumer/build >/dev/null
consumer/build/coroutines | tail -1
consumer/build/coroutines_static | tail -1
! ldd consumer/build/coroutines_static | grep -q libweft
echo "== man pages"
for p in weft_lock_init weft_co_spawn weft_thread_pool_create sync.h; do
  f=$(ls /usr/share/man/man3/$p.3* 2>/dev/null | head -1)
  [ -n "$f" ] || { echo "no man page $p(3)" >&2; exit 1; }
  grep -q "^\.TH" "$f" || { echo "$f is not a man page" >&2; exit 1; }
done
echo "$(ls /usr/share/man/man3 | grep -c "^weft_") weft_* man pages"
'
echo "test_package: passed in ${SECONDS}s"
