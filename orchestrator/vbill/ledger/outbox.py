"""The webhook outbox: events written in the transaction of the change they report, delivered
later, at least once, in order per (tenant, endpoint), by any number of service replicas.

`enqueue(c, …)` is called inside a store transaction (`Database.tx()`): it fans the event out to
every endpoint subscribed to its type, one `outbox` row each, so a rolled-back change leaves no
event and a committed one cannot lose its event. Rows get their ids under the store's writer
lock (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock), so id order is commit order.

A delivery worker claims the head row of each (tenant, endpoint) queue with a lease (one
statement: `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING` on PostgreSQL, the
same UPDATE under SQLite's single writer), so two replicas never hold one row at once; a row
whose lease ran out (its replica died) is claimed again. The next row of a queue waits until its
predecessor is delivered or dead. Failures back off exponentially; after `max_attempts` the row
is dead until redelivered on request.

Endpoint secrets (`whsec_…`, Standard Webhooks) sign every delivery, so they are kept in the
database, which is private (the SQLite file is 0600; on PostgreSQL, the role's grants); they
are shown once, when created or rotated, and never listed or logged.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vbill.errors import InputError

EVENT_TYPES = (
    "usage.threshold_reached",
    "balance.low",
    "window.closed",
    "invoice.ready",
    "correction.created",
    "settlement.settled",
    "settlement.failed",
    "webhook.test",
)
MAX_ENDPOINTS = 100
ID = re.compile(r"[A-Za-z0-9_]{1,64}")  # endpoint ids (ep_…) and message ids (msg_…)
# scheme, host[:port] (a name, IPv4 or [IPv6]), then printable ASCII only (IRIs percent-encoded)
_URL = re.compile(
    r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:[/?#][\x21-\x7e]*)?|"
    r"https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?(?:[/?#][\x21-\x7e]*)?"
)
URL_PATTERN = f"^(?:{_URL.pattern})$"
"""The same rule for the OpenAPI document (anchored: fullmatch)."""


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    url: str
    events: tuple[str, ...]  # () = every event type
    secret: str
    created_at: int

    def view(self) -> dict[str, Any]:
        """What `list` shows: everything but the secret."""
        return {
            "id": self.endpoint_id,
            "url": self.url,
            "events": list(self.events),
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Delivery:
    """One claimed outbox row: an event on its way to one endpoint."""

    id: int
    msg_id: str
    endpoint_id: str
    tenant_id: str
    event_type: str
    payload: str
    created_at: int
    attempts: int


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str) -> str:
    if not isinstance(url, str) or len(url) > 2048 or not _URL.fullmatch(url):
        raise InputError("url", "must be an http:// or https:// URL (at most 2,048 characters)")
    return url


def check_events(events: Sequence[str]) -> tuple[str, ...]:
    for e in events:
        if e not in EVENT_TYPES:
            raise InputError("events", f"unknown event type {e!r}; one of {', '.join(EVENT_TYPES)}")
    return tuple(dict.fromkeys(events))


def envelope(event_type: str, data: dict[str, Any], at_ms: int) -> str:
    """The body every endpoint receives: {"type", "timestamp", "data"} (Standard Webhooks)."""
    ts = dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).isoformat(timespec="milliseconds")
    body = {"type": event_type, "timestamp": ts.replace("+00:00", "Z"), "data": data}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def enqueue(
    c: Any, tenant_id: str, event_type: str, data: dict[str, Any], at_ms: int
) -> str | None:
    """Inside a store transaction `c`: queue the event for every endpoint subscribed to its
    type; its message id (the `webhook-id` every attempt carries), or None when no endpoint
    wants it (nothing is written). `data` goes out with `tenant_id` added ('' as null)."""
    assert event_type in EVENT_TYPES, event_type
    subscribed = {
        row[0]: json.loads(row[1])
        for row in c.execute("SELECT endpoint_id, events FROM webhook_endpoints")
    }
    targets = [ep for ep, types in subscribed.items() if not types or event_type in types]
    if not targets:
        return None
    msg_id = "msg_" + secrets.token_hex(16)
    payload = envelope(event_type, {"tenant_id": tenant_id or None, **data}, at_ms)
    c.executemany(
        "INSERT INTO outbox (msg_id, endpoint_id, tenant_id, event_type, payload, created_at, "
        "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(msg_id, t, tenant_id, event_type, payload, at_ms, at_ms) for t in targets],
    )
    return msg_id


def backoff_ms(attempts: int, base_s: float, cap_s: float = 3600.0) -> int:
    """The wait before attempt `attempts + 1`: base × 2^(attempts − 1), at most `cap_s`."""
    return int(min(cap_s, base_s * 2 ** max(0, attempts - 1)) * 1000)


class Outbox:
    """The outbox and the endpoints of one store (SQLite or PostgreSQL)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._pg = store.url is not None

    def _c(self) -> Any:
        return self.store._conn()

    # --- endpoints ---

    def add_endpoint(self, url: str, events: Sequence[str] = (), at_ms: int = 0) -> Endpoint:
        ep = Endpoint(
            endpoint_id="ep_" + secrets.token_hex(8),
            url=check_url(url),
            events=check_events(events),
            secret=new_secret(),
            created_at=at_ms,
        )
        with self.store._tx() as c:
            count = c.execute("SELECT COUNT(*) FROM webhook_endpoints").fetchone()[0]
            if count >= MAX_ENDPOINTS:
                raise InputError("url", f"at most {MAX_ENDPOINTS} endpoints; remove one first")
            c.execute(
                "INSERT INTO webhook_endpoints (endpoint_id, url, events, secret, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (ep.endpoint_id, ep.url, json.dumps(list(ep.events)), ep.secret, at_ms),
            )
        return ep

    def endpoints(self) -> list[Endpoint]:
        rows = self._c().execute("SELECT * FROM webhook_endpoints ORDER BY created_at, endpoint_id")
        return [_endpoint(r) for r in rows]

    def endpoint(self, endpoint_id: str) -> Endpoint:
        if not isinstance(endpoint_id, str) or not ID.fullmatch(endpoint_id):
            raise InputError("id", f"no webhook endpoint {endpoint_id!r}")
        row = (
            self._c()
            .execute("SELECT * FROM webhook_endpoints WHERE endpoint_id = ?", (endpoint_id,))
            .fetchone()
        )
        if row is None:
            raise InputError("id", f"no webhook endpoint {endpoint_id!r}")
        return _endpoint(row)

    def rotate(self, endpoint_id: str, at_ms: int) -> Endpoint:
        """A new secret; every delivery from now on (retries too) is signed with it."""
        self.endpoint(endpoint_id)
        secret = new_secret()
        with self.store._tx() as c:
            c.execute(
                "UPDATE webhook_endpoints SET secret = ?, rotated_at = ? WHERE endpoint_id = ?",
                (secret, at_ms, endpoint_id),
            )
        return self.endpoint(endpoint_id)

    def remove(self, endpoint_id: str) -> None:
        """Forget the endpoint and its queue (nothing more is sent to it)."""
        self.endpoint(endpoint_id)
        with self.store._tx() as c:
            c.execute("DELETE FROM outbox WHERE endpoint_id = ?", (endpoint_id,))
            c.execute("DELETE FROM webhook_endpoints WHERE endpoint_id = ?", (endpoint_id,))

    def enqueue(
        self, tenant_id: str, event_type: str, data: dict[str, Any], at_ms: int
    ) -> str | None:
        """`enqueue` in a transaction of its own (an event that reports no stored change)."""
        with self.store._tx() as c:
            return enqueue(c, tenant_id, event_type, data, at_ms)

    # --- delivery ---

    def claim(self, worker: str, lease_ms: int, now: int, limit: int = 16) -> list[Delivery]:
        """Lease the head row of up to `limit` (tenant, endpoint) queues that are due."""
        due = (
            self._c()
            .execute(
                "SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? AND "
                "(lease_until IS NULL OR lease_until < ?) LIMIT 1",
                (now, now),
            )
            .fetchone()
        )
        if due is None:  # the idle poll reads only: no write lock taken from the ingestion path
            return []
        lock = "FOR UPDATE SKIP LOCKED" if self._pg else ""
        rows = (
            self._c()
            .execute(
                "UPDATE outbox SET claimed_by = ?, lease_until = ? WHERE id IN ("
                "SELECT o.id FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= ?"
                " AND (o.lease_until IS NULL OR o.lease_until < ?) AND NOT EXISTS (SELECT 1 "
                "FROM outbox p WHERE p.tenant_id = o.tenant_id AND p.endpoint_id = o.endpoint_id"
                f" AND p.status = 'pending' AND p.id < o.id) ORDER BY o.id LIMIT ? {lock}) "
                "RETURNING id, msg_id, endpoint_id, tenant_id, event_type, payload, created_at, "
                "attempts",
                (worker, now + lease_ms, now, now, limit),
            )
            .fetchall()
        )
        return sorted((Delivery(*r) for r in rows), key=lambda d: d.id)

    def delivered(self, d: Delivery, worker: str, now: int) -> bool:
        cur = self._c().execute(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, "
            "claimed_by = NULL, lease_until = NULL, last_error = NULL "
            "WHERE id = ? AND claimed_by = ? AND status = 'pending'",
            (now, d.id, worker),
        )
        return cur.rowcount == 1

    def failed(
        self, d: Delivery, worker: str, now: int, error: str, max_attempts: int, base_s: float
    ) -> str:
        """Count a failed attempt: 'retry' (after the backoff) or 'dead'."""
        attempts = d.attempts + 1
        dead = attempts >= max_attempts
        self._c().execute(
            "UPDATE outbox SET attempts = ?, status = ?, next_attempt_at = ?, last_error = ?, "
            "claimed_by = NULL, lease_until = NULL "
            "WHERE id = ? AND claimed_by = ? AND status = 'pending'",
            (
                attempts,
                "dead" if dead else "pending",
                now + backoff_ms(attempts, base_s),
                error[:500],
                d.id,
                worker,
            ),
        )
        return "dead" if dead else "retry"

    def redeliver(
        self, now: int, *, msg_id: str | None = None, endpoint_id: str | None = None
    ) -> int:
        """Queue again: one event (all its endpoints, or one), or every dead row of an
        endpoint (or of all). It keeps its place: later rows of its queue wait for it."""
        if endpoint_id is not None:
            self.endpoint(endpoint_id)
        if msg_id is not None and not ID.fullmatch(msg_id):
            raise InputError("event", f"no queued event {msg_id!r}")
        cur = self._c().execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, "
            "last_error = NULL, claimed_by = NULL, lease_until = NULL WHERE "
            "(CAST(? AS TEXT) IS NULL OR endpoint_id = ?) AND "
            "(CASE WHEN CAST(? AS TEXT) IS NULL THEN status = 'dead' ELSE msg_id = ? END)",
            (now, endpoint_id, endpoint_id, msg_id, msg_id),
        )
        if msg_id is not None and cur.rowcount == 0:
            raise InputError("event", f"no queued event {msg_id!r}")
        return int(cur.rowcount)

    def prune(self, delivered_before: int) -> int:
        """Forget deliveries made before `delivered_before` (ms); pending and dead rows stay."""
        cur = self._c().execute(
            "DELETE FROM outbox WHERE status = 'delivered' AND delivered_at < ?",
            (delivered_before,),
        )
        return int(cur.rowcount)

    def rows(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Recent outbox rows (newest first), without payloads."""
        rows = self._c().execute(
            "SELECT id, msg_id, endpoint_id, tenant_id, event_type, status, attempts, "
            "created_at, next_attempt_at, delivered_at, last_error FROM outbox "
            "WHERE CAST(? AS TEXT) IS NULL OR status = ? ORDER BY id DESC LIMIT ?",
            (status, status, limit),
        )
        return [dict(r) for r in rows]

    def stats(self, now: int) -> dict[str, int]:
        """Queue sizes per status and the age (ms) of the oldest pending row (0 if none)."""
        out = {"pending": 0, "delivered": 0, "dead": 0}
        for row in self._c().execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"):
            out[row[0]] = int(row[1])
        oldest = (
            self._c()
            .execute("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'")
            .fetchone()[0]
        )
        out["oldest_pending_age_ms"] = max(0, now - int(oldest)) if oldest is not None else 0
        return out


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        endpoint_id=row["endpoint_id"],
        url=row["url"],
        events=tuple(json.loads(row["events"])),
        secret=row["secret"],
        created_at=row["created_at"],
    )
