"""The store, on SQLite and on a real PostgreSQL server: exactly-once attest, atomic log
appends, balances, limits and migrations.

Bundles here are well-formed wire objects with distinct digests but placeholder proofs: the
store persists and logs bundles, it does not judge them (verify does, in test_verify.py and
the service tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from support.store import LOG_KEY, USD, attest, eth, fake_bundle, fund, usage_receipt
from vbill.errors import ToolError
from vbill.ledger import schema, translog
from vbill.ledger.store import (
    WEI_PER_MICRO,
    Conflict,
    Ingest,
    LimitExceeded,
    Limits,
    Store,
    open_store,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a store lives: a SQLite file, or a fresh database on the session's PostgreSQL."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return tmp_path / "vbill.sqlite3"


@pytest.fixture
def store(where: Path | str) -> Store:
    s = Store(where, log_key=LOG_KEY)
    for i in range(5):
        s.add_tenant(f"tenant_{i}", account_salt=100 + i, tenant_key=200 + i)
    return s


# --- idempotency and conflicts ---


def test_same_event_with_different_payload_is_a_conflict_and_stores_nothing(store: Store) -> None:
    attest(store, "tenant_0", "e1", "payload-a")
    with pytest.raises(Conflict, match="different payload"):
        attest(store, "tenant_0", "e1", "payload-b")
    assert store.counts()["bundles"] == 1
    assert store.counts()["log_size"] == 1


def test_same_event_same_payload_returns_the_stored_bundle_not_the_new_one(
    store: Store,
) -> None:
    first, created = attest(store, "tenant_0", "e1")
    other = fake_bundle("tenant_0", "e1", charge=USD.charge_micros + 1)  # another digest
    [(again, created_again)] = store.ingest_many(
        [Ingest("tenant_0", "e1", "p", USD, other.model_dump(mode="json"), proven=True)]
    )
    assert created and not created_again
    assert again.bundle == first.bundle and again.leaf_index == 0
    assert store.counts()["bundles"] == 1 and store.counts()["log_size"] == 1


def test_concurrent_duplicates_yield_exactly_one_bundle(where: Path | str) -> None:
    # Two Store objects on one database behave like two processes: the DB decides, not a lock.
    a = Store(where, log_key=LOG_KEY)
    b = Store(where, log_key=LOG_KEY)
    a.add_tenant("t", 1, 2)
    results: list[tuple[Any, bool]] = []
    barrier = threading.Barrier(8)

    def go(s: Store) -> None:
        barrier.wait()
        results.append(attest(s, "t", "dup"))

    threads = [threading.Thread(target=go, args=(a if i % 2 else b,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created for _, created in results) == 1
    assert len({r.digest for r, _ in results}) == 1
    assert a.counts()["bundles"] == 1 and a.counts()["log_size"] == 1


# --- crash safety ---


def test_failure_inside_the_transaction_leaves_no_leaf_and_no_bundle(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(translog, "sign_tree_head", boom)
    with pytest.raises(RuntimeError):
        attest(store, "tenant_0", "e1")
    monkeypatch.undo()
    assert store.counts()["log_size"] == 0 and store.find("tenant_0", "e1") is None
    stored, _ = attest(store, "tenant_0", "e1")
    assert stored.leaf_index == 0  # the index was not burnt


def test_process_killed_mid_attest_leaves_nothing_half_written(where: Path | str) -> None:
    db = where
    Store(db, log_key=LOG_KEY).add_tenant("t", 1, 2)
    script = textwrap.dedent(
        f"""
        import os
        from support.store import attest, LOG_KEY
        from vbill.ledger import translog
        from vbill.ledger.store import Store
        def die(*a, **k):
            os._exit(9)  # the leaf row is written, the bundle not yet: a real crash
        translog.sign_tree_head = die
        attest(Store({str(db)!r}, log_key=LOG_KEY), "t", "e1")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    after = Store(db, log_key=LOG_KEY)
    assert after.counts()["log_size"] == 0 and after.counts()["bundles"] == 0
    stored, created = attest(after, "t", "e1")
    assert created and stored.leaf_index == 0


# --- the log ---


def test_every_receipt_and_head_verifies_and_heads_are_consistent(store: Store) -> None:
    stored = [attest(store, f"tenant_{i % 5}", f"e{i}")[0] for i in range(13)]
    for s in stored:
        ok, why = translog.verify_receipt(
            s.bundle["receipt"], bytes.fromhex(s.digest[2:]), [LOG_KEY.address]
        )
        assert ok, why
    assert not translog.verify_receipt(
        stored[3].bundle["receipt"], bytes.fromhex(stored[4].digest[2:]), [LOG_KEY.address]
    )[0]
    head = store.head()
    assert head.tree_size == 13 and translog.verify_tree_head(head, [LOG_KEY.address])
    for old in range(1, 13):
        old_head = store.head_at(old)
        assert old_head is not None
        proof = store.consistency_proof(old, 13)
        assert translog.verify_consistency(
            old, 13, proof, old_head.head().root_hash, head.head().root_hash
        )
    # a later inclusion proof for an early leaf, against the latest head
    proof = store.inclusion_proof(2, 13)
    assert translog.verify_inclusion(store.leaf_hash(2), 2, 13, proof, head.head().root_hash)


def test_reopened_store_continues_the_same_log(where: Path | str) -> None:
    s = Store(where, log_key=LOG_KEY)
    s.add_tenant("t", 1, 2)
    for i in range(3):
        attest(s, "t", f"e{i}")
    root = s.head().root_hash
    s2 = Store(where, log_key=LOG_KEY)
    assert s2.head().root_hash == root
    assert attest(s2, "t", "e3")[0].leaf_index == 3


