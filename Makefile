# weft — the common commands. `make test` and `make demo` install what they need themselves
# (Debian packages via apt-get), so each is one command on a fresh machine.
#
#   make deps            install missing Debian packages (quiet when all are present)
#   make / make build    build (PRESET=default|debug|release|asan|tsan|memcheck|clang)
#   make test            the whole suite (PRESET=asan / tsan / memcheck / clang / debug)
#   make demo            run every example: a tour of what weft does (NO_DEPS=1: no apt step)
#   make docs            the reference: HTML and section-3 man pages from the headers (Doxygen)
#                        in build/docs/; any Doxygen warning fails it (CI runs it)
#   make package         the Debian packages libweft1 and libweft-dev (CPack) in build/package/
#   make package-test    builds them, installs them on a fresh Debian root and builds an example
#                        there with pkg-config and with find_package (needs root; not in CI)
#   make bench           every benchmark against its peers, then the summary table of bench/goals.txt;
#                        make bench ONLY=<name> for one (build/release/bench.log keeps the output)
#   make format          clang-format the sources in place
#   make abi-check       the libraries' ABI against the baseline abi/*.abi (abidiff; CI runs it)
#   make abi-baseline    rewrite the baseline from this tree: deliberately, at a release
#   make fuzz T=<target> S=<seconds>  one libFuzzer target of fuzz/ (conn, mpqueue, hub)
#   make soak            the HTTP scenario under wrk for 10 minutes: RSS, fds, threads, stacks
#                        must stay flat (SOAK_SECONDS=<n> to change the length; not in CI)
#   make test-aarch64    the coro, sync and queue suites cross-built for aarch64 and run under
#                        qemu-user (assembly and ucontext switch), the gdb script's cases on
#                        the aarch64 build (gdb-multiarch through qemu-user's gdb server), and
#                        the coro suite natively with the ucontext switch

PRESET ?= default
BUILD := build/$(PRESET)
DEB_PACKAGES := cmake ninja-build gcc make pkg-config libcmocka-dev liburing-dev redis-server libhiredis-dev librsvg2-bin python3 \
                libopenmpi-dev openmpi-bin abigail-tools \
                wrk apache2-utils libcurl4-openssl-dev redis-tools gdb \
                $(if $(filter memcheck,$(PRESET)),valgrind) $(if $(filter clang,$(PRESET)),clang) \
                $(if $(filter fuzz,$(PRESET)),clang libclang-rt-dev)
BENCH_PACKAGES := libglib2.0-dev libuv1-dev libtbb-dev g++ python3 \
                  golang-go python3-gevent libboost-context-dev python3-mpi4py
# make test-aarch64: the native tools, Debian's aarch64 cross compiler, qemu-user, the
# target's libraries from Debian's arm64 multiarch packages (dpkg --add-architecture arm64),
# and gdb-multiarch (observe.gdb.*.aarch64).
CROSS_PACKAGES := cmake ninja-build gcc make pkg-config libcmocka-dev liburing-dev \
                  gcc-aarch64-linux-gnu qemu-user libcmocka-dev:arm64 liburing-dev:arm64 \
                  gdb-multiarch python3
# make demo needs only the build tools (not the test suite's Redis server or load generators).
DEMO_PACKAGES := cmake ninja-build gcc make pkg-config liburing-dev
DOCS_PACKAGES := doxygen python3 man-db
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build deps bench-deps test demo bench format clean abi-check abi-baseline fuzz soak \
        cross-deps test-aarch64 demo-deps docs docs-deps package package-test
all: build

# NO_DEPS=1, or a machine without dpkg-query (not Debian), skips the apt step: it says what the
# step would have made sure of, and the build then needs those tools already there.
define install_missing
	@if [ -n "$(NO_DEPS)" ] || ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "make: $(if $(NO_DEPS),NO_DEPS=$(NO_DEPS),no dpkg-query): not installing packages; this needs (Debian names):"; \
	  echo "  $(strip $(1))"; \
	  exit 0; \
	fi; \
	missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  $(SUDO) apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PACKAGES))

bench-deps: deps
	$(call install_missing,$(BENCH_PACKAGES))

