# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: demo walkthrough test lint typecheck pytest docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/shipyard demo

walkthrough: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" bash examples/demo.sh

test: $(VENV)/.installed-dev lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check shipyard tests benchmarks examples
	$(BIN)/ruff format --check shipyard tests benchmarks examples
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

docs: $(VENV)/.installed
	$(BIN)/shipyard config docs -o docs/config.md

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
