"""Gas of deploy, settle and settleBatch at N = 1, 8, 32 on anvil (BENCHMARKS.md, issues 5, 7).

Writes build/gas_report.json with a breakdown per batch size: transaction base, calldata, the
verifier's batch check on its own (mined as a transaction to the verifier) and the rest, which
is the settlement's bookkeeping. Pins upper bounds so a regression is a visible decision.
"""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from vbill import chain as ch
from vbill import paths

pytestmark = pytest.mark.chain

SIZES = (1, 8, 32)


def calldata_gas(data: bytes) -> int:
    """EIP-2028 calldata cost: 4 per zero byte, 16 per other byte."""
    return sum(4 if b == 0 else 16 for b in data)


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
    report["settle"] = owner.settle(items[0]).gas_used
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
    (paths.BUILD / "gas_report.json").write_text(json.dumps(report, indent=2) + "\n")
    # Floor per proof verified alone: 4-pair pairing 181,000 + 5 ecMul 30,000 + nullifier 22,100.
    assert report["settle"] < 300_000
    # Batched: per proof one pair 34,000 + 2 ecMul 12,000 + nullifier 22,100 + calldata ≈ 6,500.
    assert report["settleBatch_8_per_event"] < 120_000
    assert report["settleBatch_32_per_event"] <= 90_000
