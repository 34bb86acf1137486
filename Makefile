# One command to start, one to test. Each sets up what it needs on a fresh machine
# (a virtualenv in .venv with the pinned versions in constraints.txt).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
PORT   ?= 4747
DATA   ?= ./snapferry-data

.PHONY: run test lint bench mutation clean

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

$(VENV)/.installed-mutation: $(VENV)/.installed-test
	$(PIP) -e '.[mutation]'
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

# Mutation testing (not part of `make test`: hours on a busy machine). MODULES narrows it,
# e.g. `make mutation MODULES="domain/policy.py wire/sigv4.py"`; see RELIABILITY.md.
mutation: $(VENV)/.installed-mutation
	nice -n 19 $(BIN)/python -m tests.mutation.run $(MODULES)

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .hypothesis .ruff_cache .mutation
