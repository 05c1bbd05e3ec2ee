"""The browser verifier page, in real headless Chromium, agrees with the Python verifier.

Every case is a real proved, signed and logged bundle (or a tampered or malformed copy of one)
plus a signed trust document; the page is built from its sources, opened from a file:// URL,
and fed both files through its own file inputs (tests/js/verifier_page.mjs, playwright-core).
Each of the three verdicts must equal `verify_bundle` / `verify_request` under the trust set
the same document gives the CLI. Without a browser the tests skip saying so, and fail in CI.
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
from support import V2, log_and_receipt, v1_bundle
from support.metered import flat, request
from support.verifier_page import (
    LOGGED,
    ROOT,
    VERDICTS,
    chromium,
    run_page,
    trust_set,
)
from vbill import jsonio, paths
from vbill.billing.close_record import make_record
from vbill.billing.closing import close_body
from vbill.bindings import BINDING_V1, BINDING_V2
from vbill.bundle.attestation import SCHEME_V1, SCHEME_V2
from vbill.bundle.bundle import build_bundle
from vbill.bundle.keys import Attester
from vbill.bundle.metered import state_from_json
from vbill.bundle.usage import RateSnapshot, cost_usd, usage_of, with_snapshot
from vbill.cli.main import main
from vbill.encode import encoding
from vbill.encode.metered import GENESIS, WindowState
from vbill.errors import InputError, VbillError
from vbill.ledger.store import WindowHead
from vbill.ledger.translog import MerkleTree, append_with_receipt, leaf_hash
from vbill.verify import trust_document
from vbill.verify.statement import SUMMARY_KEYS, statement_document, verify_statement
from vbill.verify.trust import TrustSet, file_sha256
from vbill.verify.verify import default_check, request_from_bundle, verify_bundle, verify_request

RECORD_KEYS = ("billing_version", "profileId", "meter_event", "tariff_snapshot", "billing")


def _edit(bundle: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    change(out)
    return out


def _read(text: str) -> Any:
    """What `vbill verify` reads: None (judged unreadable) for anything jsonio refuses."""
    try:
        return jsonio.loads(text)
    except InputError:
        return None


def _nested(depth: int) -> Any:
    return [_nested(depth - 1)] if depth else 0


def _flip_hex(value: str, at: int = 10) -> str:
    return value[:at] + ("1" if value[at] != "1" else "2") + value[at + 1 :]


class Case:
    """One file pair for the page and what the Python verifier says about it."""

    def __init__(
        self,
        name: str,
        trust: str,
        content: str,
        python: Any,
        steps: list[dict[str, Any]] | None = None,
    ) -> None:
        self.name, self.trust, self.content, self.python = name, trust, content, python
        self.steps = steps or []  # later trust documents dropped on the same page


# A metered tariff with a free allowance and volume steps (docs/protocol-v2.md), and a window
# of four events; `alt` events fork the window after its first event.
TIERED = request(
    {
        "tokens": {
            "tiers": [
                {"up_to": 1000, "unit_price_micros": "0"},
                {"up_to": 5000, "unit_price_micros": "0.5"},
                {"up_to": None, "unit_price_micros": "0.25"},
            ]
        },
        "images": flat("20"),
    },
    {},
    tariff_id="tiered",
)
USAGE = [(600, 0), (600, 1), (3000, 0), (2000, 2)]
SNAPSHOT = RateSnapshot("3150.25", "ops-desk-spot", "2026-05-29T11:59:00.000Z")


def _priced(bundle: dict[str, Any], attester: Attester) -> dict[str, Any]:
    """The bundle as a service with a USD rate source serves it: the attester's signed rate
    snapshot and the usage object with cost_eth and cost_usd (docs/protocol-v2.md §12)."""
    out = with_snapshot(bundle, SNAPSHOT, attester)
    return {**out, "usage": usage_of(out)}


def _rate_edited(bundle: dict[str, Any]) -> dict[str, Any]:
    """A higher rate, and the cost made to agree with it: only the signature can tell."""
    out = copy.deepcopy(bundle)
    out["attestation"]["usd_rate"]["rate"] = "4000"
    out["usage"]["cost_usd"] = cost_usd(int(out["billing"]["expected_charge_micros"]), "4000")
    return out


@pytest.fixture(scope="module")
def window(v2_prover: Any, attester: Attester) -> dict[str, Any]:
    """Real v2 bundles (proved, signed, logged): the window's chain, a fork after its first
    event, and the first events of another window and of another tenant."""
    tree = MerkleTree()
    sha = file_sha256(V2.vkey)

    def make(event: str, tokens: int, images: int, before: WindowState = GENESIS, **meter: Any):
        req = copy.deepcopy(TIERED)
        req["meter_event"].update(event_id=event, usage={"tokens": tokens, "images": images})
        req["meter_event"].update(meter)
        bundle = build_bundle(
            req,
            attester=attester,
            account_salt=12345,
            prover=v2_prover,
            vkey_sha256=sha,
            before=before,
        )
        return log_and_receipt(bundle, tree, attester).model_dump(mode="json")

    def after(bundle: dict[str, Any]) -> WindowState:
        return state_from_json(bundle["billing"]["window"]["after"], ("images", "tokens"), "after")

    chain: list[dict[str, Any]] = []
    for i, (tokens, images) in enumerate(USAGE):
        chain.append(make(f"inf_{i}", tokens, images, after(chain[-1]) if chain else GENESIS))
    alt2 = make("inf_alt_2", 50, 0, after(chain[0]))
    return {
        "chain": chain,
        "alt2": alt2,
        "alt3": make("inf_alt_3", 70, 0, after(alt2)),
        "other window": make("inf_june", 10, 0, billing_window_id="2026-06"),
        "other tenant": make("inf_other", 10, 0, tenant_id="tenant_other"),
        # signed from a state that is not genesis: valid alone, never a window's start
        "elsewhere": make("inf_elsewhere", 10, 0, WindowState(0, (0, 5000, 0, 0), 2 * 10**9, 2000)),
    }


def _statement_cases(
    window: dict[str, Any], v1_bundle: dict[str, Any], attester: Attester, trust: TrustSet
) -> dict[str, Any]:
    """Statement documents: the valid one `vbill statement -o` writes, and edits of it."""
    chain = window["chain"]
    doc = statement_document(
        chain,
        verify_statement(
            [(f"b{i}", b) for i, b in enumerate(chain)], trust=trust, check=default_check()
        ),
    )
    # by hand: [0, 600) free; 400 free + 200 × 0.5 + an image; 3000 × 0.5;
    # 800 × 0.5 + 1200 × 0.25 + two images
    assert doc["total_micros"] == 0 + 120 + 1500 + 740

    def edited(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        return _edit(doc, change)

    # the window's close record, signed and logged (in a log of its own) as the service does
    last, after = chain[-1], chain[-1]["billing"]["window"]["after"]
    meter = last["meter_event"]
    key = (meter["tenant_id"], meter["billing_window_id"], last["tariff_snapshot"]["tariff_id"])
    head = WindowHead(after["seq"], meter["event_id"], after)
    body = close_body(key, head, last, LOGGED, "operator")
    close, digest = make_record(body, attester)
    tree = MerkleTree([leaf_hash(bytes([i]) * 32) for i in range(4)])
    close["receipt"] = append_with_receipt(tree, digest, attester.account, LOGGED).to_dict()

    def bundles(b: list[Any]) -> Callable[[dict[str, Any]], None]:
        return lambda d: d.update(bundles=b)

    def swap(d: dict[str, Any]) -> None:
        d["bundles"][1], d["bundles"][3] = d["bundles"][3], d["bundles"][1]

    tampered_sig = _edit(
        chain[2],
        lambda b: b["attestation"].update(signature=_flip_hex(b["attestation"]["signature"], 80)),
    )
    return {
        "statement: valid": doc,
        "statement: edited event (usage)": edited(
            lambda d: d["bundles"][1]["meter_event"]["usage"].update(tokens=601)
        ),
        "statement: edited event (charge)": edited(
            lambda d: d["bundles"][2]["billing"].update(expected_charge_micros=15)
        ),
        "statement: dropped event": edited(lambda d: d["bundles"].pop(1)),
        "statement: dropped first event": edited(lambda d: d["bundles"].pop(0)),
        "statement: dropped event, summary re-stated": {
            **edited(lambda d: d["bundles"].pop(3)),
            "events": 3,
            "total_micros": 1620,
            "totals_by_dimension": {"images": 1, "tokens": 4200},
        },
        "statement: swapped two": edited(swap),
        "statement: fork (a second seq 2)": edited(
            lambda d: d["bundles"].insert(2, window["alt2"])
        ),
        "statement: fork (seq 3 of another chain)": edited(
            bundles([chain[0], chain[1], window["alt3"], chain[3]])
        ),
        "statement: another window's bundle": edited(
            lambda d: d["bundles"].append(window["other window"])
        ),
        "statement: another tenant's bundle": edited(bundles([window["other tenant"], *chain[1:]])),
        "statement: starts from a non-genesis state": edited(bundles([window["elsewhere"]])),
        "statement: closed": {**doc, "closed": True, "close": close},
        "statement: closed, last event dropped, summary re-stated": {
            **edited(lambda d: d["bundles"].pop(3)),
            "events": 3,
            "total_micros": 1620,
            "totals_by_dimension": {"images": 1, "tokens": 4200},
            "closed": True,
            "close": close,
        },
        "statement: closed, no bundles at all": {**edited(bundles([])), "close": close},
        "statement: closed, close record edited": {
            **doc,
            "closed": True,
            "close": {**close, "total_micros": "2361"},
        },
        "statement: bad bundle (signature)": edited(bundles([*chain[:2], tampered_sig, chain[3]])),
        "statement: stated total edited": edited(lambda d: d.update(total_micros=1861)),
        "statement: a v1 bundle in the window": edited(lambda d: d["bundles"].append(v1_bundle)),
        "statement: a bundle that is not an object": edited(lambda d: d["bundles"].insert(1, 7)),
        "statement: no bundles": edited(bundles([])),
        "statement: bundles not a list (malformed)": edited(bundles({"0": chain[0]})),  # type: ignore[arg-type]
    }


@pytest.fixture(scope="module")
def cases(
    make_bundle,
    pilot_request: dict[str, Any],
    attester: Attester,
    tmp_path_factory,
    window: dict[str, Any],
) -> dict[str, Case]:
    chromium()
    home = tmp_path_factory.mktemp("verifier-home")
    keys = {BINDING_V1: (paths.VKEY, "dev-insecure"), BINDING_V2: (V2.vkey, "dev-insecure")}
    signer = [attester.address]
    doc = trust_document.build(
        attester.account, bindings=keys, attesters=signer, log_signers=signer
    )
    issuer = Attester.generate()  # revokes `attester` in its own document
    revoking = trust_document.build(
        issuer.account,
        bindings=keys,
        attesters=[issuer.address, attester.address],
        log_signers=[issuer.address],
        revoked_attesters=[attester.address],
    )
    forged = {**doc, "attesters": [*doc["attesters"], Attester.generate().address]}
    successor = Attester.generate()  # `attester` rotated out: retired at LOGGED (+ 1) ms

    def retiring(cut_off: int) -> dict[str, Any]:
        return trust_document.build(
            successor.account,
            bindings=keys,
            attesters=[successor.address],
            log_signers=[successor.address],
            retired_attesters={attester.address: cut_off},
        )

    revoked_key = trust_document.build(
        attester.account,
        bindings=keys,
        attesters=signer,
        log_signers=signer,
        revoked_vkeys=[file_sha256(paths.VKEY)],
    )
    trust = {
        "doc": doc,
        "revoking": revoking,
        "forged": forged,
        "retired after": retiring(LOGGED),
        "retired before": retiring(LOGGED + 1),
        "revoked key": revoked_key,
    }
    sets = {k: trust_set(v, home) for k, v in trust.items() if k != "forged"}

    def request(event: str, **tariff: Any) -> dict[str, Any]:
        req = copy.deepcopy(pilot_request)
        req["meter_event"]["event_id"] = event
        req["tariff_snapshot"].update(tariff)
        return req

    fractional = make_bundle(request("evt_page_002", unit_price_micros=0.15, rounding_mode="ceil"))
    unusual = request("évt_page_005 🚀", unit_price_micros=33.333333, rounding_mode="half_up")
    unusual["meter_event"].update(event_timestamp="2026-05-29T12:00:00.5Z", tenant_id="tenant_zoë")
    unusual["tariff_snapshot"].update(min_charge_micros=0)
    unusual = make_bundle(unusual)
    stranger = make_bundle(request("evt_page_003"), signer=Attester.generate())
    wrong_key = make_bundle(request("evt_page_004"), vkey_sha256="ab" * 32)
    valid = make_bundle(request("evt_page_001"))  # again: its log now has several leaves
    v1 = make_bundle(request("evt_page_006"), build=v1_bundle)  # as earlier releases signed

    def billing(b: dict[str, Any], charge: int) -> None:
        b["billing"]["expected_charge_micros"] = charge

    bp = lambda b: b["attestation"]["billing_proof"]  # noqa: E731
    bundles: dict[str, Any] = {
        "valid": valid,
        "valid fractional price, ceil": fractional,
        "valid non-ASCII text, ms timestamp, half_up": unusual,
        "price written as text (same canonical form)": _edit(
            valid, lambda b: b["tariff_snapshot"].update(unit_price_micros="120")
        ),
        "tampered charge": _edit(valid, lambda b: billing(b, 2_210_400)),
        "tampered usage": _edit(valid, lambda b: b["meter_event"].update(usage_units=18420)),
        "tampered price": _edit(valid, lambda b: b["tariff_snapshot"].update(unit_price_micros=12)),
        "tampered signature": _edit(  # a digit of s: still recovers, to another address
            valid,
            lambda b: b["attestation"].update(
                signature=_flip_hex(b["attestation"]["signature"], 80)
            ),
        ),
        "signature that recovers no key": _edit(  # r = 0 is no curve point
            valid,
            lambda b: b["attestation"].update(
                signature="0x" + "00" * 32 + b["attestation"]["signature"][66:]
            ),
        ),
        "tampered proof coordinate": _edit(
            valid,
            lambda b: bp(b)["proof"]["pi_a"].__setitem__(
                0, str(int(bp(b)["proof"]["pi_a"][0]) + 1)
            ),
        ),
        "swapped proof points": _edit(
            valid,
            lambda b: bp(b)["proof"].update(
                pi_a=bp(b)["proof"]["pi_c"], pi_c=bp(b)["proof"]["pi_a"]
            ),
        ),
        "tampered public-signal salt": _edit(
            valid, lambda b: bp(b).update(salt=str(int(bp(b)["salt"]) + 1))
        ),
        "tampered receipt path": _edit(
            valid,
            lambda b: b["receipt"]["inclusion_proof"].__setitem__(
                0, _flip_hex(b["receipt"]["inclusion_proof"][0])
            ),
        ),
        "tampered receipt index": _edit(valid, lambda b: b["receipt"].update(leaf_index=0)),
        "wrong verification key": wrong_key,
        "untrusted attester": stranger,
        "non-canonical salt (x + r)": _edit(
            valid,
            lambda b: bp(b).update(
                salt=str(
                    int(bp(b)["salt"])
                    + 21888242871839275222246405745257275088548364400416034343698204186575808495617
                )
            ),
        ),
        "missing attestation": _edit(valid, lambda b: b.pop("attestation")),
        "missing receipt": _edit(valid, lambda b: b.pop("receipt")),
        "missing usage": _edit(valid, lambda b: b["meter_event"].pop("usage_units")),
        "unknown field": _edit(valid, lambda b: b["meter_event"].update(discount=1)),
        "huge usage (2^70)": _edit(valid, lambda b: b["meter_event"].update(usage_units=2**70)),
        "huge charge (10^30)": _edit(valid, lambda b: billing(b, 10**30)),
        "usage as a float": _edit(valid, lambda b: b["meter_event"].update(usage_units=1842.0)),
        "a list, not a bundle": [valid],
        "valid, digest v1 (the proof signed too)": v1,
        "digest v1 with another bundle's proof": _edit(
            v1, lambda b: bp(b).update(proof=bp(fractional)["proof"])
        ),
        "digest v2 with another bundle's proof": _edit(
            valid, lambda b: bp(b).update(proof=bp(fractional)["proof"])
        ),
        "currency not ISO 4217": _edit(
            valid, lambda b: b["tariff_snapshot"].update(currency="XYZ")
        ),
        "currency in lower case": _edit(
            valid, lambda b: b["tariff_snapshot"].update(currency="usd")
        ),
    }
    chain = window["chain"]
    sig = lambda b: bp(b)["public_signals"]  # noqa: E731
    bundles.update(
        {
            "metered: valid, first of its window": chain[0],
            "metered: valid, third of its window": chain[2],
            "metered: tampered usage": _edit(
                chain[1], lambda b: b["meter_event"]["usage"].update(tokens=601)
            ),
            "metered: tampered running total": _edit(
                chain[1], lambda b: b["billing"]["window"]["after"].update(charge="121")
            ),
            "metered: state keys swapped": _edit(
                chain[1], lambda b: sig(b).__setitem__(slice(5, 7), [sig(b)[6], sig(b)[5]])
            ),
            "metered: state before not canonical": _edit(
                chain[1], lambda b: b["billing"]["window"]["before"].update(amount="0120")
            ),
            "metered: unpriced dimension": _edit(
                chain[1], lambda b: b["meter_event"]["usage"].update(videos=1)
            ),
        }
    )
    priced = _priced(chain[2], attester)
    moved = _priced(chain[1], attester)["attestation"]["usd_rate"]
    bundles.update(
        {
            "metered: valid, with a USD rate snapshot and usage": priced,
            "metered: edited USD rate": _rate_edited(priced),
            "metered: edited cost_usd": _edit(priced, lambda b: b["usage"].update(cost_usd="4.73")),
            "metered: rate snapshot from another bundle": _edit(
                priced, lambda b: b["attestation"].update(usd_rate=moved)
            ),
            "metered: rate snapshot dropped, cost_usd kept": _edit(
                priced, lambda b: b["attestation"].pop("usd_rate")
            ),
            "a usage object on a v1 bundle": {**valid, "usage": {"units": {}, "total_units": 0}},
            # a corrected event's usage names its correction: only its shape is judged
            "metered: usage names its correction": _edit(
                priced,
                lambda b: b["usage"].update(
                    corrected_by={"correction_id": "cor_1", "credit_micros": 125}
                ),
            ),
            "metered: corrected_by with a negative credit": _edit(
                priced,
                lambda b: b["usage"].update(
                    corrected_by={"correction_id": "cor_1", "credit_micros": -1}
                ),
            ),
        }
    )
    out: dict[str, Case] = {}
    check = default_check()
    texts = {name: json.dumps(data) for name, data in bundles.items()}
    texts["nested 40 levels deep"] = json.dumps(_edit(valid, lambda b: b.update(x=_nested(40))))
    texts["81-digit integer"] = json.dumps(valid).replace(
        '"usage_units": 1842', f'"usage_units": {10**80}'
    )
    for name, content in texts.items():
        out[name] = Case(
            name, "doc", content, verify_bundle(_read(content), trust=sets["doc"], check=check)
        )
    out["revoked attester"] = Case(
        "revoked attester",
        "revoking",
        json.dumps(valid),
        verify_bundle(valid, trust=sets["revoking"], check=check),
    )
    record = {k: valid[k] for k in RECORD_KEYS}
    disputed = {
        "attestation": valid["attestation"],
        "receipt": valid["receipt"],
        "billed_billing_v2": _edit(record, lambda r: billing(r, 2_210_400)),
        "expected_billing_v2": record,
    }
    out["verify request: invoice overcharges"] = Case(
        "verify request: invoice overcharges",
        "doc",
        json.dumps(disputed),
        verify_request(disputed, trust=sets["doc"], check=check),
    )
    for name, change in (
        ("verify request: invoice names another profile", lambda r: r.update(profileId="OTHER")),
        (
            "verify request: invoice writes the price as text",
            lambda r: r["tariff_snapshot"].update(unit_price_micros="120"),
        ),
    ):
        body = {**disputed, "billed_billing_v2": _edit(record, change)}
        out[name] = Case(
            name, "doc", json.dumps(body), verify_request(body, trust=sets["doc"], check=check)
        )
    for name, key in (
        ("retired key, logged before its cut-off", "retired before"),
        ("retired key, logged at its cut-off", "retired after"),
        ("revoked verification key", "revoked key"),
    ):
        out[name] = Case(
            name, key, json.dumps(valid), verify_bundle(valid, trust=sets[key], check=check)
        )
    out["re-pinned on purpose"] = Case(
        "re-pinned on purpose",
        "doc",
        json.dumps(valid),
        out["revoked attester"].python,
        steps=[{"file": "revoking"}, {"file": "revoking", "repin": True}],
    )
    out["not JSON"] = Case(
        "not JSON",
        "doc",
        '{"billing_version": "v2", ',
        verify_bundle(None, trust=sets["doc"], check=check),
    )
    out["forged trust document"] = Case("forged trust document", "forged", json.dumps(valid), None)
    for name, statement in _statement_cases(window, valid, attester, sets["doc"]).items():
        out[name] = Case(name, "doc", json.dumps(statement), None)
    with pytest.raises(VbillError):
        trust_document.verify(forged)
    folder = tmp_path_factory.mktemp("verifier-files")
    for key, value in trust.items():
        (folder / f"trust-{key}.json").write_text(json.dumps(value))
    for i, case in enumerate(out.values()):
        (folder / f"case-{i}.json").write_text(case.content)
        case.trust = str(folder / f"trust-{case.trust}.json")
        case.steps = [{**st, "file": str(folder / f"trust-{st['file']}.json")} for st in case.steps]
        case.content = str(folder / f"case-{i}.json")
    return out


@pytest.fixture(scope="module")
def page_results(cases: dict[str, Case], built_page: Path) -> dict[str, dict[str, Any]]:
    listing = [
        {
            "name": c.name,
            "trust": c.trust,
            "bundle": c.content,
            "again": c.name == "valid",
            "trust_steps": c.steps,
        }
        for c in cases.values()
    ]
    return run_page(built_page, listing)


USD_CASES = [
    "metered: valid, with a USD rate snapshot and usage",
    "metered: edited USD rate",
    "metered: edited cost_usd",
    "metered: rate snapshot from another bundle",
    "metered: rate snapshot dropped, cost_usd kept",
    "a usage object on a v1 bundle",
    "metered: usage names its correction",
    "metered: corrected_by with a negative credit",
]
AGREEMENT = [
    "valid",
    "valid fractional price, ceil",
    "valid non-ASCII text, ms timestamp, half_up",
    "price written as text (same canonical form)",
    "tampered charge",
    "tampered usage",
    "tampered price",
    "tampered signature",
    "signature that recovers no key",
    "tampered proof coordinate",
    "swapped proof points",
    "tampered public-signal salt",
    "tampered receipt path",
    "tampered receipt index",
    "wrong verification key",
    "untrusted attester",
    "revoked attester",
    "retired key, logged before its cut-off",
    "retired key, logged at its cut-off",
    "revoked verification key",
    "re-pinned on purpose",
    "non-canonical salt (x + r)",
    "missing attestation",
    "missing receipt",
    "missing usage",
    "unknown field",
    "huge usage (2^70)",
    "huge charge (10^30)",
    "usage as a float",
    "a list, not a bundle",
    "valid, digest v1 (the proof signed too)",
    "digest v1 with another bundle's proof",
    "digest v2 with another bundle's proof",
    "not JSON",
    "nested 40 levels deep",
    "81-digit integer",
    "currency not ISO 4217",
    "currency in lower case",
    "verify request: invoice overcharges",
    "verify request: invoice names another profile",
    "verify request: invoice writes the price as text",
    "metered: valid, first of its window",
    "metered: valid, third of its window",
    "metered: tampered usage",
    "metered: tampered running total",
    "metered: state keys swapped",
    "metered: state before not canonical",
    "metered: unpriced dimension",
    *USD_CASES,
]


@pytest.mark.parametrize("name", AGREEMENT)
def test_page_verdicts_agree_with_python(name: str, cases, page_results) -> None:
    seen, python = page_results[name], cases[name].python
    assert python is not None
    assert seen["errors"] == [], seen["errors"]
    assert seen["state"] == "done", seen["text"]
    result = seen["result"]
    for verdict in VERDICTS:
        ours = getattr(python, verdict)
        assert result[verdict]["valid"] is ours.valid, (verdict, result[verdict], ours.reason)
        if not ours.valid:
            assert result[verdict]["reason"], f"{verdict} failed without a reason"
    assert result["valid"] is python.valid
    assert bool(result["warnings"]) is bool(python.warnings), (result["warnings"], python.warnings)


def test_corrected_by_cases_mean_what_they_say(cases) -> None:
    assert cases["metered: usage names its correction"].python.valid
    bad = cases["metered: corrected_by with a negative credit"].python
    assert bad.verification.valid and not bad.billing_check.valid
    assert bad.billing_check.reason.startswith("usage.corrected_by.credit_micros")


def test_the_cases_cover_valid_tampered_and_malformed(cases) -> None:
    """The agreement above is not vacuous: each verdict is seen both true and false."""
    results = [cases[n].python for n in AGREEMENT]
    assert results[0] is not None and results[0].valid
    for verdict in VERDICTS:
        states = {getattr(r, verdict).valid for r in results if r is not None}
        assert states == {True, False}, verdict


def test_the_failed_charge_is_explained_in_plain_words(page_results) -> None:
    text = page_results["tampered charge"]["text"]
    assert "the charge on the invoice is 2,210,400 but the tariff gives 221,040" in text
    dispute = page_results["verify request: invoice overcharges"]["text"]
    assert "the charge on the invoice is 2,210,400 but the tariff gives 221,040" in dispute


def test_a_forged_trust_document_is_refused(page_results) -> None:
    seen = page_results["forged trust document"]
    assert seen["state"] == "waiting"
    assert "Refused" in seen["trust_status"] and "not signed by its issuer" in seen["trust_status"]


def test_a_different_trust_document_needs_a_deliberate_re_pin(page_results) -> None:
    refused, pinned = page_results["re-pinned on purpose"]["trust_steps"]
    assert refused.startswith("Refused") and "differs from the trust document pinned" in refused
    assert pinned.startswith("Pinned") and "revoked: 1" in pinned


def test_the_page_names_the_issuer_and_makes_no_request(page_results, attester: Attester) -> None:
    seen = page_results["valid"]
    assert attester.address in seen["trust_status"]
    assert seen["again_ms"] is not None  # verified a second time in the same page
    # Only the page's own blob: workers (snarkjs's wasm threads); nothing leaves the machine.
    offsite = [u for c in page_results.values() for u in c["requests"] if not u.startswith("blob:")]
    assert offsite == []


def test_the_service_serves_the_page_and_its_trust_document(
    built_page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pilot_request
) -> None:
    """`vbill serve` at /verifier: the page fetches /.well-known/vdi-billing-trust.json when
    asked and agrees with the service's own POST /verify on a bundle it attested."""
    import httpx
    from support.http_server import ATTEST, AUTH, VERIFY, service
    from vbill.service import verifier_page

    monkeypatch.setattr(verifier_page, "PAGE", built_page)
    with service(tmp_path / "home") as (url, _app):
        bundle = httpx.post(url + ATTEST, json=pilot_request, headers=AUTH, timeout=120).json()
        overcharged = _edit(bundle, lambda b: b["billing"].update(expected_charge_micros=2_210_400))
        listing, expected = [], {}
        for name, data in (("served valid", bundle), ("served overcharged", overcharged)):
            body = request_from_bundle(data)
            expected[name] = httpx.post(url + VERIFY, json=body, timeout=120).json()
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(data))
            trust_url = url + trust_document.WELL_KNOWN_PATH
            listing.append(
                {
                    "name": name,
                    "bundle": str(path),
                    "page_url": url + "/verifier",
                    "trust_url": trust_url,
                }
            )
        seen = run_page(built_page, listing)
        page_html = httpx.get(url + "/verifier")
    assert page_html.status_code == 200 and "Check a bill" in page_html.text
    for name, python in expected.items():
        result = seen[name]["result"]
        assert seen[name]["state"] == "done", seen[name]["trust_status"]
        assert {v: result[v]["valid"] for v in VERDICTS} == {
            v: python[v]["valid"] for v in VERDICTS
        }
    assert expected["served valid"]["valid"] and not expected["served overcharged"]["valid"]
    asked = {u for c in seen.values() for u in c["requests"] if not u.startswith("blob:")}
    assert asked == {url + trust_document.WELL_KNOWN_PATH}


