"""Tenant-scoped tokens over a real socket: a tenant reads and changes only its own data.

Every route of the app is classified below as public, operator-only or tenant-visible, so a
route added later without a decision fails `test_every_route_is_classified`; the other tests
then walk those classes: operator routes with a tenant token (403, nothing changes), tenant
routes with another tenant's ids (404, the same answer as for data that does not exist),
revoked, unknown and malformed credentials (401).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from support import needs_build
from support.http_server import ATTEST, AUTH, service
from support.metered import INFERENCE
from support.servicekit import routes
from vbill.cli.main import main
from vbill.ledger.store import DB_NAME

A, B = "tenant_acme", "tenant_beta"
OWN_EVENT = {A: "evt_a_only", B: "evt_b_only"}
SHARED_EVENT = "evt_shared"

PUBLIC = {
    ("POST", "/api/vdi/billing/verify"),
    ("GET", "/.well-known/vdi-billing-revocation.json"),
    ("GET", "/.well-known/vdi-billing-trust.json"),
    ("GET", "/api/vdi/billing/transparency/head"),
    ("GET", "/api/vdi/billing/transparency/inclusion"),
    ("GET", "/api/vdi/billing/transparency/consistency"),
    ("GET", "/api/vdi/status"),
    ("GET", "/health"),
    ("GET", "/metrics"),
}
OPERATOR = {
    ("POST", "/api/vdi/billing/attest"),
    ("POST", "/api/vdi/billing/events"),
    ("POST", "/api/vdi/billing/revocations"),
    ("POST", "/api/vdi/billing/accounts"),
    ("POST", "/api/vdi/billing/accounts/{tenant_id}/bind"),
    ("POST", "/api/vdi/billing/accounts/{tenant_id}/tariff-key"),
    ("POST", "/api/vdi/billing/accounts/{tenant_id}/tokens"),
    ("DELETE", "/api/vdi/billing/accounts/{tenant_id}/tokens"),
    ("POST", "/api/vdi/webhooks"),
    ("GET", "/api/vdi/webhooks"),
    ("POST", "/api/vdi/webhooks/{endpoint_id}/rotate"),
    ("DELETE", "/api/vdi/webhooks/{endpoint_id}"),
    ("POST", "/api/vdi/webhooks/{endpoint_id}/test"),
    ("GET", "/api/vdi/webhooks/deliveries"),
    ("POST", "/api/vdi/webhooks/redeliver"),
    ("POST", "/api/vdi/billing/windows/{tenant_id}/{billing_window_id}/close"),
    ("POST", "/api/vdi/billing/corrections"),
}
TENANT = {
    ("GET", "/api/vdi/billing/bundles/{event_id}"),
    ("GET", "/api/vdi/billing/bundles/{event_id}/receipt"),
    ("GET", "/api/vdi/billing/accounts/{tenant_id}"),
    ("PUT", "/api/vdi/billing/accounts/{tenant_id}/limits"),
    ("GET", "/api/vdi/billing/statements/{tenant_id}/{billing_window_id}"),
    ("GET", "/api/vdi/billing/invoices/{tenant_id}/{billing_window_id}"),
    ("GET", "/api/vdi/billing/windows/{tenant_id}/{billing_window_id}/close"),
    ("GET", "/api/vdi/billing/windows/{tenant_id}/{billing_window_id}/entries"),
    ("GET", "/api/vdi/billing/windows/{tenant_id}/{billing_window_id}/export.csv"),
    ("GET", "/api/vdi/billing/corrections/{tenant_id}/{correction_id}"),
}
# The caller's own data with no tenant in the path: a tenant token lists its own windows only,
# and naming another tenant (?tenant_id=) is 404 (tests/service/test_billing_http.py).
OWN = {("GET", "/api/vdi/billing/windows")}
# Well-formed bodies, so that a refusal can only come from the credential.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/vdi/billing/revocations"): {"kind": "vkey", "value": "ab", "reason": "x"},
    ("POST", "/api/vdi/billing/accounts"): {"tenant_id": "tenant_new"},
    ("POST", "/api/vdi/billing/accounts/{tenant_id}/bind"): {"controller": "0x" + "11" * 20},
    ("POST", "/api/vdi/webhooks"): {"url": "http://127.0.0.1:9/hook"},
    ("POST", "/api/vdi/webhooks/redeliver"): {"dead": True},
    ("PUT", "/api/vdi/billing/accounts/{tenant_id}/limits"): {
        "per_request_micros": 7,
        "daily_micros": 70,
    },
}


def url_for(path: str, tenant: str, event: str | None = None) -> str:
    """The path with its parameters filled for `tenant` (and its own event, by default)."""
    filled = path.replace("{tenant_id}", tenant).replace("{event_id}", event or OWN_EVENT[tenant])
    return re.sub(r"\{[^}]+\}", "2026-05", filled)  # e.g. a statement's {window}


def body_for(route: tuple[str, str], pilot: dict[str, Any]) -> Any:
    if route == ("POST", "/api/vdi/billing/attest"):
        return attest_body(pilot, A, "evt_by_tenant")
    if route == ("POST", "/api/vdi/billing/accounts/{tenant_id}/tariff-key"):
        return {"tariff_snapshot": pilot["tariff_snapshot"]}
    return BODIES.get(route)


def attest_body(pilot: dict[str, Any], tenant: str, event: str) -> dict[str, Any]:
    body = copy.deepcopy(pilot)
    body["meter_event"].update(tenant_id=tenant, event_id=event)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FastAPI, Path]]:
    needs_build()
    home = tmp_path_factory.mktemp("tokens-home")
    with service(home) as (url, app):
        yield url, app, home


@pytest.fixture(scope="module")
def http(live: tuple[str, FastAPI, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live[0], timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def tokens(http: httpx.Client, pilot_request: dict[str, Any]) -> dict[str, str]:
    """Two tenants, each with a bundle of its own and one under a shared event id."""
    for tenant in (A, B):
        for event in (OWN_EVENT[tenant], SHARED_EVENT):
            r = http.post(ATTEST, json=attest_body(pilot_request, tenant, event), headers=AUTH)
            assert r.status_code == 200, r.text
        # and one inference in window 2026-05, so the tenant has a statement
        body = attest_body(INFERENCE, tenant, f"inf_{tenant}")
        body["tariff_snapshot"]["currency"] = "USD"  # no chain here: nothing to draw ETH from
        r = http.post(ATTEST, json=body, headers=AUTH)
        assert r.status_code == 200, r.text
    # A's shared event voided as "2026-05" (url_for's filler), so its correction exists to be read
    void = {"tenant_id": A, "corrects": SHARED_EVENT, "correction_id": "2026-05", "reason": "x"}
    r = http.post("/api/vdi/billing/corrections", json=void, headers=AUTH)
    assert r.status_code == 201, r.text
    # A's window closed, so that its close record exists to be read
    assert http.post(f"/api/vdi/billing/windows/{A}/2026-05/close", headers=AUTH).status_code == 200
    out = {}
    for tenant in (A, B):
        r = http.post(f"/api/vdi/billing/accounts/{tenant}/tokens", headers=AUTH)
        assert r.status_code == 201, r.text
        out[tenant] = r.json()["token"]
    return out


def operator_view(http: httpx.Client, tenant: str) -> dict[str, Any]:
    r = http.get(f"/api/vdi/billing/accounts/{tenant}", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def state(http: httpx.Client) -> tuple[Any, ...]:
    """What any write would change: counts, revocations, both tenants' accounts."""
    status = http.get("/api/vdi/status", headers=AUTH).json()
    revoked = http.get("/.well-known/vdi-billing-revocation.json").json()["payload"]
    return (
        status["counts"],
        revoked["entries"],
        operator_view(http, A),
        operator_view(http, B),
    )


