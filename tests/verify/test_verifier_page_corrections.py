"""The browser verifier page on corrections (docs/protocol-corrections.md), in real headless
Chromium, agrees with `vbill verify`, `vbill statement` and `vbill invoice`.

Real parts: a store window of four proved token events, a void and a partial correction proved
by binding v2c (native prover) and one more event after them; a binding v1 void of a proved
pilot bundle; signed trust documents naming the v1, v2 and v2c keys. Each correction document,
valid, tampered or judged under another trust document, must get from the page the three
verdicts `verify_correction` gives, with the same reasons word for word; each statement of the
window the same summary (net total, net units, the corrections listed) and problems as `vbill
statement --json`, and the same invoice lines as `vbill invoice --json`.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import V2, V2C, metered_event
from support.metered import TOKENS, attest, store_at
from support.verifier_page import LOGGED, ROOT, VERDICTS, run_page, trust_set
from vbill import paths
from vbill.billing.close_record import make_record
from vbill.billing.closing import close_body
from vbill.bindings import BINDING_V1, BINDING_V2, BINDING_V2C
from vbill.bundle.correction import build_void, correction_digest, record_of
from vbill.bundle.keys import Attester
from vbill.cli.main import main
from vbill.correct import correct_event
from vbill.ledger.translog import MerkleTree, append_with_receipt, leaf_hash
from vbill.ledger.windows import WindowHead
from vbill.verify import trust_document
from vbill.verify.correction import _redo, verify_correction
from vbill.verify.statement import statement_document, verify_statement
from vbill.verify.trust import file_sha256
from vbill.verify.verify import default_check

pytestmark = pytest.mark.slow

KEY = ("tenant_acme", "2026-05", "llm-secure-7b")


def _edit(doc: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    change(out)
    return out


def _relogged(doc: dict[str, Any], attester: Attester) -> dict[str, Any]:
    """The correction re-signed over its (edited) record and proof section and logged afresh:
    only what the edit changed can fail."""
    out = copy.deepcopy(doc)
    bp = out["attestation"]["billing_proof"]
    digest = correction_digest(record_of(out), bp, _redo(out).signals)
    out["attestation"].update(
        signature=attester.sign_hash(digest), bundle_digest="0x" + digest.hex()
    )
    tree = MerkleTree([leaf_hash(bytes([i]) * 32) for i in range(2)])
    out["receipt"] = append_with_receipt(tree, digest, attester.account, LOGGED).to_dict()
    return out


def _closed(chain: list[dict[str, Any]], attester: Attester, trust: Any) -> dict[str, Any]:
    """The statement of a window closed at its last entry (a correction), as the service signs
    and logs its close record."""
    last = chain[-1]
    after = last["billing"]["window"]["after"]
    head = WindowHead(after["seq"], last["correction"]["correction_id"], after)
    close, digest = make_record(close_body(KEY, head, last, LOGGED, "operator"), attester)
    tree = MerkleTree([leaf_hash(bytes([i]) * 32) for i in range(4)])
    close["receipt"] = append_with_receipt(tree, digest, attester.account, LOGGED).to_dict()
    items = [(f"b{i}", b) for i, b in enumerate(chain)]
    st = verify_statement(items, trust=trust, check=default_check(), close=close)
    assert st.valid and st.closed, st.problems
    return statement_document(chain, st)


@pytest.fixture(scope="module")
def window(tmp_path_factory, attester: Attester, v2, v2c) -> dict[str, Any]:
    """tenant_acme's window: inf_1 … inf_4, a void of inf_2, 100 output tokens of inf_3 taken
    back, then inf_5; its chain in seq order, the two correction documents and inf_2's bundle."""
    store = store_at(tmp_path_factory.mktemp("page-corrections"), attester)
    for i, (inp, out) in enumerate(TOKENS, start=1):
        attest(store, attester, v2, metered_event("tenant_acme", f"inf_{i}", inp, out))
    base = {"tenant_id": "tenant_acme", "reason": "a test inference billed by mistake"}
    void = correct_event(
        {**base, "corrects": "inf_2", "correction_id": "cor_void_2"},
        store=store, attester=attester, proving=v2c,
    )  # fmt: skip
    part = correct_event(
        {**base, "corrects": "inf_3", "correction_id": "cor_part_3", "reason": "a retry",
         "usage": {"output_tokens": 100}},
        store=store, attester=attester, proving=v2c,
    )  # fmt: skip
    attest(store, attester, v2, metered_event("tenant_acme", "inf_5", 7, 9))
    chain = [doc for _, doc in store.statement_items(KEY)]
    store.close()
    assert [d.get("correction_version") for d in chain] == [None] * 4 + [
        "vbill-correction-1"
    ] * 2 + [None]
    return {"chain": chain, "void": void.stored.doc, "partial": part.stored.doc}


