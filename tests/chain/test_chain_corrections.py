"""Corrections on chain (binding v2c, docs/protocol-corrections.md) on a real anvil: a settled
ETH charge, voided by a proven correction, comes back to the tenant's balance from the payee's
earnings; the same correction is refused twice, and a correction of an unsettled charge is
refused. Real proofs: the window's events (v2, snarkjs) and the correction (v2c, native).
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import needs_v2c
from support.chain import expect_revert, open_account
from support.chain_v2 import ACCOUNT_SALT, SALT, receipt_logs, request
from vbill import chain as ch
from vbill.bindings import BINDING_V2C, artefacts
from vbill.bundle.correction import CORRECTION_VERSION
from vbill.cli.main import main
from vbill.encode.metered import GENESIS, MeteredCorrection, encode_metered, transition
from vbill.errors import VerificationFailed
from vbill.zk.native_prover import open_prover
from vbill.zk.witness_correction import Original, circuit_input, public_signals

pytestmark = pytest.mark.chain

V2C = artefacts(BINDING_V2C)
CHARGE = 554  # micros per inference of the window (tests/support/chain_v2.py)


@pytest.fixture(scope="module")
def v2c_prover() -> Iterator[Any]:
    needs_v2c()
    prover = open_prover(1, binding=BINDING_V2C)
    yield prover
    prover.close()


def void_of(prover: Any, index: int, n: int, window: str = "2026-05") -> dict[str, Any]:
    """The proven void of event `index` of the window's first `n` events (the chain of
    tests/support/chain_v2.py), priced from the state after them, as a correction document
    carrying what settlement and `vbill receipt --correction` read (its proof section and the
    original's currency)."""
    state, original = GENESIS, None
    for i in range(n):
        req = request(f"inf_{window}_{i:03d}", window, {"input_tokens": 156, "output_tokens": 412})
        meter, tariff = encode_metered(req)
        charge, state = transition(tariff, meter, state)
        if i == index:
            original = Original(meter, tariff, charge, SALT + i)
    assert original is not None
    cor = MeteredCorrection.from_wire(
        {"tenant_id": "tenant_acme", "corrects": "e", "correction_id": f"v{index}", "reason": "r"},
        original.tariff,
        original.meter.units,
    )
    signals, _ = public_signals(cor, original, state, 777 + index, ACCOUNT_SALT)
    proof = prover.prove(circuit_input(cor, original, state, 777 + index, ACCOUNT_SALT))
    assert proof.public_signals == signals.as_decimal()
    return {
        "correction_version": CORRECTION_VERSION,
        "original": {"tariff_snapshot": original_tariff(window)},
        "attestation": {
            "billing_proof": {
                "binding_version": BINDING_V2C,
                "proof": proof.proof,
                "public_signals": proof.public_signals,
            }
        },
    }


def original_tariff(window: str) -> dict[str, Any]:
    return request("any", window, {})["tariff_snapshot"]


def receipt_cli(c: ch.Chain, tx: str, *args: Any) -> tuple[int, Any]:
    """`vbill receipt TX [--correction FILE] --json` against this deployment (its record
    written where the CLI reads it); (exit code, JSON or the error text)."""
    with tempfile.TemporaryDirectory() as home:
        folder = Path(home) / "deployments"
        folder.mkdir()
        (folder / "local.json").write_text(json.dumps(c.load_deployment()))
        argv = ["receipt", "--network", "local", "--rpc-url", c.rpc_url, tx, "--json"]
        if args:
            (Path(home) / "doc.json").write_text(json.dumps(args[1]))
            argv += [args[0], str(Path(home) / "doc.json")]
        run = CliRunner().invoke(main, argv, env={"VBILL_HOME": home, "VBILL_PRIVATE_KEY": None})
    return run.exit_code, json.loads(run.output) if run.exit_code == 0 else run.output


def test_a_settled_charge_voided_comes_back_to_the_tenant_once(
    owner, tenant, stranger, payee, metered_window, v2c_prover
) -> None:
    events = [ch.settlement_from_bundle(b) for b in metered_window("2026-05", 2)]
    open_account(tenant, events[0])
    owner.settle(events[0])
    void_doc = void_of(v2c_prover, 1, 2)
    void_2 = ch.settlement_from_bundle(void_doc)
    # its original never settled: refused, nothing moves
    expect_revert(
        lambda: owner.settle(void_2), "BillingSettlement__NotSettled", events[1].nullifier
    )
    charged = owner.settle(events[1]).transaction_hash
    before = tenant.balance(events[0].tenant_key)
    owed = owner.settlement.functions.payeeBalance(payee.address).call()
    expect_revert(
        lambda: stranger.settle(void_2), "BillingSettlement__NotAttester", stranger.address
    )
    result = owner.settle(void_2)
    wei = CHARGE * 10**12
    assert void_2.signals[1] == CHARGE  # the window without event 2 costs one inference less
    after = tenant.balance(events[0].tenant_key)
    assert (after.available, after.reserved) == (before.available + wei, before.reserved)
    assert owner.settlement.functions.payeeBalance(payee.address).call() == owed - wei
    assert owner.settlement.functions.isNullifierUsed(void_2.nullifier).call()
    assert receipt_logs(owner, result.transaction_hash, "ChargeCorrected") == [
        {
            "tenantKey": void_2.tenant_key,
            "nullifier": void_2.nullifier,
            "correctsNullifier": events[1].nullifier,
            "commitment": void_2.commitment,
            "credit": CHARGE,
            "weiAmount": wei,
        }
    ]
    print(f"\nsettleCorrection gas: {result.gas_used}")
    assert 200_000 < result.gas_used < 400_000  # one pairing check and a few slots
    # `vbill receipt`: the credit re-derived from the chain, checked against the document
    tx = result.transaction_hash
    credit = owner.correction_receipt(tx, void_doc)
    assert (credit.credit_eth, credit.gas_used) == ("0.000554", result.gas_used)
    (c,) = credit.corrections
    assert (c.nullifier, c.corrects_nullifier, c.wei) == (
        void_2.nullifier,
        events[1].nullifier,
        wei,
    )
    assert (c.prev_state_key, c.state_key) == (void_2.signals[5], void_2.signals[6])
    assert receipt_cli(owner, tx, "--correction", void_doc) == (0, credit.as_json())
    assert receipt_cli(owner, tx) == (0, credit.as_json())  # a settleCorrection: found alone
    other = void_of(v2c_prover, 0, 2)  # another correction (never settled): not this one
    code, out = receipt_cli(owner, tx, "--correction", other)
    assert code == 1 and "no ChargeCorrected event carries the correction's nullifier" in out
    edited = copy.deepcopy(void_doc)
    edited["attestation"]["billing_proof"]["public_signals"][1] = "1"  # another credit
    code, out = receipt_cli(owner, tx, "--correction", edited)
    assert code == 1 and "the ChargeCorrected event differs from the correction" in out
    with pytest.raises(VerificationFailed, match="settled no correction"):
        owner.correction_receipt(charged)
    code, out = receipt_cli(owner, charged)  # a charge's transaction: the usage receipt
    assert code == 0 and out["cost_eth"] == "0.000554" and "corrections" not in out
    # the same correction twice: refused, nothing moves
    expect_revert(
        lambda: owner.settle(void_2), "BillingSettlement__NullifierUsed", void_2.nullifier
    )
    assert tenant.balance(events[0].tenant_key) == after
