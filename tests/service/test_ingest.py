"""Ingestion decoupled from proving, over a real socket, on SQLite and on PostgreSQL.

`Prefer: respond-async` answers 202 with the signed, logged bundle still `proving`; a local
worker attaches the proof and the finished bundle verifies. Without the header attest still
returns the complete bundle. POST /events decides each event on its own, in order, and one
group commit signs one tree head for the whole batch.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import needs_build
from support.http_server import ATTEST, AUTH, SECRET, serve
from support.ingest import (
    ASYNC,
    EVENTS,
    assert_verifies,
    event,
    finished,
    leased_to,
    start_worker,
    trust_of,
)
from vbill.bundle.keys import Attester
from vbill.ledger import translog
from vbill.service import Settings, create_app
from vbill.verify.verify import verify_bundle


def test_respond_async_is_202_proving_then_the_finished_bundle_verifies(
    live: tuple[str, Attester], pilot_request: dict[str, Any]
) -> None:
    base, attester = live
    with httpx.Client(base_url=base, timeout=120) as client:
        r = client.post(ATTEST, json=event(pilot_request, "async_1"), headers=ASYNC)
        assert r.status_code == 202, r.text
        assert r.headers["preference-applied"] == "respond-async"
        early = r.json()
        assert early["status"] == "proving"
        assert "proof" not in early["attestation"]["billing_proof"]
        assert early["attestation"]["scheme"] == "eip712-v2"
        digest = bytes.fromhex(early["attestation"]["bundle_digest"][2:])
        ok, why = translog.verify_receipt(early["receipt"], digest, [attester.address])
        assert ok, why  # logged before it was proved
        # offline, its signature and receipt verify; its proof verdict says it is pending
        verdicts = verify_bundle(early, trust=trust_of(attester))
        assert verdicts.verification.valid and verdicts.billing_check.valid, verdicts
        pending = verdicts.incircuit_binding_verification
        assert not pending.valid and not verdicts.valid
        assert (pending.reason or "").startswith("attestation.billing_proof.proof: absent")

        done = finished(client, "async_1")
        assert done["attestation"]["bundle_digest"] == early["attestation"]["bundle_digest"]
        assert done["receipt"] == early["receipt"]
        assert_verifies(done, attester)

        # the same payload again is a replay of the finished bundle, never a second leaf
        again = client.post(ATTEST, json=event(pilot_request, "async_1"), headers=ASYNC)
        assert again.status_code == 200 and again.headers["x-vdi-replay"] == "true"
        assert again.json() == done


def test_without_the_header_attest_returns_the_complete_bundle(
    live: tuple[str, Attester], pilot_request: dict[str, Any]
) -> None:
    base, attester = live
    with httpx.Client(base_url=base, timeout=120) as client:
        r = client.post(ATTEST, json=pilot_request, headers=AUTH)
        assert r.status_code == 200, r.text
        bundle = r.json()
        assert "status" not in bundle and bundle["attestation"]["billing_proof"]["proof"]
        assert_verifies(bundle, attester)
        assert client.post(ATTEST, json=pilot_request, headers=AUTH).json() == bundle


def test_refusals_are_decided_at_ingestion(
    live: tuple[str, Attester], pilot_request: dict[str, Any]
) -> None:
    base, _ = live
    with httpx.Client(base_url=base, timeout=120) as client:
        assert (
            client.post(ATTEST, json=event(pilot_request, "r1"), headers=ASYNC).status_code == 202
        )
        changed = event(pilot_request, "r1", usage_units=7)
        assert client.post(ATTEST, json=changed, headers=ASYNC).status_code == 409
        bad = event(pilot_request, "r2", usage_units=-1)
        r = client.post(ATTEST, json=bad, headers=ASYNC)
        assert r.status_code == 422 and r.json()["detail"]["field"] == "meter_event.usage_units"
        eth = event(pilot_request, "r3")
        eth["tariff_snapshot"]["currency"] = "ETH"
        assert client.post(ATTEST, json=eth, headers=ASYNC).status_code == 429
        head = client.get("/api/vdi/billing/transparency/head").json()
        assert head["tree_size"] == 1  # nothing refused was logged


def test_a_batch_is_decided_event_by_event_in_order_under_one_signed_head(
    live: tuple[str, Attester], pilot_request: dict[str, Any]
) -> None:
    base, attester = live
    eth = event(pilot_request, "b_eth")
    eth["tariff_snapshot"]["currency"] = "ETH"
    fresh = [event(pilot_request, f"b{i}") for i in range(40)]
    batch = [
        *fresh[:20],
        event(pilot_request, "b3"),  # the same payload twice in one batch
        event(pilot_request, "b4", usage_units=9),  # a different payload for b4
        event(pilot_request, "b_bad", usage_units="many"),
        eth,
        "not an object",
        *fresh[20:],
    ]
    with httpx.Client(base_url=base, timeout=120) as client:
        before = client.get("/api/vdi/billing/transparency/head").json()["tree_size"]
        r = client.post(EVENTS, json={"events": batch}, headers=AUTH)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        statuses = [x["status"] for x in results]
        assert statuses == ["created"] * 20 + ["same", "conflict", "invalid", "limited",
                                               "invalid"] + ["created"] * 20  # fmt: skip
        assert [x["event_id"] for x in results[:20]] == [f"b{i}" for i in range(20)]
        assert results[22]["error"]["field"] == "meter_event.usage_units"
        assert "error" not in results[0]

        heads = set()
        for i in (0, 7, 39):
            b = finished(client, f"b{i}")
            heads.add(b["receipt"]["tree_head"]["signature"])
            assert_verifies(b, attester)
        assert len(heads) == 1  # one group commit, one signed head
        after = client.get("/api/vdi/billing/transparency/head").json()["tree_size"]
        assert after == before + 40

        again = client.post(EVENTS, json={"events": fresh[:3]}, headers=AUTH).json()
        assert [x["status"] for x in again["results"]] == ["same"] * 3


def test_batches_are_bounded_and_shaped(live: tuple[str, Attester]) -> None:
    base, _ = live
    with httpx.Client(base_url=base, timeout=60) as client:
        for body in ({"events": []}, {"events": [{}] * 1001}, {"event": []}, [1]):
            r = client.post(EVENTS, json=body, headers=AUTH)
            assert r.status_code == 422, body
            assert r.json()["detail"]["field"] == "events"
        assert client.post(EVENTS, json={"events": [{}]}).status_code == 401


# --- proving workers: separate processes, leases, kill -9 -------------------------------


def test_a_worker_killed_mid_proof_loses_nothing_another_proves_it(
    tmp_path: Path, pilot_request: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    needs_build()
    url = request.getfixturevalue("pg_url")
    attester = Attester.new(tmp_path / "attester.key")
    settings = Settings(
        home=tmp_path, attest_secret=SECRET, prover_workers=1, database_url=url, local_provers=0
    )
    events = [event(pilot_request, f"w{i}") for i in range(6)]
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=120) as client:
        r = client.post(EVENTS, json={"events": events}, headers=AUTH)
        assert [x["status"] for x in r.json()["results"]] == ["created"] * 6
        doomed = start_worker(tmp_path, url, "--lease", "3")
        try:
            for _ in range(1200):  # until it holds a claim, i.e. is proving
                if leased_to(url, doomed.pid):
                    break
                assert doomed.poll() is None, "the worker exited before claiming"
                time.sleep(0.05)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
        finally:
            if doomed.poll() is None:
                doomed.kill()
        assert leased_to(url, doomed.pid) >= 1  # a claim held by a dead worker

        rescuer = start_worker(tmp_path, url, "--lease", "3")
        try:
            bundles = [finished(client, f"w{i}") for i in range(6)]
        finally:
            rescuer.send_signal(signal.SIGTERM)
            rescuer.wait(timeout=120)
        assert rescuer.returncode == 0
        for b in bundles:
            assert_verifies(b, attester)
        head = client.get("/api/vdi/billing/transparency/head").json()
        assert head["tree_size"] == 6  # proving appended nothing to the log


def test_settlement_takes_only_proven_charges(tmp_path: Path) -> None:
    from support.store import LOG_KEY, fake_bundle
    from vbill.ledger.store import Charge, Ingest, Store

    store = Store(tmp_path / "db.sqlite3", log_key=LOG_KEY)
    store.add_tenant("t", 1, 2)
    store.record_deposit("0x" + "11" * 32, 0, "t", 10**18, 1)
    store.credit_confirmed(100)
    items = [
        Ingest("t", e, "h", Charge("ETH", 10), fake_bundle("t", e, 10, "ETH").model_dump(
            mode="json", exclude={"receipt", "settlement"}))
        for e in ("a", "b")
    ]  # fmt: skip
    results = store.ingest_many(items)
    assert all(created for _, created in results)  # type: ignore[misc]
    assert store.pending_settlements() == []  # both still proving
    assert store.attach_proof("t", "b", {"pi_a": ["1"]})
    assert not store.attach_proof("t", "b", {"pi_a": ["2"]})  # the first proof stands
    assert [b.event_id for b in store.pending_settlements()] == ["b"]
    assert store.balance("t").reserved_wei == 20 * 10**12  # reserved at ingestion, both


def test_another_process_closing_its_store_loses_nothing_written_here(tmp_path: Path) -> None:
    """A worker process opening and closing the SQLite store beside a running service must
    not checkpoint away the WAL the service still writes to (POSIX locks are per process)."""
    from support.store import LOG_KEY, attest
    from vbill.ledger.store import Store

    db = tmp_path / "db.sqlite3"
    here = Store(db, log_key=LOG_KEY)
    here.add_tenant("t", 1, 2)
    attest(here, "t", "before")
    peek = (
        "import sys; from vbill.ledger.store import Store; s = Store(sys.argv[1]); "
        "print(sorted(b.event_id for b in s.bundles())); s.close()"
    )
    run = [sys.executable, "-c", peek, str(db)]
    assert subprocess.run(run, capture_output=True, text=True, check=True).stdout.split()
    attest(here, "t", "after")  # written after the other process closed its connection
    seen = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert seen.strip() == "['after', 'before']"


@pytest.mark.parametrize("metered", [False, True], ids=["v1", "metered"])
@pytest.mark.parametrize("scheme", ["eip712", "eip712-v2"])
def test_the_direct_digest_is_the_eip712_digest(scheme: str, metered: bool) -> None:
    """bundle_digest's direct keccak path equals eth_account's typed-data encoder, for v1's
    BillingBundle and v2's MeteredBillingBundle (state keys), and a malformed member still
    goes to the encoder (which refuses it)."""
    import random

    from eth_account.messages import _hash_eip191_message, encode_typed_data
    from vbill.bindings import registry
    from vbill.bundle import attestation

    struct = registry.binding("metered_binding" if metered else "billing_binding").signed_as
    rng = random.Random(7)
    for _ in range(40):
        record = {
            "billing_version": "v2",
            "profileId": "P" * rng.randrange(40),
            "billing": {
                "billing_verify_fingerprint": rng.randbytes(32).hex(),
                "expected_charge_micros": rng.randrange(2**64),
            },
        }
        proof = {"vkey_sha256": rng.randbytes(32).hex(), "salt": "1", "proof": {"pi_a": ["1"]}}
        signals = {"commitment": rng.randrange(2**254), "nullifier": rng.randrange(2**254)}
        if metered:
            signals.update(prev_state_key=rng.randrange(2**254), state_key=rng.randrange(2**254))
        message = attestation.typed_message(record, proof, signals, scheme, signed_as=struct)
        expected = _hash_eip191_message(encode_typed_data(full_message=message))
        assert (
            attestation.bundle_digest(record, proof, signals, scheme, signed_as=struct) == expected
        )
    record["billing"]["billing_verify_fingerprint"] = "00" * 33
    with pytest.raises(Exception):  # noqa: B017 (whatever the encoder raises)
        attestation.bundle_digest(record, proof, signals, scheme, signed_as=struct)


def test_the_direct_signature_is_eth_accounts_signature() -> None:
    import random

    rng = random.Random(11)
    attester = Attester.generate()
    for _ in range(50):
        digest = rng.randbytes(32)
        ours = attester.sign_hash(digest)
        assert ours == "0x" + bytes(attester.account.unsafe_sign_hash(digest).signature).hex()
    with pytest.raises(ValueError):
        attester.sign_hash(b"\x00" * 31)