def test_the_page_accepts_the_same_currencies() -> None:
    source = (ROOT / "orchestrator/vbill/verifier/src/encoding.js").read_text()
    table = source.split("export const ISO_4217 = `", 1)[1].split("`", 1)[0]
    assert set(table.split()) == set(encoding.ISO_4217)


def test_digest_cases_mean_what_they_say(cases) -> None:
    """New bundles are signed under digest version 2, whose signature covers the record, not
    the proof: a swapped proof leaves the signature standing and fails the binding alone.
    Under version 1, as earlier releases signed, the signature covers the proof too."""
    schemes = {
        n: json.loads(Path(cases[n].content).read_text())["attestation"]["scheme"]
        for n in ("valid", "valid, digest v1 (the proof signed too)")
    }
    assert schemes == {"valid": SCHEME_V2, "valid, digest v1 (the proof signed too)": SCHEME_V1}
    assert cases["valid, digest v1 (the proof signed too)"].python.valid
    swapped = cases["digest v2 with another bundle's proof"].python
    assert swapped.verification.valid and swapped.billing_check.valid
    assert not swapped.incircuit_binding_verification.valid
    swapped = cases["digest v1 with another bundle's proof"].python
    assert not swapped.verification.valid and swapped.billing_check.valid
    assert not swapped.incircuit_binding_verification.valid


