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

help: ## list the targets, then every binding's own targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'
	@echo
	@echo "[BINDING=] is a key of circuits/circuits.json: $(BINDINGS) (default: all of them)."
	@echo "Per binding, <target>-<key> runs one target for one binding:"
	@$(foreach b,$(BINDINGS),echo "  $(b) ($($(b)_VERSION), ptau 2^$($(b)_POWER), $($(b)_VKEY); pinned phase 1: $($(b)_PTAU_VAR)=…)"; \
	  echo "    $(addsuffix -$(b),$(BINDING_TARGETS))$(if $($(b)_TAG), setup-$($(b)_TAG))";)

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
#
# One rule set for every binding of circuits/circuits.json (binding_rules below, generated per
# entry): a new binding is an entry there plus its circuit file. Each target X of compile, info,
# setup, vkey, contribute, beacon and verify-setup runs X-<key> for the bindings BINDING=<key>
# names (default: all of them). The first entry is the manifest's top level (its format since
# v1); the others are recorded under `bindings`.
CIRCOM := node_modules/.bin/circom2
SNARKJS := node_modules/.bin/snarkjs
CIRCOM_FLAGS := --r1cs --wasm --sym --O2 -l node_modules
SETUP_PY := $(PY) -m vbill.zk.setup
B_MANIFEST := build/manifest.json
# stdlib only, so it runs before `make install`: the bindings, their files and stamp keys
CIRCUITS_PY := $(PYTHON) -S orchestrator/vbill/zk/circuits.py
BINDINGS := $(shell $(CIRCUITS_PY) names)
PRIMARY := $(firstword $(BINDINGS))
BINDING ?=
SELECTED := $(or $(strip $(BINDING)),$(BINDINGS))
ifneq ($(filter-out $(BINDINGS),$(SELECTED)),)
$(error BINDING=$(BINDING) is not a key of circuits/circuits.json (one of: $(BINDINGS)))
endif
BINDING_TARGETS := compile info setup vkey contribute beacon verify-setup

# Public beacons of the dev ceremony (not secret, that is the point of a beacon):
#   PHASE1_BEACON = sha256("vbill/bn128-poseidon8-v1/dev-insecure/phase1-beacon")
#   PHASE2_BEACON = sha256("vbill/bn128-poseidon8-v1/dev-insecure/phase2-beacon")
# each iterated 2^10 times by snarkjs. Changing one is a new dev ceremony.
PHASE1_BEACON := 53239685a2676d89c7d31fdb92786d46be25509a52a207783060e805f4df6bab
PHASE1_BEACON_EXP := 10
PHASE2_BEACON := ddb2cf281a55a4e4815b7e97268692b3825b0d288b065bf61527aeb531827c2c
PHASE2_BEACON_EXP := 10
dev_ptau = build/ptau-dev/pot$(1)_$(shell echo $(PHASE1_BEACON) | cut -c1-8)_final.ptau
# One dev phase 1 for every binding, at the largest power any needs (circuits.py dev_power says
# why the smaller bindings' vkeys do not change).
DEV_POWER := $(shell $(CIRCUITS_PY) dev-power)
TOOL_VERSIONS := $(shell $(PYTHON) -c 'import json; l = json.load(open("package-lock.json"))["packages"]; print(*(p + "@" + l["node_modules/" + p]["version"] for p in ("circom2", "snarkjs", "circomlib")))')

