# Everything runs from a project-local virtualenv that the targets create on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Two installs into the one .venv: `run` (the function's runtime and the local stack, what `make run`
# needs) and `dev` (run + the test, lint and type-check tools), each done once, as its stamp says.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# Template tools (SAM CLI, checkov, cfn-lint) live apart: their pins clash with the dev tools.
TOOLS_VENV  ?= .venv-tools
TOOLS_BIN   := $(TOOLS_VENV)/bin
TOOLS_STAMP := $(TOOLS_VENV)/.installed

.PHONY: help install run test unit integration lint format template-check clean
.DEFAULT_GOAL := help

help: ## list the targets, one line each (what `make` alone does)
	@echo 'usage: make TARGET [VARIABLE=value ...]'
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  %-15s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("seq-export needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[run]"
	touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(DEV_STAMP)

install: $(DEV_STAMP) ## create .venv and install the package, the CLI, the local stack and the dev tools

# Variables (or the options of `python -m local.run --help`): DATE=YYYY-MM-DD SUBUSERS=2500
# NOT_READY=0 DELAY=2 MAX_ATTEMPTS=16 PAGE_SIZE=1000 SOURCES=1 VERBOSE=1 KEEP=1 ENV_FILE=PATH, ARGS for any option.
# SOURCES=2 configures two sources with SEQ_SOURCES, each on a simulated host of its own: `global`
# and `eu` (its own key and subuser ids, a fifth as many subusers, no account scores).
run: $(RUN_STAMP) ## the daily export end to end on a local stack (moto + SEQ simulator); options: ARGS=--help
	$(strip $(BIN)/python -m local.run $(ARGS))

test: lint ## lint, type-check, then every test (unit, integration, slow)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: $(DEV_STAMP) ## the unit tests (pure, no network)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: $(DEV_STAMP) ## the integration tests (moto server, SEQ simulator, fault proxy)
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

lint: $(DEV_STAMP) ## ruff, ruff format --check, mypy (strict) and cfn-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

$(TOOLS_STAMP): requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_BIN)/python -m pip install --quiet --upgrade pip
	$(TOOLS_BIN)/python -m pip install --quiet -r requirements-tools.txt
	touch $(TOOLS_STAMP)

# The build needs the Runtime's Python (python3.13); see .ci/sam-build for how it is found.
template-check: export SAM_CLI_TELEMETRY = 0
template-check: $(TOOLS_STAMP) ## lint, validate, build and scan template.yaml (no AWS credentials); .ci/run runs it
	$(TOOLS_BIN)/cfn-lint template.yaml
	$(TOOLS_BIN)/sam validate --lint --region us-east-1
	SAM=$(TOOLS_BIN)/sam .ci/sam-build
	$(TOOLS_BIN)/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet

format: $(DEV_STAMP) ## format the code and apply ruff's fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## remove the virtualenvs, caches and build output
	rm -rf $(VENV) $(TOOLS_VENV) bench/.venv .pytest_cache .mypy_cache .ruff_cache .hypothesis .aws-sam

# Performance benchmark (floors, our handler, a naive script, dlt) in its own
# virtualenv bench/.venv: dlt's s3fs pins a botocore below the dev one. Prints the table and the
# targets, writes bench/results/{latest.md,latest.json,bench.png}. About 16 minutes on 2 cores.
# Variables: SIZES=1000,10000,100000 LATENCY=0.1 (seconds per SendGrid page) BENCH_ARGS=--strict
# RANGED_CASES=100000@0.1,100000@1,1000000@0.1 (the key-ranges section: subusers@seconds a page; none: skip it)
# Smoke (what CI runs, about a minute): make bench SIZES=1000 LATENCY=0.01 RANGED_CASES=1000@0.01,3000@0.05
BENCH_VENV  ?= bench/.venv
BENCH_BIN   := $(BENCH_VENV)/bin
BENCH_STAMP := $(BENCH_VENV)/.installed
SIZES       ?= 1000,10000,100000
LATENCY     ?= 0.1

.PHONY: bench

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("seq-export needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install --quiet --upgrade pip
	$(BENCH_BIN)/python -m pip install --quiet -e ".[run,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) ## the performance benchmark in bench/.venv, about 16 minutes (smoke: SIZES=1000 LATENCY=0.01 RANGED_CASES=1000@0.01,3000@0.05)
	$(strip $(BENCH_BIN)/python -m bench.run --sizes $(SIZES) --latency $(LATENCY) \
		$(if $(RANGED_CASES),--ranged-cases $(RANGED_CASES)) $(BENCH_ARGS))
