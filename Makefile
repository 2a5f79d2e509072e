# Every target does its own set-up: a fresh clone needs only Python >= 3.11.
PYTHON ?= python3
VENV ?= .venv
# An extra requirement for the virtualenv, e.g. DJANGO="Django~=6.1.0".
DJANGO ?=
PORT ?= 8000
HOST ?= 127.0.0.1
BIN := $(VENV)/bin

.PHONY: install demo test lint typecheck pytest docs bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The test toolchain (`make install`, used by lint, typecheck, pytest and test).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]' $(if $(DJANGO),"$(DJANGO)")
	touch $@

install: $(VENV)/.installed

# Only what the demo runs on: Daphne, channels_redis and psycopg (for REDIS_URL, DATABASE_URL).
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[demo]' $(if $(DJANGO),"$(DJANGO)")
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python -m daphne -b $(HOST) -p $(PORT) demo_project.asgi:application

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# COVERAGE=1: measure django_sse's line coverage (in-process code; the server subprocesses are
# not measured) and fail under the floor, [tool.coverage.report] fail_under in pyproject.toml.
# CI's Python 3.11 leg sets it: the only leg that runs the whole suite.
COVERAGE ?=

pytest: install
	$(BIN)/python -m pytest $(if $(COVERAGE),--cov --cov-report=term) $(PYTEST_ARGS)

# The documentation site (Sphinx, furo, MyST) into docs/_build/html; warnings are errors, so a
# broken link, a missing page or a docstring autodoc cannot read fails `make test` (a few s).
docs: install
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

test: lint typecheck docs pytest

# Benchmarks against the anchors, in a virtualenv of their own (never part of `make test`).
# BENCH_ARGS="--quick" runs smaller counts; see bench/run.py for the other options.
BENCH_VENV ?= bench/.venv
BENCH_ARGS ?=

$(BENCH_VENV)/.installed: pyproject.toml bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -e '.[bench,prometheus]' -r bench/requirements.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m bench.run $(BENCH_ARGS)

# SOAK_STREAMS streams held for SOAK_SECONDS with steady publishing, in the bench's virtualenv;
# writes soak/results/ (SOAK.md, soak.png). SOAK_ARGS: see soak/run.py (--rate, --server).
SOAK_SECONDS ?= 600
SOAK_STREAMS ?= 5000
SOAK_ARGS ?=

soak: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m soak.run --seconds $(SOAK_SECONDS) --streams $(SOAK_STREAMS) $(SOAK_ARGS)

clean:
	rm -rf .venv .venv-* .pytest_cache .mypy_cache .ruff_cache docs/_build