@pytest.fixture(scope="module")
def v1_void(pilot_bundle: dict[str, Any], attester: Attester) -> dict[str, Any]:
    """A void of the (proved) pilot bundle, signed and logged."""
    request = {
        "tenant_id": pilot_bundle["meter_event"]["tenant_id"],
        "corrects": pilot_bundle["meter_event"]["event_id"],
        "correction_id": "void_pilot",
        "reason": "a duplicate",
    }
    doc = build_void(request, pilot_bundle, attester=attester)
    tree = MerkleTree([leaf_hash(bytes([i]) * 32) for i in range(3)])
    digest = bytes.fromhex(doc["attestation"]["bundle_digest"][2:])
    return {**doc, "receipt": append_with_receipt(tree, digest, attester.account, LOGGED).to_dict()}


@pytest.fixture(scope="module")
def cases(window, v1_void, attester: Attester, tmp_path_factory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("page-corrections-home")
    keys = {
        BINDING_V1: (paths.VKEY, "dev-insecure"),
        BINDING_V2: (V2.vkey, "dev-insecure"),
        BINDING_V2C: (V2C.vkey, "dev-insecure"),
    }
    signer = [attester.address]
    other = Attester.generate()

    def doc(**kw: Any) -> dict[str, Any]:
        return trust_document.build(
            kw.pop("account", attester.account), bindings=kw.pop("bindings", keys),
            attesters=kw.pop("attesters", signer), log_signers=signer, **kw,
        )  # fmt: skip

    without_v2c = {k: v for k, v in keys.items() if k != BINDING_V2C}
    trust = {
        "doc": doc(),
        "no v2c key": doc(bindings=without_v2c),
        "v2c key revoked": doc(revoked_vkeys=[file_sha256(V2C.vkey)]),
        "another attester": doc(account=other.account, attesters=[other.address]),
    }
    sets = {k: trust_set(v, home) for k, v in trust.items()}
    void, part, chain = window["void"], window["partial"], window["chain"]
    original = chain[1]  # inf_2's bundle
    billing = lambda d: d["billing"]  # noqa: E731
    bp = lambda d: d["attestation"]["billing_proof"]  # noqa: E731
    credit_1 = lambda d: billing(d).update(credit_micros=1)  # noqa: E731
    signals = lambda d: d["attestation"]["billing_proof"]["public_signals"]  # noqa: E731

    def foreign(d: dict[str, Any]) -> None:  # another tariff: same names, twice the prices
        for dim in d["original"]["tariff_snapshot"]["dimensions"].values():
            for tier in dim["tiers"]:
                tier["unit_price_micros"] = str(2 * float(tier["unit_price_micros"]))

    def after_charge_1(d: dict[str, Any]) -> None:
        d["billing"]["window"]["after"]["charge"] = "1"

    def swap_keys(d: dict[str, Any]) -> None:
        s = signals(d)
        s[5], s[6] = s[6], s[5]

    docs: dict[str, tuple[str, Any]] = {
        "correction: a void of inf_2": ("doc", void),
        "correction: 100 output tokens of inf_3": ("doc", part),
        "correction: tampered credit": ("doc", _edit(void, credit_1)),
        "correction: tampered credit, re-signed": (
            "doc",
            _relogged(_edit(void, credit_1), attester),
        ),
        "correction: more units taken back": (
            "doc",
            _edit(part, lambda d: d["correction"]["usage"].update(output_tokens=200)),
        ),
        "correction: foreign tariff": ("doc", _edit(void, foreign)),
        "correction: foreign tariff, re-signed": ("doc", _relogged(_edit(void, foreign), attester)),
        "correction: state keys swapped": ("doc", _edit(void, swap_keys)),
        "correction: window state after edited": (
            "doc",
            _relogged(_edit(void, after_charge_1), attester),
        ),
        "correction: signed naming the v2 key (wrong vkey)": (
            "doc",
            _relogged(
                _edit(
                    void,
                    lambda d: d["attestation"]["billing_proof"].update(
                        vkey_sha256=file_sha256(V2.vkey)
                    ),
                ),
                attester,
            ),
        ),
        "correction: the event's receipt": ("doc", {**void, "receipt": original["receipt"]}),
        "correction: no original": ("doc", _edit(void, lambda d: d.pop("original"))),
        "correction: not proved by v2c": (
            "doc",
            _edit(void, lambda d: bp(d).update(binding_version=BINDING_V2)),
        ),
        "correction: trust document without the v2c key": ("no v2c key", void),
        "correction: v2c key revoked": ("v2c key revoked", void),
        "correction: signed by an attester the trust document does not name": (
            "another attester",
            void,
        ),
        "void: a binding v1 event": ("doc", v1_void),
        "void: tampered credit": ("doc", _edit(v1_void, credit_1)),
        "void: edited opening (usage)": (
            "doc",
            _edit(v1_void, lambda d: d["original"]["meter_event"].update(usage_units=1)),
        ),
    }
    check = default_check()
    out: dict[str, Any] = {}
    for name, (t, data) in docs.items():
        python = verify_correction(data, trust=sets[t], check=check)
        out[name] = {"trust": t, "content": data, "python": python}
    st = verify_statement(
        [(f"b{i}", b) for i, b in enumerate(chain)], trust=sets["doc"], check=check
    )
    statement = statement_document(chain, st)
    assert statement["total_micros"] == int(chain[-1]["billing"]["window"]["after"]["charge"])
    assert len(statement["corrections"]) == 2
    edited = lambda change: _edit(statement, change)  # noqa: E731
    statements = {
        "statement: events and corrections": statement,
        "statement: a correction dropped": edited(lambda d: d["bundles"].pop(4)),
        "statement: a correction's credit edited": edited(
            lambda d: d["bundles"][5]["billing"].update(credit_micros=1)
        ),
        "statement: a correction listed with another reason": edited(
            lambda d: d["corrections"][0].update(reason="a refund")
        ),
        "statement: a correction before its event": {
            **statement,
            "bundles": [chain[0], chain[4], *chain[1:4], *chain[5:]],
        },
        "statement: closed at a correction": _closed(chain[:6], attester, sets["doc"]),
    }
    for name, data in statements.items():
        out[name] = {"trust": "doc", "content": data, "python": None}
    folder = tmp_path_factory.mktemp("page-corrections-files")
    for key, value in trust.items():
        (folder / f"trust-{key}.json").write_text(json.dumps(value))
    for i, case in enumerate(out.values()):
        (folder / f"case-{i}.json").write_text(json.dumps(case["content"]))
        case["file"] = str(folder / f"case-{i}.json")
        case["trust_file"] = str(folder / f"trust-{case['trust']}.json")
    return out


@pytest.fixture(scope="module")
def page(cases, built_page: Path) -> dict[str, dict[str, Any]]:
    listing = [
        {"name": name, "trust": c["trust_file"], "bundle": c["file"], "trust_steps": []}
        for name, c in cases.items()
    ]
    return run_page(built_page, listing)


DOCUMENTS = [
    "correction: a void of inf_2",
    "correction: 100 output tokens of inf_3",
    "correction: tampered credit",
    "correction: tampered credit, re-signed",
    "correction: more units taken back",
    "correction: foreign tariff",
    "correction: foreign tariff, re-signed",
    "correction: state keys swapped",
    "correction: window state after edited",
    "correction: signed naming the v2 key (wrong vkey)",
    "correction: the event's receipt",
    "correction: no original",
    "correction: not proved by v2c",
    "correction: trust document without the v2c key",
    "correction: v2c key revoked",
    "correction: signed by an attester the trust document does not name",
    "void: a binding v1 event",
    "void: tampered credit",
    "void: edited opening (usage)",
]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_page_judges_a_correction_as_vbill_verify_does(name: str, cases, page) -> None:
    """The three verdicts, and each failed one's reason word for word."""
    seen, python = page[name], cases[name]["python"]
    assert seen["errors"] == [] and seen["state"] == "done", (seen["errors"], seen["text"])
    result = seen["result"]
    for verdict in VERDICTS:
        ours = getattr(python, verdict)
        assert result[verdict]["valid"] is ours.valid, (verdict, result[verdict], ours.reason)
        assert result[verdict].get("reason") == ours.reason, verdict
    assert result["valid"] is python.valid and result["warnings"] == []


def test_the_correction_cases_mean_what_they_say(cases, page) -> None:
    """Valid documents hold; each negative case fails the verdict it is about, for its reason."""
    py = {name: cases[name]["python"] for name in DOCUMENTS}
    for name in (
        "correction: a void of inf_2",
        "correction: 100 output tokens of inf_3",
        "void: a binding v1 event",
    ):
        assert py[name].valid, (name, py[name])
    credit = py["correction: tampered credit, re-signed"]
    assert credit.verification.valid and credit.incircuit_binding_verification.valid
    assert credit.billing_check.reason.startswith(
        "billing.credit_micros: 1 but the credit rule gives"
    )
    tariff = py["correction: foreign tariff, re-signed"]
    assert tariff.verification.valid and not tariff.billing_check.valid
    assert (
        tariff.incircuit_binding_verification.reason
        == "billing_proof.public_signals[0] does not match the record"
    )
    wrong = py["correction: signed naming the v2 key (wrong vkey)"]
    assert wrong.verification.valid and wrong.billing_check.valid
    assert not wrong.incircuit_binding_verification.valid
    assert (
        "is not in the trusted set"
        in py[
            "correction: trust document without the v2c key"
        ].incircuit_binding_verification.reason
    )
    assert "is revoked" in py["correction: v2c key revoked"].incircuit_binding_verification.reason
    assert py["void: tampered credit"].billing_check.reason.startswith(
        "billing.credit_micros: a void"
    )
    text = page["correction: a void of inf_2"]["text"]
    assert "This correction checks out" in text and "corrects event\ninf_2" in text
    assert "Credit recomputed" in text and "a test inference billed by mistake" in text


def test_vbill_verify_gives_the_page_its_verdicts(cases, page, tmp_path: Path) -> None:
    """`vbill trust pin` then `vbill verify --json` on every document judged under the full
    trust document: the CLI and the page agree verdict by verdict, reason by reason."""
    env = {**os.environ, "VBILL_HOME": str(tmp_path / "home")}
    vbill = [str(ROOT / ".venv/bin/python"), "-m", "vbill"]
    names = [n for n in DOCUMENTS if cases[n]["trust"] == "doc"]
    pin = subprocess.run(
        [*vbill, "trust", "pin", cases[names[0]]["trust_file"]], env=env, capture_output=True
    )
    assert pin.returncode == 0, pin.stderr
    files = [cases[n]["file"] for n in names]
    run = subprocess.run(
        [*vbill, "verify", "--json", *files], env=env, capture_output=True, text=True
    )
    assert run.returncode == 1, run.stderr  # the tampered ones fail
    cli = json.loads(run.stdout)
    for name in names:
        ours, theirs = page[name]["result"], cli[cases[name]["file"]]
        assert [(ours[v]["valid"], ours[v].get("reason")) for v in VERDICTS] == [
            (theirs[v]["valid"], theirs[v]["reason"]) for v in VERDICTS
        ], name


STATEMENTS = {
    "statement: events and corrections": None,
    "statement: a correction dropped": ("gap", 4),
    "statement: a correction's credit edited": ("bad_bundle", 5),
    "statement: a correction listed with another reason": ("summary", None),
    "statement: a correction before its event": ("reorder", 1),
    "statement: closed at a correction": None,
}
INVOICES = ["statement: events and corrections", "statement: closed at a correction"]
SUMMARY = ("valid", "tenant_id", "billing_window_id", "tariff_id", "currency", "events")
SUMMARY += ("total_micros", "sum_of_charges_micros", "totals_by_dimension", "corrections")


@pytest.fixture(scope="module")
def cli_statements(cases, tmp_path_factory) -> dict[str, tuple[int, Any]]:
    env = {"VBILL_HOME": str(tmp_path_factory.mktemp("statement-home")), "DATABASE_URL": None}
    runner = CliRunner()
    first = cases["statement: events and corrections"]
    assert runner.invoke(main, ["trust", "pin", first["trust_file"]], env=env).exit_code == 0
    out = {}
    for name in STATEMENTS:
        run = runner.invoke(main, ["statement", "--json", cases[name]["file"]], env=env)
        out[name] = (run.exit_code, json.loads(run.output))
    for name in INVOICES:
        run = runner.invoke(main, ["invoice", "--json", cases[name]["file"]], env=env)
        assert run.exit_code == 0, run.output
        out[f"invoice of {name}"] = (0, json.loads(run.output))
    return out


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_page_walks_a_chain_of_events_and_corrections_as_vbill_statement_does(
    name: str, page, cli_statements
) -> None:
    """Valid, net total, net units per dimension, the corrections listed, every problem."""
    seen = page[name]
    assert seen["errors"] == [] and seen["state"] == "done", seen["text"]
    ours = seen["result"]
    code, cli = cli_statements[name]
    assert code == (0 if cli["valid"] else 1)
    assert {k: ours["summary"][k] for k in SUMMARY} == {k: cli[k] for k in SUMMARY}
    assert [(p["kind"], p["index"]) for p in ours["problems"]] == [
        (p["kind"], p["index"]) for p in cli["problems"]
    ]
    want = STATEMENTS[name]
    if want is None:
        assert (
            cli["valid"]
            and len(cli["corrections"]) == 2
            and cli["events"] == 4 + ("closed" not in name)
        )
    else:
        assert (cli["problems"][0]["kind"], cli["problems"][0]["index"]) == want, cli["problems"]


@pytest.mark.parametrize("name", INVOICES)
def test_page_shows_the_corrected_windows_invoice_as_vbill_invoice_does(
    name: str, page, cli_statements
) -> None:
    """The invoice of a window with corrections, open or closed at a correction: the same lines
    (tiers netted by the credits), the same total, and each correction listed with its reason,
    event and credit."""
    seen = page[name]
    inv, cli = seen["result"]["invoice"], cli_statements[f"invoice of {name}"][1]
    assert inv["closed"] is cli["closed"] is (name == INVOICES[1])
    keys = ("kind", "dimension", "tier", "units", "unit_price_micros", "amount_micros", "amount")
    assert [[line.get(k) for k in keys] for line in inv["lines"]] == [
        [line.get(k) for k in keys] for line in cli["lines"]
    ]
    assert inv["total_micros"] == cli["total_micros"] and len(cli["lines"]) >= 3
    assert [
        (c["correction_id"], c["corrects"], c["reason"], str(c["credit_micros"]))
        for c in inv["corrections"]
    ] == [
        (c["correction_id"], c["corrects"], c["reason"], c["credit_micros"])
        for c in cli["corrections"]
    ]
    text = seen["text"]
    assert "Corrections: credits for corrected events" in text and "cor_void_2" in text
    assert "net of the credits" in text and "Invoice (" in text
