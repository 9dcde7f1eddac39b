# The two commands a fresh clone needs; each creates .venv when missing.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 1

.PHONY: test reproduce install lint bench

$(BIN)/overparam: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)" -e ".[dev]"
	touch $(BIN)/overparam

install: $(BIN)/overparam

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

reproduce: install
	$(BIN)/overparam reproduce --preset quick

lint: install
	$(BIN)/ruff check src tests benchmarks

bench: install
	$(BIN)/python benchmarks/ensemble.py
