"""Corrections through the one correction path, the store's window chain and verification
(docs/protocol-corrections.md).

Real parts: binding v2's and v2c's circuits and keys (native prover), a SQLite store file, the
native Groth16 verifier. One module-scoped window of four proved token events serves every
test; each test corrects its own event (an event is corrected once).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import V2, V2C, metered_event, needs_v2c
from support.metered import TOKENS, attest, store_at
from support.webhook_receiver import documented
from vbill.attest import attest_event
from vbill.bindings import BINDING_V1
from vbill.bundle.keys import Attester
from vbill.correct import correct_event, summary
from vbill.encode.metered import GENESIS, encode_metered, transition
from vbill.errors import InputError
from vbill.ingest import Proving
from vbill.ledger.outbox import Outbox
from vbill.ledger.store import Conflict, NotFound, Store
from vbill.verify.correction import verify_correction
from vbill.verify.trust import TrustSet
from vbill.verify.verify import default_check

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trust(attester: Attester) -> TrustSet:
    needs_v2c()
    return TrustSet().with_(attesters=[attester.address], vkey_files=[V2.vkey, V2C.vkey])


@pytest.fixture(scope="module")
def window(
    tmp_path_factory: pytest.TempPathFactory, attester: Attester, v2: Proving, v2c: Proving
) -> Store:
    """tenant_acme's window of four inferences, inf_1 … inf_4, and bob's one, bob_1."""
    store = store_at(tmp_path_factory.mktemp("corrections"), attester)
    for i, (inp, out) in enumerate(TOKENS, start=1):
        attest(store, attester, v2, metered_event("tenant_acme", f"inf_{i}", inp, out))
    attest(store, attester, v2, metered_event("tenant_bob", "bob_1", currency="USD"))
    return store


def correct(store: Store, attester: Attester, v2c: Proving, **body: Any) -> Any:
    req = {"tenant_id": "tenant_acme", "reason": "a test inference billed by mistake", **body}
    return correct_event(req, store=store, attester=attester, proving=v2c)


def charges(events: list[tuple[int, int]]) -> Any:
    """The window state after these token events, by the reference alone."""
    state = GENESIS
    for inp, out in events:
        meter, tariff = encode_metered(metered_event("tenant_acme", "x", inp, out))
        _, state = transition(tariff, meter, state)
    return state


def test_a_void_of_event_2_then_one_more_ends_at_the_window_without_it(
    window: Store, attester: Attester, v2: Proving, v2c: Proving, trust: TrustSet
) -> None:
    done = correct(window, attester, v2c, corrects="inf_2", correction_id="cor_void_2")
    assert done.created
    s = summary(done.stored)
    assert (s["corrects"], s["correction_id"], s["seq"]) == ("inf_2", "cor_void_2", 5)
    attest(window, attester, v2, metered_event("tenant_acme", "inf_5", 7, 9))
    head = window.window_head(("tenant_acme", "2026-05", "llm-secure-7b"))
    without = charges([TOKENS[0], TOKENS[2], TOKENS[3], (7, 9)])
    assert head is not None and head.seq == 6
    assert int(head.state["charge"]) == without.charge
    assert int(head.state["amount"]) == without.amount
    assert s["credit_micros"] == charges(TOKENS).charge - charges(TOKENS[:1] + TOKENS[2:]).charge
    # the correction's three verdicts, and a forged credit fails closed
    result = verify_correction(done.stored.doc, trust=trust, check=default_check())
    assert result.valid, result
    forged = {**done.stored.doc, "billing": {**done.stored.doc["billing"], "credit_micros": 1}}
    bad = verify_correction(forged, trust=trust, check=default_check())
    assert not bad.verification.valid and not bad.billing_check.valid
    assert "billing.credit_micros" in (bad.billing_check.reason or "")
    # the chain mixes events and corrections, in seq order
    entries = window.window_entries(("tenant_acme", "2026-05", "llm-secure-7b"))
    assert [k for k, _ in entries] == ["event"] * 4 + ["correction", "event"]


def test_correction_is_idempotent_and_refuses_a_second_one(
    window: Store, attester: Attester, v2c: Proving
) -> None:
    first = correct(
        window, attester, v2c, corrects="inf_3", correction_id="cor_3", usage={"output_tokens": 100}
    )
    again = correct(
        window, attester, v2c, corrects="inf_3", correction_id="cor_3", usage={"output_tokens": 100}
    )
    assert not again.created and again.stored.doc == first.stored.doc
    with pytest.raises(Conflict, match="already logged with a different payload"):
        correct(window, attester, v2c, corrects="inf_3", correction_id="cor_3")
    with pytest.raises(Conflict, match="already corrected by 'cor_3'"):
        correct(window, attester, v2c, corrects="inf_3", correction_id="cor_3b")
    with pytest.raises(Conflict, match="is an event id"):
        correct(window, attester, v2c, corrects="inf_4", correction_id="inf_1")


def test_unknown_foreign_and_correction_targets_are_not_found(
    window: Store, attester: Attester, v2c: Proving
) -> None:
    for target in ("inf_404", "bob_1", "cor_3"):
        with pytest.raises(NotFound, match="no event"):
            correct(window, attester, v2c, corrects=target, correction_id=f"c_{target}")


def test_units_over_the_original_or_unpriced_name_the_dimension(
    window: Store, attester: Attester, v2c: Proving
) -> None:
    for usage, field in (
        ({"output_tokens": 334}, "correction.usage.output_tokens"),
        ({"images": 1}, "correction.usage.images"),
    ):
        with pytest.raises(InputError) as caught:
            correct(window, attester, v2c, corrects="inf_4", correction_id="c4", usage=usage)
        assert caught.value.field == field
    assert window.find_correction("tenant_acme", "c4") is None


def test_a_binding_v1_event_is_voided_by_a_signed_logged_record(
    tmp_path: Path, attester: Attester, v1: Proving, pilot_request: Any
) -> None:
    store = Store(tmp_path / "vbill.sqlite3", log_key=attester.account)
    Outbox(store).add_endpoint("https://hooks.example/c", ["correction.created"])
    done = attest_event(pilot_request, store=store, attester=attester, provers={BINDING_V1: v1})
    original = done.stored
    request = {
        "tenant_id": original.tenant_id,
        "corrects": original.event_id,
        "correction_id": "void_1",
        "reason": "duplicate",
    }
    void = correct_event(request, store=store, attester=attester, proving=None)
    assert not correct_event(request, store=store, attester=attester, proving=None).created
    # correction.created, once, written with the correction (its fields as documented)
    (row,) = store._conn().execute("SELECT event_type, payload FROM outbox").fetchall()
    data = json.loads(row[1])["data"]
    assert row[0] == "correction.created" and set(data) == set(documented()[row[0]])
    assert (data["corrects"], data["reason"], data["usage"]) == (
        original.event_id,
        "duplicate",
        None,
    )
    assert data["credit_micros"] == original.charge_micros
    doc = void.stored.doc
    assert void.stored.credit_micros == original.charge_micros
    assert doc["original"]["nullifier"] == original.nullifier
    trust = TrustSet().with_(attesters=[attester.address])
    result = verify_correction(doc, trust=trust)
    assert result.valid, result
    tampered = {**doc, "billing": {"credit_micros": original.charge_micros + 1}}
    assert not verify_correction(tampered, trust=trust).valid
