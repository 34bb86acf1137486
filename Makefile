# One command to start, one to test. Both set up what they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 4747
DATA   ?= ./snapferry-data

.PHONY: run test lint bench setup clean

$(BIN)/.installed-%: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[$*]'
	touch $@

setup: $(BIN)/.installed-test

run: $(BIN)/.installed-test
	$(BIN)/snapferry serve --port $(PORT) --data-dir $(DATA)

test: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed-bench
	$(BIN)/python -m bench.requests

clean:
	rm -rf $(VENV) snapferry-data .pytest_cache .hypothesis
