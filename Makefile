VENV ?= .venv
PY := $(VENV)/bin/python
PYBUILD := $(VENV)/bin/pybuild
STAMP := $(VENV)/.installed

.PHONY: setup test unit lint demo stacks bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q --durations=15 tests

unit: setup
	$(PY) -m pytest -q tests/unit

lint: setup
	$(VENV)/bin/ruff check lifecycle tests bench
	$(VENV)/bin/ruff format --check lifecycle tests bench
	$(VENV)/bin/mypy

stacks: setup
	$(PYBUILD) stack build stacks/tiny
	$(PYBUILD) stack build stacks/bookworm

demo: setup
	bash samples/demo.sh

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: docs
docs: setup
	$(PY) -m lifecycle.cli.docs docs/reference.md

.PHONY: soak
soak: setup
	PYBUILD_TEST_SOAK=1 $(PY) -m pytest -q tests/reliability
