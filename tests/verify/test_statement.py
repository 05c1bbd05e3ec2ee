"""Window statements: `vbill statement` over the store, files, a directory, a .jsonl and the
document it writes; every way a chain can be broken names its first bad link.

The bundles are real (v2 circuit, native prover, SQLite store); the expected charges are
worked out by hand from the tariff below, not by the reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import V2
from support.metered import TIERED, attest, attest_events, event, flat, request, store_at
from vbill.bundle.keys import Attester
from vbill.cli.main import main
from vbill.ingest import Proving
from vbill.verify.statement import verify_statement
from vbill.verify.trust import TrustSet
from vbill.verify.verify import default_check

TOKENS = [600, 600, 3000, 2000, 1000]
IMAGES = [0, 1, 0, 2, 0]
# By hand: [0,600) free; [600,1200) 400 free + 200 × 0.5 + 1 image; [1200,4200) 3000 × 0.5;
# [4200,6200) 800 × 0.5 + 1200 × 0.25 + 2 images; [6200,7200) 1000 × 0.25.
CHARGES = [0, 100 + 20, 1500, 400 + 300 + 40, 250]
WINDOW = ("tenant_acme", "2026-05", "tiered")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("statement-home")


@pytest.fixture(scope="module")
def chain(home: Path, attester: Attester, v2: Proving) -> list[dict[str, Any]]:
    usage = [{"tokens": t, "images": i} for t, i in zip(TOKENS, IMAGES, strict=True)]
    return attest_events(home, attester, v2, TIERED, usage)


def cli(monkeypatch: pytest.MonkeyPatch, home: Path, attester: Attester, *args: Any) -> Any:
    monkeypatch.setenv("VBILL_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    trust = ["--trust-attester", attester.address, "--vkey", str(V2.vkey)]
    return CliRunner().invoke(main, ["statement", *map(str, args), *trust, "--json"])


def summary(result: Any) -> dict[str, Any]:
    return json.loads(result.output)


def test_tiers_and_allowance_give_the_hand_worked_charges(chain: list[dict[str, Any]]) -> None:
    assert [b["billing"]["expected_charge_micros"] for b in chain] == CHARGES
    assert [b["billing"]["window"]["seq"] for b in chain] == [1, 2, 3, 4, 5]


def test_statement_from_the_store_totals_the_window(
    monkeypatch: pytest.MonkeyPatch, home: Path, attester: Attester, chain: list[dict[str, Any]]
) -> None:
    result = cli(monkeypatch, home, attester, "--store", *WINDOW[:2])
    assert result.exit_code == 0, result.output
    out = summary(result)
    assert out["valid"] is True and out["problems"] == []
    assert out["events"] == 5
    assert out["total_micros"] == sum(CHARGES) == 2610
    assert out["totals_by_dimension"] == {"images": 3, "tokens": 7200}
    assert out["sum_of_charges_micros"] == out["total_micros"]


def test_unknown_tariff_in_the_store_window_names_the_choices(
    monkeypatch: pytest.MonkeyPatch, home: Path, attester: Attester, chain: list[dict[str, Any]]
) -> None:
    result = cli(monkeypatch, home, attester, "--store", *WINDOW[:2], "--tariff-id", "nope")
    assert result.exit_code == 1  # an empty chain is not a statement
    assert summary(result)["valid"] is False


def document(
    monkeypatch: pytest.MonkeyPatch, home: Path, attester: Attester, tmp_path: Path
) -> Path:
    path = tmp_path / "acme-2026-05.statement.json"
    result = cli(monkeypatch, home, attester, "--store", *WINDOW[:2], "-o", path)
    assert result.exit_code == 0, result.output
    return path


def test_document_reverifies_offline(
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    attester: Attester,
    chain: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    path = document(monkeypatch, home, attester, tmp_path)
    doc = json.loads(path.read_text())
    assert doc["statement_version"] == "vbill-statement-1"
    assert doc["total_micros"] == 2610 and len(doc["bundles"]) == 5
    result = cli(monkeypatch, tmp_path / "empty-home", attester, path)  # no store needed
    assert result.exit_code == 0, result.output
    assert summary(result)["total_micros"] == 2610


def _broken(path: Path, edit: Any) -> Path:
    doc = json.loads(path.read_text())
    edit(doc)
    out = path.with_name("broken.statement.json")
    out.write_text(json.dumps(doc))
    return out


def _swap(doc: dict[str, Any]) -> None:
    b = doc["bundles"]
    b[1], b[3] = b[3], b[1]


def _edit_usage(i: int) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        doc["bundles"][i]["meter_event"]["usage"]["tokens"] += 1

    return edit


@pytest.mark.parametrize(
    ("edit", "kind", "index", "says"),
    [
        *((_edit_usage(i), "bad_bundle", i, "bad bundle") for i in range(5)),
        (lambda d: d["bundles"].pop(1), "gap", 1, "seq 2 missing before seq 3"),
        (lambda d: d["bundles"].pop(0), "gap", 0, "seq 1 missing before seq 2"),
        (_swap, "reorder", 1, "seq 4 where seq 2 belongs"),
        (lambda d: d["bundles"].insert(2, d["bundles"][1]), "fork", 2, "second bundle with seq 2"),
        (lambda d: d.update(total_micros=2611), "summary", None, "statement.total_micros"),
    ],
)
def test_a_broken_document_fails_naming_the_first_bad_link(
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    attester: Attester,
    chain: list[dict[str, Any]],
    tmp_path: Path,
    edit: Any,
    kind: str,
    index: int | None,
    says: str,
) -> None:
    broken = _broken(document(monkeypatch, home, attester, tmp_path), edit)
    result = cli(monkeypatch, home, attester, broken)
    assert result.exit_code == 1, result.output
    out = summary(result)
    assert out["valid"] is False and out["total_micros"] is None
    first = out["problems"][0]
    assert (first["kind"], first["index"]) == (kind, index), out["problems"]
    assert says in first["message"]
    if index is not None:
        assert first["at"] == f"{broken}: bundles[{index}]"


def test_directory_is_put_in_seq_order_and_jsonl_keeps_its_order(
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    attester: Attester,
    chain: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    for i, b in enumerate(chain):  # names in the reverse of the chain's order
        (folder / f"{9 - i}.json").write_text(json.dumps(b))
    result = cli(monkeypatch, home, attester, folder)
    assert result.exit_code == 0, result.output
    assert summary(result)["total_micros"] == 2610
    lines = tmp_path / "window.jsonl"
    lines.write_text("".join(json.dumps(b) + "\n" for b in [chain[0], chain[2], chain[1]]))
    result = cli(monkeypatch, home, attester, lines)
    assert result.exit_code == 1
    first = summary(result)["problems"][0]
    assert (first["kind"], first["at"]) == ("reorder", f"{lines}:2")


def test_bundle_of_another_window_or_binding_is_named(
    chain: list[dict[str, Any]],
    attester: Attester,
    v2_trust: TrustSet,
    pilot_bundle: dict[str, Any],
    tmp_path: Path,
    v2: Proving,
) -> None:
    other_store = store_at(tmp_path / "other", attester)
    other = event(TIERED, "inf_other", tokens=1)
    other["meter_event"].update(
        billing_window_id="2026-06", event_timestamp="2026-06-01T00:00:00.000Z"
    )
    stray = attest(other_store, attester, v2, other).stored.bundle
    st = verify_statement([("a", chain[0]), ("b", stray)], trust=v2_trust, check=default_check())
    assert [(p.kind, p.at) for p in st.problems][:1] == [("other_window", "b")]
    assert "billing_window_id '2026-06'" in st.problems[0].message
    st = verify_statement(
        [("a", chain[0]), ("v1", pilot_bundle)], trust=v2_trust, check=default_check()
    )
    assert ("not_metered", "v1") in [(p.kind, p.at) for p in st.problems]


def test_ten_sub_micro_events_round_on_the_window_to_3(
    monkeypatch: pytest.MonkeyPatch, attester: Attester, v2: Proving, tmp_path: Path
) -> None:
    """0.35 micro-ETH each, floor: 3.5 micros in all is 3, not 0 (rounding each event) and
    not 10 (a micro per event)."""
    home = tmp_path / "home"
    store = store_at(home, attester)
    cheap = request({"calls": flat("0.35")}, {"calls": 1}, rounding_mode="floor", tariff_id="tiny")
    charges = [
        attest(store, attester, v2, event(cheap, f"c{i}")).stored.bundle["billing"][
            "expected_charge_micros"
        ]
        for i in range(10)
    ]
    store.close()
    assert charges == [0, 0, 1, 0, 0, 1, 0, 0, 1, 0]
    result = cli(monkeypatch, home, attester, "--store", "tenant_acme", "2026-05")
    assert result.exit_code == 0, result.output
    out = summary(result)
    assert (out["total_micros"], out["events"], out["totals_by_dimension"]) == (
        3,
        10,
        {"calls": 10},
    )


def test_statement_needs_a_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, attester: Attester
) -> None:
    result = cli(monkeypatch, tmp_path, attester)
    assert result.exit_code == 2


def test_offline_attest_of_metered_requests_joins_the_same_store_chain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`vbill attest` (the local attester key, $VBILL_HOME's store) then `vbill statement`."""
    from support import needs_v2

    needs_v2()
    home = tmp_path / "home"
    monkeypatch.setenv("VBILL_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "new"]).exit_code == 0
    files = []
    for i, tokens in enumerate((600, 600)):
        path = tmp_path / f"req{i}.json"
        req = event(TIERED, f"cli_{i}", tokens=tokens, images=i)
        req["tariff_snapshot"]["currency"] = "USD"  # no ETH balance needed offline
        path.write_text(json.dumps(req))
        files.append(str(path))
    result = runner.invoke(main, ["attest", *files, "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main, ["statement", "--store", *WINDOW[:2], "--vkey", str(V2.vkey), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert summary(result)["total_micros"] == sum(CHARGES[:2])
    result = runner.invoke(main, ["statement", str(tmp_path / "out"), "--vkey", str(V2.vkey)])
    assert result.exit_code == 0 and "VALID" in result.output, result.output


@pytest.mark.parametrize("seq", [float("inf"), 1.5, True, "x"])
def test_a_non_integer_seq_is_a_problem_not_a_crash(
    chain: list[dict[str, Any]], v2_trust: TrustSet, seq: Any
) -> None:
    # jsonio reads 1e400 as infinity: int() of it overflows, int(1.5) would quietly give 1
    odd = json.loads(json.dumps(chain[1]))
    odd["billing"]["window"]["seq"] = seq
    st = verify_statement([("a", chain[0]), ("b", odd)], trust=v2_trust, check=default_check())
    assert not st.valid
    assert ("not_metered", "b") in [(p.kind, p.at) for p in st.problems]
