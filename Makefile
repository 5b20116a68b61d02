PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit histories bench clean system-packages prod-sim

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/journeys dev --demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# What the tests need from Debian, installed when missing (CI runs as root on a fresh machine):
# PostgreSQL's server for the store's tests, headless Chromium for the API docs pages.
system-packages:
	@command -v chromium >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	|| { apt-get update && DEBIAN_FRONTEND=noninteractive \
	     apt-get install -y --no-install-recommends chromium postgresql; }

unit: $(STAMP) system-packages
	$(BIN)/pytest -q -n 2

test: lint unit

# The production shape on this machine (devstack/prod_sim.py): PostgreSQL, two workers, two
# gateways; exits 1 saying what failed.
prod-sim: $(STAMP) system-packages
	$(BIN)/python -m devstack.prod_sim

histories: $(STAMP)
	$(BIN)/python -m tests.record_histories

# Every figure beside bare Temporal's in the same run, appended to bench/RESULTS.md (about half
# an hour on 2 cores); BENCH_ARGS="--quick" runs it at tiny sizes in a minute or two.
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m bench.suite $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