# --- the route table itself ---


def test_every_route_is_classified(live: tuple[str, FastAPI, Path]) -> None:
    found = routes(live[1])
    unclassified = found - PUBLIC - OPERATOR - TENANT - OWN
    assert not unclassified, f"classify these routes in {__file__}: {sorted(unclassified)}"
    assert not (PUBLIC | OPERATOR | TENANT | OWN) - found, "the table names routes the app lacks"


# --- refusals first ---


@pytest.mark.parametrize("route", sorted(OPERATOR))
def test_operator_route_with_a_tenant_token_is_403_and_changes_nothing(
    route: tuple[str, str],
    http: httpx.Client,
    tokens: dict[str, str],
    pilot_request: dict[str, Any],
) -> None:
    before = state(http)
    method, path = route
    r = http.request(
        method, url_for(path, A), json=body_for(route, pilot_request), headers=bearer(tokens[A])
    )
    assert r.status_code == 403, r.text
    assert "operator only" in r.json()["detail"]
    assert state(http) == before


@pytest.mark.parametrize("route", sorted(TENANT))
@pytest.mark.parametrize("target", ["other tenant", "no such tenant"])
def test_tenant_route_for_another_tenant_is_404_like_missing_data(
    route: tuple[str, str],
    target: str,
    http: httpx.Client,
    tokens: dict[str, str],
    pilot_request: dict[str, Any],
) -> None:
    before = state(http)
    method, path = route
    tenant, event = (B, OWN_EVENT[B]) if target == "other tenant" else ("tenant_none", "evt_none")
    r = http.request(
        method,
        url_for(path, tenant, event),
        json=body_for(route, pilot_request),
        headers=bearer(tokens[A]),
    )
    assert r.status_code == 404, r.text
    assert operator_view(http, B)["tenant_key"] not in r.text
    assert state(http) == before


