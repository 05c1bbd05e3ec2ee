"""Gas of deploy, settle and settleBatch at N = 1, 8, 32 on anvil (BENCHMARKS.md, issues 5, 7).

Reports a breakdown per batch size: transaction base, calldata, the verifier's batch check on
its own (mined as a transaction to the verifier) and the rest, which is the settlement's
bookkeeping; written to $VBILL_GAS_REPORT when set (BENCHMARKS.md uses build/gas_report.json).

Gas = 21,000 + calldata + execution. Execution does not depend on the proof (the precompiles
charge flat prices); calldata does, by 12 gas per zero byte of the proof and the signals. So the
execution gas is pinned exactly (a change is a visible decision, in both directions) and the
total is pinned to it plus the calldata of the very proofs sent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from eth_account import Account
from vbill import chain as ch

pytestmark = pytest.mark.chain

SIZES = (1, 8, 32)
BASE = 21_000
# Execution gas (total − base − calldata), the same for every proof: BENCHMARKS.md's tables.
EXECUTION = {"settle": 265_203, 1: 265_910, 8: 805_005, 32: 2_612_123}


def calldata_gas(data: bytes) -> int:
    """EIP-2028 calldata cost: 4 per zero byte, 16 per other byte."""
    return sum(4 if b == 0 else 16 for b in data)


def settle_calldata(c: ch.Chain, s: ch.Settlement) -> int:
    fn = c.settlement.functions.settle(s.proof_arg(), list(s.signals))
    return calldata_gas(bytes.fromhex(fn._encode_transaction_data()[2:]))


def test_gas_report(anvil, fresh_chain, eth_bundle) -> None:
    owner = ch.connect("local", anvil.url, account=Account.from_key(ch.ANVIL_KEYS[0]))
    owner.deployment = fresh_chain
    owner.use_settlement(fresh_chain["contracts"]["BillingSettlement"]["address"])
    verifier = owner.contract(
        "BillingVerifier", fresh_chain["contracts"]["BillingVerifier"]["address"]
    )
    report: dict[str, int | float] = {
        "deploy_verifier": fresh_chain["contracts"]["BillingVerifier"]["gas_used"],
        "deploy_settlement": fresh_chain["contracts"]["BillingSettlement"]["gas_used"],
    }
    items = [
        ch.settlement_from_bundle(eth_bundle(event=f"evt_gas_{i}")) for i in range(1 + sum(SIZES))
    ]
    key = items[0].signals[4]
    owner.open_account(key, owner.address)  # the deployer is an attester; it controls too
    owner.deposit(key, 100 * 10**18)
    owner.transact(owner.settlement.functions.acceptTariff(key, items[0].signals[2]))
    one = owner.settlement.functions.settle(items[0].proof_arg(), list(items[0].signals))
    report["settle"] = owner.settle(items[0]).gas_used
    report["settle_calldata"] = calldata_gas(bytes.fromhex(one._encode_transaction_data()[2:]))
    # how much the calldata of one settle varies from proof to proof (zero bytes are cheaper)
    per_proof = [settle_calldata(owner, s) for s in items]
    report["settle_calldata_min"], report["settle_calldata_max"] = min(per_proof), max(per_proof)
    start = 1
    for n in SIZES:
        batch = items[start : start + n]
        start += n
        proofs, signals = [s.proof_arg() for s in batch], [list(s.signals) for s in batch]
        # the verifier alone, as a mined transaction (a view call's gas is not observable)
        check = verifier.functions.verifyBatch(proofs, signals)
        assert check.call() is True
        vtx = owner.transact(check, gas=15_000_000)
        vdata = bytes.fromhex(check._encode_transaction_data()[2:])
        fn = owner.settlement.functions.settleBatch(proofs, signals)
        data = bytes.fromhex(fn._encode_transaction_data()[2:])
        gas = owner.transact(fn).gas_used
        verify_exec = vtx.gas_used - 21_000 - calldata_gas(vdata)
        report[f"settleBatch_{n}"] = gas
        report[f"settleBatch_{n}_per_event"] = round(gas / n)
        report[f"settleBatch_{n}_calldata"] = calldata_gas(data)
        report[f"settleBatch_{n}_verifyBatch"] = verify_exec
        report[f"settleBatch_{n}_bookkeeping"] = gas - 21_000 - calldata_gas(data) - verify_exec
    if os.environ.get("VBILL_GAS_REPORT"):
        Path(os.environ["VBILL_GAS_REPORT"]).write_text(json.dumps(report, indent=2) + "\n")
    assert report["settle"] == BASE + report["settle_calldata"] + EXECUTION["settle"], report
    for n in SIZES:
        want = BASE + report[f"settleBatch_{n}_calldata"] + EXECUTION[n]
        assert report[f"settleBatch_{n}"] == want, (n, report)
    # Calldata of one proof: 13 words + selector; at most 16 gas per byte, and random words
    # are rarely zero (what makes gas vary by proof, ±a few dozen, see BENCHMARKS.md).
    assert 6_000 < report["settle_calldata_min"] <= report["settle_calldata_max"] <= 16 * 420
    # Floor per proof verified alone: 4-pair pairing 181,000 + 5 ecMul 30,000 + nullifier 22,100.
    assert report["settle"] < 300_000
    # Batched: per proof one pair 34,000 + 2 ecMul 12,000 + nullifier 22,100 + calldata ≈ 6,500.
    assert report["settleBatch_8_per_event"] < 120_000
    assert report["settleBatch_32_per_event"] <= 90_000
