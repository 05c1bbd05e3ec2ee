"""The end of a billing period: period windows, complete statements, close records, invoices.

Real parts: the v2 circuit (native prover), a SQLite store file, the attester's key, the
transparency log. One window of five events crosses a free allowance and two priced tiers,
with a minimum charge per event, so its invoice has tier, rounding and clamp lines; the
amounts below are worked out by hand from the tariff, not by the reference.
"""

from __future__ import annotations

import copy
import json
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import V2, log_and_receipt
from support.metered import TIERED as STATEMENT_TIERED
from support.metered import attest, attest_events, event, provers, store_at
from support.verifier_page import ROOT, chromium
from support.webhook_receiver import documented
from vbill.billing.close_record import record_problem
from vbill.billing.closing import close_due, close_window
from vbill.billing.invoice import invoice_html, invoice_of
from vbill.billing.periods import check_event_period, period_of
from vbill.bundle.bundle import build_bundle
from vbill.bundle.keys import Attester
from vbill.cli.main import main
from vbill.encode.metered import WindowState
from vbill.errors import InputError
from vbill.ingest import Ingestor, Proving
from vbill.ledger.outbox import Outbox
from vbill.ledger.store import WindowClosed
from vbill.ledger.translog import MerkleTree
from vbill.verify.statement import verify_statement
from vbill.verify.trust import TrustSet, file_sha256
from vbill.verify.verify import default_check

# test_statement's tariff (a free allowance, then 0.5 and 0.25 micros per token, images at 20),
# with a minimum charge of 1 per event and rounding up
TIERED = {
    **STATEMENT_TIERED,
    "tariff_snapshot": {
        **STATEMENT_TIERED["tariff_snapshot"],
        "min_charge_micros": 1,
        "rounding_mode": "ceil",
    },
}
TOKENS = [600, 600, 3000, 2000, 1003]
IMAGES = [0, 1, 0, 2, 0]
# By hand: [0,600) free, clamped up to the minimum 1; [600,1200) 400 free + 200 × 0.5 + 20;
# [1200,4200) 3000 × 0.5; [4200,6200) 800 × 0.5 + 1200 × 0.25 + 40; [6200,7203) 1003 × 0.25 =
# 250.75, rounded up on the window to 251.
CHARGES = [1, 120, 1500, 740, 251]
TENANT, WINDOW = "tenant_acme", "2026-05"
KEY = (TENANT, WINDOW, "tiered")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("close-home")


@pytest.fixture(scope="module")
def chain(home: Path, attester: Attester, v2: Proving) -> list[dict[str, Any]]:
    usage = [{"tokens": t, "images": i} for t, i in zip(TOKENS, IMAGES, strict=True)]
    return attest_events(home, attester, v2, TIERED, usage)


@pytest.fixture(scope="module")
def closed(home: Path, attester: Attester, chain: list[dict[str, Any]]) -> dict[str, Any]:
    store = store_at(home, attester)
    done = close_window(store, attester, KEY)
    assert done.created
    store.close()
    return done.record


def items(bundles: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(f"b{i}", b) for i, b in enumerate(bundles)]


def cli(monkeypatch: pytest.MonkeyPatch, home: Path, attester: Attester, *args: Any) -> Any:
    """`vbill ARGS` with the store at `home` and the session's attester key there."""
    key = home / "attester.key"
    if not key.exists():
        key.write_text(attester.account.key.hex() + "\n")
        key.chmod(0o600)
    monkeypatch.setenv("VBILL_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return CliRunner().invoke(main, [str(a) for a in args])


TRUST_ARGS = ("--vkey", str(V2.vkey))


# --- period windows ---


def test_period_windows_are_utc_months_and_days_and_other_ids_stay_opaque() -> None:
    may = period_of("2026-05")
    assert may and (may.start, may.end) == ("2026-05-01T00:00:00.000Z", "2026-06-01T00:00:00.000Z")
    december = period_of("2026-12")
    assert december and december.end == "2027-01-01T00:00:00.000Z"
    day = period_of("2024-02-29")
    assert day and (day.start, day.end) == ("2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z")
    assert period_of("acme-may") is None and period_of("2026-5") is None
    for bad in ("2026-13", "2026-00", "2025-02-29", "2026-04-31"):
        with pytest.raises(InputError) as e:
            period_of(bad)
        assert e.value.field == "meter_event.billing_window_id"


@pytest.mark.parametrize(
    ("window", "at", "inside"),
    [
        ("2026-05", "2026-05-01T00:00:00.000Z", True),
        ("2026-05", "2026-05-31T23:59:59.999Z", True),
        ("2026-05", "2026-06-01T00:00:00.000Z", False),
        ("2026-05", "2026-04-30T23:59:59.999Z", False),
        ("2026-05-29", "2026-05-29T12:00:00.000Z", True),
        ("2026-05-29", "2026-05-30T00:00:00.000Z", False),
        ("w", "2025-01-01T00:00:00.000Z", True),  # opaque: never checked
    ],
)
def test_an_event_must_lie_in_its_period_window(window: str, at: str, inside: bool) -> None:
    meter = {"billing_window_id": window, "event_timestamp": at}
    if inside:
        check_event_period(meter)
        return
    with pytest.raises(InputError) as e:
        check_event_period(meter)
    assert e.value.field == "meter_event.billing_window_id" and at in e.value.message


def test_an_event_outside_its_month_is_refused_by_attest_and_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, attester: Attester, v2: Proving
) -> None:
    store = store_at(tmp_path, attester)
    late = event(TIERED, "inf_late", tokens=5)
    late["meter_event"]["event_timestamp"] = "2025-01-01T00:00:00.000Z"
    with pytest.raises(InputError) as e:
        attest(store, attester, v2, late)
    assert e.value.field == "meter_event.billing_window_id"
    assert store.counts()["bundles"] == 0 and store.window_head(KEY) is None
    path = tmp_path / "late.json"
    path.write_text(json.dumps(late))
    result = cli(monkeypatch, tmp_path, attester, "attest", path)
    assert result.exit_code == 2
    assert "meter_event.billing_window_id" in result.output and "2025-01-01" in result.output


