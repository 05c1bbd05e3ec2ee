"""Gas of deploy, settle and settleBatch at N = 1, 8, 32 on anvil, per binding (BENCHMARKS.md,
issues 5, 7, 11).

Reports a breakdown per batch size: transaction base, calldata, the verifier's batch check on
its own (mined as a transaction to the verifier) and the rest, which is the settlement's
bookkeeping; written to $VBILL_GAS_REPORT when set (BENCHMARKS.md uses build/gas_report.json;
binding v2's figures are the keys starting "v2_").

Gas = 21,000 + calldata + execution. Execution does not depend on the proof (the precompiles
charge flat prices); calldata does, by 12 gas per zero byte of the proof and the signals. So the
execution gas is pinned exactly (a change is a visible decision, in both directions) and the
total is pinned to it plus the calldata of the very proofs sent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from support.chain_v2 import needs_v2_setup
from vbill import chain as ch
from vbill.bindings import BINDING_V1, BINDING_V2
from vbill.chain import contracts

pytestmark = pytest.mark.chain

SIZES = (1, 8, 32)
BASE = 21_000
# Execution gas (total − base − calldata), the same for every proof: BENCHMARKS.md's tables.
EXECUTION = {"settle": 267_506, 1: 268_149, 8: 807_244, 32: 2_614_362}
EXECUTION_V2 = {"settle": 283_218, 1: 283_773, 8: 841_016, 32: 2_710_567}


def calldata_gas(data: bytes) -> int:
    """EIP-2028 calldata cost: 4 per zero byte, 16 per other byte."""
    return sum(4 if b == 0 else 16 for b in data)


def fn_calldata(fn: Any) -> int:
    return calldata_gas(bytes.fromhex(fn._encode_transaction_data()[2:]))


def measure(
    owner: ch.Chain, dep: dict[str, Any], items: list[ch.Settlement], binding: str
) -> dict[str, int]:
    """settle once, then one settleBatch per size, on a fresh account that accepts the tariff;
    the verifier's own share measured as a mined verifyBatch transaction (a view call's gas is
    not observable)."""
    spec = contracts.verifier_spec(binding)
    verifier = owner.contract(spec.contract, dep["contracts"][spec.contract]["address"])
    key = items[0].tenant_key
    if owner.controller_of(key) is None:
        owner.open_account(key, owner.address)  # the deployer is an attester; it controls too
    owner.deposit(key, 100 * 10**18)
    owner.accept_tariff(key, items[0].signals[2])
    report = {
        "settle_calldata": fn_calldata(owner.eth_batch_fn(items[:1])),
        "settle": owner.settle(items[0]).gas_used,
    }
    # how much the calldata of one settle varies from proof to proof (zero bytes are cheaper)
    per_proof = [fn_calldata(owner.eth_batch_fn([s])) for s in items]
    report["settle_calldata_min"], report["settle_calldata_max"] = min(per_proof), max(per_proof)
    start = 1
    for n in SIZES:
        batch = items[start : start + n]
        start += n
        proofs, signals = [s.proof_arg() for s in batch], [list(s.signals) for s in batch]
        check = verifier.functions.verifyBatch(proofs, signals)
        assert check.call() is True
        vtx = owner.transact(check, gas=15_000_000)
        verify_exec = vtx.gas_used - BASE - fn_calldata(check)
        fn = owner.settlement.functions[spec.batch_fn](proofs, signals)
        data = fn_calldata(fn)
        gas = owner.transact(fn).gas_used
        report[f"settleBatch_{n}"] = gas
        report[f"settleBatch_{n}_per_event"] = round(gas / n)
        report[f"settleBatch_{n}_calldata"] = data
        report[f"settleBatch_{n}_verifyBatch"] = verify_exec
        report[f"settleBatch_{n}_bookkeeping"] = gas - BASE - data - verify_exec
    return report


def check_pinned(report: dict[str, int], execution: dict[Any, int]) -> None:
    assert report["settle"] == BASE + report["settle_calldata"] + execution["settle"], report
    for n in SIZES:
        want = BASE + report[f"settleBatch_{n}_calldata"] + execution[n]
        assert report[f"settleBatch_{n}"] == want, (n, report)


def write_report(entries: dict[str, int | float]) -> None:
    """Merge into $VBILL_GAS_REPORT (the v1 and v2 tests each write their keys)."""
    if not os.environ.get("VBILL_GAS_REPORT"):
        return
    path = Path(os.environ["VBILL_GAS_REPORT"])
    report = json.loads(path.read_text()) if path.exists() else {}
    report.update(entries)
    path.write_text(json.dumps(report, indent=2) + "\n")


def connect_owner(anvil: Any, dep: dict[str, Any]) -> ch.Chain:
    owner = ch.connect("local", anvil.url, account=Account.from_key(ch.ANVIL_KEYS[0]))
    owner.deployment = dep
    owner.use_settlement(dep["contracts"]["BillingSettlement"]["address"])
    return owner


def test_gas_report(anvil, fresh_chain, eth_bundle) -> None:
    owner = connect_owner(anvil, fresh_chain)
    items = [
        ch.settlement_from_bundle(eth_bundle(event=f"evt_gas_{i}")) for i in range(1 + sum(SIZES))
    ]
    report: dict[str, int | float] = {
        "deploy_verifier": fresh_chain["contracts"]["BillingVerifier"]["gas_used"],
        "deploy_settlement": fresh_chain["contracts"]["BillingSettlement"]["gas_used"],
        **measure(owner, fresh_chain, items, BINDING_V1),
    }
    write_report(report)
    check_pinned(report, EXECUTION)  # type: ignore[arg-type]
    # Calldata of one proof: 13 words + selector; at most 16 gas per byte, and random words
    # are rarely zero (what makes gas vary by proof, ±a few dozen, see BENCHMARKS.md).
    assert 6_000 < report["settle_calldata_min"] <= report["settle_calldata_max"] <= 16 * 420
    # Floor per proof verified alone: 4-pair pairing 181,000 + 5 ecMul 30,000 + nullifier 22,100.
    assert report["settle"] < 300_000
    # Batched: per proof one pair 34,000 + 2 ecMul 12,000 + nullifier 22,100 + calldata ≈ 6,500.
    assert report["settleBatch_8_per_event"] < 120_000
    assert report["settleBatch_32_per_event"] <= 90_000


def test_gas_report_v2(anvil, fresh_chain, metered_window) -> None:
    """Binding v2: seven signals (2 more ecMul per proof alone, 2 more per batch), and one
    WindowAdvanced log (3 topics) per charge on top of v1's bookkeeping."""
    needs_v2_setup()
    owner = connect_owner(anvil, fresh_chain)
    bundles = metered_window("2026-08", 1 + sum(SIZES), prefix="gas")
    items = [ch.settlement_from_bundle(b) for b in bundles]
    report = measure(owner, fresh_chain, items, BINDING_V2)
    write_report(
        {
            "v2_deploy_verifier": fresh_chain["contracts"]["BillingVerifierV2"]["gas_used"],
            **{f"v2_{k}": v for k, v in report.items()},
        }
    )
    check_pinned(report, EXECUTION_V2)
    # 15 words + selector per proof
    assert 7_000 < report["settle_calldata_min"] <= report["settle_calldata_max"] <= 16 * 484
    assert report["settle"] < 320_000
    assert report["settleBatch_32_per_event"] <= 100_000
