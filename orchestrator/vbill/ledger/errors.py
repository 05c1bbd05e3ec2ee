"""The store's refusals: each maps to one HTTP status and CLI exit code (vbill.errors)."""

from __future__ import annotations

from vbill.errors import VbillError


class Conflict(VbillError):
    """The event id is already attested with a different payload (HTTP 409)."""

    exit_code = 2


class LimitExceeded(VbillError):
    """A charge would pass a spending limit or the available balance (HTTP 429)."""

    exit_code = 2

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class TenantRaced(VbillError):
    """A new tenant's first attest lost the race to create it: prove again with its salt."""


class WindowMoved(VbillError):
    """Another process attested into the window while this event was proved: its state
    before is stale, so it is proved again from the new head (never stored on a stale one)."""


class NotFound(VbillError):
    """No such event for this tenant (HTTP 404): never says whether another tenant has one."""


class WindowClosed(Conflict):
    """The window has a close record: no more events or corrections (HTTP 409, exit 2)."""


class NoWindow(VbillError):
    """No chain for this (tenant, billing window, tariff_id) (HTTP 404, exit 2)."""