# One binding's names ($(1) = its circuits.json key). Its phase 1 is the cached dev ceremony at
# its ptau_power, or a pinned Hermez file given as PTAU=… (v1) / PTAU_<TAG>=… (PTAU_V2=… for
# v2), checked against ptau/pinned.json. The stamp build/.[<tag>-]setup-<key> is keyed by what
# the keys are a function of: the circuit sources, the entry, the pinned tool versions
# (package-lock.json), the ptau and the beacons (orchestrator/vbill/zk/circuits.py setup_key).
define binding_vars
$(1)_INFO := $$(shell $$(CIRCUITS_PY) info $(1))
$(1)_FILE := $$(word 1,$$($(1)_INFO))
$(1)_POWER := $$(word 2,$$($(1)_INFO))
$(1)_VKEY := build/$$(word 3,$$($(1)_INFO))
$(1)_TAG := $$(filter-out -,$$(word 4,$$($(1)_INFO)))
$(1)_PTAU_VAR := $$(word 5,$$($(1)_INFO))
$(1)_VERSION := $$(word 6,$$($(1)_INFO))
$(1)_MAIN := $$(word 7,$$($(1)_INFO))
$(1)_R1CS := build/$$($(1)_FILE).r1cs
$(1)_WASM := build/$$($(1)_FILE)_js/$$($(1)_FILE).wasm
$(1)_ZKEY0 := build/$$($(1)_FILE)_0000.zkey
$(1)_ZKEY := build/$$($(1)_FILE).zkey
$(1)_NEXT := build/$$($(1)_FILE)_next.zkey
$(1)_LOG := build/zkey-verify$$(if $$($(1)_TAG),-$$($(1)_TAG)).log
$(1)_STAMPS := build/.$$(if $$($(1)_TAG),$$($(1)_TAG)-)setup-
$(1)_DEV_PTAU := $$(call dev_ptau,$$(DEV_POWER))
$(1)_PTAU := $$(strip $$($$($(1)_PTAU_VAR)))
$(1)_PTAU_FILE := $$(or $$($(1)_PTAU),$$($(1)_DEV_PTAU))
$(1)_PTAU_SOURCE := $$(if $$($(1)_PTAU),pinned,dev-beacon)
$(1)_PTAU_ARGS := $$(if $$($(1)_PTAU),,--beacon-hash $$(PHASE1_BEACON) --beacon-exp $$(PHASE1_BEACON_EXP))
$(1)_PTAU_ID := $$(if $$($(1)_PTAU),pinned:$$(notdir $$($(1)_PTAU)),dev:$$(DEV_POWER):$$(PHASE1_BEACON):$$(PHASE1_BEACON_EXP))
$(1)_KEY := $$(shell $$(CIRCUITS_PY) key $(1) "$$(TOOL_VERSIONS) $$($(1)_PTAU_ID) $$(PHASE2_BEACON) $$(PHASE2_BEACON_EXP)")
$$(if $$($(1)_KEY),,$$(error $(1): no setup key; is $$($(1)_MAIN) there, and its includes?))
$(1)_STAMP := $$($(1)_STAMPS)$$($(1)_KEY)
$(1)_OUTPUTS := $$($(1)_R1CS) $$($(1)_WASM) $$($(1)_ZKEY) $$($(1)_VKEY)
endef
$(foreach b,$(BINDINGS),$(eval $(call binding_vars,$(b))))

# After a new zkey (contribute/beacon) in <file>_next.zkey: verify the whole chain against the
# r1cs and the ptau the manifest records, then install it, re-export the vkey and re-write the
# binding's record. ($(1) = the binding's key; `$$$$` is the shell's `$` after two expansions.)
define accept_next_zkey
	ptau=$$$$($(SETUP_PY) get --binding $($(1)_VERSION) ptau.path); \
	$(SNARKJS) zkey verify $($(1)_R1CS) "$$$$ptau" $($(1)_NEXT) > $($(1)_LOG) \
	  || { echo "zkey verify failed; $($(1)_ZKEY) left unchanged" >&2; rm -f $($(1)_NEXT); exit 1; }; \
	mv $($(1)_NEXT) $($(1)_ZKEY); \
	$(SNARKJS) zkey export verificationkey $($(1)_ZKEY) $($(1)_VKEY); \
	$(SETUP_PY) write-binding --binding $($(1)_VERSION) --from-manifest --verify-log $($(1)_LOG); \
	echo "note: $($(1)_VKEY) changed; re-run \`make verifier\` (a deployed verifier must match)"
endef

# Every rule of one binding ($(1) = its key). Production ceremony (docs/trusted-setup.md): make
# setup PTAU…=<pinned Hermez file>, then each participant runs `make contribute NAME=...` in
# turn (real randomness, verified, recorded in the manifest), then `make beacon BEACON=<hex of a
# public value fixed in advance, e.g. a future block hash>` finalises. contribute and beacon
# work on the zkey the manifest records, against the ptau it records, and never re-run setup.
define binding_rules
.PHONY: $(addsuffix -$(1),$(BINDING_TARGETS))
$(if $(filter-out $(wildcard $($(1)_OUTPUTS)),$($(1)_OUTPUTS)),.PHONY: $($(1)_STAMP))

compile-$(1): install
	$(CIRCOM) $($(1)_MAIN) $(CIRCOM_FLAGS) -o build/

info-$(1): install
	@test -f $($(1)_R1CS) || $(MAKE) --no-print-directory compile-$(1)
	$(SNARKJS) r1cs info $($(1)_R1CS)

