# keel: `make demo` builds and runs the main example; `make test` checks the
# locking annotations with clang, builds, and runs every test.
# Both install missing Debian packages first (needs root or sudo).
# SAN=thread|address builds into build-SAN with that sanitizer.
# `make install` puts keel and keel-mock-llm in $(PREFIX)/bin (PREFIX=/usr/local;
# DESTDIR is honoured for packaging).

DEB_PACKAGES := g++ cmake make pkg-config liblua5.4-dev libtbb-dev libcurl4-openssl-dev \
                rapidjson-dev libsqlite3-dev sqlite3 doctest-dev libcli11-dev libfmt-dev \
                libcpp-httplib-dev libssl-dev openssl libevent-dev libnghttp2-dev clang \
                zlib1g-dev libgraphviz-dev libpq-dev postgresql iproute2 iptables
SAN ?=
BUILD := build$(if $(SAN),-$(SAN),)
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps configure build install thread-safety demo test bench clean fuzz

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# ThreadSanitizer cannot see the synchronization inside Debian's prebuilt
# libtbb, so SAN=thread builds oneTBB from Debian's source package with
# -fsanitize=thread first and links against that.
TBB_TSAN := $(CURDIR)/$(BUILD)/tbb-tsan
ifeq ($(SAN),thread)
TBB_FLAGS := -DTBB_DIR=$(TBB_TSAN)/lib/cmake/TBB
TBB_DEP := $(TBB_TSAN)/lib/cmake/TBB/TBBConfig.cmake
endif

$(TBB_TSAN)/lib/cmake/TBB/TBBConfig.cmake: | deps
	mkdir -p $(BUILD)/tbb-src
	[ -n "$$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | xargs -r grep -l deb-src)" ] || \
	  { printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
	    | $(SUDO) tee /etc/apt/sources.list.d/keel-deb-src.sources >/dev/null && $(SUDO) apt-get update -qq; }
	cd $(BUILD)/tbb-src && apt-get source -qq --download-only onetbb && tar xf onetbb_*.orig.tar.*
	cmake -S $$(ls -d $(BUILD)/tbb-src/oneTBB-*) -B $(BUILD)/tbb-src/build -DTBB_TEST=OFF \
	  -DTBB_STRICT=OFF -DTBB_SANITIZE=thread -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_INSTALL_PREFIX=$(TBB_TSAN) >/dev/null
	cmake --build $(BUILD)/tbb-src/build -j $(JOBS) >/dev/null 2>&1
	cmake --install $(BUILD)/tbb-src/build >/dev/null

