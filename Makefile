# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Static-analysis tools whose pins clash with the project's (checkov): a venv of their own, exact set in
# terraform/tools-constraints.txt. The tests find checkov at $(TOOLS_VENV)/bin/checkov.
TOOLS_VENV := .venv-tools
CHECKOV_SPEC := checkov>=3.3.30,<4

export MLOPS_HOME ?= $(CURDIR)/.mlops
export DAGSTER_HOME ?= $(MLOPS_HOME)/dagster
export BENTOML_HOME ?= $(MLOPS_HOME)/bentoml
export BENTOML_DO_NOT_TRACK := True
export MLFLOW_DISABLE_TELEMETRY := true
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export MLFLOW_TRACKING_URI ?= sqlite:///$(MLOPS_HOME)/mlflow/mlflow.db

DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000
SERVE_PORT ?= 3001
MLOPS_DATASET ?= transactions

.PHONY: install tools system-deps demo test test-fast lint screenshots dev mlflow-ui serve validate bench bench-serve clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(BIN)/.installed

# Services and programs the tests drive for real: Debian's chromium for the browser tests.
# Installed when missing and we may (root); otherwise those tests skip, naming what is missing.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (browser tests)"; \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null; \
	fi

$(TOOLS_VENV)/.installed: terraform/tools-constraints.txt
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(TOOLS_VENV)/bin/python -m pip install --quiet -c terraform/tools-constraints.txt '$(CHECKOV_SPEC)'
	@touch $@

tools: $(TOOLS_VENV)/.installed

demo: install
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/mlops-assets demo

# The README's one test command: lint, then the whole suite (what CI runs).
test: lint tools system-deps
	$(BIN)/python -m pytest

# The edit loop: unit and single-asset tests; no whole-graph demo, no servers.
test-fast: lint
	$(BIN)/python -m pytest -m "not slow" -q

# Refresh the README tour's screenshots from the browser tests.
screenshots: install system-deps
	MLOPS_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q mlops_assets_tests/test_ui.py

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
