# keel: `make demo` builds and runs the main example; `make test` checks the
# locking annotations with clang, builds, and runs every test.
# Both install missing Debian packages first (needs root or sudo).
# SAN=thread|address builds into build-SAN with that sanitizer.

DEB_PACKAGES := g++ cmake make pkg-config liblua5.4-dev libtbb-dev libcurl4-openssl-dev \
                rapidjson-dev libsqlite3-dev sqlite3 doctest-dev libcli11-dev libfmt-dev \
                libcpp-httplib-dev libssl-dev openssl libevent-dev libnghttp2-dev clang
SAN ?=
BUILD := build$(if $(SAN),-$(SAN),)
JOBS ?= $(shell nproc)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps configure build thread-safety demo test bench clean

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

# clang's -Wthread-safety over every source, syntax only, in its own tree
# (CMakeLists.txt, KEEL_THREAD_SAFETY_CHECK); fails on a locking annotation
# that the code breaks. Rechecks only what changed since the last pass.
TSA_BUILD := build-tsa
CLANGXX ?= clang++

$(TSA_BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(TSA_BUILD) -DCMAKE_CXX_COMPILER=$(CLANGXX) -DKEEL_THREAD_SAFETY_CHECK=ON >/dev/null

thread-safety: $(TSA_BUILD)/CMakeCache.txt
	cmake --build $(TSA_BUILD) -j $(JOBS)

demo: build
	cd examples && ../$(BUILD)/cli/keel run etl.lua --db ../$(BUILD)/demo.db
	cd examples && ../$(BUILD)/cli/keel run research.lua --db ../$(BUILD)/demo.db
	$(BUILD)/cli/keel runs --db $(BUILD)/demo.db --limit 5

test: thread-safety build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	$(BUILD)/bench/engine_bench
	$(BUILD)/bench/policy_bench
	$(BUILD)/bench/agent_bench

clean:
	rm -rf build build-thread build-address $(TSA_BUILD)
