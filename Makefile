# Two commands for a fresh clone:
#   make plan   set up ./venv, then plan the dev stack offline (no cloud, CLI or Docker)
#   make test   lint, type-check and run the test suite
PYTHON ?= python3
VENV := venv
STAMP := $(VENV)/.installed
SCAN_VENV := $(VENV)/scan
SCAN_STAMP := $(SCAN_VENV)/.installed

.PHONY: plan plan-all test lint bench docs

$(STAMP): requirements.txt requirements-dev.txt requirements-loadgen.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(SCAN_STAMP): requirements-scan.txt | $(STAMP)
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	touch $(SCAN_STAMP)

plan: $(STAMP)
	$(VENV)/bin/python -m infra plan dev --out plan-out

plan-all: $(STAMP)
	$(VENV)/bin/python -m infra plan --all --out plan-out

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint $(SCAN_STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python scripts/bench_plan.py
	$(VENV)/bin/python scripts/bench_harness.py
	$(VENV)/bin/python scripts/bench_loadgen.py

docs: $(STAMP)
	$(VENV)/bin/python -m infra docs --write
