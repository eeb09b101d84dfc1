# Gleaner: `make run` brings the stack up, `make test` runs every check. Both install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export GLEANER_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/gleaner
export GLEANER_ADMIN_TOKEN ?= local-admin-token-change-me

.PHONY: install tools browser run services migrate test unit ops lint typecheck format bench chaos clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

tools: install
	@bash scripts/install-ops-tools.sh

# Debian's Chromium, which the console's browser tests (tests/browser) drive through Playwright
browser:
	@bash scripts/install-chromium.sh

services:
	@bash scripts/ensure-services.sh

migrate: install services
	@bash scripts/ensure-database.sh "$$GLEANER_DATABASE_URL"
	$(BIN)/gleaner migrate

run: migrate
	@bash scripts/run-stack.sh

lint: install
	$(BIN)/ruff check gleaner tests bench examples
	$(BIN)/ruff format --check gleaner tests bench examples
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format gleaner tests bench examples
	$(BIN)/ruff check --fix gleaner tests bench examples

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q tests/unit

ops: tools
	$(BIN)/pytest -q tests/ops

# the suite waits on RabbitMQ, PostgreSQL and service processes far more than it computes: TEST_WORKERS pytest-xdist
# processes run it side by side (TEST_WORKERS=0 runs it in one process, as before)
TEST_WORKERS ?= 2

test: install tools browser services lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup tests

bench: install services
	$(PY) -m bench $(BENCH_ARGS)

# the fault scenarios at ten times the `make test` size, on a private RabbitMQ node and PostgreSQL cluster
chaos: install
	$(PY) -m tests.faults.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