$(BUILD)/build.ninja:
	cmake --preset $(PRESET) >/dev/null

build: $(BUILD)/build.ninja
	cmake --build --preset $(PRESET)

test: deps
	$(MAKE) --no-print-directory build
	ctest --preset $(PRESET)

# The tour: every example (one per note of the seed), then the IO-models race, sized to end
# the whole demo within a minute on 2 cores, build included (build ~15 s, examples ~5 s, race
# ~35 s: 10 models x 3 levels x 3 runs of 0.35 s, the median of each cell kept, the servers on
# CPU 1 and the generator on CPU 0; unpinned, or with cells of 0.25 s, two runs swapped pairs
# of models more than 15% apart: the note of issue 19 has the runs, and
# tests/lab/compare_races.py compares two); the race leaves its table
# and chart in demo-out/. It needs only DEMO_PACKAGES (no Redis server: only the tests use
# one); NO_DEPS=1 skips the apt step.
DEMO_RACE ?= --levels 1,64,1100 --seconds 0.35 --repeat 3
demo-deps:
	$(call install_missing,$(DEMO_PACKAGES))

demo: demo-deps
	@cmake --preset demo >/dev/null
	cmake --build --preset demo
	@for ex in $$(cat examples/ORDER); do \
	  echo; echo "==== examples/$$ex.c"; build/demo/examples/$$ex || exit 1; \
	done
	@echo; echo "==== weft-lab race: the same echo service in each IO model of the seed"
	build/demo/weft-lab race $(DEMO_RACE) --out demo-out
	build/demo/weft-lab trace coroutines demo-out/trace.json --conns 8 --seconds 0.3

bench: bench-deps
	@cmake --preset release >/dev/null # again: finds peers installed since the last configure
	$(MAKE) --no-print-directory build PRESET=release
	@: > build/release/bench.log
	@for b in $(if $(ONLY),bench_$(ONLY),$$(cd build/release/bench && ls bench_* 2>/dev/null)); do \
	  echo; echo "==== $$b"; \
	  { build/release/bench/$$b; echo $$? > build/release/bench.status; } | tee -a build/release/bench.log; \
	  [ "$$(cat build/release/bench.status)" = 0 ] || exit 1; \
	done
	@echo; bench/summary.sh build/release/bench.log # the table docs/BENCHMARKS.md opens with

# The ABI (docs/API.md, "ABI and SONAME"): preset abi builds the libraries alone, release with
# -g and no build paths in the debug info; abi/abi.sh describes them with abidw and compares.
abi-check: deps
	@cmake --preset abi >/dev/null
	cmake --build --preset abi
	abi/abi.sh check

abi-baseline: deps
	@cmake --preset abi >/dev/null
	cmake --build --preset abi
	abi/abi.sh baseline

# One fuzz target (preset fuzz: clang, libFuzzer, ASan+UBSan) for S seconds from its committed
# seed corpus fuzz/corpus/<T>/; what it finds new goes to build/fuzz/corpus/<T>/, a crashing
# input to build/fuzz/crash-*. `make test PRESET=fuzz` runs each target briefly (as CI does).
T ?= conn
S ?= 60
fuzz:
	@$(MAKE) --no-print-directory deps PRESET=fuzz
	@$(MAKE) --no-print-directory build PRESET=fuzz
	@mkdir -p build/fuzz/corpus/$(T)
	cd build/fuzz && fuzz/fuzz_$(T) -max_total_time=$(S) -max_len=4096 -timeout=20 \
	  -malloc_limit_mb=256 -rss_limit_mb=1024 -print_final_stats=1 \
	  corpus/$(T) ../../fuzz/corpus/$(T)

# The soak (tests/scenario/soak_http.c): consecutive 1,000-connection wrk runs of
# SOAK_INTERVAL seconds for SOAK_SECONDS against the HTTP scenario's server, the process sampled
# after each; prints the table and a verdict, exits non-zero unless flat. The default preset
# (RelWithDebInfo, -O2 -g: the build `make test` uses, with the symbols a leak hunt wants; the
# soak measures growth, not speed); PRESET=asan runs it under ASan (RSS then not judged).
SOAK_SECONDS ?= 600
SOAK_INTERVAL ?= 10
soak: deps
	$(MAKE) --no-print-directory build
	$(BUILD)/tests/soak_http --seconds $(SOAK_SECONDS) --interval $(SOAK_INTERVAL)

