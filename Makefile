# The two quickstart commands: `make run` (capture from the local server) and `make test` (the whole suite).
# Both use plsnap as users get it: a wheel built from src/ and installed (not an editable checkout), rebuilt
# whenever anything under src/ (or the project metadata) changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=
COVERAGE_FLOOR ?= 85
SOURCES := $(shell find src -type f -not -path '*/__pycache__/*' 2>/dev/null) pyproject.toml README.md LICENSE
export PYTHONPATH := $(CURDIR)

.PHONY: run test lint check-python system-deps demo bench docs clean

$(BIN)/.deps: pyproject.toml
	@$(MAKE) --no-print-directory check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet '.[test]'
	@touch $@

$(BIN)/.installed: $(BIN)/.deps $(SOURCES)
	rm -rf dist
	$(BIN)/python -m build --wheel --no-isolation --outdir dist . >/dev/null
	$(BIN)/pip install --quiet --no-deps --force-reinstall dist/plsnap-*.whl
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
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy src
	$(BIN)/vulture src vulture_allowlist.py --min-confidence 60

## test: set up, lint, type-check, then run every test against the installed wheel (and a throwaway mariadbd)
test: $(BIN)/.installed system-deps lint
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR) $(ARGS)

## demo: a throwaway mariadbd, a workload with lock pileups, the daemon for a minute, then the answers
demo: $(BIN)/.installed system-deps
	$(BIN)/python scripts/demo.py

## bench: every benchmark scenario, one table of plsnap vs its peers
bench: $(BIN)/.installed system-deps
	$(BIN)/python benchmarks/run_all.py

## docs: regenerate docs/cli-reference.md and docs/configuration.md (a test fails when they are stale)
docs: $(BIN)/.installed
	$(BIN)/python scripts/gen_docs.py

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage .coverage.*
