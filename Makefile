# Thin front door. The build itself is CMake; see README.md.
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PORT ?= 8080

.PHONY: all deps build run run-tfb test install sanitize fuzz format clean bench package

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# A development server: every shipped plugin, the session demo on SQLite with
# a signing key made for this run, run-time data under $(BUILD)/run.
run: deps build
	scripts/run-dev.sh $(BUILD) 127.0.0.1 $(PORT)

# The TFB test types (plugins/tfb) on a throwaway PostgreSQL, deleted on exit.
run-tfb: deps build
	BUILD=$(BUILD) scripts/run-tfb.sh

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The Debian package (binary, plugins, SDK, systemd units, /etc/loom/loom.json,
# loom(1)) in $(BUILD)/loom_VERSION-1_ARCH.deb.
package: build
	cd $(BUILD) && cpack -G DEB

sanitize:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DLOOM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"

# libFuzzer targets (tests/fuzz): clang, ASan+UBSan, each run FUZZ_SECONDS
# on its corpus directory; new inputs go to build-fuzz/corpus/<target> and
# crashes to build-fuzz/artifacts/ (copy the ones worth keeping into
# tests/fuzz/corpus/<target>).
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fuzz_req_parser fuzz_conn fuzz_route fuzz_client_resp fuzz_json_body fuzz_multipart \
	fuzz_cookie_verify fuzz_static_path fuzz_tls fuzz_set_cookie fuzz_ws_frame fuzz_h2
FUZZ_FLAGS ?=

fuzz:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLOOM_FUZZ=ON -DLOOM_SANITIZE=ON \
		-DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link -O1 -gline-tables-only"
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(FUZZ_TARGETS)
	@mkdir -p $(FUZZ_BUILD)/artifacts
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
		echo "== $$t: $(FUZZ_SECONDS) s"; \
		$(FUZZ_BUILD)/bin/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=20 \
			-artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- -print_final_stats=1 $(FUZZ_FLAGS) \
			$(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

bench: deps build
	bench/run

clean:
	rm -rf $(BUILD) build-asan
