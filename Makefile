# faiss-gmm: the two set-up commands.
#   make demo   installs missing Debian packages, builds, runs the demo
#   make test   the same set-up, then the whole test suite (ctest)
#   make sanitize  the CPU suite built with AddressSanitizer (leak checks on)
#                  and UndefinedBehaviorSanitizer, run once (CI runs it after test)
BUILD ?= build
SAN_BUILD ?= build-sanitize
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=
DEB_PACKAGES = build-essential cmake libfaiss-dev libopenblas-dev libomp-dev \
               libgtest-dev libbenchmark-dev libcli11-dev libopenmpi-dev openmpi-bin \
               pybind11-dev python3-dev python3-numpy python3-scipy python3-pytest \
               python3-sklearn python3-faiss

.PHONY: deps configure build demo test sanitize bench clean

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

# CPU only (no CUDA), RelWithDebInfo for readable reports; any finding fails
# the run. The MPI tests' ranks (the CLI under mpirun) run sanitized too,
# with OpenMPI's own never-freed allocations suppressed
# (tests/lsan_openmpi.supp); their stacks need the slow unwinder (OpenMPI is
# built without frame pointers) and its plugins kept loaded to be matched.
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OMP_NUM_THREADS=2
sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAISS_GMM_CUDA=OFF \
	  -DFAISS_GMM_MPI=ON -DFAISS_GMM_PYTHON=OFF \
	  "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" $(CMAKE_ARGS)
	cmake --build $(SAN_BUILD) -j $(JOBS) --target faiss_gmm_tests faiss-gmm
	cd $(SAN_BUILD) && $(SAN_ENV) ./tests/faiss_gmm_tests --gtest_filter=-Mpi.*
	cd $(SAN_BUILD) && $(SAN_ENV) \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan_openmpi.supp:print_suppressions=0 \
	  OMPI_MCA_mca_base_component_disable_dlclose=1 ./tests/faiss_gmm_tests --gtest_filter=Mpi.*

bench: build
	$(BUILD)/bench/bench_estep

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
