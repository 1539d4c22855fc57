# faiss-gmm: the two set-up commands.
#   make demo   installs missing Debian packages, builds, runs the demo
#   make test   the same set-up, then the whole test suite (ctest)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=
DEB_PACKAGES = build-essential cmake libfaiss-dev libopenblas-dev libomp-dev \
               libgtest-dev libbenchmark-dev libcli11-dev libopenmpi-dev openmpi-bin \
               pybind11-dev python3-dev python3-numpy python3-scipy python3-pytest \
               python3-sklearn python3-faiss

.PHONY: deps configure build demo test bench clean

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/faiss-gmm demo

test: build
	cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

bench: build
	$(BUILD)/bench/bench_estep

clean:
	rm -rf $(BUILD)