# --- complete statements: genesis ---


def test_a_chain_that_does_not_start_at_genesis_fails_naming_why(
    attester: Attester, v2_prover: Any, v2_trust: TrustSet
) -> None:
    """A bundle signed from a non-zero state at seq 0 verifies on its own (its charge and
    keys follow from the state it names), but a statement cannot start there."""
    req = event(TIERED, "inf_elsewhere", tokens=10, images=0)
    start = WindowState(0, (0, 5000, 0, 0), 2_000_000_000, 2000)  # (images, tokens): 5000 tokens
    bundle = build_bundle(
        req,
        attester=attester,
        account_salt=5,
        prover=v2_prover,
        vkey_sha256=file_sha256(V2.vkey),
        before=start,
    )
    bundle = log_and_receipt(bundle, MerkleTree(), attester).model_dump(mode="json")
    st = verify_statement(items([bundle]), trust=v2_trust, check=default_check())
    assert st.results[0][1].valid  # the bundle itself holds
    assert (st.problems[0].kind, st.problems[0].index) == ("genesis", 0)
    assert "not the genesis state" in st.problems[0].message and st.total_micros is None


# --- close records ---


def test_the_close_record_names_the_window_end_and_is_signed_and_logged(
    chain: list[dict[str, Any]], closed: dict[str, Any], v2_trust: TrustSet
) -> None:
    last = chain[-1]
    assert closed["last_seq"] == 5 and closed["last_event_id"] == "inf_4"
    assert closed["last_state_key"] == last["attestation"]["billing_proof"]["public_signals"][6]
    assert closed["total_micros"] == str(sum(CHARGES)) == "2612"
    assert closed["totals_by_dimension"] == {"images": "3", "tokens": "7203"}
    assert (closed["tenant_id"], closed["billing_window_id"], closed["tariff_id"]) == KEY
    assert closed["closed_by"] == "operator" and closed["currency"] == "ETH"
    assert closed["receipt"]["leaf_index"] == 5  # after the five events' leaves
    assert record_problem(closed, v2_trust) is None
    edited = {**closed, "total_micros": "2611"}
    assert "close.attestation.digest" in (record_problem(edited, v2_trust) or "")
    stranger = TrustSet().with_(attesters=[Attester.generate().address])
    assert "not in the trusted set" in (record_problem(closed, stranger) or "")


def test_closing_again_returns_the_same_record(
    home: Path, attester: Attester, closed: dict[str, Any]
) -> None:
    store = store_at(home, attester)
    again = close_window(store, attester, KEY)
    assert not again.created and again.record == closed == store.window_close(KEY)
    store.close()


def test_a_closed_window_refuses_events_on_every_path_naming_the_close(
    home: Path, attester: Attester, v2: Proving, closed: dict[str, Any]
) -> None:
    store = store_at(home, attester)
    late = event(TIERED, "inf_after_close", tokens=5)
    with pytest.raises(WindowClosed) as e:
        attest(store, attester, v2, late)
    assert "is closed: close record at seq 5" in str(e.value) and e.value.exit_code == 2
    ingestor = Ingestor(store, attester, provers(v2))
    try:
        [outcome] = ingestor.ingest([late])
    finally:
        ingestor.close()
    assert outcome.status == "conflict" and isinstance(outcome.error, WindowClosed)
    assert store.find(TENANT, "inf_after_close") is None
    assert store.window_head(KEY).seq == 5  # type: ignore[union-attr]
    store.close()


