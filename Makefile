# Everything runs from a project-local virtualenv that the targets create on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test unit integration lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("seq-export needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## run the daily export end to end on a local stack (moto + SEQ simulator).
## Variables: DATE=YYYY-MM-DD SUBUSERS=2500 NOT_READY=0 DELAY=2 MAX_ATTEMPTS=16 ARGS=--verbose
run: $(STAMP)
	$(BIN)/python -m local.run $(ARGS)

## lint, type-check, then every test (unit, integration, slow)
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .aws-sam
