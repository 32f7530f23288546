# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

export MLOPS_HOME ?= $(CURDIR)/.mlops
export DAGSTER_HOME ?= $(MLOPS_HOME)/dagster
export BENTOML_HOME ?= $(MLOPS_HOME)/bentoml
export BENTOML_DO_NOT_TRACK := True
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export MLFLOW_TRACKING_URI ?= sqlite:///$(MLOPS_HOME)/mlflow/mlflow.db

DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000
SERVE_PORT ?= 3001
MLOPS_DATASET ?= transactions

.PHONY: install demo test test-fast lint dev mlflow-ui serve validate bench bench-serve clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(BIN)/.installed

demo: install
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/mlops-assets demo

# The README's one test command: lint, then the whole suite (what CI runs).
test: lint
	$(BIN)/python -m pytest

# The edit loop: unit and single-asset tests; no whole-graph demo, no servers.
test-fast: lint
	$(BIN)/python -m pytest -m "not slow" -q

lint: install
	$(BIN)/ruff check .

validate: install
	$(BIN)/dagster definitions validate -w workspace.yaml

dev: install
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml -p $(DAGSTER_PORT)

mlflow-ui: install
	@mkdir -p $(MLOPS_HOME)/mlflow
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --port $(MLFLOW_PORT) --workers 1

serve: install
	$(BIN)/mlops-assets serve $(MLOPS_DATASET) --port $(SERVE_PORT)

bench: install
	$(BIN)/python benchmarks/ingest.py

# Our Bento vs FastAPI + uvicorn on the same model (needs `make demo` first, and wrk for the load: apt-get install wrk)
bench-serve: install
	$(BIN)/python benchmarks/serve.py

clean:
	rm -rf $(MLOPS_HOME)