$(BUILD)/CMakeCache.txt: | deps $(TBB_DEP)
	cmake -S . -B $(BUILD) -DKEEL_SANITIZE=$(SAN) $(TBB_FLAGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Builds only the two installed programs, then copies them; sudo only when
# $(PREFIX) is not writable.
install: configure
	cmake --build $(BUILD) -j $(JOBS) --target keel keel-mock-llm
	@if [ -z "$(DESTDIR)" ] && ! { mkdir -p "$(PREFIX)/bin" 2>/dev/null && [ -w "$(PREFIX)/bin" ]; }; then \
	  echo "$(SUDO) cmake --install $(BUILD) --prefix $(PREFIX)"; \
	  $(SUDO) cmake --install $(BUILD) --prefix "$(PREFIX)"; \
	else \
	  cmake --install $(BUILD) --prefix "$(PREFIX)"; \
	fi

# clang's -Wthread-safety over every source, syntax only, in its own tree
# (CMakeLists.txt, KEEL_THREAD_SAFETY_CHECK); fails on a locking annotation
# that the code breaks. Rechecks only what changed since the last pass.
TSA_BUILD := build-tsa
CLANGXX ?= clang++

$(TSA_BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(TSA_BUILD) -DCMAKE_CXX_COMPILER=$(CLANGXX) -DKEEL_THREAD_SAFETY_CHECK=ON >/dev/null

thread-safety: $(TSA_BUILD)/CMakeCache.txt
	cmake --build $(TSA_BUILD) -j $(JOBS)

# The demo needs the keel binary alone, not the tests and benchmarks.
demo: configure
	cmake --build $(BUILD) -j $(JOBS) --target keel
	cd examples && ../$(BUILD)/cli/keel run etl.lua --db ../$(BUILD)/demo.db
	cd examples && ../$(BUILD)/cli/keel run research.lua --db ../$(BUILD)/demo.db
	$(BUILD)/cli/keel runs --db $(BUILD)/demo.db --limit 5

# ThreadSanitizer cannot see inside Debian's uninstrumented libraries; what
# they raise is suppressed (tests/tsan.supp), what our code raises is not.
SAN_ENV := $(if $(filter thread,$(SAN)),TSAN_OPTIONS=suppressions=$(CURDIR)/tests/tsan.supp,)

test: thread-safety build
	cd $(BUILD) && $(SAN_ENV) ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	$(BUILD)/bench/engine_bench
	$(BUILD)/bench/policy_bench
	$(BUILD)/bench/agent_bench
	$(BUILD)/bench/static_file_bench
	$(BUILD)/bench/startup_bench
	@command -v wrk >/dev/null || { echo "installing wrk (serve_bench's load generator)"; \
	  $(SUDO) apt-get install -y -qq wrk || echo "wrk could not be installed: serve_bench measures one client only"; }
	$(BUILD)/bench/serve_bench
	@sh tests/browser/prepare.sh dashboard_bench $(BUILD)/bench; rc=$$?; \
	if [ $$rc -eq 0 ]; then \
	  KEEL_BIN=$(CURDIR)/$(BUILD)/cli/keel BROWSER_OUT=$(CURDIR)/$(BUILD)/bench/dashboard-out \
	    node bench/dashboard_bench.mjs; \
	elif [ $$rc -ne 77 ]; then exit $$rc; fi

# make fuzz: the libFuzzer targets of fuzz/ (clang, ASan, UBSan) built in
# build-fuzz, each run FUZZ_SECONDS on a copy of its seed corpus
# (fuzz/corpus/NAME) with its dictionary (fuzz/NAME.dict, else
# fuzz/json.dict) and options (fuzz/NAME.options); fails when a target finds a crash, a leak or a hang,
# whose input is then in build-fuzz/findings/NAME/. Not part of `make test`.
FUZZ_SECONDS ?= 60
FUZZ_PACKAGES := clang libclang-rt-14-dev
fuzz: deps
	@missing=""; for p in $(FUZZ_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	[ -f build-fuzz/CMakeCache.txt ] || cmake -S . -B build-fuzz -DKEEL_FUZZ=ON \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
	cmake --build build-fuzz -j $(JOBS) --target fuzz_all
	@failed=""; for t in $$(tr ';' ' ' < build-fuzz/fuzz/fuzz_targets.txt); do \
	  rm -rf build-fuzz/corpus/$$t build-fuzz/findings/$$t; \
	  mkdir -p build-fuzz/corpus/$$t build-fuzz/findings/$$t; \
	  cp fuzz/corpus/$$t/* build-fuzz/corpus/$$t/; \
	  dict=fuzz/$$t.dict; [ -f $$dict ] || dict=fuzz/json.dict; \
	  build-fuzz/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -dict=$$dict $$(grep -sv '^#' fuzz/$$t.options) -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/findings/$$t/ build-fuzz/corpus/$$t \
	    > build-fuzz/findings/$$t.log 2>&1 || failed="$$failed $$t"; \
	  printf '%-26s %12s runs\n' $$t \
	    "$$(sed -n 's/^stat::number_of_executed_units: *//p' build-fuzz/findings/$$t.log)"; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz: problems found by$$failed (see build-fuzz/findings/)"; exit 1; \
	fi

clean:
	rm -rf build build-thread build-address build-fuzz $(TSA_BUILD)
