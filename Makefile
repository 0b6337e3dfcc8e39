# keel: `make demo` builds and runs the main example; `make test` builds and runs every test.
# Both install missing Debian packages first (needs root or sudo).
# SAN=thread|address builds into build-SAN with that sanitizer.

DEB_PACKAGES := g++ cmake make pkg-config liblua5.4-dev libtbb-dev libcurl4-openssl-dev \
                rapidjson-dev libsqlite3-dev sqlite3 doctest-dev libcli11-dev libfmt-dev \
                libcpp-httplib-dev libssl-dev
SAN ?=
BUILD := build$(if $(SAN),-$(SAN),)
JOBS ?= $(shell nproc)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps configure build demo test bench clean

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DKEEL_SANITIZE=$(SAN)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	cd examples && ../$(BUILD)/cli/keel run etl.lua --db ../$(BUILD)/demo.db
	$(BUILD)/cli/keel runs --db $(BUILD)/demo.db --limit 5

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	$(BUILD)/bench/engine_bench

clean:
	rm -rf build build-thread build-address