def test_the_closed_statement_verifies_only_to_exactly_its_close(
    chain: list[dict[str, Any]], closed: dict[str, Any], v2_trust: TrustSet
) -> None:
    check = default_check()
    st = verify_statement(items(chain), trust=v2_trust, check=check, close=closed)
    assert st.valid and st.closed and st.total_micros == 2612 and st.summary()["closed"] is True
    short = verify_statement(items(chain[:-1]), trust=v2_trust, check=check, close=closed)
    assert [(p.kind, p.index) for p in short.problems] == [("truncated", 3)]
    assert (
        "closed at seq 5" in short.problems[0].message
        and "ends at seq 4" in short.problems[0].message
    )
    empty = verify_statement([], trust=v2_trust, check=check, close=closed)
    assert [(p.kind, p.index) for p in empty.problems] == [("truncated", None)]
    tampered = copy.deepcopy(closed)
    tampered["receipt"]["leaf_index"] = 0
    bad = verify_statement(items(chain), trust=v2_trust, check=check, close=tampered)
    assert [p.kind for p in bad.problems] == ["close"] and "close.receipt" in bad.problems[
        0
    ].message
    open_ = verify_statement(items(chain), trust=v2_trust, check=check)
    assert open_.valid and open_.summary()["closed"] is False


def test_the_cli_closes_states_closed_and_refuses_a_late_event(
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    attester: Attester,
    closed: dict[str, Any],
    tmp_path: Path,
) -> None:
    result = cli(monkeypatch, home, attester, "close", TENANT, WINDOW, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out.pop("created") is False and out == closed
    trust = ("--trust-attester", attester.address, *TRUST_ARGS)
    doc = tmp_path / "closed.statement.json"
    result = cli(monkeypatch, home, attester, "statement", "--store", TENANT, WINDOW, *trust,
                 "--json", "-o", doc)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["closed"] is True
    data = json.loads(doc.read_text())
    assert data["closed"] is True and data["close"] == closed
    data["bundles"].pop()  # the last entry dropped, the summary re-stated to match
    data.update(events=4, total_micros=2361, totals_by_dimension={"images": 3, "tokens": 6200})
    short = tmp_path / "short.statement.json"
    short.write_text(json.dumps(data))
    result = cli(monkeypatch, home, attester, "statement", short, *trust, "--json")
    assert result.exit_code == 1
    assert [p["kind"] for p in json.loads(result.output)["problems"]] == ["truncated"]
    late = tmp_path / "late.json"
    late.write_text(json.dumps(event(TIERED, "inf_late_cli", tokens=5)))
    result = cli(monkeypatch, home, attester, "attest", late)
    assert result.exit_code == 2 and "is closed: close record at seq 5" in result.output
    result = cli(monkeypatch, home, attester, "close", TENANT, "2026-04")
    assert result.exit_code == 2 and "no window '2026-04'" in result.output


def test_period_windows_close_themselves_after_the_grace(
    tmp_path: Path, attester: Attester, home: Path, closed: dict[str, Any]
) -> None:
    """close_due, what the service's closer runs every interval, at chosen times: a copy of
    the window with its close taken out is due exactly when May and three days are over."""
    import shutil
    import sqlite3

    shutil.copy(home / "vbill.sqlite3", tmp_path / "vbill.sqlite3")
    with sqlite3.connect(tmp_path / "vbill.sqlite3") as db:
        db.execute("DELETE FROM window_closes")
    store = store_at(tmp_path, attester)
    Outbox(store).add_endpoint("https://hooks.example/close", ["window.closed", "invoice.ready"])
    june_1, day = 1_780_272_000_000, 86_400_000  # 2026-06-01T00:00:00Z
    assert close_due(store, attester, 3 * day, june_1 + 3 * day - 1) == []
    [done] = close_due(store, attester, 3 * day, june_1 + 3 * day)
    assert done.created and done.record["closed_by"] == "grace"
    queued = store._conn().execute("SELECT event_type, payload FROM outbox ORDER BY id").fetchall()
    assert [row[0] for row in queued] == ["window.closed", "invoice.ready"]
    assert json.loads(queued[0][1])["data"]["last_seq"] == 5
    ready = json.loads(queued[1][1])["data"]
    window = (ready["tenant_id"], ready["billing_window_id"], ready["tariff_id"])
    assert ready["invoice"] == "/api/vdi/billing/invoices/{}/{}?tariff_id={}".format(*window)
    docs = documented()  # docs/webhooks.md's examples have the fields written here
    assert set(docs["invoice.ready"]) == set(ready)
    assert set(docs["window.closed"]) == set(json.loads(queued[0][1])["data"])
    assert done.record["last_state_key"] == closed["last_state_key"]
    assert close_due(store, attester, 3 * day, june_1 + 30 * day) == []  # closed once
    store.close()


# --- the invoice ---


def test_the_invoice_lists_tiers_rounding_and_clamps_summing_exactly_to_the_total(
    chain: list[dict[str, Any]], closed: dict[str, Any], v2_trust: TrustSet
) -> None:
    st = verify_statement(items(chain), trust=v2_trust, check=default_check(), close=closed)
    inv = invoice_of(st, chain)
    usage = [
        (li["dimension"], li["tier"], li["units"], li["unit_price_micros"], li["amount_micros"])
        for li in inv["lines"]
        if li["kind"] == "usage"
    ]
    assert usage == [
        ("images", 1, "3", "20", "60"),
        ("tokens", 1, "1000", "0", "0"),  # the free allowance, a zero-price line
        ("tokens", 2, "4000", "0.5", "2000"),
        ("tokens", 3, "2203", "0.25", "550.75"),
    ]
    assert [li["free"] for li in inv["lines"] if li["kind"] == "usage"] == [
        False,
        True,
        False,
        False,
    ]
    others = [(li["kind"], li["amount_micros"]) for li in inv["lines"] if li["kind"] != "usage"]
    assert others == [("rounding", "0.25"), ("clamp", "1")]
    clamp = inv["lines"][-1]
    assert clamp["event_id"] == "inf_0" and clamp["seq"] == 1 and "minimum" in clamp["description"]
    assert inv["total_micros"] == "2612" and inv["total"] == "0.002612"
    assert sum(Decimal(li["amount_micros"]) for li in inv["lines"]) == 2612
    assert inv["lines"][3]["amount"] == "0.00055075"
    assert inv["closed"] is True and inv["close"]["last_seq"] == 5 and inv["corrections"] == []
    assert inv["period"] == {"start": "2026-05-01T00:00:00.000Z", "end": "2026-06-01T00:00:00.000Z"}


def test_vbill_invoice_from_the_store_and_from_a_statement_document(
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    attester: Attester,
    closed: dict[str, Any],
    tmp_path: Path,
) -> None:
    trust = ("--trust-attester", attester.address, *TRUST_ARGS)
    html = tmp_path / "invoice.html"
    result = cli(monkeypatch, home, attester, "invoice", "--store", TENANT, WINDOW, *trust,
                 "--json", "--html", html)  # fmt: skip
    assert result.exit_code == 0, result.output
    inv = json.loads(result.output)
    assert {"total_micros", "currency", "closed", "lines", "corrections"} <= set(inv)
    assert inv["total_micros"] == "2612" and inv["currency"] == "ETH" and inv["closed"] is True
    assert "@page" in html.read_text() and "550.75" in html.read_text()
    doc = tmp_path / "s.json"
    assert cli(monkeypatch, home, attester, "statement", "--store", TENANT, WINDOW, *trust,
               "-o", doc).exit_code == 0  # fmt: skip
    result = cli(monkeypatch, home, attester, "invoice", doc, *trust)
    assert result.exit_code == 0, result.output
    assert "tokens tier 1" in result.output and "2612 micros = 0.002612 ETH" in result.output
    data = json.loads(doc.read_text())
    data["bundles"][0]["billing"]["expected_charge_micros"] = 2
    doc.write_text(json.dumps(data))
    result = cli(monkeypatch, home, attester, "invoice", doc, *trust)
    assert result.exit_code == 1 and "no invoice: the statement does not verify" in result.output


def test_the_invoice_page_renders_in_chromium_and_prints_on_one_a4_page(
    chain: list[dict[str, Any]], closed: dict[str, Any], v2_trust: TrustSet, tmp_path: Path
) -> None:
    """What a reader of the HTML sees: every line, amounts that add up to the total shown,
    nothing loaded from elsewhere, and one A4 page when printed."""
    browser = chromium()
    st = verify_statement(items(chain), trust=v2_trust, check=default_check(), close=closed)
    inv = invoice_of(st, chain)
    page = tmp_path / "invoice.html"
    page.write_text(invoice_html(inv))
    run = subprocess.run(
        ["node", str(ROOT / "tests/js/invoice_page.mjs"), str(page), str(tmp_path / "i.pdf"),
         browser],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["errors"] == [] and seen["requests"] == []
    assert seen["total_micros"] == "2612" and len(seen["lines"]) == len(inv["lines"]) == 6
    assert sum(Decimal(cells[3]) for cells in seen["lines"]) == 2612
    assert "free allowance" in seen["lines"][1][0] and seen["lines"][3][1:4] == [
        "2203", "0.25", "550.75",
    ]  # fmt: skip
    assert seen["pages"] == 1 and not seen["overflow"] and seen["pdf_bytes"] > 1000