# The keys, cached by the stamp. A new stamp key whose recompiled r1cs is the one the keys in
# build/ were set up for (from this ptau and phase-2 beacon, says the record) keeps them:
# moving sources around never re-runs a ceremony nor drops its contributions.
# Then the binding's manifest record, re-written on every run:
# a pure function of build/, so re-writing an unchanged record leaves the manifest's bytes as
# they were. Every binding after the first needs the manifest's top level first.
setup-$(1): install $($(1)_STAMP) $(if $(filter-out $(PRIMARY),$(1)),setup-$(PRIMARY))
	@$(SETUP_PY) write-binding --binding $($(1)_VERSION) --ptau $($(1)_PTAU_FILE) --ptau-source $($(1)_PTAU_SOURCE) $($(1)_PTAU_ARGS) --verify-log $($(1)_LOG)
$(if $($(1)_TAG),.PHONY: setup-$($(1)_TAG)
setup-$($(1)_TAG): setup-$(1))

$($(1)_VKEY): $($(1)_STAMP)
	@:

$($(1)_STAMP): | $($(1)_PTAU_FILE) $(NPM_STAMP) $(PY_STAMP)
	@echo "setup-$(1): building (key $($(1)_KEY), ptau $($(1)_PTAU_FILE))"
	rm -f $($(1)_STAMPS)*
	$(if $(filter pinned,$($(1)_PTAU_SOURCE)),$(SETUP_PY) check-ptau $($(1)_PTAU_FILE))
	$(CIRCOM) $($(1)_MAIN) $(CIRCOM_FLAGS) -o build/
	if $(SETUP_PY) reuse-keys --binding $($(1)_VERSION) --ptau $($(1)_PTAU_FILE) --phase2-beacon $(PHASE2_BEACON) --phase2-exp $(PHASE2_BEACON_EXP); then :; else \
	  $(SNARKJS) groth16 setup $($(1)_R1CS) $($(1)_PTAU_FILE) $($(1)_ZKEY0); \
	  $(SNARKJS) zkey beacon $($(1)_ZKEY0) $($(1)_NEXT) $(PHASE2_BEACON) $(PHASE2_BEACON_EXP) -n="vbill dev phase-2 beacon"; \
	  $(SNARKJS) zkey verify $($(1)_R1CS) $($(1)_PTAU_FILE) $($(1)_NEXT) > $($(1)_LOG); \
	  mv $($(1)_NEXT) $($(1)_ZKEY); \
	  $(SNARKJS) zkey export verificationkey $($(1)_ZKEY) $($(1)_VKEY).tmp; \
	  mv $($(1)_VKEY).tmp $($(1)_VKEY); \
	fi
	touch -r $($(1)_VKEY) $$@

vkey-$(1): install
	$(SNARKJS) zkey export verificationkey $($(1)_ZKEY) $($(1)_VKEY)
	$(SETUP_PY) write-binding --binding $($(1)_VERSION) --from-manifest --verify-log $($(1)_LOG)

contribute-$(1): install
	@test -n "$$(NAME)" || { echo "usage: make contribute [BINDING=<key>] NAME=<who>" >&2; exit 2; }
	@$(SETUP_PY) get --binding $($(1)_VERSION) ptau.path > /dev/null
	@echo "contribute-$(1): $$(NAME); entropy from /dev/urandom (not logged), plus snarkjs's own"
	@{ head -c 64 /dev/urandom | base64 -w0; echo; } | $(SNARKJS) zkey contribute $($(1)_ZKEY) $($(1)_NEXT) --name="$$(NAME)" \
	  | sed -n '/Contribution Hash/,$$$$p'
	@$(call accept_next_zkey,$(1))

beacon-$(1): install
	@test -n "$$(BEACON)" || { echo "usage: make beacon [BINDING=<key>] BEACON=<hex of a public, unpredictable value>" >&2; exit 2; }
	@$(SETUP_PY) get --binding $($(1)_VERSION) ptau.path > /dev/null
	$(SNARKJS) zkey beacon $($(1)_ZKEY) $($(1)_NEXT) $$(BEACON) $$(or $$(BEACON_EXP),10) -n="final beacon"
	@$(call accept_next_zkey,$(1))

