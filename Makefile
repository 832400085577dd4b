# Two set-up commands do everything on a fresh machine: `make demo` and `make test`.
# The virtual environment is built from requirements.lock (exact pins) on first use.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DATA   ?= .demo
DEMO_LOGIN    ?= demo
DEMO_PASSWORD ?= demo-console-1

.PHONY: venv demo test lint typecheck unit bench bench-ml clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

## demo: simulate a month of customers and attacks, decide every event, write the backtest,
## then run the same month as a closed loop (actors react) beside the open-loop figures
## (development mode: the public development token key is allowed; docs/security.md)
demo: export PAYGUARD_DEV = 1
demo: venv
	@echo "payguard demo: DEVELOPMENT MODE (PAYGUARD_DEV=1), not for production"
	rm -rf $(DATA)
	mkdir -p $(DATA)
	PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard rules check rules/default.yaml
	$(BIN)/payguard simulate --users 5000 --days 30 --seed 7 \
		-o $(DATA)/events.jsonl --labels $(DATA)/labels.jsonl
	PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard replay $(DATA)/events.jsonl -o $(DATA)/decisions.jsonl
	PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard file-cases
	PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard rules test rules/default.yaml examples/events.jsonl
	PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard backtest $(DATA)/events.jsonl \
		--labels $(DATA)/labels.jsonl --ruleset rules/default.yaml \
		--html $(DATA)/backtest.html --json $(DATA)/backtest.json
	PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard simulate --closed-loop --users 5000 --days 30 --seed 7 \
		--ruleset rules/default.yaml --compare $(DATA)/backtest.json \
		--json $(DATA)/loop.json --html $(DATA)/loop.html
	printf '%s\n' '$(DEMO_PASSWORD)' | PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard users create \
		$(DEMO_LOGIN) --role lead --password-stdin
	@echo
	@echo "Analyst console (development mode): start the server on the demo data with"
	@echo "  PAYGUARD_DEV=1 PAYGUARD_DATA_DIR=$(DATA) $(BIN)/payguard serve"
	@echo "then open http://127.0.0.1:8000/console/ and log in as $(DEMO_LOGIN) / $(DEMO_PASSWORD)"

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

## bench-ml: the Fraud Detection Handbook's protocols from the raw file (docs/ml.md)
bench-ml: venv
	$(BIN)/python -m bench.ml_fdh

clean:
	rm -rf $(VENV) $(DATA) .bench-ml .pytest_cache .mypy_cache .ruff_cache
