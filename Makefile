# vbill — developer entry points and the circuit / trusted-setup pipeline (docs/trusted-setup.md).
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

# Two workers, each taking whole modules (--dist loadfile: a module's fixtures, such as its proved
# bundles, are built once). Many tests wait on anvil, PostgreSQL, chromium or a prover process, so
# two workers help even on two cores. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: install setup lint native verifier-page ## run the whole test suite (builds the dev setup first if needed)
	$(PY) -m pytest -q -ra --durations=30 $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

# Mutation testing (docs/testing.md): slow (minutes to hours per module on 2 cores), so not part
# of `make test`. MUTANTS=charge,encoding runs a subset; every survivor needs a written reason.
MUTANTS ?=
MUTANT_WORKERS ?= 1
.PHONY: mutants
mutants: install setup native ## mutation-test verify, trust, attestation, translog, store, charge, encoding
	nice -n 19 $(PY) -m vbill_tools.mutants $(if $(MUTANTS),--only $(MUTANTS)) --workers $(MUTANT_WORKERS)

demo: install setup verifier-page ## the whole story: anvil + service, deploy, deposit, attest, verify, tamper, settle, receipt
	$(PY) -m vbill_tools.demo

clean: ## remove generated artefacts (keeps the cached dev ptau)
	rm -rf build/*_js build/*.r1cs build/*.zkey build/*.sym build/*.json build/*.sol build/contracts

# --- circuit and trusted-setup pipeline (docs/trusted-setup.md) ---
# Every step below is deterministic except `contribute` (snarkjs mixes in fresh randomness).
# The dev ceremony uses public beacons only: reproducible and INSECURE ("dev-insecure").
CIRCUIT := billing_binding
CIRCOM := node_modules/.bin/circom2
SNARKJS := node_modules/.bin/snarkjs
CIRCOM_FLAGS := --r1cs --wasm --sym --O2 -l node_modules
# v1's own sources (billing_binding.circom and what it includes), so adding a binding never
# rebuilds v1; its circuits.json entry is keyed below, not the whole file.
CIRCUIT_SRCS := $(addprefix circuits/,$(addsuffix .circom,billing_binding clamp commitment keys linear_charge meter_hash range tariff_hash))
circuit_entry = $(shell $(PYTHON) -c 'import json; print(json.dumps(json.load(open("circuits/circuits.json"))["$(1)"], sort_keys=True))')
B_R1CS := build/$(CIRCUIT).r1cs
B_WASM := build/$(CIRCUIT)_js/$(CIRCUIT).wasm
B_ZKEY0 := build/$(CIRCUIT)_0000.zkey
B_ZKEY := build/$(CIRCUIT).zkey
B_NEXT := build/$(CIRCUIT)_next.zkey
B_VKEY := build/vkey.json
B_MANIFEST := build/manifest.json
B_VERIFY_LOG := build/zkey-verify.log
SETUP_PY := $(PY) -m vbill.zk.setup
ptau_power = $(shell $(PYTHON) -c 'import json; print(json.load(open("circuits/circuits.json"))["$(1)"]["ptau_power"])')
PTAU_POWER := $(call ptau_power,$(CIRCUIT))

# Public beacons of the dev ceremony (not secret, that is the point of a beacon):
#   PHASE1_BEACON = sha256("vbill/bn128-poseidon8-v1/dev-insecure/phase1-beacon")
#   PHASE2_BEACON = sha256("vbill/bn128-poseidon8-v1/dev-insecure/phase2-beacon")
# each iterated 2^10 times by snarkjs. Changing one is a new dev ceremony.
PHASE1_BEACON := 53239685a2676d89c7d31fdb92786d46be25509a52a207783060e805f4df6bab
PHASE1_BEACON_EXP := 10
PHASE2_BEACON := ddb2cf281a55a4e4815b7e97268692b3825b0d288b065bf61527aeb531827c2c
PHASE2_BEACON_EXP := 10
dev_ptau = build/ptau-dev/pot$(1)_$(shell echo $(PHASE1_BEACON) | cut -c1-8)_final.ptau
DEV_PTAU := $(call dev_ptau,$(PTAU_POWER))

# PTAU=ptau/powersOfTau28_hez_final_NN.ptau uses a pinned Hermez file (checked against
# ptau/pinned.json); without it the cached dev ceremony is used.
PTAU ?=
ifeq ($(strip $(PTAU)),)
PTAU_FILE := $(DEV_PTAU)
PTAU_SOURCE := dev-beacon
PTAU_ARGS := --beacon-hash $(PHASE1_BEACON) --beacon-exp $(PHASE1_BEACON_EXP)
PTAU_ID := dev:$(PTAU_POWER):$(PHASE1_BEACON):$(PHASE1_BEACON_EXP)
else
PTAU_FILE := $(PTAU)
PTAU_SOURCE := pinned
PTAU_ARGS :=
PTAU_ID := pinned:$(notdir $(PTAU))
endif

# The setup stamp is keyed by everything the artefacts are a function of: circuit sources,
# pinned tool versions (package-lock.json), the manifest writer, the ptau and the beacons.
TOOL_VERSIONS := $(shell $(PYTHON) -c 'import json; l = json.load(open("package-lock.json"))["packages"]; print(*(p + "@" + l["node_modules/" + p]["version"] for p in ("circom2", "snarkjs", "circomlib")))')
SETUP_KEY := $(shell { cat $(CIRCUIT_SRCS) orchestrator/vbill/zk/setup.py; echo '$(call circuit_entry,$(CIRCUIT))'; echo "$(TOOL_VERSIONS) $(PTAU_ID) $(PHASE2_BEACON) $(PHASE2_BEACON_EXP)"; } | sha256sum | cut -c1-16)
SETUP_STAMP := build/.setup-$(SETUP_KEY)
SETUP_OUTPUTS := $(B_R1CS) $(B_WASM) $(B_ZKEY) $(B_VKEY) $(B_MANIFEST)
ifneq ($(words $(wildcard $(SETUP_OUTPUTS))),$(words $(SETUP_OUTPUTS)))
.PHONY: $(SETUP_STAMP)
endif

# Binding v2 (metered tariffs, docs/protocol-v2.md): its own circuit, ptau power, stamp and
# artefacts beside v1's, from the same dev beacons. PTAU_V2=ptau/powersOfTau28_hez_final_NN.ptau
# uses a pinned phase-1 file (NN >= its ptau_power) instead of the dev ceremony.
V2 := metered_binding
V2_SRCS := $(sort $(wildcard circuits/metered_*.circom) circuits/range.circom circuits/keys.circom circuits/clamp.circom)
V2_POWER := $(call ptau_power,$(V2))
V2_R1CS := build/$(V2).r1cs
V2_WASM := build/$(V2)_js/$(V2).wasm
V2_ZKEY0 := build/$(V2)_0000.zkey
V2_ZKEY := build/$(V2).zkey
V2_NEXT := build/$(V2)_next.zkey
V2_VKEY := build/vkey-v2.json
V2_VERIFY_LOG := build/zkey-verify-v2.log
V2_DEV_PTAU := $(call dev_ptau,$(V2_POWER))
PTAU_V2 ?=
ifeq ($(strip $(PTAU_V2)),)
V2_PTAU_FILE := $(V2_DEV_PTAU)
V2_PTAU_SOURCE := dev-beacon
V2_PTAU_ARGS := --beacon-hash $(PHASE1_BEACON) --beacon-exp $(PHASE1_BEACON_EXP)
V2_PTAU_ID := dev:$(V2_POWER):$(PHASE1_BEACON):$(PHASE1_BEACON_EXP)
else
V2_PTAU_FILE := $(PTAU_V2)
V2_PTAU_SOURCE := pinned
V2_PTAU_ARGS :=
V2_PTAU_ID := pinned:$(notdir $(PTAU_V2))
endif
V2_KEY := $(shell { cat $(V2_SRCS); echo '$(call circuit_entry,$(V2))'; echo "$(TOOL_VERSIONS) $(V2_PTAU_ID) $(PHASE2_BEACON) $(PHASE2_BEACON_EXP)"; } | sha256sum | cut -c1-16)
# Keyed by what the keys are a function of (not setup.py: the manifest record is written by
# setup-v2 on every run). Outside v1's `build/.setup-*` glob: a v1 rebuild keeps v2's keys.
V2_STAMP := build/.v2-setup-$(V2_KEY)
V2_OUTPUTS := $(V2_R1CS) $(V2_WASM) $(V2_ZKEY) $(V2_VKEY)
ifneq ($(words $(wildcard $(V2_OUTPUTS))),$(words $(V2_OUTPUTS)))
.PHONY: $(V2_STAMP)
endif

.PHONY: ptau ptau-dev compile setup vkey info contribute beacon verify-setup setup-v2

ptau: install ## check a supplied phase-1 file: make ptau PTAU=ptau/powersOfTau28_hez_final_12.ptau
	@test -n "$(PTAU)" || { echo "usage: make ptau PTAU=ptau/powersOfTau28_hez_final_NN.ptau (or make ptau-dev)" >&2; exit 2; }
	$(SETUP_PY) check-ptau $(PTAU)

ptau-dev: install $(DEV_PTAU) $(V2_DEV_PTAU) ## local beacon-only phase-1 ceremony (cached under build/ptau-dev/; insecure)

# One recipe for every power: build/ptau-dev/pot<power>_<beacon prefix>_final.ptau. Cached under
# build/ with the rest of the dev ceremony, so a CI that keeps build/ never re-runs phase 1.
build/ptau-dev/pot%_$(shell echo $(PHASE1_BEACON) | cut -c1-8)_final.ptau: | $(NPM_STAMP)
	@mkdir -p $(@D)
	@echo "ptau-dev: beacon-only phase-1 ceremony at 2^$*; reproducible and INSECURE"
	$(SNARKJS) powersoftau new bn128 $* $(@:_final.ptau=_0000.ptau)
	$(SNARKJS) powersoftau beacon $(@:_final.ptau=_0000.ptau) $(@:_final.ptau=_beacon.ptau) $(PHASE1_BEACON) $(PHASE1_BEACON_EXP) -n="vbill dev phase-1 beacon"
	$(SNARKJS) powersoftau prepare phase2 $(@:_final.ptau=_beacon.ptau) $(@:_final.ptau=_partial.ptau)
	mv $(@:_final.ptau=_partial.ptau) $@
	rm -f $(@:_final.ptau=_0000.ptau) $(@:_final.ptau=_beacon.ptau)

compile: install ## compile the circuit into build/ (r1cs, wasm, sym) without touching the keys
	$(CIRCOM) circuits/$(CIRCUIT).circom $(CIRCOM_FLAGS) -o build/

setup: install $(SETUP_STAMP) setup-v2 ## compile + groth16 setup + beacon + zkey verify + vkey + manifest, every binding (cached)
	@echo "setup: up to date (key $(SETUP_KEY), $$($(SETUP_PY) get ceremony))"

build/vkey.json: $(SETUP_STAMP)
	@:

$(SETUP_STAMP): | $(PTAU_FILE) $(NPM_STAMP) $(PY_STAMP)
	@echo "setup: building (key $(SETUP_KEY), ptau $(PTAU_FILE))"
	rm -f build/.setup-* $(B_MANIFEST)
	$(if $(filter pinned,$(PTAU_SOURCE)),$(SETUP_PY) check-ptau $(PTAU_FILE))
	$(CIRCOM) circuits/$(CIRCUIT).circom $(CIRCOM_FLAGS) -o build/
	$(SNARKJS) groth16 setup $(B_R1CS) $(PTAU_FILE) $(B_ZKEY0)
	$(SNARKJS) zkey beacon $(B_ZKEY0) $(B_NEXT) $(PHASE2_BEACON) $(PHASE2_BEACON_EXP) -n="vbill dev phase-2 beacon"
	$(SNARKJS) zkey verify $(B_R1CS) $(PTAU_FILE) $(B_NEXT) > $(B_VERIFY_LOG)
	mv $(B_NEXT) $(B_ZKEY)
	$(SNARKJS) zkey export verificationkey $(B_ZKEY) $(B_VKEY).tmp
	mv $(B_VKEY).tmp $(B_VKEY)
	$(SETUP_PY) write-manifest --ptau $(PTAU_FILE) --ptau-source $(PTAU_SOURCE) $(PTAU_ARGS) --verify-log $(B_VERIFY_LOG)
	touch -r $(B_VKEY) $@

# v2's keys; then its record in build/manifest.json (`bindings`), re-written on every run so
# that a v1 rebuild (which starts a fresh manifest) never loses it.
setup-v2: install $(V2_STAMP) ## binding v2 only: compile + groth16 setup + beacon + zkey verify + vkey-v2 + manifest record
	@test -f $(B_MANIFEST) || { echo "setup-v2: $(B_MANIFEST) missing; run \`make setup\`" >&2; exit 3; }
	@$(SETUP_PY) write-binding --binding bn128-poseidon8-v2 --ptau $(V2_PTAU_FILE) --ptau-source $(V2_PTAU_SOURCE) $(V2_PTAU_ARGS) --verify-log $(V2_VERIFY_LOG)

$(V2_VKEY): $(V2_STAMP)
	@:

$(V2_STAMP): | $(V2_PTAU_FILE) $(NPM_STAMP) $(PY_STAMP)
	@echo "setup-v2: building (key $(V2_KEY), ptau $(V2_PTAU_FILE))"
	rm -f build/.v2-setup-*
	$(if $(filter pinned,$(V2_PTAU_SOURCE)),$(SETUP_PY) check-ptau $(V2_PTAU_FILE))
	$(CIRCOM) circuits/$(V2).circom $(CIRCOM_FLAGS) -o build/
	$(SNARKJS) groth16 setup $(V2_R1CS) $(V2_PTAU_FILE) $(V2_ZKEY0)
	$(SNARKJS) zkey beacon $(V2_ZKEY0) $(V2_NEXT) $(PHASE2_BEACON) $(PHASE2_BEACON_EXP) -n="vbill dev phase-2 beacon"
	$(SNARKJS) zkey verify $(V2_R1CS) $(V2_PTAU_FILE) $(V2_NEXT) > $(V2_VERIFY_LOG)
	mv $(V2_NEXT) $(V2_ZKEY)
	$(SNARKJS) zkey export verificationkey $(V2_ZKEY) $(V2_VKEY).tmp
	mv $(V2_VKEY).tmp $(V2_VKEY)
	touch -r $(V2_VKEY) $@

vkey: install ## re-export build/vkey.json from the final zkey and record its hash
	$(SNARKJS) zkey export verificationkey $(B_ZKEY) $(B_VKEY)
	$(SETUP_PY) record

info: install ## constraint and wire counts of the compiled circuit
	@test -f $(B_R1CS) || $(MAKE) --no-print-directory compile
	$(SNARKJS) r1cs info $(B_R1CS)

# After a new zkey (contribute/beacon) in $(B_NEXT): verify the whole chain against the r1cs
# and the manifest's ptau, then install it, re-export the vkey and re-write the manifest.
define accept_next_zkey
	ptau=$$($(SETUP_PY) get ptau.path); \
	$(SNARKJS) zkey verify $(B_R1CS) "$$ptau" $(B_NEXT) > $(B_VERIFY_LOG) \
	  || { echo "zkey verify failed; $(B_ZKEY) left unchanged" >&2; rm -f $(B_NEXT); exit 1; }; \
	mv $(B_NEXT) $(B_ZKEY); \
	$(SNARKJS) zkey export verificationkey $(B_ZKEY) $(B_VKEY); \
	$(SETUP_PY) write-manifest --from-manifest --verify-log $(B_VERIFY_LOG); \
	echo "note: the vkey changed; re-run \`make verifier\` (a deployed verifier must match)"
endef

# Production ceremony: make setup PTAU=ptau/powersOfTau28_hez_final_12.ptau (pinned phase 1),
# then each participant runs `make contribute NAME=...` in turn (real randomness, verified,
# recorded in the manifest), then `make beacon BEACON=<hex of a public value fixed in advance,
# e.g. a future block hash>` finalises; the manifest says "ceremony": "contributed" only when
# phase 1 is pinned and at least one random contribution is in the verified chain. Auditors
# run `make verify-setup`. A contribution is never reproducible; everything derived from the
# final zkey (vkey, verifier) is.
contribute: setup ## a real random phase-2 contribution: make contribute NAME="Alice <alice@example.org>"
	@test -n "$(NAME)" || { echo "usage: make contribute NAME=<who>" >&2; exit 2; }
	@echo "contribute: $(NAME); entropy from /dev/urandom (not logged), plus snarkjs's own"
	@{ head -c 64 /dev/urandom | base64 -w0; echo; } | $(SNARKJS) zkey contribute $(B_ZKEY) $(B_NEXT) --name="$(NAME)" \
	  | sed -n '/Contribution Hash/,$$p'
	@$(accept_next_zkey)

beacon: setup ## finalise a ceremony with a public random beacon: make beacon BEACON=<hex> [BEACON_EXP=10]
	@test -n "$(BEACON)" || { echo "usage: make beacon BEACON=<hex of a public, unpredictable value>" >&2; exit 2; }
	$(SNARKJS) zkey beacon $(B_ZKEY) $(B_NEXT) $(BEACON) $(or $(BEACON_EXP),10) -n="final beacon"
	@$(accept_next_zkey)

verify-setup: install ## auditor's re-run: recompile, zkey verify, compare everything with build/manifest.json
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	ptau=$$($(SETUP_PY) get ptau.path); \
	echo "verify-setup: recompiling circuits/$(CIRCUIT).circom in $$tmp"; \
	$(CIRCOM) circuits/$(CIRCUIT).circom $(CIRCOM_FLAGS) -o "$$tmp" > /dev/null; \
	echo "verify-setup: snarkjs zkey verify $(B_ZKEY) against the rebuilt r1cs and $$ptau"; \
	$(SNARKJS) zkey verify "$$tmp/$(CIRCUIT).r1cs" "$$ptau" $(B_ZKEY) > "$$tmp/verify.log" || true; \
	$(SNARKJS) zkey export verificationkey $(B_ZKEY) "$$tmp/vkey.json" > /dev/null; \
	$(SETUP_PY) check --r1cs "$$tmp/$(CIRCUIT).r1cs" --wasm "$$tmp/$(CIRCUIT)_js/$(CIRCUIT).wasm" \
	  --vkey "$$tmp/vkey.json" --verify-log "$$tmp/verify.log" --render-verifier "$$tmp/BillingVerifier.sol"; \
	v2=bn128-poseidon8-v2; ptau2=$$($(SETUP_PY) get bindings.$$v2.ptau.path); \
	echo "verify-setup: recompiling circuits/$(V2).circom in $$tmp ($$v2)"; \
	$(CIRCOM) circuits/$(V2).circom $(CIRCOM_FLAGS) -o "$$tmp" > /dev/null; \
	echo "verify-setup: snarkjs zkey verify $(V2_ZKEY) against the rebuilt r1cs and $$ptau2"; \
	$(SNARKJS) zkey verify "$$tmp/$(V2).r1cs" "$$ptau2" $(V2_ZKEY) > "$$tmp/verify-v2.log" || true; \
	$(SNARKJS) zkey export verificationkey $(V2_ZKEY) "$$tmp/vkey-v2.json" > /dev/null; \
	$(SETUP_PY) check --binding $$v2 --r1cs "$$tmp/$(V2).r1cs" --wasm "$$tmp/$(V2)_js/$(V2).wasm" \
	  --vkey "$$tmp/vkey-v2.json" --verify-log "$$tmp/verify-v2.log"


# --- contracts: verifier rendered from the vkey, compiled with the pinned solcjs ---
.PHONY: verifier
verifier: build/BillingVerifier.sol ## render build/BillingVerifier.sol from build/vkey.json and compile build/contracts/

build/BillingVerifier.sol: build/vkey.json contracts/templates/BillingVerifier.sol.j2 $(wildcard contracts/*.sol) orchestrator/vbill/chain/contracts.py | install
	$(PY) -m vbill.chain.contracts build/vkey.json

# --- the browser verifier page (docs/customer.md) ---
# One self-contained HTML file (inline script) that opens from file:// or `vbill serve` /verifier.
VERIFIER_PAGE := build/verifier/index.html
VERIFIER_SRCS := $(wildcard orchestrator/vbill/verifier/*.html orchestrator/vbill/verifier/*.mjs orchestrator/vbill/verifier/src/*.js)
.PHONY: verifier-page
verifier-page: $(VERIFIER_PAGE) ## build the browser verifier page (build/verifier/index.html)
$(VERIFIER_PAGE): $(VERIFIER_SRCS) $(NPM_STAMP)
	node orchestrator/vbill/verifier/build.mjs $@

# --- native Groth16 prover (orchestrator/native, issue 7): portable flags, never -march=native ---
NATIVE_BIN := build/native/vbill-prover
NATIVE_VERIFY_BIN := build/native/vbill-verify
NATIVE_CFLAGS := -O3 -march=x86-64-v2 -mtune=generic -std=gnu11 -Wall -Wextra -Wno-unused-function
NATIVE_HDRS := $(wildcard orchestrator/native/*.h)
.PHONY: native
native: $(NATIVE_BIN) $(NATIVE_VERIFY_BIN) poseidon-lib ## build the native Groth16 prover and batch verifier (build/native/)

$(NATIVE_BIN): orchestrator/native/groth16.c $(NATIVE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(NATIVE_CFLAGS) -o $@.tmp $<
	mv $@.tmp $@

$(NATIVE_VERIFY_BIN): orchestrator/native/verify.c $(NATIVE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(NATIVE_CFLAGS) -o $@.tmp $<
	mv $@.tmp $@

# Poseidon for orchestrator/poseidon.py (ctypes); constants are passed in from Python.
NATIVE_POSEIDON_LIB := build/native/libvbill_poseidon.so
.PHONY: poseidon-lib
poseidon-lib: $(NATIVE_POSEIDON_LIB) ## build the native Poseidon library (build/native/libvbill_poseidon.so)

$(NATIVE_POSEIDON_LIB): orchestrator/native/poseidon.c orchestrator/native/fields.h
	@mkdir -p $(@D)
	$(CC) $(NATIVE_CFLAGS) -shared -fPIC -o $@.tmp $<
	mv $@.tmp $@
