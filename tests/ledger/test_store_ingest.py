"""Group commit in the store, event by event: what `ingest_many` logs, replays and leases.

The HTTP tests (test_ingest.py, test_ingest_metered.py) drive this through the service with
real proofs; here the bundles are wire-shaped dicts with placeholder proofs (the store logs
bundles, it does not judge them), so every edge is cheap to pin: an event twice in one batch,
an event of an earlier batch, a prover's lease, a metered window's next seq and a stale one
signed again from the head. The store run of `make mutants` on 2026-12-02 found all of these
alive in a selection without the metered HTTP tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.store import LOG_KEY, USD, fake_bundle
from vbill.errors import ToolError
from vbill.ledger import translog
from vbill.ledger.store import Ingest, IngestWindow, Store, WindowHead

WINDOW = ("acme", "2026-05", "tokens-v1")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "ingest.db", log_key=LOG_KEY)
    s.add_tenant("acme", account_salt=1, tenant_key=2)
    return s


def item(event: str, *, claim: tuple[str, int] | None = None, **fields: Any) -> Ingest:
    bundle = fake_bundle("acme", event).model_dump(mode="json", exclude_none=True)
    return Ingest("acme", event, f"hash-{event}", USD, bundle, claim=claim, **fields)


def metered(event: str, head: WindowHead | None, rebuilt: list[str] | None = None) -> Ingest:
    """A metered event signed on `head`; signing it again (on a moved head) is recorded."""
    seq = head.seq if head else 0
    plain = item(event)
    bundle = {**plain.bundle, "billing": {**plain.bundle["billing"]}}
    bundle["billing"]["window"] = {"seq": seq + 1, "after": {"tokens": 100 * (seq + 1)}}

    def rebuild(moved: WindowHead | None) -> Ingest:
        assert rebuilt is not None, f"{event} was signed again on an unmoved head"
        rebuilt.append(event)
        return metered(event, moved, rebuilt)

    return Ingest(
        "acme", event, f"hash-{event}", USD, bundle, window=IngestWindow(WINDOW, seq, rebuild)
    )


def verifies(stored: Any) -> bool:
    """The receipt places the bundle's digest in the log under a head the log key signed."""
    digest = bytes.fromhex(stored.digest[2:])
    return translog.verify_receipt(stored.bundle["receipt"], digest, [LOG_KEY.address])[0]


def test_an_event_twice_in_one_batch_is_one_leaf_and_the_replay_carries_its_bundle(store):
    (first, created), (again, created_again) = store.ingest_many([item("e1"), item("e1")])
    assert created and not created_again
    assert again.bundle == first.bundle and verifies(again)  # not the row's "{}" placeholder
    assert store.counts()["log_size"] == 1


def test_an_event_of_an_earlier_batch_is_a_replay_with_its_stored_bundle(store):
    [(first, _)] = store.ingest_many([item("e0"), item("e1")])[1:]
    (again, created), (other, other_created) = store.ingest_many([item("e1"), item("e2")])
    assert not created and other_created
    assert again.bundle == first.bundle and again.leaf_index == 1 and verifies(again)
    assert other.leaf_index == 2 and verifies(other)


def test_an_event_leased_to_its_prover_is_not_claimed_by_another_until_the_lease_ends(store):
    store.ingest_many([item("leased", claim=("prover-1", 600_000)), item("free")])
    claimed = store.claim_unproven("prover-2", lease_ms=1_000, limit=10)
    assert [s.event_id for s in claimed] == ["free"]
    row = store._conn().execute(
        "SELECT claimed_by, lease_until - created_at FROM bundles WHERE event_id = 'leased'"
    )
    assert tuple(row.fetchone()) == ("prover-1", 600_000)


def test_metered_events_take_consecutive_seqs_and_a_stale_one_is_signed_from_the_head(store):
    rebuilt: list[str] = []
    # both signed on the empty window: the second must be signed again on the first's head
    results = store.ingest_many([metered("m1", None, rebuilt), metered("m2", None, rebuilt)])
    assert [created for _, created in results] == [True, True]
    assert rebuilt == ["m2"]
    assert [b.bundle["billing"]["window"]["seq"] for b in store.window_bundles(WINDOW)] == [1, 2]
    assert store.window_head(WINDOW) == WindowHead(2, "m2", {"tokens": 200})
    [(m3, _)] = store.ingest_many([metered("m3", store.window_head(WINDOW))])  # up to date
    assert m3.bundle["billing"]["window"]["seq"] == 3 and rebuilt == ["m2"]


def test_a_bundle_whose_seq_is_not_the_heads_next_stores_nothing_of_its_batch(store):
    wrong = metered("m1", WindowHead(4, "m0", {}))  # says seq 5
    wrong = Ingest(**{**wrong.__dict__, "window": IngestWindow(WINDOW, 0, wrong.window.rebuild)})
    with pytest.raises(ToolError, match="bundle has seq 5, head is 0"):
        store.ingest_many([item("e1"), wrong])
    assert store.counts()["log_size"] == 0 and store.window_head(WINDOW) is None
    assert store.find("acme", "e1") is None


def test_a_worker_without_the_metered_key_leaves_metered_bundles_to_one_that_has_it(store):
    from vbill.ingest import ProvingWorker

    store.ingest_many([metered("m1", None), item("e1")])  # both `proving`, m1 first in the log
    linear_only = store.claim_unproven("v1-only", lease_ms=60_000, limit=10, metered=False)
    assert [s.event_id for s in linear_only] == ["e1"]
    # a real worker without binding v2's prover claims nothing it cannot prove: m1 stays free
    assert ProvingWorker(store, {}, name="v1-worker").run_once() == 0
    row = store._conn().execute("SELECT claimed_by FROM bundles WHERE event_id = 'm1'")
    assert row.fetchone()[0] is None
    assert [s.event_id for s in store.claim_unproven("v2", lease_ms=60_000)] == ["m1"]
