"""Corrections from the outside: `POST /api/vdi/billing/corrections` and `POST …/verify` over a
socket, the window statement that lists them, and `vbill correct` / `vbill void` / `vbill
verify` / `vbill statement` through click's CliRunner on a real $VBILL_HOME.

USD tariffs: no chain is needed (nothing settles), the proofs are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from support import V2C, metered_event, needs_v2c
from support.http_server import ATTEST, AUTH, VERIFY, service
from vbill.cli.main import main
from vbill.client import Client, parse_bundle
from vbill.verify.verify import request_from_bundle

pytestmark = pytest.mark.slow

CORRECTIONS = "/api/vdi/billing/corrections"
STATEMENT = "/api/vdi/billing/statements/tenant_acme/2026-05"


def usd(event_id: str, inp: int, out: int) -> dict[str, Any]:
    return metered_event("tenant_acme", event_id, inp, out, currency="USD")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service's $VBILL_HOME (attester key, SQLite store), shared with the CLI test."""
    return tmp_path_factory.mktemp("corrections-http")


@pytest.fixture(scope="module")
def live(home: Path) -> Iterator[httpx.Client]:
    needs_v2c()
    with service(home) as (url, _app), httpx.Client(base_url=url, timeout=120) as http:
        for i, (inp, out) in enumerate([(156, 412), (300, 700), (40, 4100)], start=1):
            r = http.post(ATTEST, json=usd(f"inf_{i}", inp, out), headers=AUTH)
            assert r.status_code == 200, r.text
        yield http


def body(corrects: str, correction_id: str, **more: Any) -> dict[str, Any]:
    return {
        "tenant_id": "tenant_acme",
        "corrects": corrects,
        "correction_id": correction_id,
        "reason": "disputed: a test inference",
        **more,
    }


def test_http_refusals_name_what_is_wrong(live: httpx.Client) -> None:
    r = live.post(CORRECTIONS, json=body("inf_1", "c1"))
    assert r.status_code == 401
    r = live.post(CORRECTIONS, json=body("inf_404", "c1"), headers=AUTH)
    assert r.status_code == 404 and "no event 'inf_404'" in r.json()["detail"]
    r = live.post(CORRECTIONS, json=body("inf_1", "c1", usage={"output_tokens": 413}), headers=AUTH)
    assert r.status_code == 422
    assert r.json()["detail"]["field"] == "correction.usage.output_tokens"
    r = live.post(CORRECTIONS, json=body("inf_1", "c1", usage={"images": 1}), headers=AUTH)
    assert (r.status_code, r.json()["detail"]["field"]) == (422, "correction.usage.images")
    r = live.post(CORRECTIONS, json=[1], headers=AUTH)
    assert (r.status_code, r.json()["detail"]["field"]) == (422, "correction")


def test_http_correction_verifies_and_nets_the_statement(live: httpx.Client) -> None:
    r = live.post(CORRECTIONS, json=body("inf_2", "cor_2"), headers=AUTH)
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["corrects"], out["seq"], out["created"]) == ("inf_2", 4, True)
    assert out["credit_micros"] > 0
    again = live.post(CORRECTIONS, json=body("inf_2", "cor_2"), headers=AUTH)
    assert again.status_code == 200 and again.json()["correction"] == out["correction"]
    second = live.post(CORRECTIONS, json=body("inf_2", "cor_2b"), headers=AUTH)
    assert second.status_code == 409 and "already corrected" in second.json()["detail"]
    verdict = live.post(VERIFY, json=out["correction"]).json()
    assert verdict["valid"], verdict
    assert verdict["incircuit_binding_verification"]["binding_version"] == "bn128-poseidon8-v2c"
    doc = live.get(STATEMENT, headers=AUTH).json()
    assert doc["events"] == 3 and len(doc["bundles"]) == 4
    (listed,) = doc["corrections"]
    assert (listed["correction_id"], listed["corrects"], listed["reason"]) == (
        "cor_2",
        "inf_2",
        "disputed: a test inference",
    )
    assert doc["totals_by_dimension"] == {"input_tokens": 196, "output_tokens": 4512}
    charges = sum(
        b["billing"]["expected_charge_micros"] for b in doc["bundles"][:3] if "meter_event" in b
    )
    assert doc["total_micros"] == charges - out["credit_micros"]
    # the invoice nets the corrected units out of its tier lines and lists the correction
    inv = live.get("/api/vdi/billing/invoices/tenant_acme/2026-05", headers=AUTH).json()
    assert int(inv["total_micros"]) == doc["total_micros"]
    assert [(c["correction_id"], c["credit_micros"]) for c in inv["corrections"]] == [
        ("cor_2", str(out["credit_micros"]))
    ]
    units = {}
    for line in inv["lines"]:
        if line["kind"] == "usage":
            units[line["dimension"]] = units.get(line["dimension"], 0) + int(line["units"])
    assert units == doc["totals_by_dimension"]


