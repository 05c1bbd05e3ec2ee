"""Exactly-once attest under concurrency, seen from every caller.

N callers ingest one event at once, through the one write path (`Ingestor`: validate, charge,
sign, log): across threads sharing one Store and one Ingestor (the service's shape), across
threads with a Store and Ingestor each and across processes (where only the database
transaction can decide). Every caller's outcome is collected, exceptions included: exactly one
creates the bundle, the N − 1 others get that same stored bundle back as a replay, and none
raises. No proof is needed: what is decided here is decided before any proving.

The racing cases force the race instead of hoping for it: the attester's first signature waits
on a barrier of all N callers, so each has passed the first "already attested?" look-up and
signed its own bundle (a fresh salt: a distinct digest) before any of them logs; only the
re-check inside the commit's transaction can then turn the losers into replays.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import DATA
from support.store import LOG_KEY, BarrierAttester, signing_only
from vbill.bundle.keys import Attester
from vbill.ingest import Ingestor
from vbill.ledger.store import Store

N = 6
TENANT, EVENT = "tenant_acme", "evt_pilot_001"  # the pilot request's
BARRIER_TIMEOUT = 120  # a broken barrier is a caller's error, reported, never a hang


@dataclass(frozen=True)
class Outcome:
    """What one caller saw: (created, digest, bundle) or the error it got."""

    created: bool | None = None
    digest: str | None = None
    bundle: dict[str, Any] | None = None
    error: str | None = None


def pilot() -> dict[str, Any]:
    return json.loads((DATA / "pilot_request.json").read_text())


def attest(ingestor: Ingestor) -> Outcome:
    try:
        [outcome] = ingestor.ingest([pilot()])
        stored = outcome.result()
    except BaseException as exc:  # every caller's failure is part of the result
        return Outcome(error=f"{type(exc).__name__}: {exc}")
    return Outcome(outcome.status == "created", stored.digest, stored.bundle)


def new_db(tmp_path: Path) -> Path:
    db = tmp_path / "vbill.sqlite3"
    Store(db, log_key=LOG_KEY).add_tenant(TENANT, 1, 2)
    return db


def assert_exactly_once(outcomes: list[Outcome], db: Path) -> None:
    assert len(outcomes) == N, outcomes
    errors = [o.error for o in outcomes if o.error is not None]
    assert errors == [], errors
    assert sum(bool(o.created) for o in outcomes) == 1, outcomes
    store = Store(db, log_key=LOG_KEY)
    stored = store.find(TENANT, EVENT)
    assert stored is not None
    assert {o.digest for o in outcomes} == {stored.digest}
    assert all(o.bundle == stored.bundle for o in outcomes)
    counts = store.counts()
    assert counts["bundles"] == 1 and counts["log_size"] == 1, counts


def run_threads(target: Callable[[int], Outcome]) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * N

    def go(i: int) -> None:
        outcomes[i] = target(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [o if o is not None else Outcome(error="thread returned nothing") for o in outcomes]


def test_threads_sharing_one_ingestor_log_once_and_all_get_the_bundle(tmp_path: Path) -> None:
    """The service's shape: one Store and one Ingestor, many request threads, all signed on
    the same look-up; the group committer logs one and answers the others with it (a replay
    within the same batch or of an earlier one)."""
    db = new_db(tmp_path)
    barrier = threading.Barrier(N, timeout=BARRIER_TIMEOUT)
    attester = BarrierAttester(Attester(LOG_KEY), barrier, waits=N)
    ingestor = Ingestor(Store(db, log_key=LOG_KEY), attester, signing_only())
    try:
        assert_exactly_once(run_threads(lambda _: attest(ingestor)), db)
    finally:
        ingestor.close()


def test_threads_with_a_store_each_race_inside_the_transaction(tmp_path: Path) -> None:
    db = new_db(tmp_path)
    barrier = threading.Barrier(N, timeout=BARRIER_TIMEOUT)
    ingestors = [
        Ingestor(Store(db, log_key=LOG_KEY), BarrierAttester(Attester(LOG_KEY), barrier),
                 signing_only())
        for _ in range(N)
    ]  # fmt: skip
    try:
        assert_exactly_once(run_threads(lambda i: attest(ingestors[i])), db)
    finally:
        for ingestor in ingestors:
            ingestor.close()


def _attest_in_process(db: str, all_signed: Any, results: Any) -> None:
    """One process: its own Store and Ingestor on the shared file (spawned: nothing
    inherited)."""
    try:
        attester = BarrierAttester(Attester(LOG_KEY), all_signed)
        ingestor = Ingestor(Store(Path(db), log_key=LOG_KEY), attester, signing_only())
    except BaseException as exc:  # opening the store failed
        results.put(Outcome(error=repr(exc)))
        return
    try:
        results.put(attest(ingestor))
    finally:
        ingestor.close()


def test_processes_race_inside_the_transaction(tmp_path: Path) -> None:
    db = new_db(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    all_signed = ctx.Barrier(N)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_attest_in_process, args=(str(db), all_signed, results))
        for _ in range(N)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * N
    assert_exactly_once(outcomes, db)
