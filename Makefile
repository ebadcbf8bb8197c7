# aredis — the two commands: `make demo` and `make test`.
# Both install missing Debian packages first (scripts/deps.sh says which).

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all deps build test demo asan-test tsan-test valgrind-unit install fuzz fuzz-client bench format commands docs dist deb bench-perl clean


all: build

deps:
	@scripts/deps.sh test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	scripts/run-tests.sh $(BUILD)

demo: build
	scripts/demo.sh $(BUILD)

asan-test: deps
	cmake -S . -B $(ASAN_BUILD) -DAREDIS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
	  -DAREDIS_BUILD_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  scripts/run-tests.sh $(ASAN_BUILD)

# Under ThreadSanitizer (any report fails the test): the thread tests (label
# threads) and the loop suites of every loop — conformance (wake handles and
# posts from other threads), run_for and the client scenario, whose host
# name is resolved on a thread (adapter/<loop>, run_for_*, client_on_*).
TSAN_ENV = TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $(TSAN_OPTIONS)"
tsan-test: deps
	cmake -S . -B $(TSAN_BUILD) -DAREDIS_TSAN=ON -DCMAKE_BUILD_TYPE=Debug \
	  -DAREDIS_BUILD_BENCH=OFF -DAREDIS_BUILD_EXAMPLES=OFF $(CMAKE_ARGS)
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	$(TSAN_ENV) scripts/run-tests.sh $(TSAN_BUILD) -L '^threads$$'
	$(TSAN_ENV) scripts/run-tests.sh $(TSAN_BUILD) \
	  -R '^adapter/(builtin|builtin_poll|libuv|libevent|libev|run_for_[a-z_]+|client_on_[a-z_]+)$$'

valgrind-unit: build
	@scripts/deps.sh valgrind
	scripts/valgrind-unit.sh $(BUILD)

# PREFIX and DESTDIR apply at every call, not only when build/ is configured.
# Needs only what the library needs (scripts/deps.sh lib); a build/ made
# for it alone leaves tests, examples and benchmarks out.
install:
	@scripts/deps.sh lib
	@[ -f $(BUILD)/CMakeCache.txt ] || cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
	  -DAREDIS_BUILD_TESTS=OFF -DAREDIS_BUILD_EXAMPLES=OFF -DAREDIS_BUILD_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS) --target aredis aredis_static
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# The API reference (HTML and man pages) in $(BUILD)/docs/api, from the
# public headers (Doxygen).
docs: build
	@scripts/deps.sh docs
	cmake --build $(BUILD) --target docs
	@echo "API reference: $(BUILD)/docs/api/html/index.html, man pages in $(BUILD)/docs/api/man"

# The release tarball aredis-X.Y.Z.tar.gz in DISTDIR (default: here).
DISTDIR ?= .
dist:
	scripts/dist.sh $(DISTDIR)

# Debian packages (libaredis<ABI>, libaredis-dev) in DEBDIR (default: ..),
# built with dpkg-buildpackage from the release tarball.
DEBDIR ?= ..
deb:
	@scripts/deps.sh deb
	scripts/deb.sh $(DEBDIR)

fuzz: deps
	scripts/fuzz.sh

# The whole-client simulation under libFuzzer (FUZZ_SECONDS, default 300).
fuzz-client: deps
	scripts/fuzz-client.sh

bench: build
	@scripts/deps.sh bench
	scripts/bench.sh $(BUILD)

# The Perl binding against Redis::Fast and Redis.pm (bench/perl/bench.pl;
# BENCH_PERL_ARGS go to it, e.g. "-r 5 --fast-n 200000").
bench-perl: build
	@scripts/deps.sh bench
	scripts/bench-perl.sh $(BUILD) $(BENCH_PERL_ARGS)

format:
	scripts/format.sh

# Regenerate src/proto/cmdtable_data.c (the command table) from a throwaway
# redis-server (REDIS_SERVER=... for another binary).
commands: build
	scripts/gencommands.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
