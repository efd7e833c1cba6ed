# weft — the common commands. `make test` and `make demo` install what they need themselves
# (Debian packages via apt-get), so each is one command on a fresh machine.
#
#   make deps            install missing Debian packages (quiet when all are present)
#   make / make build    build (PRESET=default|debug|release|asan|tsan|memcheck|clang)
#   make test            the whole suite (PRESET=asan / tsan / memcheck / clang / debug)
#   make demo            run every example: a tour of what weft does
#   make bench           every benchmark against its peers; make bench ONLY=<name> for one
#   make format          clang-format the sources in place
#   make abi-check       the libraries' ABI against the baseline abi/*.abi (abidiff; CI runs it)
#   make abi-baseline    rewrite the baseline from this tree: deliberately, at a release
#   make fuzz T=<target> S=<seconds>  one libFuzzer target of fuzz/ (conn, mpqueue, hub)

PRESET ?= default
BUILD := build/$(PRESET)
DEB_PACKAGES := cmake ninja-build gcc make pkg-config libcmocka-dev liburing-dev redis-server libhiredis-dev librsvg2-bin \
                libopenmpi-dev openmpi-bin abigail-tools \
                wrk apache2-utils libcurl4-openssl-dev redis-tools \
                $(if $(filter memcheck,$(PRESET)),valgrind) $(if $(filter clang,$(PRESET)),clang) \
                $(if $(filter fuzz,$(PRESET)),clang libclang-rt-dev)
BENCH_PACKAGES := libglib2.0-dev libuv1-dev libtbb-dev g++ python3 \
                  golang-go python3-gevent libboost-context-dev python3-mpi4py
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build deps bench-deps test demo bench format clean abi-check abi-baseline fuzz
all: build

define install_missing
	@missing=""; for p in $(1); do \
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
# the whole demo within a minute on 2 cores; the race leaves its table and chart in demo-out/.
DEMO_RACE ?= --levels 1,64,1100 --seconds 0.3
demo: deps
	@cmake --preset demo >/dev/null
	cmake --build --preset demo
	@for ex in $$(cat examples/ORDER); do \
	  echo; echo "==== examples/$$ex.c"; build/demo/examples/$$ex || exit 1; \
	done
	@echo; echo "==== weft-lab race: the same echo service in each IO model of the seed"
	build/demo/weft-lab race $(DEMO_RACE) --out demo-out

bench: bench-deps
	@cmake --preset release >/dev/null # again: finds peers installed since the last configure
	$(MAKE) --no-print-directory build PRESET=release
	@for b in $(if $(ONLY),bench_$(ONLY),$$(cd build/release/bench && ls bench_* 2>/dev/null)); do \
	  echo; echo "==== $$b"; build/release/bench/$$b || exit 1; \
	done

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

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