@pytest.mark.parametrize("route", sorted(r for r in TENANT if "{event_id}" in r[1]))
def test_naming_another_tenant_in_the_query_is_404(
    route: tuple[str, str], http: httpx.Client, tokens: dict[str, str]
) -> None:
    for event in (OWN_EVENT[A], OWN_EVENT[B], SHARED_EVENT):
        r = http.get(
            url_for(route[1], A, event), params={"tenant_id": B}, headers=bearer(tokens[A])
        )
        assert r.status_code == 404, (event, r.text)


@pytest.mark.parametrize("route", sorted(TENANT))
def test_revoked_token_is_401_on_every_tenant_route(
    route: tuple[str, str],
    http: httpx.Client,
    tokens: dict[str, str],
    pilot_request: dict[str, Any],
) -> None:
    token = http.post(f"/api/vdi/billing/accounts/{A}/tokens", headers=AUTH).json()
    method, path = route
    send = dict(method=method, url=url_for(path, A), json=body_for(route, pilot_request))
    assert http.request(**send, headers=bearer(token["token"])).status_code == 200
    r = http.delete(
        f"/api/vdi/billing/accounts/{A}/tokens",
        params={"token_id": token["token_id"]},
        headers=AUTH,
    )
    assert r.json() == {"tenant_id": A, "revoked": 1}
    refused = http.request(**send, headers=bearer(token["token"]))
    assert refused.status_code == 401, refused.text
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    # revoking one token by id leaves the tenant's other token working
    assert http.request(**send, headers=bearer(tokens[A])).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer vbt_"},
        {"Authorization": "Bearer vbt_short"},
        {"Authorization": "Bearer vbt_" + "A" * 43 + " extra"},
        {"Authorization": "Token vbt_" + "A" * 43},
        {"Authorization": "Bearer vbt_" + "A" * 43},  # well formed, never issued
        {"X-VDI-Attest-Secret": "wrong-secret-0123456789"},
        {},
    ],
    ids=[
        "basic",
        "empty",
        "blank",
        "short",
        "two-words",
        "scheme",
        "unknown",
        "bad-secret",
        "none",
    ],
)
@pytest.mark.parametrize("route", sorted(TENANT))
def test_missing_malformed_or_unknown_credentials_are_401(
    header: dict[str, str],
    route: tuple[str, str],
    http: httpx.Client,
    tokens: dict[str, str],
    pilot_request: dict[str, Any],
) -> None:
    method, path = route
    r = http.request(method, url_for(path, A), json=body_for(route, pilot_request), headers=header)
    assert r.status_code == 401, r.text


def test_tokens_for_an_unknown_tenant_are_404(http: httpx.Client) -> None:
    assert http.post("/api/vdi/billing/accounts/nobody/tokens", headers=AUTH).status_code == 404
    assert http.delete("/api/vdi/billing/accounts/nobody/tokens", headers=AUTH).status_code == 404


def test_a_revoked_tenant_keeps_no_way_in(
    http: httpx.Client, pilot_request: dict[str, Any]
) -> None:
    tenant = "tenant_gamma"
    assert http.post(
        "/api/vdi/billing/accounts", json={"tenant_id": tenant}, headers=AUTH
    ).is_success
    issued = [
        http.post(f"/api/vdi/billing/accounts/{tenant}/tokens", headers=AUTH).json()["token"]
        for _ in range(2)
    ]
    account = f"/api/vdi/billing/accounts/{tenant}"
    assert all(http.get(account, headers=bearer(t)).status_code == 200 for t in issued)
    r = http.delete(f"/api/vdi/billing/accounts/{tenant}/tokens", headers=AUTH)
    assert r.json() == {"tenant_id": tenant, "revoked": 2}
    assert all(http.get(account, headers=bearer(t)).status_code == 401 for t in issued)


