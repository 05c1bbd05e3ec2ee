"""Exactly-once attest under concurrency, seen from every caller.

N callers attest one event at once: across threads sharing one Store (the service's shape),
across threads with a Store each and across processes (where only the database transaction can
decide). Every caller's outcome is collected, exceptions included: exactly one creates the
bundle, the N − 1 others get that same stored bundle back as a replay, and none raises.

The racing cases force the race instead of hoping for it: `build` (the slow proof) waits on a
barrier of all N callers, so each has passed the first "already attested?" look-up before any
of them writes; only the re-check inside the write transaction can then turn the losers into
replays.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.store import LOG_KEY, USD, fake_bundle
from vbill.ledger.store import Store
from vbill.models import Bundle

N = 6
TENANT, EVENT = "t", "evt_race"
BARRIER_TIMEOUT = 120  # a broken barrier is a caller's error, reported, never a hang


@dataclass(frozen=True)
class Outcome:
    """What one caller saw: (created, digest, bundle) or the exception it got."""

    created: bool | None = None
    digest: str | None = None
    bundle: dict[str, Any] | None = None
    error: str | None = None


def unique_bundle() -> Bundle:
    """A bundle with a fresh digest per build (as real proofs and salts are random), so a
    replay that returned the caller's own build instead of the stored one would show."""
    b = fake_bundle(TENANT, EVENT)
    att = b.attestation.model_copy(update={"bundle_digest": "0x" + os.urandom(32).hex()})
    return b.model_copy(update={"attestation": att})


def attest(store: Store, build: Callable[[], Bundle]) -> Outcome:
    try:
        stored, created = store.attest_once(
            tenant_id=TENANT, event_id=EVENT, request_hash="same-payload", charge=USD, build=build
        )
    except BaseException as exc:  # every caller's failure is part of the result
        return Outcome(error=f"{type(exc).__name__}: {exc}")
    return Outcome(created, stored.digest, stored.bundle)


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


def test_threads_sharing_one_store_build_once_and_all_get_the_bundle(tmp_path: Path) -> None:
    """The service's shape: one Store, many request threads; the per-event lock makes the
    duplicates wait, so the proof is built once."""
    db = new_db(tmp_path)
    store = Store(db, log_key=LOG_KEY)
    start = threading.Barrier(N, timeout=BARRIER_TIMEOUT)
    builds: list[int] = []

    def build() -> Bundle:
        builds.append(1)
        return unique_bundle()

    def caller(_: int) -> Outcome:
        try:
            start.wait()
        except threading.BrokenBarrierError as exc:
            return Outcome(error=repr(exc))
        return attest(store, build)

    assert_exactly_once(run_threads(caller), db)
    assert len(builds) == 1


def test_threads_with_a_store_each_race_inside_the_transaction(tmp_path: Path) -> None:
    db = new_db(tmp_path)
    stores = [Store(db, log_key=LOG_KEY) for _ in range(N)]
    all_built = threading.Barrier(N, timeout=BARRIER_TIMEOUT)

    def build() -> Bundle:
        all_built.wait()  # every caller has passed the look-up before anyone writes
        return unique_bundle()

    assert_exactly_once(run_threads(lambda i: attest(stores[i], build)), db)


def _attest_in_process(db: str, all_built: Any, results: Any) -> None:
    """One process: its own Store on the shared file (spawned: nothing inherited)."""

    def build() -> Bundle:
        all_built.wait(BARRIER_TIMEOUT)
        return unique_bundle()

    try:
        outcome = attest(Store(Path(db), log_key=LOG_KEY), build)
    except BaseException as exc:  # opening the store failed
        outcome = Outcome(error=repr(exc))
    results.put(outcome)


def test_processes_race_inside_the_transaction(tmp_path: Path) -> None:
    db = new_db(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    all_built = ctx.Barrier(N)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_attest_in_process, args=(str(db), all_built, results)) for _ in range(N)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * N
    assert_exactly_once(outcomes, db)