# The coroutine switch on aarch64 (src/coro/arch/aarch64.S) and the ucontext fallback: the
# suites that switch and synchronise (coro, sync, queue; the coro cases per poller: select,
# poll, epoll; qemu-user has no io_uring) cross-built with presets aarch64 and
# aarch64-ucontext (cmake/toolchain-aarch64.cmake) and run under qemu-aarch64; then the coro
# suite natively with the ucontext switch (preset ucontext). Only those suites' programs are
# built. Under the emulator a failing case runs once more (--repeat until-pass:2, and ctest
# lists the first failure): qemu-user's threads once crashed a case that passes everywhere else
# (sync.condition.condition_wait_releases_all_rlock_levels, SEGFAULT, aarch64-ucontext on a
# loaded machine; not reproduced in 240 runs of it nor 7 runs of the suites). A case that fails
# twice fails the target. The aarch64 preset also runs tools/weft-gdb.py's cases
# (observe.gdb.*.aarch64, tests/observe/gdb.cmake): its scene under qemu-user's gdb server,
# gdb-multiarch attached, `weft bt` loading the aarch64 switch frame.
CROSS_SUITES := coro sync queue
CROSS_TARGETS := $(foreach f,$(wildcard $(CROSS_SUITES:%=tests/%/test_*.c)),\
                   test_$(lastword $(subst /, ,$(dir $(f))))_$(patsubst test_%.c,%,$(notdir $(f))))
cross-deps:
	@dpkg --print-foreign-architectures | grep -qx arm64 || $(SUDO) dpkg --add-architecture arm64
	$(call install_missing,$(CROSS_PACKAGES))

test-aarch64: cross-deps
	@for p in aarch64 aarch64-ucontext; do \
	  echo "==== preset $$p: coro, sync, queue (and gdb on aarch64) under qemu-aarch64"; \
	  cmake --preset $$p >/dev/null && \
	  cmake --build --preset $$p --target $(CROSS_TARGETS) \
	    $$([ $$p = aarch64 ] && echo observe_gdb_scene) && \
	  ctest --preset $$p -R '^(coro|sync|queue|observe\.gdb)\.' --repeat until-pass:2 || exit 1; \
	done
	@echo "==== preset ucontext: coro, native"
	@cmake --preset ucontext >/dev/null
	cmake --build --preset ucontext --target $(filter test_coro_%,$(CROSS_TARGETS))
	ctest --preset ucontext -R '^coro\.'

# The reference (docs/reference/): Doxygen reads include/weft.h and every include/weft/*.h
# through docs/reference/filter.py; WARN_AS_ERROR makes any warning fail the run (the warnings
# are in build/docs/warnings.log), a parameter or a return value a comment does not document
# among them (docs/API.md, section 12). manpages.py then writes a page per function and macro.
docs-deps:
	$(call install_missing,$(DOCS_PACKAGES))

docs: docs-deps
	@rm -rf build/docs && mkdir -p build/docs
	WEFT_DOCS_OUT=build/docs \
	  WEFT_VERSION=$$(sed -n 's/^project(weft VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt) \
	  doxygen docs/reference/Doxyfile || { cat build/docs/warnings.log; exit 1; }
	python3 docs/reference/manpages.py build/docs/man/man3
	@echo "reference: build/docs/html/index.html; man pages: man -l build/docs/man/man3/weft_lock_init.3"

# The Debian packages (cmake/package.cmake, CPack DEB): a Release build of the library alone,
# prefix /usr, with the man pages of make docs, in build/package/packages/.
package: docs
	$(call install_missing,dpkg-dev)
	@cmake -S . -B build/package -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
	  -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=OFF -DWEFT_BUILD_LAB=OFF \
	  -DWEFT_MAN_DIR=$(CURDIR)/build/docs/man/man3 >/dev/null
	cmake --build build/package
	@rm -rf build/package/packages
	cd build/package && cpack
	@ls build/package/packages/*.deb

package-test:
	tests/package/test_package.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
