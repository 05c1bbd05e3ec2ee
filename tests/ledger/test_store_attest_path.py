"""The rest of the store's attest path, each piece at its edge: the per-event lock that makes a
duplicate wait, the attester key's refusals (revoked, or retired from an instant on), the
one-way attach of an asynchronous proof, and the in-memory log tree re-synced to the rows.

The store run of `make mutants` on 2026-12-02 found these alive: only HTTP tests reached
them, or none did. SQLite only: the logic is Python (test_store.py covers both databases).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from support.store import LOG_KEY, attest
from vbill.errors import InputError
from vbill.ledger import translog
from vbill.ledger.store import Store

ADDRESS = "0x" + "Ab" * 20
VKEY = "Cd" * 32  # a vkey is named by its bare hex SHA-256
RETIRED_AT = 1_780_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "attest-path.db", log_key=LOG_KEY)
    s.add_tenant("acme", account_salt=1, tenant_key=2)
    return s


# --- the per-event lock ---


def test_the_event_lock_serialises_a_duplicate_and_leaves_no_lock_behind(store: Store):
    key = ("acme", "e1")
    entered, errors = threading.Event(), []

    def second() -> None:
        try:
            with store._locks.hold(key):
                entered.set()
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    with store._locks.hold(key):
        waiter = threading.Thread(target=second)
        waiter.start()
        deadline = time.monotonic() + 10
        while store._locks.held[key][1] < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert store._locks.held[key][1] == 2  # both hold a claim on one lock
        assert not entered.wait(0.2)  # the duplicate waits while the first is inside
    waiter.join(10)
    assert entered.is_set() and errors == []
    assert store._locks.held == {}  # the last one out removes the lock: none leak per event


def test_a_lock_of_another_event_does_not_wait(store: Store):
    def other() -> None:
        with store._locks.hold(("acme", "e2")):
            pass

    with store._locks.hold(("acme", "e1")):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(5)
        assert not thread.is_alive()  # e2 went in and out while e1 was held
    assert store._locks.held == {}


# --- the attester key's refusals ---


def test_a_revoked_attester_is_refused_whatever_the_case_of_its_address(store: Store):
    assert store.signing_refusal(ADDRESS) is None
    store.revoke("attester", ADDRESS.upper().replace("0X", "0x"), "leaked")
    assert store.revocations()[0]["value"] == ADDRESS.lower()  # kept as it is matched
    assert store.signing_refusal(ADDRESS) == f"attester key {ADDRESS} is revoked"
    assert store.signing_refusal(ADDRESS.lower()) == f"attester key {ADDRESS.lower()} is revoked"
    store.revoke("vkey", VKEY, "leaked")  # a vkey revocation is not an attester's
    assert store.signing_refusal("0x" + "11" * 20) is None


@pytest.mark.parametrize(
    ("kind", "value", "field", "message"),
    [
        ("attester", "0x1234", "value", "an attester revocation must name a 0x address"),
        ("attester", VKEY, "value", "an attester revocation must name a 0x address"),
        ("vkey", ADDRESS, "value", "a vkey revocation must name a hex SHA-256"),
        ("signer", ADDRESS, "kind", "must be 'attester' or 'vkey', not 'signer'"),
    ],
)
def test_a_revocation_that_could_never_match_is_refused_by_name(store, kind, value, field, message):
    with pytest.raises(InputError) as info:
        store.revoke(kind, value, "typo")
    assert (info.value.field, info.value.message) == (field, message)
    assert store.revocations() == []


def test_a_retired_attester_is_refused_from_its_instant_on_and_the_first_retirement_stands(
    store: Store,
):
    store.retire(ADDRESS.upper().replace("0X", "0x"), RETIRED_AT, "rotated")
    assert store.signing_refusal(ADDRESS, at_ms=RETIRED_AT - 1) is None  # signed before
    refusal = f"attester key {ADDRESS} is retired (since {RETIRED_AT} ms)"
    assert store.signing_refusal(ADDRESS, at_ms=RETIRED_AT) == refusal  # the instant itself
    assert store.signing_refusal(ADDRESS) == refusal  # now (long after) by default
    store.retire(ADDRESS, RETIRED_AT + 10**6, "again")
    assert store.signing_refusal(ADDRESS, at_ms=RETIRED_AT) == refusal
    assert [r["retired_at"] for r in store.retirements()] == [RETIRED_AT]


def test_a_key_retired_in_the_future_still_signs_now(store: Store):
    later = int(time.time() * 1000) + 3_600_000
    store.retire(ADDRESS, later, "scheduled rotation")
    assert store.signing_refusal(ADDRESS) is None
    assert store.signing_refusal(ADDRESS, at_ms=later) is not None


# --- the asynchronous proof ---


def _proving(store: Store, event: str) -> None:
    """An event logged without its proof, as ingestion leaves it for a worker."""
    attest(store, "acme", event)
    store._conn().execute(
        "UPDATE bundles SET proof_status = 'proving' WHERE event_id = ?", (event,)
    )
    assert not store.find("acme", event).proven


def test_a_proof_attaches_once_and_the_first_one_stands(store: Store):
    _proving(store, "e1")
    first = {"pi_a": ["1", "2", "1"], "pi_b": [], "pi_c": [], "protocol": "groth16"}
    assert store.attach_proof("acme", "e1", first) is True
    stored = store.find("acme", "e1")
    assert stored.proven and stored.bundle["attestation"]["billing_proof"]["proof"] == first
    assert store.unproven_count() == 0
    assert store.attach_proof("acme", "e1", {**first, "pi_a": ["9", "9", "1"]}) is False
    assert store.find("acme", "e1").bundle["attestation"]["billing_proof"]["proof"] == first


def test_a_proof_for_an_unknown_event_attaches_nowhere(store: Store):
    assert store.attach_proof("acme", "never-logged", {"pi_a": []}) is False
    assert store.bundles() == []


# --- the log tree in memory ---


def test_a_leaf_the_database_never_committed_is_dropped_before_the_next_append(store: Store):
    store._log.tree.append(translog.leaf_hash(b"\x01" * 32))  # e.g. a COMMIT that failed after
    stored, _ = attest(store, "acme", "e1")
    assert stored.leaf_index == 0
    receipt = stored.bundle["receipt"]
    assert receipt["tree_size"] == 1
    digest = bytes.fromhex(stored.digest[2:])
    assert translog.verify_receipt(receipt, digest, [LOG_KEY.address]) == (True, "ok")
    assert store.head().root_hash == receipt["tree_head"]["root_hash"]


def test_leaves_another_process_appended_are_read_before_this_one_appends(tmp_path: Path):
    a = Store(tmp_path / "two.db", log_key=LOG_KEY)
    a.add_tenant("acme", account_salt=1, tenant_key=2)
    b = Store(tmp_path / "two.db", log_key=LOG_KEY)  # its tree is read now: empty
    attest(a, "acme", "e1")
    attest(a, "acme", "e2")
    stored, _ = attest(b, "acme", "e3")
    assert stored.leaf_index == 2 and stored.bundle["receipt"]["tree_size"] == 3
    roots = {s.head().root_hash for s in (a, b)}
    assert len(roots) == 1
    leaves = [bytes.fromhex(x.bundle["receipt"]["leaf_hash"][2:]) for x in a.bundles()]
    assert roots == {"0x" + translog.root(leaves).hex()}
