# Two set-up commands do everything on a fresh machine: `make demo` and `make test`.
# The virtual environment is built from requirements.lock (exact pins) on first use.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DATA   ?= .demo

.PHONY: venv demo test lint typecheck unit bench clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

## demo: decide the bundled example events on a fresh embedded store and print the summary
demo: venv
	rm -rf $(DATA)
	PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard rules check rules/default.yaml
	PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard replay examples/events.jsonl -o $(DATA)/decisions.jsonl
	PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard rules test rules/default.yaml examples/events.jsonl

## test: lint, type-check and run the whole test suite
test: lint typecheck unit

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest

## bench: run every benchmark under bench/ and print the results
bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .mypy_cache .ruff_cache
