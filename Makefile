# Outpost's two commands: `make demo` and `make test`. Everything else here serves them.
#
#   make demo    install what is missing, build, run the demo on embedded defaults
#   make test    install what is missing, build, run every test: the release build, the
#                ASan+UBSan build, and the fuzz targets (their committed inputs, then a
#                fixed seed and number of runs: the same result on every run of a commit)
#   make fuzz    look for new bugs: every fuzz target from a random seed for FUZZ_SECONDS
#                (default 300) each, keeping its corpus in build-fuzz; a failing input is
#                saved under its subsystem's testdata/fuzz_regressions/<target>/ to be
#                committed, and `make test` replays it from then on
#   make bench   the benchmarks that compare Outpost with peers (not tests): the REST server
#                against nginx, the secure edge (TLS and a token) against a plain one, the
#                scoring server's load sweep against nginx and a bare
#                grpc++ server, the outbox against plain SQLite, the hub's ingestion against
#                PostgreSQL's COPY, bundles against sha256sum

JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# CI turns warnings into errors; so does any run with WERROR=ON.
WERROR ?= $(if $(CI),ON,OFF)
CMAKE_FLAGS ?=

export CCACHE_DIR ?= $(HOME)/.cache/ccache
# Paths under the checkout are hashed relative to it (and the build folder not at all), so a
# second clone of the same commit in another folder, as CI makes, builds from the cache.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1
# Three builds (release, ASan+UBSan, fuzz) with debug info outgrow ccache's default 5 GB.
export CCACHE_MAXSIZE ?= 20G
export CTEST_OUTPUT_ON_FAILURE = 1

.PHONY: all setup build demo test test-release test-asan test-fuzz fuzz fuzz-build bench clean

all: build

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTPOST_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	@$(BUILD)/outpost demo

test: test-release test-asan test-fuzz
	@echo "make test: release, sanitizer and fuzz runs all passed"

test-release: build
	@cd $(BUILD) && ctest -j$(JOBS) --label-exclude fuzz --timeout 900

test-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DOUTPOST_WERROR=$(WERROR) \
	  -DOUTPOST_SANITIZE=address,undefined -DOUTPOST_SHARED_LIBS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan_suppressions.txt:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest -j$(JOBS) --label-exclude "fuzz|no_sanitizer" --timeout 1800

fuzz-build: setup
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	  -DOUTPOST_FUZZ=ON -DOUTPOST_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target outpost_fuzz_targets

# The same result on every run of one commit: committed inputs, then a fixed seed and count.
test-fuzz: fuzz-build
	@cd $(FUZZ_BUILD) && ctest -j$(JOBS) -L '^fuzz$$'

FUZZ_SECONDS ?= 300
fuzz: fuzz-build
	@cd $(FUZZ_BUILD) && OUTPOST_FUZZ_SECONDS=$(FUZZ_SECONDS) ctest -j$(JOBS) -L '^explore$$'

bench: build
	@bench/serve_rest/run.sh $(BUILD)
	@bench/serve_tls/run.sh $(BUILD)
	@bench/serve_load/run.sh $(BUILD)
	@$(BUILD)/bench/outbox/outbox_bench
	@$(BUILD)/bench/ingest/ingest_bench
	@bench/bundle/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