def test_empty_log_has_a_signed_head_of_size_zero(store: Store) -> None:
    head = store.head()
    assert head.tree_size == 0 and head.root_hash == "0x" + translog.EMPTY_ROOT.hex()
    assert translog.verify_tree_head(head, [LOG_KEY.address])


# --- money ---


def test_eth_attest_without_balance_is_refused_and_stores_nothing(store: Store) -> None:
    with pytest.raises(LimitExceeded, match="available balance") as err:
        attest(store, "tenant_0", "e1", charge=eth(1000))
    assert err.value.retry_after > 0
    assert store.counts()["bundles"] == 0


def test_deposit_counts_only_after_twelve_confirmations(store: Store) -> None:
    store.record_deposit("0xabc", 0, "tenant_0", 10**16, block_number=10)
    assert store.credit_confirmed(head_block=20) == 0  # 11 confirmations
    assert store.balance("tenant_0").total_wei == 0
    assert store.balance("tenant_0").pending_deposits_wei == 10**16
    assert store.credit_confirmed(head_block=21) == 1  # 12 confirmations
    assert store.balance("tenant_0").total_wei == 10**16
    assert not store.record_deposit("0xABC", 0, "tenant_0", 10**16, 10)  # seen once only


def test_per_request_and_daily_limits_refuse_with_reasons(store: Store) -> None:
    fund(store, "tenant_0", 10**18)
    store.set_limits("tenant_0", Limits(per_request_micros=5000, daily_micros=8000))
    with pytest.raises(LimitExceeded, match="per-request"):
        attest(store, "tenant_0", "big", charge=eth(5001))
    attest(store, "tenant_0", "a", charge=eth(5000))
    with pytest.raises(LimitExceeded, match="daily") as err:
        attest(store, "tenant_0", "b", charge=eth(3001))
    assert 0 < err.value.retry_after <= 86_401
    attest(store, "tenant_0", "c", charge=eth(3000))
    attest(store, "tenant_0", "usd", charge=USD)  # other currencies are not metered
    assert store.spent_today_micros("tenant_0") == 8000


def test_attest_reserves_settlement_debits_failure_releases(store: Store) -> None:
    fund(store, "tenant_1", 10 * WEI_PER_MICRO * 1000)  # 10,000 micros
    attest(store, "tenant_1", "a", charge=eth(4000))
    attest(store, "tenant_1", "b", charge=eth(4000))
    bal = store.balance("tenant_1")
    assert (bal.total_wei, bal.reserved_wei) == (10_000 * WEI_PER_MICRO, 8000 * WEI_PER_MICRO)
    with pytest.raises(LimitExceeded, match="available balance"):
        attest(store, "tenant_1", "c", charge=eth(2001))
    receipt = usage_receipt("0.004")
    assert store.mark_settled("tenant_1", "a", receipt)
    assert not store.mark_settled("tenant_1", "a", receipt)  # idempotent
    assert store.find("tenant_1", "a").bundle["settlement"] == receipt
    store.mark_failed("tenant_1", "b", "tariff not accepted on chain")
    bal = store.balance("tenant_1")
    assert (bal.total_wei, bal.reserved_wei) == (6000 * WEI_PER_MICRO, 0)
    assert bal.available_wei == 6000 * WEI_PER_MICRO
    assert [b.event_id for b in store.pending_settlements()] == []


def test_pending_settlements_come_in_log_order_only_for_eth_and_rotate_refused_ones(
    store: Store,
) -> None:
    fund(store, "tenant_2", 10**18)
    attest(store, "tenant_2", "usd", charge=USD)
    for e in ("x", "y", "z"):
        attest(store, "tenant_2", e, charge=eth(10))
    assert [b.event_id for b in store.pending_settlements(limit=2)] == ["x", "y"]
    store.note_settle_error([("tenant_2", "x")], "tariff not accepted")
    x = store.find("tenant_2", "x")
    assert x.settlement_status == "pending" and x.settle_attempts == 1
    # a bundle the chain keeps refusing goes to the back: it cannot block the others
    assert [b.event_id for b in store.pending_settlements(limit=2)] == ["y", "z"]


# --- schema and configuration ---


def test_newer_schema_is_refused(where: Path | str) -> None:
    s = Store(where)
    with s._tx() as c:
        c.execute("UPDATE alembic_version SET version_num = 'f00d'")
    with pytest.raises(ToolError, match="revision f00d, newer than this vbill"):
        Store(where)


def test_schema_is_migrated_once_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite3")
    Store(tmp_path / "db.sqlite3")
    assert s.schema_version() == schema.HEAD
    conn = s._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(Exception, match="FOREIGN KEY"):
        s.record_deposit("0x1", 0, "no_such_tenant", 1, 1)


def test_unknown_database_urls_are_environment_errors(tmp_path: Path, monkeypatch) -> None:
    from vbill.chain.anvil import free_port

    monkeypatch.chdir(tmp_path)  # a URL misread as a relative SQLite path must land here

    with pytest.raises(ToolError, match="cannot connect to PostgreSQL"):
        open_store(f"postgresql://vbill@127.0.0.1:{free_port()}/vbill")
    with pytest.raises(ToolError, match="unsupported"):
        open_store("mysql://x")
    s = open_store(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert s.schema_version() == schema.HEAD
