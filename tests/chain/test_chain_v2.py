"""Both bindings in one BillingSettlement on a real anvil, with real v1 and v2 proofs (issue 11).

One verifier per binding, set by the owner (setVerifier); each charge is verified by its
binding's verifier; v2 charges emit WindowAdvanced so a window's chain of state keys can be
rebuilt from logs; limits, tariff acceptance and nullifiers apply to both alike. Failures check
the exact custom error and that nothing changed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from support.chain import ETH, PILOT_WEI, expect_revert, open_account, settlement, state
from support.chain_v2 import genesis_key, needs_v2_setup, receipt_logs
from vbill import chain as ch
from vbill.bindings import BINDING_V1, BINDING_V2, BINDING_V2C, artefacts
from vbill.chain import Settlement
from vbill.errors import InputError, VerificationFailed
from web3 import Web3

pytestmark = pytest.mark.chain

INFERENCE_CHARGE = 554  # micros: 156 × 0.25 + 412 × 1.25 (vbill_tools.bench.metered_request), ceil
ZERO = "0x" + "00" * 20


def v2s(bundles: list[dict[str, Any]]) -> list[Settlement]:
    return [ch.settlement_from_bundle(b) for b in bundles]


def with_signals(s: Settlement, signals: tuple[int, ...], binding: str | None = None) -> Settlement:
    return dataclasses.replace(s, signals=signals, binding=binding or s.binding)


def verifier_address(dep: dict[str, Any], binding: str) -> str:
    return str(dep["contracts"][dep["bindings"][binding]["verifier"]]["address"])


# ------------------------------------------------------------------------------ setVerifier


def test_set_verifier_is_owner_only_checks_the_binding_and_emits(owner, stranger, fresh_chain):
    v1 = verifier_address(fresh_chain, BINDING_V1)
    fns = owner.settlement.functions
    expect_revert(
        lambda: stranger.transact(stranger.settlement.functions.setVerifier(1, v1)),
        "BillingSettlement__NotOwner",
        stranger.address,
    )
    # the v1 verifier (N_PUBLIC 5) as v2's, an address without code, an unknown binding id
    expect_revert(
        lambda: owner.transact(fns.setVerifier(2, v1)),
        "BillingSettlement__VerifierMismatch",
        2,
        v1,
    )
    expect_revert(
        lambda: owner.transact(fns.setVerifier(1, stranger.address)),
        "BillingSettlement__VerifierMismatch",
        1,
        stranger.address,
    )
    expect_revert(
        lambda: owner.transact(fns.setVerifier(3, v1)),  # corrections' binding: nine signals
        "BillingSettlement__VerifierMismatch",
        3,
        v1,
    )
    expect_revert(
        lambda: owner.transact(fns.setVerifier(4, v1)), "BillingSettlement__UnknownBinding", 4
    )
    assert fns.verifierOf(1).call() == v1
    # re-setting it is one transaction, announced with the previous address
    tx = owner.transact(fns.setVerifier(1, v1)).transaction_hash
    assert receipt_logs(owner, tx, "VerifierSet") == [
        {"binding": 1, "previous": v1, "verifier": v1}
    ]


def test_a_binding_switched_off_refuses_charges_until_set_again(
    owner, tenant, eth_bundle, fresh_chain
):
    s = settlement(eth_bundle())
    open_account(tenant, s)
    v1 = verifier_address(fresh_chain, BINDING_V1)
    fns = owner.settlement.functions
    owner.transact(fns.setVerifier(1, ZERO))
    before = state(owner, s)
    expect_revert(lambda: owner.settle(s), "BillingSettlement__UnknownBinding", 1)
    expect_revert(lambda: owner.settle_batch([s, s]), "BillingSettlement__UnknownBinding", 1)
    assert state(owner, s) == before
    owner.transact(fns.setVerifier(1, v1))  # no redeploy: the accounts stay
    owner.settle(s)
    assert tenant.balance(s.signals[4]).total == ETH - PILOT_WEI


def test_deployment_records_and_checks_every_binding(owner, fresh_chain):
    needs_v2_setup()
    corrections = {BINDING_V2C} if artefacts(BINDING_V2C).vkey.exists() else set()
    assert set(fresh_chain["bindings"]) == {BINDING_V1, BINDING_V2, *corrections}
    for binding, info in fresh_chain["bindings"].items():
        on_chain = owner.settlement.functions.verifierOf(info["binding_id"]).call()
        assert on_chain == verifier_address(fresh_chain, binding)
    assert fresh_chain["bindings"][BINDING_V2]["verifier"] == "BillingVerifierV2"
    rows = {r["check"]: r["ok"] for r in owner.check_deployment()}
    assert rows["settlement.verifierOf[bn128-poseidon8-v2]"] and all(rows.values()), rows
    assert "BillingVerifierV2.matches_build" in rows and "vkey_sha256[bn128-poseidon8-v2]" in rows
    # a record from before bindings: the first binding's verifier and key, under their old names
    legacy = {k: v for k, v in fresh_chain.items() if k != "bindings"}
    saved, owner.deployment = owner.deployment, legacy
    try:
        old = {r["check"]: r["ok"] for r in owner.check_deployment()}
    finally:
        owner.deployment = saved
    assert old["vkey_sha256"] and old[f"settlement.verifierOf[{BINDING_V1}]"], old
    assert [k for k in old if k.startswith(("vkey_sha256[", "settlement."))] == [
        f"settlement.verifierOf[{BINDING_V1}]"
    ]


# ------------------------------------------------------------------------------ both bindings


def test_a_v1_and_a_v2_charge_settle_in_one_deployment(owner, tenant, eth_bundle, metered_window):
    """One account (the same tenant key), two tariffs, two verifiers; the v2 receipt carries
    its state keys and re-derives from the chain against its bundle."""
    one = settlement(eth_bundle())
    bundle = metered_window("2026-05", 1)[0]
    two = ch.settlement_from_bundle(bundle)
    assert (one.binding, two.binding) == (BINDING_V1, BINDING_V2)
    assert one.tenant_key == two.tenant_key and len(two.signals) == 7
    open_account(tenant, one)
    tenant.accept_tariff(two.tenant_key, two.signals[2])
    owner.settle(one)
    tx = owner.settle(two).transaction_hash
    wei = INFERENCE_CHARGE * 10**12
    assert tenant.balance(one.tenant_key).total == ETH - PILOT_WEI - wei
    assert receipt_logs(owner, tx, "WindowAdvanced") == [
        {
            "tenantKey": two.tenant_key,
            "prevStateKey": genesis_key("2026-05"),
            "stateKey": two.signals[6],
            "nullifier": two.nullifier,
        }
    ]
    receipt = owner.receipt(tx, bundle)
    assert receipt.charges == (
        ch.Charge(
            two.tenant_key, two.nullifier, two.commitment, INFERENCE_CHARGE, wei, *two.state_keys
        ),
    )
    assert receipt.as_json()["charges"][0]["state_key"] == str(two.signals[6])
    forged = {
        **bundle,
        "attestation": {"billing_proof": {**bundle["attestation"]["billing_proof"]}},
    }
    signals = list(forged["attestation"]["billing_proof"]["public_signals"])
    signals[6] = str(int(signals[6]) + 1)
    forged["attestation"]["billing_proof"]["public_signals"] = signals
    with pytest.raises(VerificationFailed, match="WindowAdvanced"):
        owner.receipt(tx, forged)


def test_a_v2_proof_is_refused_as_v1_and_with_its_state_keys_moved(
    owner, tenant, eth_bundle, metered_window
):
    two = ch.settlement_from_bundle(metered_window("2026-05", 1)[0])
    one = settlement(eth_bundle())
    open_account(tenant, one)
    tenant.accept_tariff(two.tenant_key, two.signals[2])
    prev, new = two.signals[5], two.signals[6]
    cases = {
        "v2 proof as v1 (its first five signals)": with_signals(two, two.signals[:5], BINDING_V1),
        "state keys swapped": with_signals(two, (*two.signals[:5], new, prev)),
        "state key of another state": with_signals(two, (*two.signals[:6], new + 1)),
        "prev key of genesis of another window": with_signals(
            two, (*two.signals[:5], genesis_key("2026-06"), new)
        ),
        "v1 proof as v2 (with two made-up keys)": with_signals(
            one, (*one.signals, prev, new), BINDING_V2
        ),
    }
    before = state(owner, one, two)
    for name, bad in cases.items():
        with pytest.raises(ch.ChainRevert) as info:
            owner.settle(bad)
        assert info.value.name == "BillingSettlement__InvalidProof", name
    expect_revert(
        lambda: owner.settle(with_signals(two, (*two.signals[:6], ch.R))),
        "BillingSettlement__SignalOutOfField",
        6,
    )
    assert state(owner, one, two) == before
    owner.settle(two)


def test_limits_tariffs_and_nullifiers_apply_to_v2_as_to_v1(
    owner, tenant, eth_bundle, metered_window
):
    """Per-request and daily limits, tariff acceptance and replay; and an event id settled
    under v1 cannot settle again under v2 (the nullifier is the same)."""
    first, second = v2s(metered_window("2026-05", 2))
    wei = INFERENCE_CHARGE * 10**12
    open_account(tenant, settlement(eth_bundle()))
    key = first.tenant_key
    before = state(owner, first, second)
    expect_revert(
        lambda: owner.settle(first), "BillingSettlement__TariffNotAccepted", key, first.signals[2]
    )
    assert state(owner, first, second) == before
    tenant.accept_tariff(key, first.signals[2])
    tenant.set_limits(key, wei - 1, ETH)
    expect_revert(
        lambda: owner.settle(first), "BillingSettlement__PerRequestLimitExceeded", wei - 1, wei
    )
    tenant.set_limits(key, ETH, wei + wei // 2)
    owner.settle(first)
    expect_revert(
        lambda: owner.settle(second),
        "BillingSettlement__DailyLimitExceeded",
        wei + wei // 2,
        2 * wei,
    )
    expect_revert(lambda: owner.settle(first), "BillingSettlement__NullifierUsed", first.nullifier)
    assert state(owner, first, second)["nullifiers"] == {
        first.nullifier: True,
        second.nullifier: False,
    }
    same_event = settlement(
        eth_bundle(event=metered_window("2026-05", 2)[1]["meter_event"]["event_id"])
    )
    assert same_event.nullifier == second.nullifier
    tenant.set_limits(key, ETH, ETH)
    owner.settle(same_event)
    expect_revert(
        lambda: owner.settle(second), "BillingSettlement__NullifierUsed", second.nullifier
    )


def test_a_v2_batch_settles_a_window_and_its_chain_rebuilds_from_logs(
    owner, tenant, eth_bundle, metered_window
):
    """settleBatchV2 verifies the window's events with one pairing; following WindowAdvanced
    from the window's genesis key (prevStateKey is indexed) visits every event in order and ends
    at the last state key. One bad proof sinks the batch; a batch may not mix bindings."""
    bundles = metered_window("2026-05", 4)
    items = v2s(bundles)
    open_account(tenant, settlement(eth_bundle()))
    tenant.accept_tariff(items[0].tenant_key, items[0].signals[2])
    bad = with_signals(items[1], (*items[1].signals[:5], items[1].signals[6], items[1].signals[5]))
    before = state(owner, *items)
    expect_revert(
        lambda: owner.settle_batch([items[0], bad, items[2]]),
        "BillingSettlement__InvalidBatchProof",
        3,
    )
    assert state(owner, *items) == before
    with pytest.raises(InputError, match="one binding"):
        owner.eth_batch_fn([items[0], settlement(eth_bundle())])
    results = owner.settle_batch(items[:3])
    assert len(results) == 1
    owner.settle(items[3])
    event = owner.settlement.events.WindowAdvanced()
    links: dict[int, int] = {}
    for log in owner.w3.eth.get_logs(
        {
            "address": owner.settlement.address,
            "fromBlock": 0,
            "topics": [event.topic, Web3.to_hex(items[0].tenant_key.to_bytes(32, "big"))],
        }
    ):
        args = event.process_log(log)["args"]
        links[args["prevStateKey"]] = args["stateKey"]
    chain_keys, key = [], genesis_key("2026-05")
    while key in links:
        key = links[key]
        chain_keys.append(key)
    assert chain_keys == [s.signals[6] for s in items]
    assert [s.signals[5] for s in items[1:]] == [s.signals[6] for s in items[:-1]]
    assert tenant.balance(items[0].tenant_key).total == ETH - 4 * INFERENCE_CHARGE * 10**12


def test_a_mixed_batch_is_sent_as_one_settle_batch_per_binding(
    owner, tenant, eth_bundle, metered_window
):
    v1 = [settlement(eth_bundle(event=f"evt_gas_{i}")) for i in range(2)]
    v2 = v2s(metered_window("2026-07", 2))
    open_account(tenant, v1[0])
    tenant.accept_tariff(v2[0].tenant_key, v2[0].signals[2])
    results = owner.settle_batch([v1[0], v2[0], v1[1], v2[1]])
    assert len(results) == 2
    assert [c.nullifier for c in owner.receipt(results[0].transaction_hash).charges] == [
        s.nullifier for s in v1
    ]
    assert [c.state_key for c in owner.receipt(results[1].transaction_hash).charges] == [
        s.signals[6] for s in v2
    ]
