# One command to start, one to test. Each sets up what it needs on a fresh machine
# (a virtualenv in .venv with the pinned versions in constraints.txt).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
JS     := tests/clients/js
PORT   ?= 4747
DATA   ?= ./snapferry-data
CYCLES ?= 100

.PHONY: run test test-scaleout lint bench bench-scale bench-metadata fuzz crash mutation clean

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

# The AWS SDK for JavaScript v3 test client, from its committed lockfile; the stamp lives in
# node_modules, so `npm ci` (which empties node_modules) and a changed lockfile both redo it.
$(JS)/node_modules/.installed: $(JS)/package.json $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.installed
	$(BIN)/snapferry serve --port $(PORT) --data-dir $(DATA)

# The integration suite again on the scale-out engines (PostgreSQL + SeaweedFS, 2 API and 2
# worker processes per server; tests/engines_plugin.py). The scale-out tests proper
# (test_scaleout_*.py) start their own engines and run in the first pass, so not here.
SCALEOUT_TESTS := SNAPFERRY_TEST_BACKEND=scaleout $(BIN)/python -m pytest -q -n auto \
	--dist loadfile --no-loadscope-reorder tests/integration --ignore-glob='*/test_scaleout_*.py'

# The whole suite on the embedded engines (SQLite + files, one process), with the scale-out
# tests proper; then the integration suite again on the scale-out engines.
test: $(VENV)/.installed-test
	scripts/test-deps.sh
	$(MAKE) --no-print-directory $(JS)/node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder
	$(SCALEOUT_TESTS)

# The scale-out pass of `make test` alone.
test-scaleout: $(VENV)/.installed-test
	scripts/test-deps.sh
	$(MAKE) --no-print-directory $(JS)/node_modules/.installed
	$(SCALEOUT_TESTS)

# The long fuzz run (>= 10,000 requests; `make test` runs the same tests small). Its figures
# go in RELIABILITY.md, "Fuzz".
FUZZ_EXAMPLES ?= 200
fuzz: $(VENV)/.installed-test
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/fuzz

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

bench: $(VENV)/.installed-bench $(VENV)/.installed-test
	$(BIN)/python -m bench.requests
	$(BIN)/python -m bench.blocks
	$(BIN)/python -m bench.copy
	$(BIN)/python -m bench.images
	$(BIN)/python -m bench.s3

# Copies with 1, 2, 4 worker processes on PostgreSQL + SeaweedFS and embedded; requests with
# 1 and 2 API processes (BENCHMARKS.md, "Scale"). SCALE_ARGS e.g. "--size-mib 64".
bench-scale: $(VENV)/.installed-test
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

# Costs that do not grow with the store: 100k snapshots and images on SQLite and PostgreSQL,
# moto at 1k for reference (BENCHMARKS.md, "Metadata at scale"). METADATA_ARGS e.g.
# "--count 20000 --engines sqlite".
bench-metadata: $(VENV)/.installed-bench $(VENV)/.installed-test
	$(BIN)/python -m bench.scale_metadata $(METADATA_ARGS)

# kill -9 cycles against a real server and worker; prints lost/torn/stuck/orphan figures
crash: $(VENV)/.installed-test
	$(BIN)/python -m tests.crash.harness --cycles $(CYCLES)

# Mutation testing (not part of `make test`: hours on a busy machine). MODULES narrows it,
# e.g. `make mutation MODULES="domain/policy.py wire/sigv4.py"`; `MUTATION_FLAGS=--select` tests
# each mutant by the tests that run its line only; see RELIABILITY.md.
mutation: $(VENV)/.installed-mutation
	nice -n 19 $(BIN)/python -m tests.mutation.run $(MUTATION_FLAGS) $(MODULES)

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .hypothesis .ruff_cache .mutation $(JS)/node_modules
