"""The HTTP service (FastAPI app factory) on a real loopback socket, with the real prover and a
real SQLite file; the chain is exercised in test_e2e_service.py."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import needs_build
from support.http_server import AppClient, over_socket
from vbill.bundle.keys import Attester
from vbill.errors import ToolError
from vbill.ledger import translog
from vbill.ledger.store import WEI_PER_MICRO
from vbill.service import Settings, create_app
from vbill.verify import revocation

SECRET = "test-secret-0123456789abcdef"
AUTH = {"X-VDI-Attest-Secret": SECRET}
ATTEST = "/api/vdi/billing/attest"
VERIFY = "/api/vdi/billing/verify"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("vbill-home")
    Attester.new(home / "attester.key")
    return home


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[AppClient]:
    needs_build()
    settings = Settings(home=home, attest_secret=SECRET, prover_workers=1)
    with over_socket(create_app(settings)) as c:
        yield c


def counts(client: AppClient) -> dict[str, int]:
    return client.get("/api/vdi/status", headers=AUTH).json()["counts"]


def req(pilot: dict[str, Any], **meter: Any) -> dict[str, Any]:
    r = copy.deepcopy(pilot)
    r["meter_event"].update(meter)
    return r


def verify_body(bundle: dict[str, Any]) -> dict[str, Any]:
    record = {k: bundle[k] for k in ("billing_version", "profileId", "meter_event",
                                     "tariff_snapshot", "billing")}  # fmt: skip
    return {
        "attestation": bundle["attestation"],
        "receipt": bundle["receipt"],
        "billed_billing_v2": copy.deepcopy(record),
        "expected_billing_v2": record,
    }


# --- refusals first ---


def test_refuses_to_start_without_a_secret_unless_dev(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="VDI_ATTEST_SECRET"):
        Settings(home=tmp_path).resolved()
    with pytest.raises(ToolError, match="shorter"):
        Settings(home=tmp_path, attest_secret="short").resolved()
    dev = Settings(home=tmp_path, dev=True).resolved()
    assert dev.attest_secret and len(dev.attest_secret) >= 32
    assert (tmp_path / "dev-attest-secret").stat().st_mode & 0o077 == 0
    assert dev.attest_secret not in repr(dev)


def test_attest_without_or_with_wrong_secret_is_401_and_stores_nothing(
    client: AppClient, pilot_request: dict[str, Any]
) -> None:
    before = counts(client)
    assert client.post(ATTEST, json=pilot_request).status_code == 401
    bad = {"X-VDI-Attest-Secret": SECRET[:-1] + "x"}
    assert client.post(ATTEST, json=pilot_request, headers=bad).status_code == 401
    assert client.get("/api/vdi/billing/accounts/tenant_acme").status_code == 401
    assert counts(client) == before


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r["meter_event"].update(usage_units=-1), "meter_event.usage_units"),
        (lambda r: r["meter_event"].update(usage_units=2**64), "meter_event.usage_units"),
        (
            lambda r: r["meter_event"].update(event_timestamp="2026-05-29T12:00:00"),
            "meter_event.event_timestamp",
        ),
        (
            lambda r: r["tariff_snapshot"].update(rounding_mode="up"),
            "tariff_snapshot.rounding_mode",
        ),
        (lambda r: r["tariff_snapshot"].pop("currency"), "tariff_snapshot.currency"),
        (lambda r: r.update(extra=1), "extra"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    client: AppClient, pilot_request: dict[str, Any], mutate: Any, field: str
) -> None:
    before = counts(client)
    body = req(pilot_request, event_id="evt_bad_input")
    mutate(body)
    r = client.post(ATTEST, json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == field
    assert counts(client) == before


def test_non_json_body_is_422(client: AppClient) -> None:
    r = client.post(ATTEST, content=b"{nope", headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "body"


# --- attest, idempotency, verify ---


@pytest.fixture(scope="module")
def pilot(client: AppClient, pilot_request: dict[str, Any]) -> dict[str, Any]:
    r = client.post(ATTEST, json=pilot_request, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.headers["X-VDI-Replay"] == "false"
    return r.json()


def test_attest_returns_a_bundle_with_receipt_and_pilot_charge(pilot: dict[str, Any]) -> None:
    assert pilot["billing"]["expected_charge_micros"] == 221040
    assert pilot["attestation"]["billing_proof"]["public_signals"][1] == "221040"
    assert pilot["receipt"]["tree_head"]["tree_size"] >= 1
    assert pilot["settlement"] is None  # USD: attested, nothing to settle


def test_same_event_different_payload_is_409(
    client: AppClient, pilot: dict[str, Any], pilot_request: dict[str, Any]
) -> None:
    before = counts(client)
    r = client.post(ATTEST, json=req(pilot_request, usage_units=1843), headers=AUTH)
    assert r.status_code == 409
    assert counts(client) == before


def test_same_event_same_payload_returns_the_stored_bundle(
    client: AppClient, pilot: dict[str, Any], pilot_request: dict[str, Any]
) -> None:
    r = client.post(ATTEST, json=pilot_request, headers=AUTH)
    assert r.status_code == 200 and r.headers["X-VDI-Replay"] == "true"
    assert r.json() == pilot
    got = client.get("/api/vdi/billing/bundles/evt_pilot_001", headers=AUTH)
    assert got.status_code == 200 and got.json() == pilot
    assert client.get("/api/vdi/billing/bundles/nope", headers=AUTH).status_code == 404


def test_verify_rejects_a_tampered_charge_and_accepts_the_original(
    client: AppClient, pilot: dict[str, Any]
) -> None:
    tampered = verify_body(pilot)
    tampered["billed_billing_v2"]["billing"]["expected_charge_micros"] = 221041
    bad = client.post(VERIFY, json=tampered).json()
    assert bad["valid"] is False and bad["billing_check"]["valid"] is False
    garbage = client.post(VERIFY, json={"attestation": 5})
    assert garbage.status_code == 200 and garbage.json()["valid"] is False
    good = client.post(VERIFY, json=verify_body(pilot)).json()
    assert good["verification"]["valid"], good
    assert good["billing_check"]["valid"], good
    assert good["incircuit_binding_verification"]["valid"], good
    assert good["incircuit_binding_verification"]["binding_version"] == "bn128-poseidon8-v1"


# --- transparency log ---


def test_receipt_head_inclusion_and_consistency_endpoints_verify(
    client: AppClient, pilot: dict[str, Any], pilot_request: dict[str, Any]
) -> None:
    signer = client.get("/api/vdi/status").json()["attester"]
    digest = bytes.fromhex(pilot["attestation"]["bundle_digest"][2:])
    assert translog.verify_receipt(pilot["receipt"], digest, [signer])[0]
    first = pilot["receipt"]["tree_size"]
    client.post(ATTEST, json=req(pilot_request, event_id="evt_log_2"), headers=AUTH)
    head = client.get("/api/vdi/billing/transparency/head").json()
    assert translog.verify_tree_head(head, [signer]) and head["tree_size"] > first
    inc = client.get(
        "/api/vdi/billing/transparency/inclusion",
        params={"leaf_index": pilot["receipt"]["leaf_index"]},
    ).json()
    ok, why = translog.verify_receipt(inc, digest, [signer])
    assert ok, why
    cons = client.get("/api/vdi/billing/transparency/consistency", params={"first": first}).json()
    assert translog.verify_consistency(
        first,
        cons["second"],
        [bytes.fromhex(p[2:]) for p in cons["proof"]],
        bytes.fromhex(cons["first_head"]["root_hash"][2:]),
        bytes.fromhex(head["root_hash"][2:]),
    )
    bad = client.get("/api/vdi/billing/transparency/inclusion", params={"leaf_index": 10**6})
    assert bad.status_code == 404  # no such leaf (the document states leaf_index < tree_size)
    assert "no leaf 1000000" in bad.json()["detail"]


# --- accounts and money ---


def eth_request(pilot_request: dict[str, Any], tenant: str, event: str) -> dict[str, Any]:
    r = req(pilot_request, tenant_id=tenant, event_id=event)
    r["tariff_snapshot"]["currency"] = "ETH"
    return r


def test_eth_attest_needs_balance_and_respects_limits(
    client: AppClient, pilot_request: dict[str, Any]
) -> None:
    created = client.post("/api/vdi/billing/accounts", json={"tenant_id": "t_eth"}, headers=AUTH)
    assert created.status_code == 201, created.text
    again = client.post("/api/vdi/billing/accounts", json={"tenant_id": "t_eth"}, headers=AUTH)
    assert again.status_code == 409
    before = counts(client)
    r = client.post(ATTEST, json=eth_request(pilot_request, "t_eth", "e1"), headers=AUTH)
    assert r.status_code == 429 and "available balance" in r.json()["detail"]
    assert int(r.headers["Retry-After"]) > 0
    assert counts(client) == before
    # fund it (as the settlement worker would after 12 confirmations)
    store = client.app.state.svc.store  # type: ignore[attr-defined]
    store.record_deposit("0x" + "ab" * 32, 0, "t_eth", 10**18, 1)
    store.credit_confirmed(100)
    lim = client.put(
        "/api/vdi/billing/accounts/t_eth/limits",
        json={"per_request_micros": 200000, "daily_micros": None},
        headers=AUTH,
    )
    assert lim.status_code == 200
    r = client.post(ATTEST, json=eth_request(pilot_request, "t_eth", "e1"), headers=AUTH)
    assert r.status_code == 429 and "per-request" in r.json()["detail"]
    client.put(
        "/api/vdi/billing/accounts/t_eth/limits", json={"per_request_micros": None}, headers=AUTH
    )
    r = client.post(ATTEST, json=eth_request(pilot_request, "t_eth", "e1"), headers=AUTH)
    assert r.status_code == 200, r.text
    acct = client.get("/api/vdi/billing/accounts/t_eth", headers=AUTH).json()
    assert acct["balance"]["reserved"] == str(221040 * WEI_PER_MICRO)
    assert int(acct["balance"]["available"]) == 10**18 - 221040 * WEI_PER_MICRO
    key = client.post(
        "/api/vdi/billing/accounts/t_eth/tariff-key",
        json={"tariff_snapshot": eth_request(pilot_request, "t_eth", "x")["tariff_snapshot"]},
        headers=AUTH,
    ).json()["tariff_key"]
    assert key == r.json()["attestation"]["billing_proof"]["public_signals"][2]


def test_binding_to_a_chain_needs_a_chain_and_an_address(client: AppClient) -> None:
    body = {"tenant_id": "t_bind", "controller": "0x" + "11" * 20}
    r = client.post("/api/vdi/billing/accounts", json=body, headers=AUTH)
    assert r.status_code == 409 and "needs a chain" in r.json()["detail"]
    r = client.post(
        "/api/vdi/billing/accounts", json={**body, "controller": "0x1234"}, headers=AUTH
    )
    assert r.status_code == 422
    assert client.get("/api/vdi/billing/accounts/t_bind", headers=AUTH).status_code == 404


def test_limits_body_is_validated(client: AppClient) -> None:
    client.post("/api/vdi/billing/accounts", json={"tenant_id": "t_lim"}, headers=AUTH)
    r = client.put(
        "/api/vdi/billing/accounts/t_lim/limits", json={"per_request_micros": -1}, headers=AUTH
    )
    assert r.status_code == 422
    r = client.put("/api/vdi/billing/accounts/nobody/limits", json={}, headers=AUTH)
    assert r.status_code == 404


# --- revocation: a service of its own (revoking its attester would refuse every later attest) ---


@pytest.fixture
def revoking(tmp_path: Path, pilot_request: dict[str, Any]) -> Iterator[tuple[AppClient, dict]]:
    """A fresh service (own home, key and SQLite file) and a bundle it attested."""
    needs_build()
    Attester.new(tmp_path / "attester.key")
    settings = Settings(home=tmp_path, attest_secret=SECRET, prover_workers=1)
    with over_socket(create_app(settings)) as c:
        r = c.post(ATTEST, json=pilot_request, headers=AUTH)
        assert r.status_code == 200, r.text
        yield c, r.json()


def test_revoked_attester_is_listed_signed_and_fails_verification(
    revoking: tuple[AppClient, dict[str, Any]],
) -> None:
    client, pilot = revoking
    signer = client.get("/api/vdi/status").json()["attester"]
    assert (
        client.post(
            "/api/vdi/billing/revocations",
            json={"kind": "attester", "value": signer, "reason": "x"},
        ).status_code
        == 401
    )
    r = client.post(
        "/api/vdi/billing/revocations",
        json={"kind": "attester", "value": signer, "reason": "key rotated in test"},
        headers=AUTH,
    )
    assert r.status_code == 200
    doc = client.get("/.well-known/vdi-billing-revocation.json").json()
    payload = revocation.verify_revocation(doc, [signer])
    assert payload is not None and payload["revoked_attesters"] == [signer.lower()]
    forged = copy.deepcopy(doc)
    forged["payload"]["revoked_attesters"] = []
    assert revocation.verify_revocation(forged, [signer]) is None
    assert revocation.verify_revocation(doc, ["0x" + "00" * 20]) is None
    result = client.post(VERIFY, json=verify_body(pilot)).json()
    assert result["verification"]["valid"] is False
    assert "revoked" in result["verification"]["reason"]
    # with its own attester revoked, the service says it cannot attest
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert "revoked" in " ".join(health.json()["reasons"])


def test_status_health_and_openapi(client: AppClient) -> None:
    assert client.get("/health").status_code == 200
    status = client.get("/api/vdi/status").json()
    assert status["binding_version"] == "bn128-poseidon8-v1" and status["chain"] is None
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/vdi/billing/attest" in paths and "/api/vdi/billing/verify" in paths
    assert client.get("/docs").status_code == 200
