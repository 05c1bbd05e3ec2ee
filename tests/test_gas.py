"""Gas of deploy, settle and settleBatch at N = 1, 8, 32 on anvil (BENCHMARKS.md, issue 5).

Writes build/gas_report.json; pins upper bounds so a regression is a visible decision.
"""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from orchestrator import chain as ch
from orchestrator import paths

pytestmark = pytest.mark.chain


def test_gas_report(anvil, fresh_chain, eth_bundle) -> None:
    owner = ch.connect("local", anvil.url, account=Account.from_key(ch.ANVIL_KEYS[0]))
    owner.deployment = fresh_chain
    owner.use_settlement(fresh_chain["contracts"]["BillingSettlement"]["address"])
    report: dict[str, int | float] = {
        "deploy_verifier": fresh_chain["contracts"]["BillingVerifier"]["gas_used"],
        "deploy_settlement": fresh_chain["contracts"]["BillingSettlement"]["gas_used"],
    }
    items = [ch.settlement_from_bundle(eth_bundle(event=f"evt_gas_{i}")) for i in range(41)]
    key = items[0].signals[4]
    owner.open_account(key, owner.address)  # the deployer is an attester; it controls too
    owner.deposit(key, 100 * 10**18)
    owner.transact(owner.settlement.functions.acceptTariff(key, items[0].signals[2]))
    report["settle"] = owner.settle(items[0]).gas_used
    start = 1
    for n in (1, 8, 32):
        batch = items[start : start + n]
        start += n
        fn = owner.settlement.functions.settleBatch(
            [s.proof_arg() for s in batch], [list(s.signals) for s in batch]
        )
        gas = owner.transact(fn).gas_used
        report[f"settleBatch_{n}"] = gas
        report[f"settleBatch_{n}_per_event"] = round(gas / n)
    (paths.BUILD / "gas_report.json").write_text(json.dumps(report, indent=2) + "\n")
    # Floor per proof: 4-pair pairing 181,000 + 5 ecMul 30,000 + nullifier SSTORE 22,100.
    assert report["settle"] < 300_000
    assert report["settleBatch_32_per_event"] < report["settle"]
