# Thin front door. The build itself is CMake; see README.md.
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build run test install sanitize fuzz format clean bench

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: deps build
	$(BUILD)/bin/loom serve --host 127.0.0.1 --port 8080 --plugins-dir $(BUILD)/plugins

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

sanitize:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DLOOM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

bench: deps build
	bench/run

clean:
	rm -rf $(BUILD) build-asan
