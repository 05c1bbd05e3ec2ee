"""Two API replicas and two proving workers, each its own process, on one real PostgreSQL
server, over real sockets: the multi-replica deployment of docs/operations.md.

Under concurrent load (single events with `Prefer: respond-async` and batches, the same event
ids sent to both replicas and twice to one at once) there is exactly one bundle per (tenant,
event), every replay answers that bundle, and every head any replica served is a prefix of one
gap-free log. Every bundle is then proven by the workers and verifies. `kill -9` of a worker
holding a lease and of a replica inside a 1,000-event batch loses and duplicates nothing: the
lease runs out and the other worker proves; the client retries the batch on the other replica.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from support import needs_build
from support.http_server import ATTEST
from support.ingest import ASYNC, EVENTS, assert_verifies, event, leased_to, start_worker
from support.servicekit import AUTH, Served
from vbill.bundle.keys import Attester
from vbill.ledger import translog
from vbill.verify.verify import default_check

LEASE_S = "2"  # a dead worker's claim is taken over after this long
HEAD = "/api/vdi/billing/transparency/head"
PAIRING = default_check()  # native pairing: the py_ecc reference takes seconds per proof


@dataclass
class Cluster:
    """The processes of one deployment: replicas and workers share DATABASE_URL and VBILL_HOME
    (one attester key, one attest secret)."""

    home: Path
    url: str
    attester: Attester
    replicas: list[Served] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def db(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params or None).fetchall()

    def proving(self) -> int:
        return int(self.db("SELECT COUNT(*) FROM bundles WHERE proof_status = 'proving'")[0][0])


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    needs_build()
    url = request.getfixturevalue("pg_url")
    c = Cluster(tmp_path, url, Attester.new(tmp_path / "attester.key"))
    try:
        for i in range(2):
            c.replicas.append(
                Served(tmp_path, "--local-workers", "0", env={"DATABASE_URL": url},
                       log=f"replica{i}.log")
            )  # fmt: skip
        c.workers = [start_worker(tmp_path, url, "--lease", LEASE_S) for _ in range(2)]
        yield c
    finally:
        for w in c.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in c.workers:
            w.wait(timeout=120)
        for r in c.replicas:
            r.stop()


def _wait_proven(c: Cluster) -> None:
    """Until no bundle awaits its proof (a bound on polls, no clock in any assertion)."""
    for _ in range(3000):
        if c.proving() == 0:
            return
        assert any(w.poll() is None for w in c.workers), "every worker exited"
        time.sleep(0.1)
    raise AssertionError(f"{c.proving()} bundles never left `proving`")


def _check_log(c: Cluster, clients: list[httpx.Client], heads: list[dict[str, Any]]) -> int:
    """One gap-free log holding each bundle once; every head seen is a prefix of the latest
    one, whichever replica served either. Returns the log size."""
    leaves = [r[0] for r in c.db("SELECT leaf_index FROM log_leaves ORDER BY leaf_index")]
    rows = c.db("SELECT tenant_id, event_id, leaf_index FROM bundles ORDER BY leaf_index")
    n = len(leaves)
    assert leaves == list(range(n))
    assert [r[2] for r in rows] == leaves  # every leaf is one bundle, every bundle one leaf
    assert len({(r[0], r[1]) for r in rows}) == n
    final = [cl.get(HEAD).json() for cl in clients]
    assert final[0] == final[1] and final[0]["tree_size"] == n
    root = bytes.fromhex(final[0]["root_hash"][2:])
    for i, h in enumerate(heads):
        assert translog.verify_tree_head(h, [c.attester.address])
        proof = (
            clients[i % 2]
            .get(
                "/api/vdi/billing/transparency/consistency",
                params={"first": h["tree_size"], "second": n},
            )
            .json()["proof"]
        )
        ok = translog.verify_consistency(
            h["tree_size"], n, [bytes.fromhex(p[2:]) for p in proof],
            bytes.fromhex(h["root_hash"][2:]), root,
        )  # fmt: skip
        assert ok, f"head {h['tree_size']} is not a prefix of head {n}"
    return n


def _unique_heads(bundles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({b["receipt"]["tree_head"]["signature"]: b["receipt"]["tree_head"]
                 for b in bundles}.values())  # fmt: skip


def test_two_replicas_two_workers_one_log_one_bundle_per_event_and_kill_9(
    cluster: Cluster, pilot_request: dict[str, Any]
) -> None:
    c = cluster
    clients = [httpx.Client(base_url=r.url, timeout=300, headers=AUTH) for r in c.replicas]
    tenants = [f"rep_t{i}" for i in range(3)]  # new: their accounts are created in the race

    def ev(eid: str) -> dict[str, Any]:
        i = int(eid.rsplit("_", 1)[1])
        return event(pilot_request, eid, tenant_id=tenants[i % 3], usage_units=1000 + i)

    singles = [f"s_{i}" for i in range(12)]
    batches = [[f"b{j}_{i}" for i in range(8)] for j in range(2)]
    batches.append([*singles[:4], *batches[0][:2], "x_0", "x_1"])  # overlapping the others
    every = {*singles, *(e for b in batches for e in b)}

    # --- phase 1: concurrent load on both replicas --------------------------------------
    tasks: list[tuple[int, str | list[str]]] = []
    for k, eid in enumerate(singles):  # each to both replicas, and a second time to one
        tasks += [(0, eid), (1, eid), (k % 2, eid)]
    for b in batches:
        tasks += [(0, b), (1, b)]
    random.Random(12).shuffle(tasks)
    seen_heads: list[dict[str, Any]] = []
    statuses: dict[str, list[str]] = defaultdict(list)
    bodies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    lock = threading.Lock()
    loading = threading.Event()

    def send(task: tuple[int, str | list[str]]) -> None:
        replica, what = task
        if isinstance(what, str):
            r = clients[replica].post(ATTEST, json=ev(what), headers=ASYNC)
            assert r.status_code in (200, 202), r.text
            created = r.headers["x-vdi-replay"] == "false"
            with lock:
                statuses[what].append("created" if created else "same")
                bodies[what].append(r.json())
        else:
            r = clients[replica].post(EVENTS, json={"events": [ev(e) for e in what]})
            assert r.status_code == 200, r.text
            results = r.json()["results"]
            assert [x["event_id"] for x in results] == what
            with lock:
                for x in results:
                    statuses[x["event_id"]].append(x["status"])

    def watch_heads() -> None:
        i = 0
        while not loading.is_set():
            seen_heads.append(clients[i % 2].get(HEAD).json())
            i += 1

    watcher = threading.Thread(target=watch_heads)
    watcher.start()
    try:
        with ThreadPoolExecutor(12) as pool:
            list(pool.map(send, tasks))
    finally:
        loading.set()
        watcher.join()

    assert set(statuses) == every
    for eid, got in statuses.items():  # exactly one creation; everything else a replay
        assert Counter(got) == {"created": 1, "same": len(got) - 1}, (eid, got)
    for eid, got in bodies.items():  # every answer names the same signed, logged bundle
        assert len({b["attestation"]["bundle_digest"] for b in got}) == 1, eid
        assert all(b["receipt"] == got[0]["receipt"] for b in got), eid

    _wait_proven(c)
    finished = {}
    for k, eid in enumerate(sorted(every)):
        a, b = (cl.get(f"/api/vdi/billing/bundles/{eid}").json() for cl in clients)
        assert a == b and "status" not in a  # proven, and the same bundle on both replicas
        assert_verifies(a, c.attester, PAIRING)
        if eid in bodies:
            early = bodies[eid][0]
            assert a["receipt"] == early["receipt"]
            assert a["attestation"]["bundle_digest"] == early["attestation"]["bundle_digest"]
        replay = clients[k % 2].post(ATTEST, json=ev(eid))  # the pilot's call: no header
        assert replay.status_code == 200 and replay.headers["x-vdi-replay"] == "true"
        assert replay.json() == a
        finished[eid] = a
    receipt_heads = _unique_heads(list(finished.values()))
    assert _check_log(c, clients, seen_heads + receipt_heads) == len(every)

    # --- phase 2: kill -9 a worker holding a lease --------------------------------------
    kills = [f"k_{i}" for i in range(6)]
    r = clients[0].post(EVENTS, json={"events": [ev(e) for e in kills]})
    assert [x["status"] for x in r.json()["results"]] == ["created"] * 6
    held: list[tuple[Any, ...]] = []
    for _ in range(6000):  # until a worker holds a claim, i.e. is proving
        doomed = next((w for w in c.workers if leased_to(c.url, w.pid)), None)
        if doomed is not None:
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
            held = c.db(
                "SELECT event_id FROM bundles WHERE proof_status = 'proving' AND "
                "claimed_by LIKE %s", f"%:{doomed.pid}:%",
            )  # fmt: skip
            if held:
                break
            # it attached its proof between our look and the kill: another worker, again
            c.workers[c.workers.index(doomed)] = start_worker(c.home, c.url, "--lease", LEASE_S)
        assert c.proving(), "every proof was attached before a worker could be killed"
        time.sleep(0.02)
    assert held, "no worker was ever seen holding a lease"
    _wait_proven(c)  # the survivor takes the dead worker's claim once its lease runs out
    for eid in kills:
        b = clients[1].get(f"/api/vdi/billing/bundles/{eid}").json()
        assert_verifies(b, c.attester, PAIRING)
    for w in c.workers:  # no proving in phase 3: a thousand proofs would take minutes here
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
            assert w.wait(timeout=120) == 0

    # --- phase 3: kill -9 a replica inside a 1,000-event batch --------------------------
    big = [ev(f"m_{i}") for i in range(1000)]
    outcome: dict[str, Any] = {}

    def post_big() -> None:
        try:
            outcome["response"] = clients[0].post(EVENTS, json={"events": big})
        except httpx.TransportError as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=post_big)
    sender.start()
    for _ in range(6000):  # until the batch's transaction is appending leaves
        active = c.db(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE state <> 'idle' AND "
            "query LIKE 'INSERT INTO log_leaves%%'"
        )[0][0]
        if active or "response" in outcome:
            break
        time.sleep(0.01)
    os.killpg(c.replicas[0].proc.pid, signal.SIGKILL)
    c.replicas[0].proc.wait()
    sender.join()
    assert "error" in outcome, "the replica answered before it was killed"
    retry = clients[1].post(EVENTS, json={"events": big})
    assert retry.status_code == 200, retry.text
    got = Counter(x["status"] for x in retry.json()["results"])
    assert set(got) <= {"created", "same"} and sum(got.values()) == 1000, got

    total = len(every) + len(kills) + 1000
    rows = c.db("SELECT event_id, bundle_json FROM bundles WHERE event_id LIKE 'm\\_%%'")
    assert len(rows) == 1000
    for eid, text in rows[::50]:  # receipts of the retried batch, under one signed head
        bundle = json.loads(text)
        digest = bytes.fromhex(bundle["attestation"]["bundle_digest"][2:])
        ok, why = translog.verify_receipt(bundle["receipt"], digest, [c.attester.address])
        assert ok, (eid, why)
    survivors = [clients[1], clients[1]]
    assert _check_log(c, survivors, seen_heads + receipt_heads) == total
    for cl in clients:
        cl.close()


def test_an_event_twice_in_one_group_commit_replays_the_bundle_it_created(tmp_path: Path) -> None:
    """Concurrent requests for one event can share a group commit: the second is a replay of
    the first, answered with its signed, logged bundle (not the row's placeholder)."""
    from support.store import LOG_KEY, fake_bundle
    from vbill.ledger.store import Charge, Ingest, Store

    store = Store(tmp_path / "db.sqlite3", log_key=LOG_KEY)
    store.add_tenant("t", 1, 2)
    signed = fake_bundle("t", "e", 10, "USD").model_dump(
        mode="json", exclude={"receipt", "settlement"}
    )
    item = Ingest("t", "e", "h", Charge("USD", 10), signed)
    (first, created), (again, replayed) = store.ingest_many([item, item])  # type: ignore[misc]
    assert created and not replayed
    assert again.bundle == first.bundle and again.bundle["receipt"]["leaf_index"] == 0
    assert store.find("t", "e").bundle == first.bundle  # type: ignore[union-attr]
