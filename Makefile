# mcastkit — `make demo` runs the loopback demo, `make test` runs every check.
# Both create .venv and install the package first (installing needs the registry, so it
# happens outside any network namespace); the tests then run inside a fresh network
# namespace where nothing can leak onto a real network.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck contracts pytest bench clean venv

$(STAMP): pyproject.toml hatch_build.py src/mcastkit/_speedups.c
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,cli]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	@scripts/in-netns $(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	scripts/in-netns $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck contracts pytest

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	scripts/in-netns $(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
