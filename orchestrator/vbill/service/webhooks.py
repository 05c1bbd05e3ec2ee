"""Delivering the outbox (vbill.ledger.outbox) to webhook endpoints, signed per Standard Webhooks.

Each delivery is a POST of the event's JSON body with `webhook-id` (the event's message id, the
same on every attempt: receivers deduplicate on it), `webhook-timestamp` (this attempt, Unix
seconds) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the
endpoint's `whsec_` secret), made with the `standardwebhooks` library that receivers verify
with. Any 2xx is a success; anything else (another status, a timeout, a refused connection) is
retried after an exponential backoff, and after `max_attempts` the row is dead.

The dispatcher runs as a thread inside `vbill serve`; any number of replicas run one each over
one database: a row is leased to one of them at a time, and a dead replica's lease runs out.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from standardwebhooks import Webhook

from vbill import metrics
from vbill.errors import InputError
from vbill.ingest import worker_id
from vbill.ledger.outbox import Delivery, Endpoint, Outbox
from vbill.ledger.store import DAY_MS, Store, now_ms
from vbill.poller import Poller

log = logging.getLogger("vbill.webhooks")
USER_AGENT = "vbill-webhooks/1"


def signed_headers(endpoint: Endpoint, msg_id: str, body: str, at: dt.datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (never logged: the signature is a MAC)."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(endpoint.secret).sign(msg_id, at, body),
    }


def send(
    client: httpx.Client, endpoint: Endpoint, msg_id: str, body: str
) -> tuple[bool, str | None]:
    """POST one signed attempt: (delivered, why not)."""
    headers = signed_headers(endpoint, msg_id, body, dt.datetime.now(dt.UTC))
    try:
        r = client.post(endpoint.url, content=body.encode(), headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # a host httpx cannot parse
        return False, f"{type(exc).__name__}: {exc}"[:300]
    if 200 <= r.status_code < 300:
        return True, None
    return False, f"HTTP {r.status_code}"


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 10
    backoff: float = 2.0  # seconds before the 2nd attempt, doubling, at most an hour
    timeout: float = 10.0  # per attempt
    retention_days: float = 7.0  # delivered rows are kept this long (then pruned hourly)

    @property
    def lease_ms(self) -> int:
        """A claim outlives its attempt three times over: no second replica takes a row whose
        attempt is still in flight; a dead replica's rows wait this long."""
        return int(3 * self.timeout * 1000)


class WebhookDispatcher(Poller):
    """Claims due outbox rows, delivers them (up to `parallel` at once, one per queue), records
    each outcome; stops when `stop()` is called."""

    what = "webhook dispatcher"

    def __init__(
        self,
        store: Store,
        policy: DeliveryPolicy,
        *,
        idle: float = 0.2,
        parallel: int = 8,
        name: str | None = None,
    ) -> None:
        super().__init__(name or "webhooks:" + worker_id(), idle, log)
        self.outbox = Outbox(store)
        self.policy, self.parallel = policy, parallel
        self._next_prune = 0.0
        self._client = httpx.Client(timeout=policy.timeout, follow_redirects=False)
        self._pool = ThreadPoolExecutor(parallel, thread_name_prefix="webhook")

    def run_once(self) -> int:
        """Deliver what one claim returns; how many rows were claimed. Once an hour, first
        forget the deliveries older than the retention."""
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + 3600
            self.outbox.prune(now_ms() - int(self.policy.retention_days * DAY_MS))
        claims = self.outbox.claim(self.name, self.policy.lease_ms, now_ms(), self.parallel)
        if claims:
            list(self._pool.map(self._deliver, claims))
        return len(claims)

    def _deliver(self, d: Delivery) -> None:
        try:
            endpoint = self.outbox.endpoint(d.endpoint_id)
        except InputError:  # removed meanwhile: its rows went with it
            return
        ok, error = send(self._client, endpoint, d.msg_id, d.payload)
        now = now_ms()
        if ok:
            self.outbox.delivered(d, self.name, now)
            metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
            return
        p = self.policy
        fate = self.outbox.failed(d, self.name, now, error or "", p.max_attempts, p.backoff)
        metrics.WEBHOOK_DELIVERIES.labels("dead" if fate == "dead" else "failed").inc()
        log.warning(
            "webhook %s (%s) to endpoint %s, attempt %d: %s%s",
            d.msg_id, d.event_type, d.endpoint_id, d.attempts + 1, error,
            " (dead: `vbill webhooks redeliver` queues it again)" if fate == "dead" else "",
        )  # fmt: skip

    def stop(self) -> None:
        super().stop()
        self._pool.shutdown()
        self._client.close()


def send_test(store: Store, endpoint_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """Send a `webhook.test` event to one endpoint now, signed like every delivery (not
    queued: the answer says whether the endpoint took it)."""
    from vbill.ledger.outbox import envelope

    outbox = Outbox(store)
    endpoint = outbox.endpoint(endpoint_id)
    msg_id = f"msg_test_{time.time_ns():x}"
    body = envelope("webhook.test", {"tenant_id": None, "endpoint_id": endpoint_id}, now_ms())
    with httpx.Client(timeout=timeout) as client:
        ok, error = send(client, endpoint, msg_id, body)
    return {"id": endpoint_id, "webhook_id": msg_id, "delivered": ok, "error": error}
