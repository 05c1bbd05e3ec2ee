"""The end of a billing period over HTTP, as the operator and as a tenant see it: a real socket,
the service's own store and attester key, real v2 proofs.

A month of three inferences is listed, paged and exported, closed (once), refused afterwards,
and its statement and invoice read back through `vbill.Client`, `AsyncClient` and `vbill
fetch`; a tenant token sees its own windows only. An event dated outside its month is 422.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from support import V2, V2C, metered_event, needs_build, needs_v2, needs_v2c
from support.http_server import ATTEST, AUTH, SECRET, over_socket
from vbill.billing.models import CloseRecord
from vbill.bundle.keys import Attester
from vbill.cli.main import main
from vbill.client import ApiError, AsyncClient, Client
from vbill.models import MeteredBundle
from vbill.service import Settings, create_app

TENANT, OTHER, WINDOW = "t_month", "t_other", "2026-05"
USAGE = [(156, 412), (1000, 2000), (7, 3)]


def inference(tenant: str, event_id: str, tokens: tuple[int, int]) -> dict[str, Any]:
    return metered_event(tenant, event_id, *tokens, currency="USD")


class Live:
    def __init__(self, http: Any, url: str, tokens: dict[str, str]) -> None:
        self.http, self.url, self.tokens = http, url, tokens

    def as_tenant(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[tenant]}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    needs_build()
    needs_v2()
    home = tmp_path_factory.mktemp("billing-http")
    Attester.new(home / "attester.key")
    app = create_app(Settings(home=home, attest_secret=SECRET, prover_workers=1))
    with over_socket(app) as http:
        for i, tokens in enumerate(USAGE):
            r = http.post(ATTEST, json=inference(TENANT, f"inf_{i}", tokens), headers=AUTH)
            assert r.status_code == 200, r.text
        r = http.post(ATTEST, json=inference(OTHER, "inf_x", (5, 5)), headers=AUTH)
        assert r.status_code == 200, r.text
        tokens = {
            t: http.post(f"/api/vdi/billing/accounts/{t}/tokens", headers=AUTH).json()["token"]
            for t in (TENANT, OTHER)
        }
        yield Live(http, str(http.base_url), tokens)


def test_an_event_outside_its_month_is_422_naming_the_window(live: Live) -> None:
    late = inference(TENANT, "inf_late", (1, 1))
    late["meter_event"]["event_timestamp"] = "2025-01-01T00:00:00.000Z"
    r = live.http.post(ATTEST, json=late, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["detail"]["field"] == "meter_event.billing_window_id"
    r = live.http.post("/api/vdi/billing/events", json={"events": [late]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "invalid"


def test_windows_are_listed_paged_and_a_tenant_sees_only_its_own(live: Live) -> None:
    r = live.http.get("/api/vdi/billing/windows", params={"limit": 1}, headers=AUTH)
    assert r.status_code == 200, r.text
    first = r.json()
    assert [w["tenant_id"] for w in first["windows"]] == [TENANT] and first["next_cursor"]
    r = live.http.get(
        "/api/vdi/billing/windows", params={"cursor": first["next_cursor"]}, headers=AUTH
    )
    assert [w["tenant_id"] for w in r.json()["windows"]] == [OTHER]
    assert r.json()["next_cursor"] is None
    mine = live.http.get("/api/vdi/billing/windows", headers=live.as_tenant(OTHER)).json()
    assert [(w["tenant_id"], w["events"], w["closed"]) for w in mine["windows"]] == [
        (OTHER, 1, False)
    ]
    assert mine["windows"][0]["period"]["start"] == "2026-05-01T00:00:00.000Z"
    theirs = live.http.get(
        "/api/vdi/billing/windows", params={"tenant_id": TENANT}, headers=live.as_tenant(OTHER)
    )
    assert theirs.status_code == 404
    base = f"/api/vdi/billing/windows/{TENANT}/{WINDOW}"
    for tail in ("/entries", "/export.csv", "/close"):
        assert live.http.get(base + tail, headers=live.as_tenant(OTHER)).status_code == 404
    assert live.http.get(f"/api/vdi/billing/invoices/{TENANT}/{WINDOW}",
                         headers=live.as_tenant(OTHER)).status_code == 404  # fmt: skip
    closing = live.http.post(base + "/close", headers=live.as_tenant(TENANT))
    assert closing.status_code == 403  # closing is the operator's


def test_entries_page_by_seq_and_the_csv_has_a_row_per_entry(live: Live) -> None:
    base = f"/api/vdi/billing/windows/{TENANT}/{WINDOW}"
    seen, after = [], 0
    while after is not None:
        page = live.http.get(
            base + "/entries", params={"after_seq": after, "limit": 2}, headers=AUTH
        ).json()
        seen += page["entries"]
        after = page["next_after_seq"]
    assert [(e["seq"], e["event_id"]) for e in seen] == [(1, "inf_0"), (2, "inf_1"), (3, "inf_2")]
    assert seen[1]["usage"] == {"input_tokens": 1000, "output_tokens": 2000}
    r = live.http.get(base + "/export.csv", headers=live.as_tenant(TENANT))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["event_id"] for row in rows] == ["inf_0", "inf_1", "inf_2"]
    assert [row["units_output_tokens"] for row in rows] == ["412", "2000", "3"]
    assert [row["charge_micros"] for row in rows] == [e["charge_micros"] for e in seen]
    assert [row["fingerprint"] for row in rows] == [e["fingerprint"] for e in seen]


def test_a_correction_is_an_entry_of_its_window_listed_and_exported(live: Live) -> None:
    """A proven credit (docs/protocol-corrections.md §8) joins the window's chain: listed with
    the event it corrects, the units it takes back and its credit, negative; the window then
    closes on it."""
    needs_v2c()
    r = live.http.post(
        "/api/vdi/billing/corrections",
        json={"tenant_id": TENANT, "corrects": "inf_1", "correction_id": "cor_1",
              "reason": "retried call", "usage": {"output_tokens": 500}},
        headers=AUTH,
    )  # fmt: skip
    assert r.status_code in (200, 201), r.text
    base = f"/api/vdi/billing/windows/{TENANT}/{WINDOW}"
    page = live.http.get(base + "/entries", params={"after_seq": 3}, headers=AUTH).json()
    [entry] = page["entries"]
    assert (entry["seq"], entry["kind"], entry["event_id"], entry["corrects"]) == (
        4, "correction", "cor_1", "inf_1",
    )  # fmt: skip
    assert (
        entry["usage"] == {"input_tokens": 0, "output_tokens": -500}
        and int(entry["charge_micros"]) < 0
    )
    rows = list(csv.DictReader(io.StringIO(live.http.get(base + "/export.csv", headers=AUTH).text)))
    assert rows[-1]["kind"] == "correction" and rows[-1]["units_output_tokens"] == "-500"
    assert rows[-1]["charge_micros"] == entry["charge_micros"] and rows[-1]["corrects"] == "inf_1"


def test_close_refuse_statement_invoice_through_the_clients(live: Live, tmp_path: Path) -> None:
    base = f"/api/vdi/billing/windows/{TENANT}/{WINDOW}"
    listed = live.http.get(base + "/entries", headers=AUTH).json()["entries"]
    assert live.http.get(base + "/close", headers=AUTH).status_code == 404  # still open
    with Client(live.url, token=live.tokens[TENANT]) as tenant:
        assert tenant.statement(TENANT, WINDOW)["closed"] is False
        open_invoice = tenant.invoice(TENANT, WINDOW)
        assert open_invoice.closed is False
    with Client(live.url, secret=SECRET) as operator:
        record = operator.close_window(TENANT, WINDOW)
        assert operator.close_window(TENANT, WINDOW) == record  # idempotent
    assert isinstance(record, CloseRecord) and record.last_seq == len(listed)
    r = live.http.post(ATTEST, json=inference(TENANT, "inf_late", (1, 1)), headers=AUTH)
    assert r.status_code == 409
    assert f"is closed: close record at seq {len(listed)}" in r.json()["detail"]
    r = live.http.post(
        "/api/vdi/billing/events", json={"events": [inference(TENANT, "inf_l2", (1, 1))]},
        headers=AUTH,
    )  # fmt: skip
    assert r.json()["results"][0]["status"] == "conflict"

    with Client(live.url, token=live.tokens[TENANT]) as tenant:
        bundle = tenant.bundle("inf_1")
        assert isinstance(bundle, MeteredBundle) and bundle.billing.window.seq == 2
        assert tenant.close_record(TENANT, WINDOW) == record
        doc = tenant.statement(TENANT, WINDOW)
        inv = tenant.invoice(TENANT, WINDOW)
        html = tenant.invoice_html(TENANT, WINDOW)
        page = tenant.windows()
        entries = tenant.entries(TENANT, WINDOW, limit=2)
        text = tenant.export_csv(TENANT, WINDOW)
        with pytest.raises(ApiError) as e:
            tenant.windows(OTHER)
        assert e.value.status == 404
    assert doc["closed"] is True and doc["close"] == record.model_dump(mode="json")
    assert inv.closed is True and inv.total_micros == str(doc["total_micros"])
    assert sum(Decimal(line.amount_micros) for line in inv.lines) == Decimal(inv.total_micros)
    assert inv.total_micros == open_invoice.total_micros
    assert [c["correction_id"] for c in inv.corrections] == [
        e["event_id"] for e in listed if e["kind"] == "correction"
    ]
    assert "<table" in html and inv.total_micros in html
    assert page.windows[0].closed is True and len(entries.entries) == 2
    assert text.count("\r\n") == len(listed) + 1

    async def read() -> tuple[Any, ...]:
        async with AsyncClient(live.url, token=live.tokens[TENANT]) as api:
            return (
                await api.bundle("inf_2"),
                await api.close_record(TENANT, WINDOW),
                await api.invoice(TENANT, WINDOW),
                await api.statement(TENANT, WINDOW),
                await api.entries(TENANT, WINDOW, after_seq=2),
            )

    a_bundle, a_record, a_invoice, a_doc, a_entries = asyncio.run(read())
    assert isinstance(a_bundle, MeteredBundle) and a_record == record and a_invoice == inv
    assert a_doc == doc and [e.seq for e in a_entries.entries] == list(range(3, len(listed) + 1))

    path = tmp_path / "statement.json"
    path.write_text(json.dumps(doc))
    runner = CliRunner(env={"VBILL_HOME": str(tmp_path / "customer"), "DATABASE_URL": None})
    trust = ["--trust-attester", record.attestation.attester, "--vkey", str(V2.vkey)]
    if V2C.vkey.exists():  # the window holds a correction (binding v2c)
        trust += ["--vkey", str(V2C.vkey)]
    checked = runner.invoke(main, ["statement", str(path), *trust, "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["closed"] is True
    doc["bundles"].pop()
    after = doc["bundles"][-1]["billing"]["window"]["after"]
    doc.update(events=len(doc["bundles"]), total_micros=int(after["charge"]))
    doc["totals_by_dimension"] = {
        k: int(v) for k, v in doc["bundles"][-1]["billing"]["window"]["after"]["units"].items()
    }
    path.write_text(json.dumps(doc))
    short = runner.invoke(main, ["statement", str(path), *trust, "--json"])
    assert short.exit_code == 1
    assert json.loads(short.output)["problems"][0]["kind"] == "truncated"


def test_vbill_fetch_of_a_metered_bundle_writes_what_vbill_verify_accepts(
    live: Live, tmp_path: Path
) -> None:
    runner = CliRunner(
        env={"VBILL_TOKEN": live.tokens[OTHER], "VBILL_HOME": str(tmp_path), "DATABASE_URL": None}
    )
    out = tmp_path / "b.json"
    fetched = runner.invoke(main, ["fetch", "inf_x", "--url", live.url, "-o", str(out)])
    assert fetched.exit_code == 0, fetched.output
    attester = json.loads(out.read_text())["attestation"]["attester"]
    trust = ["--trust-attester", attester, "--vkey", str(V2.vkey)]
    verified = runner.invoke(main, ["verify", str(out), *trust, "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["valid"] is True
    with httpx.Client(base_url=live.url, headers=live.as_tenant(OTHER)) as http:
        assert http.get("/api/vdi/billing/bundles/inf_0").status_code == 404  # not its event
