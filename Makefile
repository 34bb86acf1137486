# One command to start, one to test. Each sets up what it needs on a fresh machine
# (a virtualenv in .venv with the pinned versions in constraints.txt).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
PORT   ?= 4747
DATA   ?= ./snapferry-data
CYCLES ?= 100

.PHONY: run test lint bench crash clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[test]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP) -e '.[bench]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/snapferry serve --port $(PORT) --data-dir $(DATA)

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

bench: $(VENV)/.installed-bench $(VENV)/.installed-test
	$(BIN)/python -m bench.requests
	$(BIN)/python -m bench.blocks
	$(BIN)/python -m bench.copy

# kill -9 cycles against a real server and worker; prints lost/torn/stuck/orphan figures
crash: $(VENV)/.installed-test
	$(BIN)/python -m tests.crash.harness --cycles $(CYCLES)

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .hypothesis .ruff_cache
