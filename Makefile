# Top-level entry points; the real build is CMake in build/.
#   make demo   - install missing packages, build, run the demo
#   make check  - install missing packages, build, run the test suite
#   make asan   - the test suite under AddressSanitizer + UBSan (build-asan/)
#   make fuzz   - build the libFuzzer targets with clang (build-fuzz/) and run
#                 each for FUZZ_SECONDS (default 60; FUZZ_TARGETS, FUZZ_JOBS:
#                 see docs/fuzzing.md)
#   make bench  - build and run the benchmarks
#   make install PREFIX=/usr/local (DESTDIR=/stage to stage it) - reconfigures
#                 build/ for PREFIX first, whatever an earlier build used
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

.PHONY: all deps build demo check asan fuzz bench install clean

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	sh scripts/demo.sh $(BUILD)

check: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps
	cmake -S . -B build-asan -DAEMP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

# clang and libFuzzer are installed here only (scripts/deps.txt, group fuzz)
fuzz:
	@sh scripts/install-deps.sh fuzz
	CC=clang cmake -S . -B build-fuzz -DAEMP_FUZZ=ON -DAEMP_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	sh fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: build
	@sh scripts/install-deps.sh bench
	sh scripts/bench.sh $(BUILD)

# The prefix is compiled in (the module directory), so install configures
# the build for this PREFIX before building and installing.
install: deps
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-fuzz
