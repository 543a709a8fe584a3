# pyvideo entry points. On a fresh Debian machine (Python 3.11, root):  make demo  and  make test.
# Each creates .venv if missing, installs the Debian packages it needs (only what is missing), torch and the
# package, then runs.
SHELL := /bin/bash
PYTHON_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_SPEC ?= torch==2.13.0
JOBS ?= $(shell nproc)
APT_PACKAGES := pkg-config cmake ninja-build g++ ffmpeg libavformat-dev libavcodec-dev libavutil-dev \
                libswscale-dev libswresample-dev g++-aarch64-linux-gnu qemu-user
STAMP_SYS := $(VENV)/.stamp-system
STAMP_PY := $(VENV)/.stamp-python
STAMP_PKG := $(VENV)/.stamp-package

.PHONY: all demo test test-cpp test-asan test-arm64 test-python bench wheel build deps clean

all: build

deps: $(STAMP_PY)

$(STAMP_SYS):
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
	@$(PYTHON_SYS) -c "import ensurepip" 2>/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv)
	@test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	@touch $@

$(STAMP_PY): $(STAMP_SYS) requirements-dev.txt
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -r requirements-dev.txt
	@touch $@

# Editable install: builds libvideo.so and pyvideo/_C in place through setup.py (CMake + Ninja in ./build).
$(STAMP_PKG): $(STAMP_PY) setup.py pyproject.toml
	$(PIP) install -q --no-build-isolation --no-deps -e .
	@touch $@

build: $(STAMP_PKG)
	cmake --build build --parallel $(JOBS)

demo: build
	$(VENV)/bin/pyvideo demo

test: build test-cpp test-asan test-arm64 test-python

test-cpp: build
	cd build && ctest --output-on-failure

# libvideo and the C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: $(STAMP_PY)
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPYVIDEO_SANITIZE=ON -DPYVIDEO_BUILD_PYTHON=OFF \
	  -DPYVIDEO_OUTPUT_DIR=$(CURDIR)/build-asan/lib > build-asan.log 2>&1 || (cat build-asan.log; exit 1)
	cmake --build build-asan --parallel $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure

# libvideo (kernels, runtime, C API; no decoder, no Python) and its C++ tests cross-compiled for ARM64, run under
# qemu: once on a CPU with dotprod and i8mm (-cpu max), once on a plain ARMv8.0 core (cortex-a53) so the dispatch
# fallbacks run too. test-python then runs x86-written model files on this build (tests/accelerator/test_program_arm64.py).
test-arm64: $(STAMP_SYS)
	cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DPYVIDEO_KERNELS_ONLY=OFF \
	  -DPYVIDEO_WITH_FFMPEG=OFF -DPYVIDEO_BUILD_PYTHON=OFF -DPYVIDEO_OUTPUT_DIR=$(CURDIR)/build-arm64/lib \
	  > build-arm64.log 2>&1 || (cat build-arm64.log; exit 1)
	cmake --build build-arm64 --parallel $(JOBS)
	cd build-arm64 && QEMU_CPU=max ctest --output-on-failure
	cd build-arm64 && QEMU_CPU=cortex-a53 ctest --output-on-failure

test-python: build
	$(PY) -m pytest -q -p no:cacheprovider tests

bench: build
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

wheel: $(STAMP_PY)
	rm -rf dist
	$(PIP) wheel --no-build-isolation --no-deps -w dist .
	$(PY) -c "import sys, zipfile, glob; names = zipfile.ZipFile(glob.glob('dist/pyvideo-*.whl')[0]).namelist(); \
	  need = ['pyvideo/libvideo.so']; missing = [n for n in need if n not in names]; \
	  assert not missing and any(n.startswith('pyvideo/_C') for n in names), missing; print('wheel ok:', len(names), 'files')"

clean:
	rm -rf build build-asan build-arm64 dist *.egg-info build-asan.log build-arm64.log pyvideo/_C*.so pyvideo/libvideo.so
