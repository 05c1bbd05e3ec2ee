"""Webhooks from the outbox, over real sockets, on real databases (no build needed).

Two dispatchers (as two replicas would) share one outbox, on SQLite and on PostgreSQL: a
receiver that fails three times then recovers gets every event once more, each once, in order
per tenant, every one verifying with the Standard Webhooks helper the docs show. A delivery
that keeps failing goes dead and no longer holds its tenant's queue; redelivered on request, it
arrives. The CLI manages endpoints and never shows a secret twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.store import LOG_KEY, attest, fund, usage_receipt
from support.webhook_receiver import Receiver, documented
from vbill.cli import main
from vbill.ledger.outbox import Outbox
from vbill.ledger.store import (
    DB_NAME,
    WEI_PER_MICRO,
    ChainAccount,
    Charge,
    LimitExceeded,
    Limits,
    Store,
    now_ms,
)
from vbill.service.webhooks import DeliveryPolicy, WebhookDispatcher

FAST = DeliveryPolicy(max_attempts=10, backoff=0.01, timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=3).start()
    yield r
    r.stop()


def dispatchers(stores: list[Store], policy: DeliveryPolicy) -> list[WebhookDispatcher]:
    out = [
        WebhookDispatcher(s, policy, idle=0.01, name=f"replica{i}") for i, s in enumerate(stores)
    ]
    for d in out:
        d.start()
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The database two replicas share: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / DB_NAME
    return request.getfixturevalue("pg_url")


def test_retries_deliver_each_event_once_in_order_per_tenant(where, receiver) -> None:
    a, b = Store(where), Store(where)  # two replicas' stores
    ep = Outbox(a).add_endpoint(receiver.url, (), now_ms())
    receiver.secret = ep.secret
    sent: dict[str, list[str]] = {"t_a": [], "t_b": []}
    for i in range(12):
        tenant = "t_a" if i % 3 else "t_b"
        msg = Outbox(a).enqueue(tenant, "balance.low", {"n": i}, now_ms())
        assert msg is not None
        sent[tenant].append(msg)
    running = dispatchers([a, b], FAST)
    try:
        receiver.wait(lambda r: len(r.events) == 12)
    finally:
        for d in running:
            d.stop()
    assert receiver.refused == 3 and receiver.bad == []
    assert len(set(receiver.ids)) == 12  # each event once
    for tenant, ids in sent.items():
        pairs = zip(receiver.ids, receiver.events, strict=True)
        got = [i for i, e in pairs if e["data"]["tenant_id"] == tenant]
        assert got == ids  # in order
    rows = Outbox(a).rows()
    assert {r["status"] for r in rows} == {"delivered"}
    assert sum(r["attempts"] for r in rows) == 12 + 3


def test_dead_letter_frees_the_queue_and_redelivers_on_request(tmp_path: Path) -> None:
    receiver = Receiver(fail_first=2).start()
    store = Store(tmp_path / DB_NAME)
    outbox = Outbox(store)
    try:
        receiver.secret = outbox.add_endpoint(receiver.url, ("balance.low",), now_ms()).secret
        assert outbox.enqueue("t", "settlement.failed", {}, now_ms()) is None  # not subscribed
        first = outbox.enqueue("t", "balance.low", {"n": 1}, now_ms())
        second = outbox.enqueue("t", "balance.low", {"n": 2}, now_ms())
        (d,) = dispatchers([store], DeliveryPolicy(max_attempts=2, backoff=0.01, timeout=5))
        try:
            receiver.wait(lambda r: len(r.events) == 1)
            dead = outbox.rows("dead")
            assert [r["msg_id"] for r in dead] == [first] and dead[0]["attempts"] == 2
            assert dead[0]["last_error"] == "HTTP 500"
            assert outbox.redeliver(now_ms()) == 1  # every dead one
            receiver.wait(lambda r: len(r.events) == 2)
        finally:
            d.stop()
        assert receiver.ids == [second, first]
        assert [e["data"]["n"] for e in receiver.events] == [2, 1]
        third = outbox.enqueue("t", "balance.low", {"n": 3}, now_ms())  # nobody delivers it
        assert outbox.prune(now_ms() - 60_000) == 0  # delivered just now: kept
        assert outbox.prune(now_ms() + 1) == 2  # the delivered ones only
        assert [r["msg_id"] for r in outbox.rows()] == [third]
    finally:
        receiver.stop()


def test_cli_manages_endpoints_and_shows_a_secret_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VBILL_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def vbill(*args: str) -> Result:
        return CliRunner().invoke(main, list(args))

    receiver = Receiver().start()
    try:
        add = vbill("webhooks", "add", receiver.url, "--events", "balance.low", "--json")
        assert add.exit_code == 0, add.stderr
        created = json.loads(add.stdout)
        assert set(created) == {"id", "secret"} and created["secret"].startswith("whsec_")
        receiver.secret = created["secret"]
        rot = vbill("webhooks", "rotate", created["id"], "--json")
        rotated = json.loads(rot.stdout)["secret"]
        assert rotated != created["secret"]
        receiver.secret = rotated
        test = vbill("webhooks", "test", created["id"], "--json")
        assert test.exit_code == 0, test.stdout + test.stderr
        assert receiver.events[0]["type"] == "webhook.test"  # signed with the new secret
        listed = vbill("webhooks", "list", "--json")
        assert json.loads(listed.stdout)["endpoints"] == [
            {"id": created["id"], "url": receiver.url, "events": ["balance.low"],
             "created_at": json.loads(listed.stdout)["endpoints"][0]["created_at"]}
        ]  # fmt: skip
        assert "whsec_" not in listed.stdout
        assert vbill("webhooks", "remove", created["id"]).exit_code == 0
        gone = vbill("webhooks", "test", created["id"])
        assert gone.exit_code == 2 and "no webhook endpoint" in gone.stderr
        bad = vbill("webhooks", "add", "ftp://x")
        assert bad.exit_code == 2 and "url" in bad.stderr
    finally:
        receiver.stop()


def test_events_are_written_with_the_change_they_report(where) -> None:
    """Each share of the daily limit fires once, as the charge that crosses it is stored; a
    refused charge writes nothing; settlement outcomes carry the receipt or the reason."""
    c = 221_040
    s = Store(where, log_key=LOG_KEY)
    s.add_tenant("t", 1, 2)
    s.usage_shares, s.balance_low_wei = (Fraction(1, 2), Fraction(4, 5)), 7 * c * WEI_PER_MICRO
    Outbox(s).add_endpoint("http://127.0.0.1:9/hook", (), now_ms())  # nothing listens there
    fund(s, "t", 10 * c * WEI_PER_MICRO)
    s.set_limits("t", Limits(None, 5 * c))
    wei = 10 * c * WEI_PER_MICRO  # the on-chain account as the worker read it: limit 10 c a day
    s.set_chain_account("t", ChainAccount(wei, 0, wei, wei, 0, 0, 1))
    for i in range(1, 6):
        attest(s, "t", f"e{i}", charge=Charge("ETH", c))
    with pytest.raises(LimitExceeded):
        attest(s, "t", "e6", charge=Charge("ETH", c))
    assert s.mark_settled("t", "e1", usage_receipt("0.22104"))
    s.mark_failed("t", "e2", "chain refuses it: BillingSettlement__UnknownTariff()")
    s.mark_failed("t", "e2", "again")  # no longer pending: no second event
    rows = s._conn().execute("SELECT event_type, payload FROM outbox ORDER BY id").fetchall()
    got = [(r[0], json.loads(r[1])["data"]) for r in rows]
    assert [(t, d.get("event_id")) for t, d in got] == [
        ("usage.threshold_reached", "e3"),  # 2.5 c crossed by 3 c
        ("usage.threshold_reached", "e4"),
        ("balance.low", "e4"),  # 7 c available before it, 6 c after
        ("usage.threshold_reached", "e5"),  # half the on-chain limit
        ("settlement.settled", "e1"),
        ("settlement.failed", "e2"),
    ]
    assert got[0][1]["threshold_micros"] == 552_600 and got[0][1]["spent_micros"] == 3 * c
    assert got[2][1]["available_wei"] == str(6 * c * WEI_PER_MICRO)
    assert got[3][1]["limit"] == "chain_daily" and got[3][1]["threshold_wei"] == str(wei // 2)
    assert got[3][1]["spent_wei"] == str(5 * c * WEI_PER_MICRO)
    assert got[4][1]["transaction_hash"] == "0x1" and got[4][1]["charge_micros"] == c
    assert got[5][1]["reason"] == "chain refuses it: BillingSettlement__UnknownTariff()"
    assert {d["tenant_id"] for _, d in got} == {"t"}
    docs = documented()  # the documented examples have the fields the code writes
    for event_type, data in got:
        if data.get("limit") != "chain_daily":
            assert set(docs[event_type]) == set(data), event_type
