"""The store on PostgreSQL with several processes writing at once (API replicas on one
database): exactly one bundle per (tenant, event_id), one gap-free log whose every receipt
verifies under the latest head. The single-process behaviour is in test_store.py, which runs
against both backends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.store import LOG_KEY
from vbill.ledger import translog
from vbill.ledger.store import Store, open_store

TESTS = Path(__file__).parent


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    """A fresh database on the session's PostgreSQL server."""
    return request.getfixturevalue("pg_url")


def _writer(url: str, seed: int, events: int) -> subprocess.Popen[bytes]:
    """A process attesting the same events as the others, in its own order."""
    script = textwrap.dedent(
        f"""
        import random
        from support.store import attest, LOG_KEY
        from vbill.ledger.store import Store
        s = Store({url!r}, log_key=LOG_KEY)
        keys = [(f"tenant_{{i % 3}}", f"e{{i}}") for i in range({events})]
        random.Random({seed}).shuffle(keys)
        for tenant, event in keys:
            attest(s, tenant, event)
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS.parents[1] / "orchestrator")]),
    }
    return subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)


def test_processes_on_one_database_store_each_event_once_in_a_gap_free_log(url: str) -> None:
    store = open_store(url, log_key=LOG_KEY)
    for i in range(3):
        store.add_tenant(f"tenant_{i}", account_salt=100 + i, tenant_key=200 + i)
    events = 60
    procs = [_writer(url, seed, events) for seed in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()

    bundles = Store(url, log_key=LOG_KEY).bundles()
    assert len(bundles) == events
    assert len({(b.tenant_id, b.event_id) for b in bundles}) == events
    assert sorted(b.leaf_index for b in bundles) == list(range(events))  # no gap, no reuse
    head = store.head()
    assert head.tree_size == events and translog.verify_tree_head(head, [LOG_KEY.address])
    for b in bundles:
        ok, why = translog.verify_receipt(
            b.bundle["receipt"], bytes.fromhex(b.digest[2:]), [LOG_KEY.address]
        )
        assert ok, why
        proof = store.inclusion_proof(b.leaf_index, events)
        leaf = store.leaf_hash(b.leaf_index)
        assert translog.verify_inclusion(leaf, b.leaf_index, events, proof, head.head().root_hash)


def test_postgres_schema_keeps_the_checks_sqlite_has(url: str) -> None:
    """The rewritten DDL still refuses what SQLite refuses: amounts outside 0 ≤ v < 2^64,
    non-canonical decimals, unknown tenants."""
    import psycopg

    store = Store(url, log_key=LOG_KEY)
    store.add_tenant("t", 1, 2)
    for bad in ("18446744073709551616", "01", "-1", "1.5", ""):
        with psycopg.connect(url, autocommit=True) as conn:
            try:
                conn.execute(
                    "INSERT INTO limits (tenant_id, per_request_micros) VALUES ('t', %s)", (bad,)
                )
            except psycopg.errors.CheckViolation:
                continue
        raise AssertionError(f"{bad!r} was accepted as an amount")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO limits (tenant_id, per_request_micros) VALUES ('t', %s)",
            ("18446744073709551615",),
        )
    try:
        store.record_deposit("0x1", 0, "no_such_tenant", 1, 1)
    except psycopg.errors.ForeignKeyViolation:
        pass
    else:
        raise AssertionError("a deposit for an unknown tenant was stored")
