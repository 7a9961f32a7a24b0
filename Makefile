# Two commands for a newcomer: `make demo` and `make test`. Everything else is a building block.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DB ?= sqlite+aiosqlite:///$(CURDIR)/localvalue.db
HOST ?= 127.0.0.1
PORT ?= 8000
PACKAGES := procurement importers socialvalue

.PHONY: install demo demo-data test lint typecheck pytest postgres clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Migrate the embedded SQLite database, load the shipped reference data, then serve.
demo-data: install
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue database upgrade --no-prompt
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue seed anchors

demo: demo-data
	@echo "Local Value on http://$(HOST):$(PORT)  (API docs: http://$(HOST):$(PORT)/schema/swagger)"
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue run --host $(HOST) --port $(PORT)

postgres:
	bash .ci/ensure-postgres

lint: install
	$(BIN)/ruff check $(PACKAGES) tests benchmarks migrations/env.py
	$(BIN)/ruff format --check $(PACKAGES) tests benchmarks migrations/env.py

typecheck: install
	$(BIN)/mypy

pytest: install postgres
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) localvalue.db .pytest_cache .mypy_cache .ruff_cache
