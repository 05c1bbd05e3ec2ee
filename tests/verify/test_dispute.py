"""Disputes: an invoice line (the billed record) checked against the attested record.

The billed records here are forged the way a careless or dishonest biller would: each is
self-consistent (its charge is what its own tariff gives, its fingerprint is its own), so only
the comparison with the attested record can catch it. The billing check must fail with a
reason a finance reader can act on, through the library, the CLI and HTTP over a socket.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from support import needs_build
from support.http_server import ATTEST, AUTH, VERIFY, service
from vbill import paths, verify_bundle, verify_request
from vbill.bundle.bundle import encode_request
from vbill.cli.main import main
from vbill.verify.verify import default_check, request_from_bundle

RECORD_KEYS = ("billing_version", "profileId", "meter_event", "tariff_snapshot", "billing")


def record_of(bundle: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({k: bundle[k] for k in RECORD_KEYS})


def reissued(record: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """The record edited, with the charge and fingerprint its own meter and tariff give."""
    out = copy.deepcopy(record)
    edit(out)
    enc = encode_request(
        {"meter_event": out["meter_event"], "tariff_snapshot": out["tariff_snapshot"]}
    )
    out["billing"] = {
        "expected_charge_micros": enc.charge,
        "billing_verify_fingerprint": enc.fingerprint,
    }
    return out


def more_usage(r: dict[str, Any]) -> None:
    r["meter_event"]["usage_units"] += 1  # 1843 units: 221160 micros instead of 221040


def other_endpoint(r: dict[str, Any]) -> None:
    r["meter_event"]["endpoint"] = "/v1/embeddings"  # same charge, another service


def half_price_double_usage(r: dict[str, Any]) -> None:
    r["meter_event"]["usage_units"] *= 2  # 3684 units at 60 micros: the same 221040 micros
    r["tariff_snapshot"]["unit_price_micros"] //= 2


# (edit, does the charge change, words the reason must contain)
DISPUTES = {
    "other usage, its own charge and fingerprint": (more_usage, True, ("billed", "charge")),
    "same charge, other endpoint": (other_endpoint, False, ("billed", "record")),
    "same charge, other usage and price": (half_price_double_usage, False, ("billed", "record")),
}
SELF_CHECK_WORDS = ("but the tariff gives", "fingerprint: mismatch")


def assert_disputed(verdicts: dict[str, Any], changes_charge: bool, words: tuple[str, ...]):
    """Billing check false for the comparison (not for a self-inconsistent record); the
    signature over the attested record still holds; the proof does not bind the billed one."""
    billing = verdicts["billing_check"]
    assert verdicts["valid"] is False
    assert billing["valid"] is False, verdicts
    reason = billing["reason"] or ""
    assert all(w in reason for w in (*words, "attested")), reason
    assert not any(w in reason for w in SELF_CHECK_WORDS), reason
    assert ("charge" in reason) == changes_charge, reason
    assert verdicts["verification"]["valid"] is True, verdicts
    assert verdicts["incircuit_binding_verification"]["valid"] is False


@pytest.fixture(scope="module")
def check():
    return default_check()


def test_disputes_fail_the_billing_check_in_the_library(pilot_bundle, trust, check) -> None:
    attested = record_of(pilot_bundle)
    assert verify_bundle(pilot_bundle, trust=trust, check=check).valid  # the control
    for name, (edit, changes_charge, words) in DISPUTES.items():
        billed = reissued(attested, edit)
        charge = billed["billing"]["expected_charge_micros"]
        assert (charge != attested["billing"]["expected_charge_micros"]) == changes_charge, name
        body = request_from_bundle(pilot_bundle)
        body["billed_billing_v2"] = billed
        result = verify_request(body, trust=trust, check=check)
        assert_disputed(result.model_dump(), changes_charge, words)


# -- the CLI -----------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout + result.stderr


def test_cli_billed_needs_exactly_one_bundle(tmp_path, pilot_bundle, monkeypatch) -> None:
    monkeypatch.setenv("VBILL_HOME", str(tmp_path / "home"))
    line = tmp_path / "line.json"
    line.write_text(json.dumps(record_of(pilot_bundle)))
    code, out = run("verify", "--billed", str(line))
    assert code == 2 and "--billed" in out
    code, out = run("verify", "--billed", str(line), str(line), str(line))
    assert code == 2 and "exactly one bundle" in out


def test_disputes_fail_the_billing_check_in_the_cli(
    tmp_path, pilot_bundle, attester, monkeypatch
) -> None:
    needs_build()
    monkeypatch.setenv("VBILL_HOME", str(tmp_path / "home"))
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(pilot_bundle))
    trust = ("--trust-attester", attester.address, "--vkey", str(paths.VKEY))
    line = tmp_path / "line.json"
    line.write_text(json.dumps(record_of(pilot_bundle)))
    code, out = run("verify", "--json", *trust, str(bundle), "--billed", str(line))
    assert code == 0, out  # the invoice says what was attested
    for name, (edit, changes_charge, words) in DISPUTES.items():
        line.write_text(json.dumps(reissued(record_of(pilot_bundle), edit)))
        code, out = run("verify", "--json", *trust, str(bundle), "--billed", str(line))
        assert code == 1, (name, out)
        assert_disputed(json.loads(out), changes_charge, words)
        code, human = run("verify", *trust, str(bundle), "--billed", str(line))
        assert code == 1 and "billing check" in human and "FAIL (billed" in human, human


# -- HTTP over a socket ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory) -> Iterator[httpx.Client]:
    needs_build()
    home = tmp_path_factory.mktemp("dispute-home")
    with service(home) as (url, _), httpx.Client(base_url=url, timeout=120) as client:
        yield client


def test_disputes_fail_the_billing_check_over_http(http, pilot_request) -> None:
    r = http.post(ATTEST, json=pilot_request, headers=AUTH)
    assert r.status_code == 200, r.text
    bundle = r.json()
    body = request_from_bundle(bundle)
    good = http.post(VERIFY, json=body)
    assert good.status_code == 200 and good.json()["valid"] is True, good.text
    for name, (edit, changes_charge, words) in DISPUTES.items():
        body["billed_billing_v2"] = reissued(record_of(bundle), edit)
        r = http.post(VERIFY, json=body)
        assert r.status_code == 200, (name, r.text)
        assert_disputed(r.json(), changes_charge, words)


def test_an_invoice_line_from_a_file_is_what_the_cli_reads(tmp_path: Path, pilot_bundle) -> None:
    """The record written by `record_of` is what an invoice system would export: it passes the
    model the CLI and HTTP parse (so the dispute tests above are not failing on parsing)."""
    from vbill.models import BillingRecord

    for name, (edit, _, _) in DISPUTES.items():
        record = reissued(record_of(pilot_bundle), edit)
        parsed = BillingRecord.model_validate(record)
        assert parsed.model_dump(mode="json", by_alias=True, exclude_unset=True) == record, name