def test_retirement_cases_mean_what_they_say(cases, page_results) -> None:
    """A rotated-out key keeps what the log fixed before its cut-off, and only that."""
    assert cases["retired key, logged before its cut-off"].python.valid
    late = cases["retired key, logged at its cut-off"].python
    assert not late.verification.valid and "retired" in (late.verification.reason or "")
    assert late.billing_check.valid and late.incircuit_binding_verification.valid
    seen = page_results["retired key, logged at its cut-off"]["result"]["verification"]["reason"]
    assert "retired by the provider" in seen and "after that" in seen
    assert "revoked" in page_results["revoked verification key"]["text"]


# Every kind of case, valid, tampered and malformed, also through the command line.
CLI_CASES = [
    "valid",
    "valid fractional price, ceil",
    "valid non-ASCII text, ms timestamp, half_up",
    "tampered charge",
    "tampered usage",
    "tampered signature",
    "tampered proof coordinate",
    "tampered receipt path",
    "wrong verification key",
    "untrusted attester",
    "revoked attester",
    "retired key, logged before its cut-off",
    "retired key, logged at its cut-off",
    "revoked verification key",
    "missing receipt",
    "unknown field",
    "huge usage (2^70)",
    "usage as a float",
    "a list, not a bundle",
    "currency not ISO 4217",
    "valid, digest v1 (the proof signed too)",
    "digest v1 with another bundle's proof",
    "digest v2 with another bundle's proof",
    "metered: valid, third of its window",
    "metered: tampered usage",
    "metered: tampered running total",
    "metered: state keys swapped",
    *USD_CASES,
]


