# Two commands for a newcomer: `make demo` and `make test`. Everything else is a building block.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DB ?= sqlite+aiosqlite:///$(CURDIR)/localvalue.db
HOST ?= 127.0.0.1
PORT ?= 8000
PACKAGES := procurement importers socialvalue
# The sample's Birmingham City Council award (a Dudley contractor, June 2022) makes the demo statement.
DEMO_ANCHOR ?= E08000025
DEMO_QUARTER ?= 2022Q1
# Royal Free London NHS FT's published payments over £25,000, April to June 2020 (a whole quarter, 841 lines).
DEMO_SPEND_ANCHOR ?= RAL
DEMO_SPEND_QUARTER ?= 2020Q1
DEMO_SPEND_FILE ?= procurement/data/samples/nhs_royal-free-ft_2020-Q1_over25k_with_VATreg.csv

.PHONY: install constraints demo demo-data test lint typecheck pytest postgres browser clean statement-preview screens

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade -c constraints.txt pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Re-pin: a new environment with the newest releases pyproject.toml's ranges allow, frozen into constraints.txt
# (its comment lines kept). Run `make test` on the result before committing it. setuptools and wheel are left
# out: only some Pythons' venv puts them there (3.11 does, 3.12 does not), and nothing here needs them.
constraints:
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	grep '^#' constraints.txt > constraints.txt.new
	$(BIN)/pip freeze --all --exclude-editable | grep -viE '^(setuptools|wheel)==' | sort -f >> constraints.txt.new
	mv constraints.txt.new constraints.txt
	touch $(STAMP)

# Migrate the embedded SQLite database, load the shipped reference data, then serve.
demo-data: install
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue database upgrade --no-prompt
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue seed anchors
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue import file procurement/data/samples/contracts-finder-*.json
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue seed measures
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue seed groups
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue seed anchors --list spend-demo
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue import spend $(DEMO_SPEND_FILE) --anchor $(DEMO_SPEND_ANCHOR) --by "make demo"
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue classify
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue statements publish --anchor $(DEMO_ANCHOR) --quarter $(DEMO_QUARTER) \
		--by "make demo" --if-absent
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue statements publish --anchor $(DEMO_SPEND_ANCHOR) \
		--quarter $(DEMO_SPEND_QUARTER) --basis paid --by "make demo" --if-absent

demo: demo-data
	@echo "Local Value on http://$(HOST):$(PORT)  (API docs: http://$(HOST):$(PORT)/schema/swagger)"
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue run --host $(HOST) --port $(PORT)

postgres:
	bash .ci/ensure-postgres

browser:
	bash .ci/ensure-browser

lint: install
	$(BIN)/ruff check $(PACKAGES) tests benchmarks migrations/env.py
	$(BIN)/ruff format --check $(PACKAGES) tests benchmarks migrations/env.py
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

# Two workers: the suite is mostly waiting on databases, subprocesses and Chromium, so both cores stay busy
# (a third made a whole CI run no shorter).
# worksteal: the slow modules run first (tests/conftest.py) and an idle worker takes half of the other's queue.
# compileall: the suite starts a few hundred processes (servers, commands), each importing the service; where
# PYTHONDONTWRITEBYTECODE is set (as on CI) nothing caches their bytecode, and compiling it costs each about a second.
pytest: install postgres browser
	$(BIN)/python -m compileall -q -j 0 $(PACKAGES) tests migrations
	$(BIN)/pytest -n 2 --dist worksteal

# Lint and type-check run beside the suite, on the time its workers spend waiting; any failure fails `make test`.
test: install postgres browser
	$(MAKE) --no-print-directory -j3 lint typecheck pytest

# PNGs of the first two pages of the demo statement, for reviewers without a PDF viewer.
statement-preview: demo-data
	DATABASE_URL=$(DEMO_DB) $(BIN)/localvalue statements download --anchor $(DEMO_ANCHOR) --quarter $(DEMO_QUARTER) \
		--out docs/demo-statement.pdf
	command -v pdftoppm >/dev/null || bash .ci/ensure-browser
	pdftoppm -png -r 60 -f 1 -l 2 docs/demo-statement.pdf docs/demo-statement
	rm docs/demo-statement.pdf
	@ls docs/demo-statement-*.png

# PNGs of every workspace page at desktop (1280 px) and phone (390 px) widths, from the demo database.
screens: demo-data browser
	DATABASE_URL=$(DEMO_DB) $(BIN)/python -m tests.support.screens --out docs/screens

clean:
	rm -rf $(VENV) localvalue.db .pytest_cache .mypy_cache .ruff_cache
