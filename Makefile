# vbill — developer entry points and the circuit / trusted-setup pipeline (SPEC §5).
# `make demo` and `make test` are the two commands a new user needs; everything depends on `install`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VBILL := $(VENV)/bin/vbill
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: help install test lint format demo clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

install: $(PY_STAMP) $(NPM_STAMP) ## install pinned Python (.venv) and node (node_modules) tools; idempotent

$(PY_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check orchestrator tests
	$(VENV)/bin/ruff format --check orchestrator tests

format: install ## apply ruff formatting
	$(VENV)/bin/ruff format orchestrator tests
	$(VENV)/bin/ruff check --fix orchestrator tests

test: install setup lint ## run the whole test suite (builds the dev setup first if needed)
	$(PY) -m pytest -q -ra

clean: ## remove generated artefacts (keeps the cached dev ptau)
	rm -rf build/*_js build/*.r1cs build/*.zkey build/*.sym build/*.json build/*.sol build/contracts

# --- circuit and trusted-setup pipeline (SPEC §5) ---

# --- contracts (SPEC §7): verifier rendered from the vkey, compiled with the pinned solcjs ---
.PHONY: verifier
verifier: build/BillingVerifier.sol ## render build/BillingVerifier.sol from build/vkey.json and compile build/contracts/

build/BillingVerifier.sol: build/vkey.json contracts/templates/BillingVerifier.sol.j2 $(wildcard contracts/*.sol) orchestrator/contracts.py | install
	$(PY) -m orchestrator.contracts build/vkey.json
