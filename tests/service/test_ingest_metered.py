"""Metered events (binding v2) through ingestion, over a real socket with real proofs.

A metered event takes its window's next seq at ingestion (charged, its seven public signals
and both state keys computed, signed and logged in the commit that assigns the seq); a worker
proves it later from the window state before that the bundle carries, in any order.
`Prefer: respond-async` answers 202 and the finished bundle verifies; a batch mixes linear
and metered events, each decided on its own in request order; concurrent attests to one
window never share a seq, and the window's statement verifies once every proof is attached.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from support import V2, metered_event, needs_v2
from support.http_server import ATTEST, AUTH
from support.ingest import ASYNC, EVENTS, event, finished
from vbill import paths
from vbill.bundle.keys import Attester
from vbill.ledger import translog
from vbill.verify.statement import verify_statement
from vbill.verify.trust import TrustSet
from vbill.verify.verify import verify_bundle

TENANT = "t_meter"
WINDOW = "2026-05"
STATEMENT = f"/api/vdi/billing/statements/{TENANT}/{WINDOW}"


def inference(event_id: str, input_tokens: int = 156, output_tokens: int = 412) -> dict:
    """The example inference billed in USD (no balance needed: no chain here)."""
    return metered_event(TENANT, event_id, input_tokens, output_tokens, currency="USD")


@pytest.fixture(autouse=True)
def _v2_built() -> None:
    needs_v2()


def trust_of(attester: Attester) -> TrustSet:
    return TrustSet().with_(attesters=[attester.address], vkey_files=[paths.VKEY, V2.vkey])


def assert_verifies(bundle: dict[str, Any], attester: Attester) -> None:
    result = verify_bundle(bundle, trust=trust_of(attester))
    assert result.verification.valid, result.verification.reason
    assert result.billing_check.valid, result.billing_check.reason
    binding = result.incircuit_binding_verification
    assert binding.valid, binding.reason


def test_respond_async_is_202_then_the_finished_metered_bundle_verifies(
    live: tuple[str, Attester],
) -> None:
    base, attester = live
    with httpx.Client(base_url=base, timeout=120) as client:
        r = client.post(ATTEST, json=inference("m_async"), headers=ASYNC)
        assert r.status_code == 202, r.text
        assert r.headers["preference-applied"] == "respond-async"
        early = r.json()
        assert early["status"] == "proving" and early["attestation"]["scheme"] == "eip712-v2"
        assert "proof" not in early["attestation"]["billing_proof"]
        assert early["billing"]["window"]["seq"] == 1
        assert len(early["attestation"]["billing_proof"]["public_signals"]) == 7
        assert early["usage"] == {"units": {"input_tokens": 156, "output_tokens": 412},
                                  "total_units": 568}  # fmt: skip
        digest = bytes.fromhex(early["attestation"]["bundle_digest"][2:])
        ok, why = translog.verify_receipt(early["receipt"], digest, [attester.address])
        assert ok, why  # signed and logged before any proof

        done = finished(client, "m_async")
        assert done["attestation"]["bundle_digest"] == early["attestation"]["bundle_digest"]
        assert done["receipt"] == early["receipt"]
        assert done["billing"] == early["billing"]
        assert_verifies(done, attester)

        again = client.post(ATTEST, json=inference("m_async"), headers=ASYNC)
        assert again.status_code == 200 and again.headers["x-vdi-replay"] == "true"
        assert again.json() == done
        assert client.post(ATTEST, json=inference("m_async", 1), headers=ASYNC).status_code == 409

        # without the header: the finished bundle at once, the window's next state
        sync = client.post(ATTEST, json=inference("m_sync"), headers=AUTH)
        assert sync.status_code == 200, sync.text
        bundle = sync.json()
        assert "status" not in bundle and bundle["attestation"]["billing_proof"]["proof"]
        assert bundle["billing"]["window"]["seq"] == 2
        assert bundle["billing"]["window"]["before"] == done["billing"]["window"]["after"]
        assert_verifies(bundle, attester)


def test_a_batch_mixes_linear_and_metered_events_each_decided_in_order(
    live: tuple[str, Attester], pilot_request: dict[str, Any]
) -> None:
    base, attester = live
    unpriced = inference("m_bad")
    unpriced["meter_event"]["usage"]["images"] = 3
    batch = [
        inference("m1"),
        event(pilot_request, "l1"),
        inference("m2", 50, 10),
        inference("m1"),  # the same payload again: `same`, no second seq
        inference("m2", 1, 1),  # another payload for m2: `conflict`
        unpriced,  # `invalid`, names the dimension
        event(pilot_request, "l2"),
        inference("m3", 0, 7),
    ]
    with httpx.Client(base_url=base, timeout=120) as client:
        r = client.post(EVENTS, json={"events": batch}, headers=AUTH)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["status"] for x in results] == ["created", "created", "created", "same",
            "conflict", "invalid", "created", "created"]  # fmt: skip
        assert [x["event_id"] for x in results] == [
            "m1", "l1", "m2", "m1", "m2", "m_bad", "l2", "m3"]  # fmt: skip
        assert results[5]["error"]["field"] == "meter_event.usage.images"

        bundles = {e: finished(client, e) for e in ("m1", "m2", "m3", "l1", "l2")}
        for b in bundles.values():
            assert_verifies(b, attester)
        # the window's chain follows request order, each state the previous one's after
        chain = [bundles[e]["billing"]["window"] for e in ("m1", "m2", "m3")]
        assert [w["seq"] for w in chain] == [1, 2, 3]
        assert chain[1]["before"] == chain[0]["after"] and chain[2]["before"] == chain[1]["after"]
        heads = {b["receipt"]["tree_head"]["signature"] for b in bundles.values()}
        assert len(heads) == 1  # one group commit

        doc = client.get(STATEMENT, headers=AUTH)
        assert doc.status_code == 200, doc.text
        assert doc.json()["events"] == 3
        assert doc.json()["totals_by_dimension"] == {"input_tokens": 206, "output_tokens": 429}


def test_concurrent_attests_to_one_window_never_share_a_seq(
    live: tuple[str, Attester], pilot_request: dict[str, Any]
) -> None:
    """Single attests (with and without the header) and batches, all at once, into one
    window: every event gets its own seq, 1..n with no gap, and the chain verifies."""
    base, attester = live
    singles = [(inference(f"c{i}", i, 2 * i), ASYNC if i % 2 else AUTH) for i in range(1, 9)]
    batches = [[inference(f"c{k}_{j}", k, j) for j in range(3)] for k in range(20, 22)]

    with httpx.Client(base_url=base, timeout=300) as client:

        def single(job: tuple[dict[str, Any], dict[str, str]]) -> int:
            return client.post(ATTEST, json=job[0], headers=job[1]).status_code

        def batch(events: list[dict[str, Any]]) -> list[str]:
            r = client.post(EVENTS, json={"events": events}, headers=AUTH)
            return [x["status"] for x in r.json()["results"]]

        with ThreadPoolExecutor(8) as pool:
            codes = pool.map(single, singles)
            statuses = pool.map(batch, batches)
            assert sorted(codes) == [200] * 4 + [202] * 4
            assert all(s == ["created"] * 3 for s in statuses)

        ids = [r["meter_event"]["event_id"] for r, _ in singles]
        ids += [e["meter_event"]["event_id"] for b in batches for e in b]
        bundles = [finished(client, e) for e in ids]
        seqs = sorted(b["billing"]["window"]["seq"] for b in bundles)
        assert seqs == list(range(1, len(ids) + 1))
        st = verify_statement(
            [(b["meter_event"]["event_id"], b) for b in
             sorted(bundles, key=lambda b: b["billing"]["window"]["seq"])],
            trust=trust_of(attester),
        )  # fmt: skip
        assert st.valid, [p.message for p in st.problems]
        doc = client.get(STATEMENT, headers=AUTH)
        assert doc.status_code == 200, doc.text
        assert doc.json()["events"] == len(ids)
