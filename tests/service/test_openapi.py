"""The OpenAPI document served by the real service over a socket: self-contained (every `$ref`
resolves under #/components/schemas, every error is the one `Error` schema, `/docs` loads no
asset from another host) and stating the rules the service enforces, its patterns written to
agree with the encoder's checks. schemathesis's whole run against it is
test_openapi_schemathesis.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import needs_build
from support.http_server import ATTEST, AUTH, service
from vbill.billing.periods import period_of
from vbill.encode.encoding import encode_timestamp
from vbill.errors import InputError
from vbill.models import PERIOD_PATTERN, TIMESTAMP_PATTERN

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    needs_build()
    with service(tmp_path_factory.mktemp("openapi")) as (url, _app):
        request = json.loads((EXAMPLES / "usd-linear.json").read_text())
        assert httpx.post(url + ATTEST, json=request, headers=AUTH, timeout=120).status_code == 200
        tenant = request["meter_event"]["tenant_id"]
        account = httpx.post(
            url + "/api/vdi/billing/accounts", json={"tenant_id": "tenant_other"}, headers=AUTH
        )
        assert account.status_code == 201, account.text
        token = httpx.post(f"{url}/api/vdi/billing/accounts/{tenant}/tokens", headers=AUTH)
        assert token.status_code == 201, token.text
        yield url


@pytest.fixture(scope="module")
def document(base_url: str) -> dict[str, Any]:
    return httpx.get(base_url + "/openapi.json").json()


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(document)))
    schemas = document["components"]["schemas"]
    assert refs, "the document uses references"
    unresolved = {
        r for r in refs if not (r.startswith("#/components/schemas/") and r[21:] in schemas)
    }
    assert not unresolved
    assert "$defs" not in json.dumps(document)
    assert {"MeterEvent", "TariffSnapshot", "AttestRequest", "VerifyRequest"} <= set(schemas)


def test_every_operation_documents_its_errors(document: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/Error"}
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op.get("description") or op.get("summary"), where
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                assert body["schema"], where
            ok = [c for c in op["responses"] if c.startswith("2")]
            assert ok and all(op["responses"][c].get("content") for c in ok), where
            for code, answer in op["responses"].items():
                if code >= "400" and (path, code) != ("/health", "503"):  # a degraded health
                    assert answer["content"]["application/json"]["schema"] == error, (where, code)
            if any(p["name"] == "X-VDI-Attest-Secret" for p in op.get("parameters", [])):
                assert "401" in op["responses"], where


def test_every_body_schema_describes_its_fields(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("AttestRequest", "VerifyRequest", "MeterEvent", "TariffSnapshot", "Error"):
        props = schemas[name]["properties"]
        undescribed = [f for f, s in props.items() if "description" not in s and "$ref" not in s]
        assert not undescribed, (name, undescribed)
    for name in ("AttestRequest", "VerifyRequest"):
        assert schemas[name].get("examples"), name


def test_request_validation_errors_name_the_field(base_url: str) -> None:
    answer = httpx.get(
        base_url + "/api/vdi/billing/transparency/inclusion", params={"leaf_index": "x"}
    )
    assert answer.status_code == 422
    assert answer.json()["detail"]["field"] == "leaf_index"
    answer = httpx.post(base_url + "/api/vdi/billing/accounts", json={"tenant_id": 7}, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["detail"]["field"] == "tenant_id"
    assert answer.json()["detail"]["message"]


def test_docs_render_without_a_cdn(base_url: str) -> None:
    page = httpx.get(base_url + "/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        assert httpx.get(base_url + asset).status_code == 200, asset
    assert "cdn" not in page.text.lower()


def test_the_document_states_the_rules_the_service_enforces(
    base_url: str, document: dict[str, Any]
) -> None:
    """Issue 24: what schemathesis (`--checks all`) found refused or accepted against the
    document now agrees with it: a 405 lists every method of the path, out-of-range proofs are
    404 (no such proof), a chainless service's on-chain onboarding is 409, the events body is
    1..1,000, verify's top level is the documented shape, dimension names and prices carry
    their patterns."""
    schemas = document["components"]["schemas"]
    paths = document["paths"]
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=60) as http:
        tokens = "/api/vdi/billing/accounts/tenant_other/tokens"
        r = http.patch(tokens)
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, POST"
        assert {m.upper() for m in paths["/api/vdi/billing/accounts/{tenant_id}/tokens"]} == {
            "DELETE", "POST"}  # fmt: skip
        head = http.get("/api/vdi/billing/transparency/head").json()["tree_size"]
        for path, params in (
            ("inclusion", {"leaf_index": head}),
            ("inclusion", {"leaf_index": 0, "tree_size": head + 1}),
            ("consistency", {"first": head, "second": head - 1}),
            ("consistency", {"first": 0, "second": head + 1}),
        ):
            r = http.get(f"/api/vdi/billing/transparency/{path}", params=params)
            assert r.status_code == 404, (path, params, r.text)
            assert "404" in paths[f"/api/vdi/billing/transparency/{path}"]["get"]["responses"]
        for path, body in (
            (
                "/api/vdi/billing/accounts",
                {"tenant_id": "t_chainless", "controller": "0x" + "1" * 40},
            ),
            ("/api/vdi/billing/accounts/tenant_other/bind", {"controller": "0x" + "1" * 40}),
        ):
            r = http.post(path, json=body)
            assert r.status_code == 409 and "needs a chain" in r.json()["detail"], r.text
        assert http.post("/api/vdi/billing/events", json={"events": []}).status_code == 422
        r = http.get("/api/vdi/billing/transparency/consistency", params=[("first", 0)] * 2)
        assert r.status_code == 422 and r.json()["detail"]["field"] == "first", r.text
        events = paths["/api/vdi/billing/events"]["post"]["requestBody"]["content"]
        schema = schemas[events["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
        assert (
            schema["properties"]["events"]["minItems"],
            schema["properties"]["events"]["maxItems"],
        ) == (1, 1000)
        r = http.post("/api/vdi/billing/verify", json=[])
        assert r.status_code == 422 and r.json()["detail"]["field"] == "body", r.text
        for body in ({"usage": [1]}, {"extra": {}}):  # any member is judged, as documented
            r = http.post("/api/vdi/billing/verify", json=body)
            assert r.status_code == 200 and r.json()["valid"] is False, r.text
        bad = {"kind": "attester", "value": "f" * 64, "reason": "x"}
        assert http.post("/api/vdi/billing/revocations", json=bad).status_code == 422
        # a price of `true` is no number (a lax float read it as 1.0 and attested it), and
        # /tariff-key reads its tariff as /attest does: JSON integers only, no "0" string
        request = json.loads((EXAMPLES / "usd-linear.json").read_text())
        key = "/api/vdi/billing/accounts/tenant_other/tariff-key"
        for field, value in (("unit_price_micros", True), ("min_charge_micros", "0")):
            tariff = {**request["tariff_snapshot"], field: value}
            r = http.post(ATTEST, json={**request, "tariff_snapshot": tariff})
            assert r.status_code == 422, r.text
            assert r.json()["detail"]["field"] == f"tariff_snapshot.{field}", r.text
            r = http.post(key, json={"tariff_snapshot": tariff})
            assert r.status_code == 422, r.text
            assert r.json()["detail"]["field"] == f"tariff_snapshot.{field}", r.text
    assert schemas["VerifyRequest"].get("additionalProperties", True) is not False
    u64 = schemas["LimitsBody"]["properties"]["daily_micros"]["anyOf"][0]
    assert u64["maximum"] == 2**64 - 1 and isinstance(u64["maximum"], int)  # not 2^64 as a float
    names = schemas["MeteredTariffSnapshot"]["properties"]["dimensions"]["propertyNames"]
    assert names["pattern"] == "^[a-z][a-z0-9_]{0,31}$"
    price = schemas["TariffSnapshot"]["properties"]["unit_price_micros"]["anyOf"]
    assert {p["type"] for p in price} == {"integer", "number", "string"}
    assert [p.get("multipleOf") for p in price if p["type"] == "number"] == [0.000001]
    tariff = schemas["TariffSnapshot"]["properties"]
    assert tariff["tariff_id"]["minLength"] == 1 and tariff["tariff_id"]["maxLength"] == 256
    assert "ETH" in tariff["currency"]["enum"] and "AAA" not in tariff["currency"]["enum"]
    assert tariff["rounding_mode"]["enum"] == ["ceil", "floor", "half_up"]
    assert schemas["MeterEvent"]["properties"]["event_timestamp"]["pattern"] == TIMESTAMP_PATTERN
    assert schemas["CorrectionRequest"]["additionalProperties"] is False


def _accepts(check: Any, value: str) -> bool:
    try:
        check(value)
    except InputError:
        return False
    return True


def _timestamp(value: str) -> None:
    encode_timestamp(value, "meter_event.event_timestamp")


def test_the_date_patterns_agree_with_the_encoder() -> None:
    """The document's timestamp and period patterns are the encoder's rules written as regular
    expressions (leap years, month lengths, 1970 on, the last period ending in 9999): over
    every month and day of years at each boundary, and clocks and fractions at theirs, both
    accept exactly the same strings."""
    stamp, period = re.compile(TIMESTAMP_PATTERN), re.compile(PERIOD_PATTERN)
    texts, windows = [], []
    for year in (1969, 1970, 1972, 1999, 2000, 2024, 2100, 2400, 2800, 3000, 9996, 9998, 9999):
        for month in range(14):
            windows.append(f"{year:04d}-{month:02d}")
            for day in range(33):
                windows.append(f"{year:04d}-{month:02d}-{day:02d}")
                texts.append(f"{windows[-1]}T12:00:00Z")
    clocks = ("23:59:59.999", "24:00:00", "12:60:00", "12:00:60", "00:00:00.1200", "00:00:00.1234")
    texts += [f"2024-02-29T{clock}Z" for clock in clocks]
    fractions = ("", ".1", ".12", ".123", ".123000000", ".1230000000", ".000000001")
    texts += [f"2026-05-29T12:00:00{fraction}Z" for fraction in fractions]
    for text in texts:
        assert bool(stamp.fullmatch(text)) == _accepts(_timestamp, text), text
    for window in windows:
        assert bool(period.fullmatch(window)) == _accepts(period_of, window), window
