# eoengine: `make demo` runs the whole pipeline on the bundled sample, `make test` the test suite.
# Both create .venv and install everything on first use (torch is pinned to the local CPU build).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

TOOLS := .tools
AZURITE := $(TOOLS)/node_modules/.bin/azurite-blob

.PHONY: setup demo check-readme test lint typecheck bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Azure Storage emulator for the az:// tests (npm registry)
$(AZURITE):
	npm install --no-audit --no-fund --loglevel=error --prefix $(TOOLS) azurite@3.35.0

setup: $(BIN)/.installed

demo: setup
	$(BIN)/eoengine demo --workdir out/demo

# runs the demo, then fails unless README.md quotes the figures it printed (out/demo/figures.json)
check-readme: setup
	$(BIN)/eoengine demo --workdir out/demo --check-readme README.md

test: setup $(AZURITE)
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

bench: setup
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/bench_loader.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_predict.py
	$(BIN)/python benchmarks/bench_engines.py
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_fetch.py
	$(BIN)/python benchmarks/bench_point_models.py
	$(BIN)/python benchmarks/bench_import.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache $(TOOLS)
