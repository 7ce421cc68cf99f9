# The two quickstart commands: `make run` (capture from the local server) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: run test lint check-python system-deps demo bench clean

$(BIN)/.installed: pyproject.toml
	@$(MAKE) --no-print-directory check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "plsnap needs Python >= 3.11 (set PYTHON=python3.11)")'
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { echo "the venv module is missing: apt-get install -y python3-venv" >&2; exit 1; }

## run: set up, then capture from the local server (~/.my.cnf or the default socket) until Ctrl-C
run: $(BIN)/.installed
	$(BIN)/plsnap daemon $(ARGS)

system-deps:
	@bash scripts/ensure-system-deps.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

## test: set up, lint, type-check, then run every test (unit and integration against a throwaway mariadbd)
test: $(BIN)/.installed system-deps lint
	$(BIN)/python -m pytest --cov --cov-report=term $(ARGS)

## demo: a throwaway mariadbd, a workload with a lock pileup, the daemon for a minute, then window and at
demo: $(BIN)/.installed system-deps
	$(BIN)/python scripts/demo.py

## bench: every benchmark scenario, one table of plsnap vs its peers
bench: $(BIN)/.installed system-deps
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