def test_tokens_are_stored_only_as_hashes(
    live: tuple[str, FastAPI, Path], tokens: dict[str, str]
) -> None:
    with sqlite3.connect(live[2] / DB_NAME) as db:
        rows = db.execute("SELECT * FROM tenant_tokens").fetchall()
        dump = "\n".join(db.iterdump())
    assert rows
    for token in tokens.values():
        assert token not in dump
        digest = hashlib.sha256(token.encode()).hexdigest()
        assert digest in dump


# --- what a tenant may do ---


def test_tenant_reads_its_own_bundles_account_and_receipt(
    http: httpx.Client, tokens: dict[str, str]
) -> None:
    for tenant in (A, B):
        auth = bearer(tokens[tenant])
        for event in (OWN_EVENT[tenant], SHARED_EVENT):
            bundle = http.get(f"/api/vdi/billing/bundles/{event}", headers=auth)
            assert bundle.status_code == 200, bundle.text
            assert bundle.json()["meter_event"]["tenant_id"] == tenant
            assert bundle.json()["meter_event"]["event_id"] == event
            receipt = http.get(f"/api/vdi/billing/bundles/{event}/receipt", headers=auth).json()
            assert receipt == {
                "event_id": event,
                "tenant_id": tenant,
                "settlement_status": "none",  # a USD charge: attested, nothing to settle
                "usage_receipt": None,
            }
        own = http.get(f"/api/vdi/billing/bundles/{OWN_EVENT[tenant]}",
                       params={"tenant_id": tenant}, headers=auth)  # fmt: skip
        assert own.status_code == 200
        account = http.get(f"/api/vdi/billing/accounts/{tenant}", headers=auth).json()
        assert account == operator_view(http, tenant)


def test_the_operator_still_needs_tenant_id_for_a_shared_event(http: httpx.Client) -> None:
    assert http.get(f"/api/vdi/billing/bundles/{SHARED_EVENT}", headers=AUTH).status_code == 409
    r = http.get(f"/api/vdi/billing/bundles/{SHARED_EVENT}", params={"tenant_id": B}, headers=AUTH)
    assert r.json()["meter_event"]["tenant_id"] == B


def test_tenant_sets_its_own_limits_and_they_bind_its_attests(
    http: httpx.Client, tokens: dict[str, str]
) -> None:
    b_before = operator_view(http, B)["limits"]
    r = http.put(
        f"/api/vdi/billing/accounts/{A}/limits",
        json={"per_request_micros": 5000, "daily_micros": 90000},
        headers=bearer(tokens[A]),
    )
    assert r.status_code == 200, r.text
    assert operator_view(http, A)["limits"]["per_request_micros"] == 5000
    assert operator_view(http, A)["limits"]["daily_micros"] == 90000
    assert operator_view(http, B)["limits"] == b_before
    bad = http.put(
        f"/api/vdi/billing/accounts/{A}/limits",
        json={"per_request_micros": -1},
        headers=bearer(tokens[A]),
    )
    assert bad.status_code == 422
    http.put(f"/api/vdi/billing/accounts/{A}/limits", json={}, headers=bearer(tokens[A]))
    assert operator_view(http, A)["limits"]["per_request_micros"] is None


def test_cli_issues_and_revokes_tokens_the_running_service_honours(
    live: tuple[str, FastAPI, Path], http: httpx.Client, tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("VBILL_HOME", str(live[2]))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    issued = runner.invoke(main, ["tokens", "issue", B, "--json"])
    assert issued.exit_code == 0, issued.output
    token = json.loads(issued.output)["token"]
    account = f"/api/vdi/billing/accounts/{B}"
    assert http.get(account, headers=bearer(token)).status_code == 200
    assert http.get(f"/api/vdi/billing/accounts/{A}", headers=bearer(token)).status_code == 404
    listed = runner.invoke(main, ["tokens", "list", B])
    assert token not in listed.output and "active" in listed.output
    token_id = json.loads(issued.output)["token_id"]
    revoked = runner.invoke(main, ["tokens", "revoke", B, "--token-id", token_id])
    assert revoked.exit_code == 0 and "revoked 1" in revoked.output, revoked.output
    assert http.get(account, headers=bearer(token)).status_code == 401
    assert http.get(account, headers=bearer(tokens[B])).status_code == 200
    unknown = runner.invoke(main, ["tokens", "issue", "tenant_none"])
    assert unknown.exit_code == 2 and "no account" in unknown.output
