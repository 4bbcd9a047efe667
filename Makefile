# Top-level entry points; the real build is CMake in build/.
#   make demo   - install missing packages, build, run the demo
#   make check  - install missing packages, build, run the test suite
#   make asan   - the test suite under AddressSanitizer + UBSan (build-asan/)
#   make bench  - build and run the benchmarks
#   make install PREFIX=/usr/local (DESTDIR=/stage to stage it) - reconfigures
#                 build/ for PREFIX first, whatever an earlier build used
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build demo check asan bench install clean

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

bench: build
	sh scripts/bench.sh $(BUILD)

# The prefix is compiled in (the module directory), so install configures
# the build for this PREFIX before building and installing.
install: deps
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