def test_the_page_agrees_with_the_vbill_verify_command(cases, page_results, tmp_path: Path) -> None:
    """`vbill trust pin FILE` then `vbill verify --json` on the same files, as a customer would
    (one pin per trust document, re-pinned on purpose with --replace)."""
    env = {**os.environ, "VBILL_HOME": str(tmp_path / "home")}
    vbill = [str(ROOT / ".venv/bin/python"), "-m", "vbill"]
    by_trust: dict[str, list[str]] = {}
    for name in CLI_CASES:
        by_trust.setdefault(cases[name].trust, []).append(name)
    compared = 0
    for trust, names in by_trust.items():
        pin = subprocess.run(
            [*vbill, "trust", "pin", trust, "--replace"], env=env, cwd=tmp_path, capture_output=True
        )
        assert pin.returncode == 0, pin.stderr
        files = [cases[n].content for n in names]
        run = subprocess.run(
            [*vbill, "verify", "--json", *files, files[0]],  # twice: always the by-file form
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        by_file = json.loads(run.stdout)
        assert run.returncode == (0 if all(by_file[f]["valid"] for f in files) else 1), run.stderr
        for name in names:
            cli, page = by_file[cases[name].content], page_results[name]["result"]
            assert {v: page[v]["valid"] for v in VERDICTS} == {
                v: cli[v]["valid"] for v in VERDICTS
            }, name
            compared += 1
    assert compared == len(CLI_CASES) >= 10


# first problem (kind, index) each statement case must show: what the case means
STATEMENTS = {
    "statement: valid": None,
    "statement: edited event (usage)": ("bad_bundle", 1),
    "statement: edited event (charge)": ("bad_bundle", 2),
    "statement: dropped event": ("gap", 1),
    "statement: dropped first event": ("gap", 0),
    "statement: dropped event, summary re-stated": None,  # a shorter window, stated as such
    "statement: swapped two": ("reorder", 1),
    "statement: fork (a second seq 2)": ("fork", 2),
    "statement: fork (seq 3 of another chain)": ("fork", 2),
    "statement: another window's bundle": ("other_window", 4),
    "statement: another tenant's bundle": ("other_window", 1),
    "statement: starts from a non-genesis state": ("genesis", 0),
    "statement: closed": None,
    "statement: closed, last event dropped, summary re-stated": ("truncated", 2),
    "statement: closed, close record edited": ("close", None),
    "statement: closed, no bundles at all": ("truncated", None),
    "statement: bad bundle (signature)": ("bad_bundle", 2),
    "statement: stated total edited": ("summary", None),
    "statement: a v1 bundle in the window": ("not_metered", 4),
    "statement: a bundle that is not an object": ("bad_bundle", 1),
    "statement: no bundles": ("summary", None),
    "statement: bundles not a list (malformed)": "malformed",
}
SUMMARY = ("valid", *SUMMARY_KEYS, "sum_of_charges_micros")
"""The summary fields the page and the CLI must agree on: a statement's stated ones, and more."""


@pytest.fixture(scope="module")
def statement_cli(cases, tmp_path_factory) -> dict[str, tuple[int, Any]]:
    """`vbill trust pin FILE`, then `vbill statement --json FILE` on every statement case."""
    env = {"VBILL_HOME": str(tmp_path_factory.mktemp("statement-home")), "DATABASE_URL": None}
    runner = CliRunner()
    pin = runner.invoke(main, ["trust", "pin", cases["valid"].trust], env=env)
    assert pin.exit_code == 0, pin.output
    out = {}
    for name in STATEMENTS:
        run = runner.invoke(main, ["statement", "--json", cases[name].content], env=env)
        out[name] = (run.exit_code, json.loads(run.output) if run.exit_code < 2 else run.output)
    return out


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_page_statement_verdicts_agree_with_the_vbill_statement_command(
    name: str, page_results, statement_cli
) -> None:
    """Valid, total and count, per-dimension totals, and every problem by kind and place."""
    seen = page_results[name]
    assert seen["errors"] == [], seen["errors"]
    assert seen["state"] == "done", seen["text"]
    page = seen["result"]
    assert page["kind"] == "statement"
    code, cli = statement_cli[name]
    if code == 2:  # a malformed document is a usage error for the CLI, never a verdict
        assert page["malformed"] is True and page["valid"] is False
        assert "malformed" in seen["text"]
        return
    assert page["malformed"] is False
    assert code == (0 if cli["valid"] else 1)
    assert {k: page["summary"][k] for k in SUMMARY} == {k: cli[k] for k in SUMMARY}
    problems = [(p["kind"], p["index"]) for p in cli["problems"]]
    assert [(p["kind"], p["index"]) for p in page["problems"]] == problems
    assert all(p["message"] for p in page["problems"])


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_statement_cases_mean_what_they_say(name: str, statement_cli) -> None:
    code, cli = statement_cli[name]
    want = STATEMENTS[name]
    if want == "malformed":
        assert code == 2
    elif want is None:
        assert code == 0 and cli["valid"] and cli["problems"] == []
    else:
        first = cli["problems"][0]
        assert code == 1 and (first["kind"], first["index"]) == want, cli["problems"]


def test_the_page_explains_a_statement_in_plain_words(page_results) -> None:
    valid = page_results["statement: valid"]["text"]
    assert "This statement checks out: total 2,360 micros ETH over 4 events" in valid
    assert "total tokens (units)\n6,200" in valid and "total images (units)\n3" in valid
    words = {
        "statement: dropped event": "seq 2 is missing before it: an event of the window was "
        "left out",
        "statement: swapped two": "has seq 4 where seq 2 belongs: the bundles are out of order",
        "statement: fork (a second seq 2)": "is a second event at seq 2 of the window",
        "statement: fork (seq 3 of another chain)": "the window's chain forks",
        "statement: another tenant's bundle": "belongs to another tenant",
        "statement: starts from a non-genesis state": "must start the window's chain, but its "
        "state before is not the genesis state",
        "statement: closed, last event dropped, summary re-stated": "the window was closed at seq "
        "4, but this statement ends at seq 3",
        "statement: edited event (usage)": "bundle 2 (event inf_1) does not verify: its "
        "signature or log receipt does not hold (the bundle was changed after it was signed",
        "statement: stated total edited": "the statement says its total micros is 1,861",
    }
    for name, says in words.items():
        text = page_results[name]["text"]
        assert "Failed at the first bad link" in text and says in text, (name, text)


def test_a_usd_rate_snapshot_and_usage_are_judged_and_shown_as_vbill_verify_does(
    cases, page_results
) -> None:
    """The snapshot's signature fails `verification`, the usage arithmetic `billing_check`,
    with Python's own reason; the valid bundle shows its costs and rate."""
    expect = {
        "metered: valid, with a USD rate snapshot and usage": (True, True),
        "metered: edited USD rate": (False, True),
        "metered: edited cost_usd": (True, False),
        "metered: rate snapshot from another bundle": (False, True),
        "metered: rate snapshot dropped, cost_usd kept": (True, False),
        "a usage object on a v1 bundle": (True, False),
    }
    for name, valid in expect.items():
        python, page = cases[name].python, page_results[name]["result"]
        assert (python.verification.valid, python.billing_check.valid) == valid, name
        for verdict in ("verification", "billing_check"):
            assert page[verdict].get("reason") == getattr(python, verdict).reason, (name, verdict)
    forged = cases["metered: edited USD rate"].python.verification.reason
    assert forged.startswith("attestation.usd_rate: its signature is not the attester's")
    assert cases["metered: edited cost_usd"].python.billing_check.reason == (
        "usage.cost_usd: '4.73' but cost_eth × rate = 0.0015 × 3150.25 = '4.725375'"
    )
    text = page_results["metered: valid, with a USD rate snapshot and usage"]["text"]
    for shown in ("cost (ETH)\n0.0015", "cost (USD)\n4.725375", "USD per ETH\n3150.25"):
        assert shown in text, text
    assert "rate source\nops-desk-spot" in text and "2026-05-29T11:59:00.000Z" in text


@pytest.mark.parametrize("name", ["statement: valid", "statement: closed"])
def test_the_page_shows_the_invoice_vbill_invoice_derives(
    name: str, cases, page_results, tmp_path: Path
) -> None:
    """A dropped statement that holds shows its invoice: the same lines, units, prices and
    amounts as `vbill invoice FILE --json`, re-derived in the browser."""
    env = {"VBILL_HOME": str(tmp_path), "DATABASE_URL": None}
    runner = CliRunner()
    assert runner.invoke(main, ["trust", "pin", cases["valid"].trust], env=env).exit_code == 0
    run = runner.invoke(main, ["invoice", "--json", cases[name].content], env=env)  # its file
    assert run.exit_code == 0, run.output
    cli = json.loads(run.output)
    page = page_results[name]["result"]["invoice"]
    keys = ("kind", "dimension", "tier", "units", "unit_price_micros", "amount_micros", "amount")
    assert [[line.get(k) for k in keys] for line in page["lines"]] == [
        [line.get(k) for k in keys] for line in cli["lines"]
    ]
    assert (page["total_micros"], page["closed"]) == (cli["total_micros"], cli["closed"])
    assert len(cli["lines"]) >= 4 and "Invoice (" in page_results[name]["text"]