# the auditor's re-run: recompile, zkey verify against the rebuilt r1cs and the recorded ptau,
# re-export the vkey (and re-render the verifier) and compare everything with the manifest
verify-setup-$(1): install
	@tmp=$$$$(mktemp -d); trap 'rm -rf "$$$$tmp"' EXIT; \
	ptau=$$$$($(SETUP_PY) get --binding $($(1)_VERSION) ptau.path); \
	echo "verify-setup: recompiling $($(1)_MAIN) in $$$$tmp ($($(1)_VERSION))"; \
	$(CIRCOM) $($(1)_MAIN) $(CIRCOM_FLAGS) -o "$$$$tmp" > /dev/null; \
	echo "verify-setup: snarkjs zkey verify $($(1)_ZKEY) against the rebuilt r1cs and $$$$ptau"; \
	$(SNARKJS) zkey verify "$$$$tmp/$($(1)_FILE).r1cs" "$$$$ptau" $($(1)_ZKEY) > "$$$$tmp/verify.log" || true; \
	$(SNARKJS) zkey export verificationkey $($(1)_ZKEY) "$$$$tmp/$(notdir $($(1)_VKEY))" > /dev/null; \
	$(SETUP_PY) check --binding $($(1)_VERSION) --r1cs "$$$$tmp/$($(1)_FILE).r1cs" \
	  --wasm "$$$$tmp/$($(1)_FILE)_js/$($(1)_FILE).wasm" --vkey "$$$$tmp/$(notdir $($(1)_VKEY))" \
	  --verify-log "$$$$tmp/verify.log" --render-verifier "$$$$tmp/verifier.sol"
endef
$(foreach b,$(BINDINGS),$(eval $(call binding_rules,$(b))))

.PHONY: ptau ptau-dev lint-circuits $(BINDING_TARGETS)

# circheck (PyPI, dev extras) over each binding's circuit; every finding must be explained in
# circuits/circheck-explained.json (docs/testing.md). Seconds, and independent of build/.
lint-circuits: install ## static analysis of the circuits (circheck); fails on a finding not explained [BINDING=]
	$(PY) -m vbill_tools.lint_circuits $(SELECTED)

ptau: install ## check a supplied phase-1 file: make ptau PTAU=ptau/powersOfTau28_hez_final_12.ptau
	@test -n "$(PTAU)" || { echo "usage: make ptau PTAU=ptau/powersOfTau28_hez_final_NN.ptau (or make ptau-dev)" >&2; exit 2; }
	$(SETUP_PY) check-ptau $(PTAU)

ptau-dev: install $(sort $(foreach b,$(BINDINGS),$($(b)_DEV_PTAU))) ## local beacon-only phase-1 ceremony at the largest binding's power, shared by all (cached under build/ptau-dev/; insecure)

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

compile: $(addprefix compile-,$(SELECTED)) ## compile the circuits into build/ (r1cs, wasm, sym) without touching the keys [BINDING=]
info: $(addprefix info-,$(SELECTED)) ## constraint and wire counts of the compiled circuits [BINDING=]
setup: install $(addprefix setup-,$(SELECTED)) ## compile + groth16 setup + beacon + zkey verify + vkey + manifest record (cached) [BINDING=]
vkey: $(addprefix vkey-,$(SELECTED)) ## re-export the vkeys from the final zkeys and re-write their records [BINDING=]
contribute: $(addprefix contribute-,$(SELECTED)) ## a real random phase-2 contribution: make contribute NAME="Alice <alice@example.org>" [BINDING=]
beacon: $(addprefix beacon-,$(SELECTED)) ## finalise a ceremony with a public random beacon: make beacon BEACON=<hex> [BEACON_EXP=10] [BINDING=]
verify-setup: $(addprefix verify-setup-,$(SELECTED)) ## auditor's re-run: recompile, zkey verify, compare everything with build/manifest.json [BINDING=]

# --- contracts: verifier rendered from the vkey, compiled with the pinned solcjs ---
.PHONY: verifier
verifier: build/BillingVerifier.sol ## render the on-chain verifiers from the vkeys (build/BillingVerifier.sol, …) and compile build/contracts/

build/BillingVerifier.sol: $(foreach b,$(BINDINGS),$($(b)_VKEY)) contracts/templates/BillingVerifier.sol.j2 $(wildcard contracts/*.sol) orchestrator/vbill/chain/contracts.py | install
	$(PY) -m vbill.chain.contracts $($(PRIMARY)_VKEY)

# --- the browser verifier page (docs/customer.md) ---
# One self-contained HTML file (inline script) that opens from file:// or `vbill serve` /verifier.
VERIFIER_PAGE := build/verifier/index.html
# bindings.js inlines circuits/circuits.json (each binding's version and public signals)
VERIFIER_SRCS := $(wildcard orchestrator/vbill/verifier/*.html orchestrator/vbill/verifier/*.mjs orchestrator/vbill/verifier/src/*.js) circuits/circuits.json
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
