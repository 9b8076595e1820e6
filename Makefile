# eoengine: `make demo` runs the whole pipeline on the bundled sample, `make test` the test suite.
# Both create .venv and install everything on first use (torch is pinned to the local CPU build) and build the
# web app (web/, npm registry) into the package; `make test` also installs the Debian packages its tests use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# test processes: two suit a 2-core machine (tests wait on servers and subprocesses); TEST_JOBS=0 runs in one process
TEST_JOBS ?= 2

TOOLS := .tools
AZURITE := $(TOOLS)/node_modules/.bin/azurite-blob

# the web app: rebuilt when a source changes (or one is added or removed: folders are listed too), skipped otherwise
WEB_DIST := src/eoengine/platform/web_dist
WEB_SRC := $(shell find web/src) web/index.html web/package.json web/tsconfig.json web/tsconfig.node.json web/vite.config.ts
WEB_DEPS := web/node_modules/.installed

.PHONY: setup web system-deps demo check-readme test lint typecheck bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# Azure Storage emulator for the az:// tests (npm registry)
$(AZURITE):
	npm install --no-audit --no-fund --loglevel=error --prefix $(TOOLS) azurite@3.35.0

$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_DIST)/index.html: $(WEB_DEPS) $(WEB_SRC)
	cd web && npm run build --silent

web: $(WEB_DIST)/index.html

setup: $(BIN)/.installed web

# Debian's chromium (browser tests) and postgresql (the PostgreSQL suite), installed only when missing
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	  else echo "system-deps: cannot install$$missing (not root, no sudo): the tests needing them skip; install them as root"; exit 0; fi; \
	  $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$$missing; \
	fi

demo: setup
	$(BIN)/eoengine demo --workdir out/demo

# runs the demo, then fails unless README.md quotes the figures it printed (out/demo/figures.json)
check-readme: setup
	$(BIN)/eoengine demo --workdir out/demo --check-readme README.md

# two runs: everything but the demo (marked slow) in TEST_JOBS processes, then the demo alone, its PyTorch threads
# on idle cores (next to the other tests it took 17 minutes instead of 6). Both run; either failing fails, and so
# does either collecting no tests (pytest's exit 5)
test: setup system-deps $(AZURITE)
	@fast=0; slow=0; \
	$(BIN)/pytest -q --durations=25 -m "not slow" $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile) || fast=$$?; \
	$(BIN)/pytest -q --durations=5 -m slow || slow=$$?; \
	if [ $$fast != 0 ] || [ $$slow != 0 ]; then \
	  echo "make test: the tests not marked slow exited $$fast, the slow ones $$slow (5: no tests collected)"; exit 1; fi

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
	$(BIN)/python benchmarks/bench_platform_api.py
	$(BIN)/python benchmarks/bench_platform_jobs.py
	$(BIN)/python benchmarks/bench_grade.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache $(TOOLS) web/node_modules $(WEB_DIST) tests/artifacts
