"""Webhooks and metrics of the running service, over real sockets.

- A tenant crossing 80 % of its daily limit: `usage.threshold_reached` is in the outbox before
  the first 429, once, and reaches a receiver signed so that the documented helper verifies it.
- Endpoints over HTTP with the operator secret: the secret only in the answers that make it.
- `GET /metrics` parses with prometheus_client's own parser and names no tenant or event.
- `kill -9` of `vbill serve` after the event's commit, before its delivery: the next process
  delivers it; a separate `vbill worker --metrics-port` counts the proofs it makes.
- Two replicas on one PostgreSQL deliver each of a steady run's events once, in order.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import needs_build
from support.http_server import AUTH, SECRET, over_socket
from support.servicekit import VBILL, Served
from support.webhook_receiver import Receiver
from vbill.bundle.keys import Attester
from vbill.chain.anvil import free_port
from vbill.ledger.outbox import Outbox
from vbill.ledger.store import DB_NAME, WEI_PER_MICRO, Limits, Store, now_ms, open_store
from vbill.service import Settings, create_app

ATTEST = "/api/vdi/billing/attest"
ASYNC = {**AUTH, "Prefer": "respond-async"}
HOOKS = "/api/vdi/webhooks"
CHARGE = 221_040  # micros: the pilot's ETH charge
TENANT = "t_hooks"


def eth_event(pilot: dict[str, Any], tenant: str, event_id: str) -> dict[str, Any]:
    r = copy.deepcopy(pilot)
    r["meter_event"].update(tenant_id=tenant, event_id=event_id)
    r["tariff_snapshot"]["currency"] = "ETH"
    return r


def fund(store: Store, tenant: str, daily: int | None) -> None:
    """A tenant with 10 ETH credited (as the settlement worker would) and a daily limit."""
    store.record_deposit("0x" + tenant.encode().hex().ljust(64, "0"), 0, tenant, 10**19, 1)
    store.credit_confirmed(100)
    store.set_limits(tenant, Limits(None, daily))


def thresholds(store: Store) -> list[dict[str, Any]]:
    return [r for r in Outbox(store).rows() if r["event_type"] == "usage.threshold_reached"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Any, Receiver]]:
    needs_build()
    home = tmp_path_factory.mktemp("hooks-home")
    Attester.new(home / "attester.key")
    settings = Settings(
        home=home, attest_secret=SECRET, prover_workers=1, local_provers=0, webhook_backoff=0.05
    )
    receiver = Receiver().start()
    try:
        with over_socket(create_app(settings)) as client:
            yield client, client.app, receiver
    finally:
        receiver.stop()


def test_threshold_event_comes_before_the_429_once_and_verifies(live, pilot_request) -> None:
    client, app, receiver = live
    r = client.post(HOOKS, json={"url": receiver.url, "events": ["usage.threshold_reached"]},
                    headers=AUTH)  # fmt: skip
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]
    assert client.post("/api/vdi/billing/accounts", json={"tenant_id": TENANT},
                       headers=AUTH).status_code == 201  # fmt: skip
    store = app.state.svc.store
    fund(store, TENANT, daily=5 * CHARGE)  # 80 %: the 4th charge
    seen_before: list[list[dict[str, Any]]] = []
    statuses = []
    for i in range(1, 8):
        seen_before.append(thresholds(store))
        r = client.post(ATTEST, json=eth_event(pilot_request, TENANT, f"evt_h{i}"), headers=ASYNC)
        statuses.append(r.status_code)
    assert statuses == [202] * 5 + [429] * 2
    assert [len(s) for s in seen_before] == [0, 0, 0, 0, 1, 1, 1]  # before the first 429, once
    receiver.wait(lambda r: len(r.events) == 1)
    (event,) = receiver.events
    assert receiver.bad == [] and receiver.ids == [seen_before[-1][0]["msg_id"]]
    assert event["type"] == "usage.threshold_reached"
    assert event["data"] == {
        "tenant_id": TENANT, "limit": "daily", "day": event["data"]["day"], "share": 0.8,
        "limit_micros": 5 * CHARGE, "threshold_micros": 4 * CHARGE, "spent_micros": 4 * CHARGE,
        "event_id": "evt_h4",
    }  # fmt: skip


def test_endpoints_over_http_show_a_secret_only_when_made(live) -> None:
    client, _app, receiver = live
    assert client.post(HOOKS, json={"url": receiver.url}).status_code == 401
    made = client.post(HOOKS, json={"url": receiver.url, "events": ["webhook.test"]}, headers=AUTH)
    ep = made.json()
    listed = client.get(HOOKS, headers=AUTH)
    assert ep["id"] in listed.text and "whsec_" not in listed.text
    rotated = client.post(f"{HOOKS}/{ep['id']}/rotate", headers=AUTH).json()
    assert rotated["id"] == ep["id"] and rotated["secret"] != ep["secret"]
    receiver.secret = rotated["secret"]
    before = len(receiver.events)
    test = client.post(f"{HOOKS}/{ep['id']}/test", headers=AUTH).json()
    assert test["delivered"] is True and test["error"] is None
    assert receiver.events[before]["type"] == "webhook.test"
    assert receiver.ids[before] == test["webhook_id"]
    assert client.delete(f"{HOOKS}/{ep['id']}", headers=AUTH).json()["removed"] is True
    for method, path in (("post", f"/{ep['id']}/test"), ("delete", f"/{ep['id']}")):
        assert client.request(method, HOOKS + path, headers=AUTH).status_code == 404
    bad = client.post(HOOKS, json={"url": "file:///etc/passwd"}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "url"
    bad = client.post(HOOKS, json={"url": receiver.url, "events": ["nope"]}, headers=AUTH)
    assert bad.status_code == 422
    gone = client.post(f"{HOOKS}/redeliver", json={"event": "msg_none"}, headers=AUTH)
    assert gone.status_code == 404
    vague = client.post(f"{HOOKS}/redeliver", json={}, headers=AUTH)  # which? say it
    assert vague.status_code == 422 and vague.json()["detail"]["field"] == "event"
    assert client.post(f"{HOOKS}/redeliver", json={"dead": True}, headers=AUTH).json() == {
        "queued": 0
    }


def test_metrics_parse_and_name_no_tenant(live) -> None:
    client, _app, _receiver = live
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    value = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    for name in (
        "vbill_events_ingested", "vbill_proofs", "vbill_proof_seconds", "vbill_settlements",
        "vbill_settlement_gas_used", "vbill_webhook_deliveries", "vbill_proving_backlog",
        "vbill_proving_oldest_age_seconds", "vbill_settlement_backlog", "vbill_log_size",
        "vbill_webhook_queue", "vbill_webhook_queue_oldest_age_seconds",
    ):  # fmt: skip
        assert name in families, name
    assert value[("vbill_events_ingested_total", (("outcome", "created"),))] >= 5
    assert value[("vbill_events_ingested_total", (("outcome", "limited"),))] >= 2
    assert value[("vbill_log_size", ())] == 5
    assert value[("vbill_proving_backlog", ())] == 5  # no local prover in this service
    assert value[("vbill_settlement_backlog", ())] == 5  # no chain
    assert value[("vbill_webhook_queue", (("status", "delivered"),))] == 1
    assert value[("vbill_webhook_deliveries_total", (("outcome", "delivered"),))] >= 1
    labels = {v for s in value for _, v in s[1]}
    assert labels <= {"created", "same", "conflict", "invalid", "limited", "settled", "failed",
                      "delivered", "dead", "pending", "none", "+Inf"} | {
        k for k in labels if k.replace(".", "").isdigit()}  # fmt: skip
    assert TENANT not in r.text and "evt_" not in r.text and "msg_" not in r.text


def _config(home: Path, **config: Any) -> None:
    (home / "service.json").write_text(json.dumps(config))


def test_kill_9_between_commit_and_delivery_loses_no_event(tmp_path: Path, pilot_request) -> None:
    needs_build()
    Attester.new(tmp_path / "attester.key")
    _config(tmp_path, webhook_backoff=0.2, webhook_timeout=1)
    store = Store(tmp_path / DB_NAME)
    receiver = Receiver()  # not listening yet: every attempt is refused
    receiver.secret = Outbox(store).add_endpoint(receiver.url, (), now_ms()).secret
    store.add_tenant(TENANT, 1, 2)
    fund(store, TENANT, daily=5 * CHARGE)
    first = Served(tmp_path, "--local-workers", "0")
    try:
        with first.client() as http:
            for i in range(1, 5):
                r = http.post(ATTEST, json=eth_event(pilot_request, TENANT, f"evt_k{i}"),
                              headers=ASYNC)  # fmt: skip
                assert r.status_code == 202, r.text
        (row,) = thresholds(store)  # committed with the 4th event
        assert row["status"] == "pending"
    finally:
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
    receiver.start()
    second = Served(tmp_path, "--local-workers", "0", log="second.log")
    try:
        receiver.wait(lambda r: len(r.events) == 1)
    finally:
        second.stop()
        receiver.stop()
    assert receiver.ids == [row["msg_id"]] and receiver.bad == []
    assert receiver.events[0]["data"]["event_id"] == "evt_k4"
    assert Outbox(store).rows()[0]["status"] == "delivered"
    # a separate worker proves the bundles and counts its proofs on its own port
    port = free_port()
    env = {**os.environ, "VBILL_HOME": str(tmp_path)}
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen([*VBILL, "worker", "--metrics-port", str(port)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        while store.unproven_count() == 4:  # its first proof is attached
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.1)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        worker.terminate()
        worker.wait()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert 1 <= samples["vbill_proofs_total"] == samples["vbill_proof_seconds_count"] <= 4


def test_two_replicas_on_postgresql_deliver_each_event_once(
    tmp_path: Path, request: pytest.FixtureRequest, pilot_request
) -> None:
    needs_build()
    url = request.getfixturevalue("pg_url")
    Attester.new(tmp_path / "attester.key")
    shares = [i / 10 for i in range(1, 11)]
    _config(tmp_path, usage_thresholds=shares, webhook_backoff=0.1, webhook_timeout=2)
    store = open_store(url)
    receiver = Receiver().start()
    receiver.secret = Outbox(store).add_endpoint(receiver.url, (), now_ms()).secret
    tenants = ["t_pg_a", "t_pg_b"]
    for i, tenant in enumerate(tenants):
        store.add_tenant(tenant, 10 + i, 20 + i)
        fund(store, tenant, daily=10 * CHARGE)  # each charge crosses one more tenth
    env = {"DATABASE_URL": url}
    replicas = [
        Served(tmp_path, "--local-workers", "0", env=env, log=f"replica{i}.log") for i in range(2)
    ]
    try:
        clients = [r.client() for r in replicas]
        for n in range(10):
            for i, tenant in enumerate(tenants):
                body = eth_event(pilot_request, tenant, f"evt_pg_{n}")
                r = clients[(n + i) % 2].post(ATTEST, json=body, headers=ASYNC)
                assert r.status_code == 202, r.text
        receiver.wait(lambda r: len(r.events) == 20)
        for c in clients:
            c.close()
    finally:
        for r in replicas:
            r.stop()
        receiver.stop()
    assert receiver.bad == [] and len(set(receiver.ids)) == 20  # each once
    for tenant in tenants:
        spent = [e["data"]["spent_micros"] for e in receiver.events
                 if e["data"]["tenant_id"] == tenant]  # fmt: skip
        assert spent == [(n + 1) * CHARGE for n in range(10)]  # in order
    rows = Outbox(store).rows()
    assert {r["status"] for r in rows} == {"delivered"} and {r["attempts"] for r in rows} == {1}
    assert 10 * CHARGE * WEI_PER_MICRO < 10**19  # the balance never refused one
