"""Closing a window: the one place a close record is made (`vbill close`, POST …/close, and the
service's automatic close of period windows once their period and a grace have passed).

`close_window` returns `Closed(record, created)`; `created` is True exactly once per window,
which is where a `window.closed` notification belongs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vbill.billing.close_record import CLOSE_VERSION, make_record
from vbill.billing.periods import _rfc3339, period_of
from vbill.bundle.keys import Attester
from vbill.errors import InputError
from vbill.ledger.store import NoWindow, Store, WindowHead, WindowKey, now_ms

log = logging.getLogger("vbill.closing")
DAY_MS = 86_400_000
DEFAULT_GRACE_DAYS = 3.0
DEFAULT_CHECK_INTERVAL = 3600.0


@dataclass(frozen=True)
class Closed:
    record: dict[str, Any]
    created: bool  # False: the window was already closed and this is its record


def close_body(
    key: WindowKey, head: WindowHead, last: Mapping[str, Any], at: int, closed_by: str
) -> dict[str, Any]:
    """The body of `key`'s close record at `head`, whose entry is `last` (an event's bundle,
    or a correction document, whose tariff is its original's)."""
    bundle = last
    after = head.state
    tariff = last.get("original", last)["tariff_snapshot"]
    return {
        "close_version": CLOSE_VERSION,
        "tenant_id": key[0],
        "billing_window_id": key[1],
        "tariff_id": key[2],
        "currency": tariff["currency"],
        "last_seq": head.seq,
        "last_event_id": head.event_id,
        "last_state_key": str(bundle["attestation"]["billing_proof"]["public_signals"][6]),
        "total_micros": str(after["charge"]),
        "amount": str(after["amount"]),
        "totals_by_dimension": {k: str(v) for k, v in after["units"].items()},
        "closed_at": _rfc3339(at),
        "closed_by": closed_by,
    }


def close_window(
    store: Store, attester: Attester, key: WindowKey, *, closed_by: str = "operator"
) -> Closed:
    """Close the window `key` (tenant, billing_window_id, tariff_id): sign and log its close
    record, after which the store refuses its events and corrections. Idempotent: a closed
    window's record is returned as it is. NoWindow if it has no chain."""

    def make(head: WindowHead, last: dict[str, Any], at: int) -> tuple[dict[str, Any], bytes]:
        return make_record(close_body(key, head, last, at, closed_by), attester)

    record, created = store.close_window(key, make)
    if created:
        log.info("closed window %s at seq %s", key, record["last_seq"])
    return Closed(record, created)


def window_key(store: Store, tenant_id: str, window_id: str, tariff_id: str | None) -> WindowKey:
    """The one chain of a tenant's window (tariff_id needed when it has several)."""
    if tariff_id is None:
        tariffs = store.window_tariffs(tenant_id, window_id)
        if not tariffs:
            raise NoWindow(f"no window {window_id!r} of tenant {tenant_id!r}")
        if len(tariffs) > 1:
            raise InputError(
                "tariff_id", f"window {window_id!r} has several tariffs: {', '.join(tariffs)}"
            )
        tariff_id = tariffs[0]
    return (tenant_id, window_id, tariff_id)


def due_windows(store: Store, grace_ms: int, at_ms: int) -> list[WindowKey]:
    """Open period windows whose period ended at least `grace_ms` before `at_ms`."""
    due: list[WindowKey] = []
    after: WindowKey | None = None
    while True:
        page = store.windows(after=after, limit=500)
        for w in page:
            if w["closed_at"] is not None:
                continue
            try:
                period = period_of(w["key"][1])
            except InputError:
                continue  # shaped like a period but no date: opaque
            if period is not None and period.end_ms + grace_ms <= at_ms:
                due.append(w["key"])
        if len(page) < 500:
            return due
        after = page[-1]["key"]


def close_due(
    store: Store, attester: Attester, grace_ms: int, at_ms: int | None = None
) -> list[Closed]:
    """Close every period window that is due (`due_windows`), as `closed_by: grace`."""
    out = []
    for key in due_windows(store, grace_ms, now_ms() if at_ms is None else at_ms):
        try:
            out.append(close_window(store, attester, key, closed_by="grace"))
        except NoWindow:
            continue
    return out


class AutoCloser:
    """A service thread that closes due period windows every `interval` seconds (the first
    check one interval after start); `on_closed` is called with each new record."""

    def __init__(
        self,
        store: Store,
        attester: Attester,
        grace_days: float,
        interval: float = DEFAULT_CHECK_INTERVAL,
        on_closed: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store, self.attester = store, attester
        self.grace_ms = int(grace_days * DAY_MS)
        self.interval = interval
        self.on_closed = on_closed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vbill-autoclose", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                for closed in close_due(self.store, self.attester, self.grace_ms):
                    if closed.created and self.on_closed is not None:
                        self.on_closed(closed.record)
            except Exception:  # a failed round is retried at the next interval
                log.exception("automatic window close failed")
