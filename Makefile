# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Airflow pins many packages, so it never shares Shipyard's venv: the suite imports the
# exported DAG with Airflow's DagBag in a venv of its own (tests/pipelines/test_export_airflow.py).
AIRFLOW_VENV := .venv-airflow
AIRFLOW := apache-airflow==3.3.2 apache-airflow-providers-cncf-kubernetes
# Feast (703 MB, pins pandas<3) is the feature store's interop path and test oracle, never
# imported by Shipyard: `features import-feast` and its tests run it in a venv of its own.
FEAST_VENV := .venv-feast
FEAST := feast[duckdb]==0.67.0
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

$(AIRFLOW_VENV)/.installed:
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet $(AIRFLOW)
	touch $@

$(FEAST_VENV)/.installed:
	$(PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/python -m pip install --quiet "$(FEAST)"
	touch $@

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

pytest: $(VENV)/.installed-dev $(AIRFLOW_VENV)/.installed $(FEAST_VENV)/.installed
	SHIPYARD_AIRFLOW_PYTHON="$(abspath $(AIRFLOW_VENV))/bin/python" \
	SHIPYARD_FEAST_PYTHON="$(abspath $(FEAST_VENV))/bin/python" $(BIN)/python -m pytest

docs: $(VENV)/.installed
	$(BIN)/shipyard config docs -o docs/config.md

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(FEAST_VENV) .demo .pytest_cache .mypy_cache .ruff_cache
