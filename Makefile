# The two commands a fresh clone needs; each creates .venv when missing.
PYTHON ?= python3
TORCH ?= torch==2.13.0
EXTRAS ?= dev
VENV := .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 1

.PHONY: test reproduce install lint bench bench-env

$(BIN)/overparam: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)" -e ".[$(EXTRAS)]"
	touch $(BIN)/overparam

install: $(BIN)/overparam

# Without PYTEST_ARGS the slow end-to-end tests run in a second process beside the rest (one torch
# thread each: the two cores of a small machine); with PYTEST_ARGS, one pytest as asked.
test: install
	@if [ -n "$(PYTEST_ARGS)" ]; then $(BIN)/python -m pytest -q $(PYTEST_ARGS); else \
	  mkdir -p .pytest-tmp; \
	  $(BIN)/python -m pytest -q -m slow --basetemp=.pytest-tmp/slow > .pytest-tmp/slow.log 2>&1 & \
	  slow=$$!; \
	  $(BIN)/python -m pytest -q -m "not slow" --basetemp=.pytest-tmp/fast; fast=$$?; \
	  wait $$slow; rc=$$?; echo "--- slow end-to-end tests:"; cat .pytest-tmp/slow.log; \
	  [ $$fast -eq 0 ] && [ $$rc -eq 0 ]; fi

reproduce: install
	$(BIN)/overparam reproduce --preset quick --workers 2

lint: install
	$(BIN)/ruff check src tests benchmarks

bench: install
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/ensemble.py
	$(BIN)/python benchmarks/hessian.py
	$(BIN)/python benchmarks/ntk.py

# neural-tangents 0.6.5 and its pinned JAX live in their own environment (~2.6 GB, with TensorFlow)
bench-env:
	test -x .venv-nt/bin/python || $(PYTHON) -m venv .venv-nt
	.venv-nt/bin/pip install -q "jax==0.4.23" "jaxlib==0.4.23" "neural-tangents==0.6.5" "tf2jax==0.3.6" "numpy<2"