def test_get_correction_is_its_tenants_and_fetched_it_verifies(
    live: httpx.Client, tmp_path: Path
) -> None:
    made = live.post(CORRECTIONS, json=body("inf_2", "cor_2"), headers=AUTH)  # logged above
    assert made.status_code in (200, 201), made.text
    doc = made.json()["correction"]
    path = f"{CORRECTIONS}/tenant_acme/cor_2"
    assert live.get(path).status_code == 401
    assert live.get(path, headers=AUTH).json() == doc
    r = live.post("/api/vdi/billing/accounts", json={"tenant_id": "tenant_beta"}, headers=AUTH)
    assert r.status_code in (200, 201), r.text
    tokens = {}
    for tenant in ("tenant_acme", "tenant_beta"):
        r = live.post(f"/api/vdi/billing/accounts/{tenant}/tokens", headers=AUTH)
        assert r.status_code == 201, r.text
        tokens[tenant] = {"Authorization": f"Bearer {r.json()['token']}"}
    assert live.get(path, headers=tokens["tenant_acme"]).json() == doc
    # another tenant's correction, a missing one, and one of a tenant that does not exist:
    # the same 404, so a foreign token learns nothing of what exists
    foreign = live.get(path, headers=tokens["tenant_beta"])
    missing = live.get(f"{CORRECTIONS}/tenant_beta/cor_2", headers=tokens["tenant_beta"])
    nobody = live.get(f"{CORRECTIONS}/tenant_none/cor_2", headers=tokens["tenant_beta"])
    assert foreign.status_code == missing.status_code == nobody.status_code == 404
    assert "cor_2" not in foreign.text
    with Client(str(live.base_url), token=tokens["tenant_acme"]["Authorization"][7:]) as api:
        assert api.correction("tenant_acme", "cor_2") == doc
    out = tmp_path / "c.json"
    runner = CliRunner(
        env={
            "VBILL_TOKEN": tokens["tenant_acme"]["Authorization"][7:],
            "VBILL_HOME": str(tmp_path),
            "DATABASE_URL": None,
        }
    )
    args = ["fetch", "cor_2", "--correction", "tenant_acme", "--url", str(live.base_url)]
    fetched = runner.invoke(main, [*args, "-o", str(out)])
    assert fetched.exit_code == 0, fetched.output
    assert json.loads(out.read_text()) == doc
    trust = ["--trust-attester", doc["attestation"]["attester"], "--vkey", str(V2C.vkey)]
    verified = runner.invoke(main, ["verify", str(out), *trust, "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["valid"] is True
    # the corrected inference's usage object names its correction; the bundle still verifies
    bundle = live.get("/api/vdi/billing/bundles/inf_2", headers=tokens["tenant_acme"]).json()
    credit = made.json()["credit_micros"]
    assert bundle["usage"]["corrected_by"] == {"correction_id": "cor_2", "credit_micros": credit}
    assert (
        "corrected_by"
        not in live.get("/api/vdi/billing/bundles/inf_1", headers=AUTH).json()["usage"]
    )
    assert parse_bundle(bundle).usage.corrected_by.credit_micros == credit  # type: ignore[union-attr]
    verdict = live.post(VERIFY, json=request_from_bundle(bundle)).json()
    assert verdict["valid"], verdict
    bundle["usage"]["corrected_by"]["credit_micros"] = -1
    verdict = live.post(VERIFY, json=request_from_bundle(bundle)).json()
    assert not verdict["billing_check"]["valid"]
    assert verdict["billing_check"]["reason"].startswith("usage.corrected_by.credit_micros")


def entries(live: httpx.Client) -> list[dict[str, Any]]:
    r = live.get("/api/vdi/billing/windows/tenant_acme/2026-05/entries", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()["entries"]  # type: ignore[no-any-return]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_correct_void_verify_and_statement(
    live: httpx.Client, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the service's own home and store (its key, its already-proved inf_1): no second attest
    monkeypatch.setenv("VBILL_HOME", str(home))
    code, out, err = run(
        "correct", "inf_1", "--tenant", "tenant_acme", "--usage", "output_tokens=5",
        "--reason", "retry billed twice", "--id", "cor_1", "-o", str(tmp_path / "c.json"), "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["correction_id"], summary["corrects"]) == ("cor_1", "inf_1")
    assert summary["seq"] == max(e["seq"] for e in entries(live)) == 5  # after cor_2's 4
    assert isinstance(summary["credit_micros"], int)
    code, out, err = run("verify", str(tmp_path / "c.json"), "--json")
    assert code == 0 and json.loads(out)["valid"], out + err
    code, out, _ = run("statement", "--store", "tenant_acme", "2026-05")
    assert code == 0 and "correction cor_1 of inf_1" in out and "retry billed twice" in out
    code, _, err = run("void", "inf_1", "--tenant", "tenant_acme", "--reason", "again")
    assert code == 2 and "already corrected by 'cor_1'" in err
    code, _, err = run("correct", "inf_9", "--tenant", "tenant_acme", "--reason", "x")
    assert code == 2 and "no event 'inf_9'" in err
    code, _, err = run("correct", "inf_1", "--tenant", "t", "--usage", "x", "--reason", "x")
    assert code == 2 and "--usage" in err
