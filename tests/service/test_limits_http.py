"""Spending refusals as a client sees them over a real socket: 429 with a usable Retry-After.

Every off-chain refusal path of an ETH attest (no balance, the per-request limit, the daily
limit) answers 429, stores nothing, and carries a Retry-After header: a positive whole number of
seconds equal to the body's `retry_after`. For the daily limit it is the time left until UTC
midnight, when the day's total starts again.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from support import needs_build
from support.http_server import ATTEST, AUTH, service

TENANT = "t_limits"
CHARGE = 221_040  # micros: the pilot's 1,842 units × 120


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[httpx.Client, FastAPI]]:
    needs_build()
    home = tmp_path_factory.mktemp("limits-home")
    with service(home) as (url, app), httpx.Client(base_url=url, timeout=120) as client:
        yield client, app


def eth_request(pilot: dict[str, Any], event: str) -> dict[str, Any]:
    r = copy.deepcopy(pilot)
    r["meter_event"].update(tenant_id=TENANT, event_id=event)
    r["tariff_snapshot"]["currency"] = "ETH"
    return r


def seconds_to_utc_midnight() -> int:
    now = dt.datetime.now(dt.UTC)
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds())


def refused(client: httpx.Client, body: dict[str, Any], words: str) -> int:
    """POST an attest that must be refused with 429; returns its Retry-After (seconds)."""
    before = client.get("/api/vdi/status", headers=AUTH).json()["counts"]
    r = client.post(ATTEST, json=body, headers=AUTH)
    assert r.status_code == 429, r.text
    assert words in r.json()["detail"], r.json()
    retry = r.headers["Retry-After"]
    assert retry.isdigit() and 0 < int(retry) <= 86_400, retry
    assert r.json()["retry_after"] == int(retry)
    assert client.get("/api/vdi/status", headers=AUTH).json()["counts"] == before  # nothing stored
    return int(retry)


def set_limits(client: httpx.Client, per_request: int | None, daily: int | None) -> None:
    body = {"per_request_micros": per_request, "daily_micros": daily}
    r = client.put(f"/api/vdi/billing/accounts/{TENANT}/limits", json=body, headers=AUTH)
    assert r.status_code == 200, r.text


def test_every_refusal_is_429_with_retry_after(served, pilot_request) -> None:
    client, app = served
    r = client.post("/api/vdi/billing/accounts", json={"tenant_id": TENANT}, headers=AUTH)
    assert r.status_code == 201, r.text
    e1, e2 = eth_request(pilot_request, "evt_lim_1"), eth_request(pilot_request, "evt_lim_2")

    refused(client, e1, "available balance")
    store = app.state.svc.store  # credit a deposit as the worker would after its confirmations
    store.record_deposit("0x" + "cd" * 32, 0, TENANT, 10**18, 1)
    store.credit_confirmed(100)

    set_limits(client, per_request=CHARGE - 1, daily=None)
    refused(client, e1, "per-request limit")

    set_limits(client, per_request=None, daily=CHARGE + CHARGE // 2)  # room for one charge
    assert client.post(ATTEST, json=e1, headers=AUTH).status_code == 200
    before = seconds_to_utc_midnight()
    retry = refused(client, e2, "daily limit")
    after = seconds_to_utc_midnight()
    if after <= before:  # (not across midnight itself)
        assert after - 1 <= retry <= before + 1, (before, retry, after)

    set_limits(client, per_request=None, daily=None)
    assert client.post(ATTEST, json=e2, headers=AUTH).status_code == 200
