"""Hostile and careless input (issue 10): nothing crashes a process, nothing bad is stored.

The service runs as `vbill serve` in a subprocess on a loopback port, and the CLI as `vbill`
subprocesses, so a crash shows as what it is (a dead process, a signal exit code), never as a
dead test runner.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import set_in
from support.http_server import ATTEST, AUTH, VERIFY
from support.servicekit import Served, counts, start_service, vbill
from vbill.bundle.keys import Attester
from vbill.service.guard import MAX_BODY_BYTES

DEEP = "[" * 100_000 + "]" * 100_000  # ~200 KB: overflowed the C stack at py_ecc's limit
HUGE_INT = "9" * 5000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    svc = start_service(tmp_path_factory.mktemp("hardening-home"))
    try:
        yield svc
    finally:
        svc.stop()


def post_raw(svc: Served, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    with svc.client() as http:
        r = http.post(
            path, content=body, headers={"content-type": "application/json", **(headers or {})}
        )
        return r.status_code


# --- item 1: deep nesting, body size, recursion limit ---


def test_recursion_limit_is_sane_after_importing_vbill() -> None:
    code = "import vbill.cli.main, sys; print(sys.getrecursionlimit())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) <= 10_000


@pytest.mark.parametrize("path", [VERIFY, ATTEST, "/api/vdi/billing/revocations"])
def test_deeply_nested_body_is_refused_and_the_service_survives(served: Served, path: str) -> None:
    with served.client() as http:
        before = counts(http)
    status = post_raw(served, path, DEEP.encode(), AUTH)
    assert status == 422
    assert served.alive()
    with served.client() as http:
        assert counts(http) == before


def test_oversized_body_is_413_before_it_is_buffered(served: Served) -> None:
    # Content-Length announces 1 GB and no body follows: a server that buffered before
    # refusing would wait forever for the body instead of answering.
    with socket.create_connection(("127.0.0.1", served.port), timeout=60) as s:
        s.sendall(
            b"POST /api/vdi/billing/verify HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
        )
        assert s.recv(4096).split(b"\r\n", 1)[0] == b"HTTP/1.1 413 Request Entity Too Large"
    # Without a length (chunked), the stream is cut off at the limit.
    chunks = (b" " * 65536 for _ in range(64))  # 4 MiB
    with served.client() as http:
        r = http.post(VERIFY, content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert served.alive()


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 4 * MAX_BODY_BYTES])
def test_an_oversized_upload_reads_its_413_not_a_reset(served: Served, size: int) -> None:
    # The client is still sending when the guard decides; answering then and closing a socket
    # with unread data makes the kernel reset it, and the client never sees the 413.
    body = b" " * size
    with served.client() as http:
        for _ in range(10):
            r = http.post(VERIFY, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 413, r.text
            chunked = http.post(VERIFY, content=iter([body]), headers=AUTH)
            assert chunked.status_code == 413, chunked.text
    assert served.alive()


def test_verify_cli_on_a_deeply_nested_file_exits_2(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    out = vbill("verify", str(deep), home=tmp_path)
    assert out.returncode == 2, out.stderr
    assert f"cannot read {deep}" in out.stderr and "Traceback" not in out.stderr


def test_batch_treats_an_unreadable_bundle_as_one_invalid_bundle(
    tmp_path: Path, make_bundle: Any, pilot_request: dict[str, Any], attester: Attester
) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "a-good.json").write_text(json.dumps(make_bundle(pilot_request)))
    (batch / "b-deep.json").write_text(DEEP)
    (batch / "c-empty.json").write_text("")
    (batch / "d-huge-int.json").write_text(f'{{"x": {HUGE_INT}}}')
    out = vbill(
        "verify", "--json", "--batch", str(batch), "--trust-attester", attester.address,
        home=tmp_path,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    summary = json.loads(out.stdout)
    assert summary["total"] == 4 and summary["valid"] == 1
    bad = {Path(i["bundle"]).name: i["reasons"] for i in summary["invalid"]}
    assert set(bad) == {"b-deep.json", "c-empty.json", "d-huge-int.json"}
    for reasons in bad.values():
        assert all("cannot read" in r for r in reasons.values()), reasons


# --- item 8: huge and odd input ---


def _pilot_with_huge_int(pilot: dict[str, Any]) -> bytes:
    text = json.dumps(pilot)
    return text.replace('"usage_units": 1842', f'"usage_units": {HUGE_INT}').encode()


def test_a_5000_digit_integer_is_422_on_attest_and_verify(
    served: Served, pilot_request: dict[str, Any]
) -> None:
    body = _pilot_with_huge_int(pilot_request)
    assert HUGE_INT.encode() in body
    with served.client() as http:
        before = counts(http)
        for path in (ATTEST, VERIFY):
            r = http.post(path, content=body, headers={**AUTH, "content-type": "application/json"})
            assert r.status_code == 422, (path, r.text)
            assert "digits" in r.json()["detail"]["message"]
        assert counts(http) == before
    assert served.alive()


def test_a_5000_digit_integer_exits_2_from_the_cli(
    tmp_path: Path, pilot_request: dict[str, Any]
) -> None:
    f = tmp_path / "huge.json"
    f.write_bytes(_pilot_with_huge_int(pilot_request))
    for verb in ("attest", "verify"):
        out = vbill(verb, str(f), home=tmp_path)
        assert out.returncode == 2, (verb, out.stderr)
        assert "Traceback" not in out.stderr and "digits" in out.stderr


@pytest.mark.parametrize("content", [None, "", "{nope", "[1, 2", "\xff\xfe"])
def test_verify_on_a_missing_empty_or_non_json_file_exits_2(
    tmp_path: Path, content: str | None
) -> None:
    f = tmp_path / "bundle.json"
    if content is not None:
        f.write_bytes(content.encode("latin-1"))
    out = vbill("verify", str(f), home=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"cannot read {f}" in out.stderr and "INVALID" not in out.stdout


@pytest.mark.parametrize(
    "content", ["{nope", "[]", '{"attesters": "0xabc"}', '{"vkeys": [1]}', '{"vkeys": ["/no"]}']
)
def test_a_malformed_trust_json_is_a_clear_error(
    tmp_path: Path, content: str, make_bundle: Any, pilot_request: dict[str, Any]
) -> None:
    (tmp_path / "trust.json").write_text(content)
    b = tmp_path / "b.json"
    b.write_text(json.dumps(make_bundle(pilot_request)))
    out = vbill("verify", str(b), home=tmp_path)
    assert out.returncode in (2, 3), out.stderr
    assert "trust.json" in out.stderr and "Traceback" not in out.stderr


def test_a_revocation_list_with_a_bad_signature_is_refused(
    tmp_path: Path, make_bundle: Any, pilot_request: dict[str, Any], attester: Attester
) -> None:
    from vbill.verify import revocation

    payload = revocation.build_payload([], attester.address, issued_at=1)
    doc = revocation.sign(payload, attester.account)
    doc["payload"]["revoked_vkeys"] = ["ab" * 32]  # edited after signing
    (tmp_path / "revocation.json").write_text(json.dumps(doc))
    b = tmp_path / "b.json"
    b.write_text(json.dumps(make_bundle(pilot_request)))
    env = {"VBILL_TRUSTED_ATTESTERS": attester.address}  # the list's signer is trusted
    out = vbill("verify", str(b), home=tmp_path, env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "revocation.json" in out.stderr and "signature" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("currency", ["usd", "DOGECOIN", "XYZ", "EU", "", "eth"])
def test_currency_accepts_only_iso_4217_and_eth(
    currency: str, pilot_request: dict[str, Any]
) -> None:
    from vbill.encode.encoding import encode_tariff
    from vbill.errors import InputError

    tariff = {**pilot_request["tariff_snapshot"], "currency": currency}
    with pytest.raises(InputError) as err:
        encode_tariff(tariff)
    assert err.value.field == "tariff_snapshot.currency"
    for ok in ("USD", "EUR", "JPY", "CHF", "ETH"):
        encode_tariff({**tariff, "currency": ok})


def test_a_non_iso_currency_is_422_over_http(served: Served, pilot_request: dict[str, Any]) -> None:
    body = copy.deepcopy(pilot_request)
    body["tariff_snapshot"]["currency"] = "DOGECOIN"
    with served.client() as http:
        r = http.post(ATTEST, json=body, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "tariff_snapshot.currency"


# --- item 5: verify checks everything it is given ---


def _record(bundle: dict[str, Any]) -> dict[str, Any]:
    keys = ("billing_version", "profileId", "meter_event", "tariff_snapshot", "billing")
    return copy.deepcopy({k: bundle[k] for k in keys})


@pytest.mark.parametrize(
    ("path", "value"),
    [(("profileId",), "VDI_VERIFY_OTHER_V9"), (("meter_event", "api_key_id"), "api_other")],
)
def test_billed_record_must_equal_the_attested_one_in_every_field(
    make_bundle: Any, pilot_request: dict[str, Any], trust: Any, path: tuple[str, ...], value: str
) -> None:
    from vbill.bundle.bundle import encode_request
    from vbill.verify.verify import py_ecc_check, request_from_bundle, verify_request

    bundle = make_bundle(pilot_request)
    body = request_from_bundle(bundle)
    billed = _record(bundle)
    target = billed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    enc = encode_request({k: billed[k] for k in ("meter_event", "tariff_snapshot")})
    billed["billing"]["billing_verify_fingerprint"] = enc.fingerprint  # self-consistent
    body["billed_billing_v2"] = billed
    result = verify_request(body, trust=trust, check=py_ecc_check)
    assert not result.valid and not result.billing_check.valid
    assert "billed_billing_v2." + ".".join(path) in (result.billing_check.reason or "")


def test_an_upper_case_vkey_revocation_takes_effect(
    tmp_path: Path, make_bundle: Any, pilot_request: dict[str, Any], trust: Any,
    vkey_sha256: str, attester: Attester,
) -> None:  # fmt: skip
    from vbill.ledger.store import Store
    from vbill.verify.trust import TrustSet
    from vbill.verify.verify import py_ecc_check, verify_bundle

    bundle = make_bundle(pilot_request)
    upper = vkey_sha256.upper()
    revoked = trust.with_(revoked_vkeys=[upper])
    result = verify_bundle(bundle, trust=revoked, check=py_ecc_check)
    assert not result.incircuit_binding_verification.valid
    assert "revoked" in (result.incircuit_binding_verification.reason or "")
    store = Store(tmp_path / "db.sqlite3", log_key=attester.account)
    store.revoke("vkey", upper, "leaked")
    assert [r["value"] for r in store.revocations()] == [vkey_sha256]
    with pytest.raises(ValueError, match="vkey"):
        store.revoke("vkey", "not-a-hash", "typo")
    assert isinstance(TrustSet().with_(revoked_vkeys=[upper]).revoked_vkeys, frozenset)


def test_a_dev_insecure_key_is_trusted_offline_with_a_warning(
    tmp_path: Path, make_bundle: Any, pilot_request: dict[str, Any], attester: Attester
) -> None:
    from vbill import paths

    if json.loads(paths.MANIFEST.read_text()).get("ceremony") != "dev-insecure":
        pytest.skip("the built setup is not dev-insecure")
    from vbill.verify.trust import default_trust
    from vbill.verify.verify import py_ecc_check, verify_bundle

    bundle = make_bundle(pilot_request)
    result = verify_bundle(
        bundle, trust=default_trust().with_(attesters=[attester.address]), check=py_ecc_check
    )
    assert result.valid
    assert any("dev-insecure" in w for w in result.warnings), result.warnings
    b = tmp_path / "b.json"
    b.write_text(json.dumps(bundle))
    out = vbill("verify", str(b), "--trust-attester", attester.address, home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "WARNING" in out.stdout and "dev-insecure" in out.stdout


# --- item 6: refused requests store nothing ---


def test_a_429_for_a_new_tenant_stores_no_tenant(
    served: Served, pilot_request: dict[str, Any]
) -> None:
    body = copy.deepcopy(pilot_request)
    body["meter_event"].update(tenant_id="tenant_never_funded", event_id="evt_429")
    body["tariff_snapshot"]["currency"] = "ETH"
    with served.client() as http:
        before = counts(http)
        r = http.post(ATTEST, json=body, headers=AUTH)
        assert r.status_code == 429, r.text
        assert counts(http) == before
        assert (
            http.get("/api/vdi/billing/accounts/tenant_never_funded", headers=AUTH).status_code
            == 404
        )


# --- item 7: secrets on disk ---


def _mode(path: Path) -> int:
    return path.lstat().st_mode & 0o777


def test_attester_key_ignores_planted_files_and_links(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    key = home / "attester.key"
    # a world-readable file planted where the old code put its temp file
    (home / "attester.tmp").write_text("planted")
    os.chmod(home / "attester.tmp", 0o644)
    Attester.new(key)
    assert _mode(key) == 0o600 and not key.is_symlink()
    # a link planted at the key's path must not redirect the key elsewhere
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("")
    os.chmod(elsewhere, 0o644)
    key.unlink()
    key.symlink_to(elsewhere)
    Attester.new(key, overwrite=True)
    assert not key.is_symlink() and _mode(key) == 0o600
    assert elsewhere.read_text() == ""
    with pytest.raises(Exception, match="exists"):
        Attester.new(key)


def test_store_files_are_0600_in_a_0700_home(
    tmp_path: Path, make_bundle: Any, pilot_request: dict[str, Any]
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    Attester.new(home / "attester.key")
    old = os.umask(0o022)
    try:
        out = vbill("accounts", "add", "tenant_modes", home=home)
    finally:
        os.umask(old)
    assert out.returncode == 0, out.stderr
    assert _mode(home) == 0o700
    files = [p for p in home.iterdir() if p.name.startswith("vbill.sqlite3")]
    assert files and all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}


def test_rpc_url_is_accepted_from_the_environment(tmp_path: Path) -> None:
    out = vbill(
        "balance", "--tenant-key", "1", home=tmp_path,
        env={"VBILL_RPC_URL": "http://127.0.0.1:9/secret-api-key"},
    )  # fmt: skip
    assert out.returncode == 3, out.stderr
    assert "127.0.0.1:9" in out.stderr


# --- item 4: amounts at both ends of their range, exactly ---

TOP = 2**64 - 1
TOP_PRICE = "18446744073709.551615"  # × 10^6 = 2^64 − 1


def _tariffed(pilot: dict[str, Any], event: str, tenant: str = "tenant_ranges", **tariff: Any):
    body = copy.deepcopy(pilot)
    body["meter_event"].update(event_id=event, tenant_id=tenant)
    body["tariff_snapshot"].update(tariff)
    return body


@pytest.mark.parametrize(
    ("event", "usage", "tariff", "charge"),
    [
        ("evt_low", 0, {"unit_price_micros": 0, "min_charge_micros": 0, "max_charge_micros": 0}, 0),
        ("evt_top_usage", TOP,
         {"unit_price_micros": 1, "min_charge_micros": 0, "max_charge_micros": TOP}, TOP),
        ("evt_top_price", 1,
         {"unit_price_micros": TOP_PRICE, "min_charge_micros": TOP, "max_charge_micros": TOP}, TOP),
    ],
)  # fmt: skip
def test_amounts_at_both_ends_store_and_return_exactly_over_http(
    served: Served, pilot_request: dict[str, Any], event: str, usage: int, tariff: Any, charge: int
) -> None:
    body = _tariffed(pilot_request, event, **tariff)
    body["meter_event"]["usage_units"] = usage
    with served.client() as http:
        r = http.post(ATTEST, json=body, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["billing"]["expected_charge_micros"] == charge
        again = http.get(f"/api/vdi/billing/bundles/{event}", headers=AUTH)
        assert again.status_code == 200 and again.json() == r.json()
        assert again.json()["meter_event"]["usage_units"] == usage
        record = _record(r.json())
        verdict = http.post(
            VERIFY,
            json={"attestation": r.json()["attestation"], "receipt": r.json()["receipt"],
                  "billed_billing_v2": record, "expected_billing_v2": record},
        ).json()  # fmt: skip
        assert verdict["valid"], verdict


def test_eth_charges_and_limits_at_the_top_of_the_range(
    served: Served, pilot_request: dict[str, Any]
) -> None:
    from vbill.ledger.store import WEI_PER_MICRO, Store

    tenant = "tenant_whale"
    with served.client() as http:
        assert http.post("/api/vdi/billing/accounts", json={"tenant_id": tenant},
                         headers=AUTH).status_code == 201  # fmt: skip
        store = Store(served.home / "vbill.sqlite3")
        store.record_deposit("0x" + "11" * 32, 0, tenant, 3 * TOP * WEI_PER_MICRO, 1)
        store.credit_deposit("0x" + "11" * 32, 0)
        store.close()
        limits = {"per_request_micros": TOP, "daily_micros": TOP}
        r = http.put(f"/api/vdi/billing/accounts/{tenant}/limits", json=limits, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["limits"]["per_request_micros"] == TOP
        assert r.json()["limits"]["daily_micros"] == TOP
        tariff = {"unit_price_micros": TOP_PRICE, "min_charge_micros": TOP,
                  "max_charge_micros": TOP, "currency": "ETH"}  # fmt: skip
        first = _tariffed(pilot_request, "evt_whale_1", tenant, **tariff)
        r = http.post(ATTEST, json=first, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["billing"]["expected_charge_micros"] == TOP
        account = http.get(f"/api/vdi/billing/accounts/{tenant}", headers=AUTH).json()
        assert int(account["balance"]["reserved"]) == TOP * WEI_PER_MICRO
        assert account["limits"]["spent_today_micros"] == TOP
        # a second top charge passes 2^64 today: refused by the daily limit, not by a crash
        second = _tariffed(pilot_request, "evt_whale_2", tenant, **tariff)
        r = http.post(ATTEST, json=second, headers=AUTH)
        assert r.status_code == 429 and "daily" in r.json()["detail"], r.text
        over = {"per_request_micros": TOP + 1}
        r = http.put(f"/api/vdi/billing/accounts/{tenant}/limits", json=over, headers=AUTH)
        assert r.status_code == 422


def test_a_database_with_integer_amounts_migrates_exactly(tmp_path: Path) -> None:
    import sqlite3

    from vbill.ledger import legacy, schema
    from vbill.ledger import store as store_mod

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, script in enumerate(legacy.MIGRATIONS[:3], start=1):  # before TEXT amounts
        conn.executescript(script)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    conn.execute("INSERT INTO tenants (tenant_id, account_salt, tenant_key, created_at) "
                 "VALUES ('t', '1', '2', 0)")  # fmt: skip
    conn.execute("INSERT INTO log_leaves VALUES (0, ?, 0)", (b"\0" * 32,))
    conn.execute(
        "INSERT INTO bundles (tenant_id, event_id, request_hash, bundle_json, digest, leaf_index,"
        " currency, charge_micros, nullifier, created_at, settlement_status) VALUES "
        "('t', 'e', 'h', '{}', 'd', 0, 'ETH', ?, 'n', 0, 'pending')",
        (2**63 - 1,),
    )
    conn.execute("INSERT INTO limits VALUES ('t', ?, 7)", (2**63 - 1,))
    conn.commit()
    conn.close()
    s = store_mod.Store(path)
    assert s.schema_version() == schema.HEAD
    assert s.bundles()[0].charge_micros == 2**63 - 1
    assert s.limits("t") == store_mod.Limits(2**63 - 1, 7)
    assert s.balance("t").reserved_wei == (2**63 - 1) * store_mod.WEI_PER_MICRO


# --- issue 24: hostile values inside a well-formed bundle ---

HOSTILE = {
    "charge-negative": (("billing", "expected_charge_micros"), -1),
    "charge-80-digits": (("billing", "expected_charge_micros"), 10**79),
    "charge-2-256": (("billing", "expected_charge_micros"), 2**256),
    "vkey-lone-surrogate": (("attestation", "billing_proof", "vkey_sha256"), "\ud800"),
    "profile-lone-surrogate": (("profileId",), "\ud800"),
}


def _hostile(bundle: dict[str, Any], name: str) -> dict[str, Any]:
    return set_in(bundle, *HOSTILE[name])


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_value_in_a_verify_body_is_a_verdict_not_a_500(
    served: Served, pilot_bundle: dict[str, Any], name: str
) -> None:
    from vbill.verify.verify import request_from_bundle

    body = request_from_bundle(_hostile(pilot_bundle, name))
    with served.client() as http:
        r = http.post(
            VERIFY, content=json.dumps(body), headers={"content-type": "application/json"}
        )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["valid"] is False
    reasons = [result[k]["reason"] for k in ("verification", "billing_check",
               "incircuit_binding_verification") if not result[k]["valid"]]  # fmt: skip
    assert reasons and all(reasons), result
    path = ".".join(HOSTILE[name][0])
    if "charge" in name:  # the field is named where it is parsed, before any encoder
        assert result["verification"]["reason"].startswith(f"expected_billing_v2.{path}: ")
    if name == "vkey-lone-surrogate":  # echoed escaped, never as an unencodable character
        assert "\\ud800" in result["incircuit_binding_verification"]["reason"]


def test_hostile_bundles_do_not_stop_a_batch_or_a_statement(
    tmp_path: Path, pilot_bundle: dict[str, Any], attester: Attester
) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "a-good.json").write_text(json.dumps(pilot_bundle))
    for name in HOSTILE:
        (batch / f"b-{name}.json").write_text(json.dumps(_hostile(pilot_bundle, name)))
    out = vbill("verify", "--json", "--batch", str(batch), "--trust-attester", attester.address,
                home=tmp_path)  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    summary = json.loads(out.stdout)
    assert summary["total"] == 1 + len(HOSTILE) and summary["valid"] == 1
    assert all(i["reasons"] for i in summary["invalid"])
    files = sorted(str(p) for p in batch.iterdir())
    each = vbill("verify", *files, "--trust-attester", attester.address, home=tmp_path)
    assert each.returncode == 1 and "Traceback" not in each.stderr, each.stderr
    assert each.stdout.count("INVALID") == len(HOSTILE)  # one verdict per file, all printed
    st = vbill("statement", *files, "--trust-attester", attester.address, home=tmp_path)
    assert st.returncode == 1 and "Traceback" not in st.stderr, st.stderr
    assert st.stdout.count("not a metered bundle") == 1 + len(HOSTILE), st.stdout


def _event(pilot: dict[str, Any], event_id: str, **top: Any) -> dict[str, Any]:
    body = copy.deepcopy(pilot)
    body["meter_event"].update(tenant_id="tenant_hostile_batch", event_id=event_id)
    return {**body, **top}


def test_a_batch_with_a_lone_surrogate_reports_every_event(
    served: Served, pilot_request: dict[str, Any]
) -> None:
    events = [
        _event(pilot_request, "evt_batch_good_1"),
        _event(pilot_request, "\ud800"),
        _event(pilot_request, "evt_batch_bad_profile", profileId="\ud800"),
        _event(pilot_request, "evt_batch_good_2"),
    ]
    with served.client() as http:
        r = http.post(
            "/api/vdi/billing/events",
            content=json.dumps({"events": events}),
            headers={**AUTH, "content-type": "application/json"},
        )
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [o["status"] for o in results] == ["created", "invalid", "invalid", "created"]
        assert results[1]["event_id"] == "\\ud800"  # escaped: the answer always encodes
        assert results[1]["error"]["field"] == "meter_event.event_id"
        assert results[2]["error"]["field"] == "profileId"
        # what the batch reported is what is stored
        for o in results:
            found = http.get(
                f"/api/vdi/billing/bundles/{o['event_id']}",
                params={"tenant_id": "tenant_hostile_batch"},
                headers=AUTH,
            )
            assert found.status_code == (200 if o["status"] == "created" else 404), found.text


def test_a_lone_surrogate_profile_id_is_422_on_attest(
    served: Served, pilot_request: dict[str, Any]
) -> None:
    body = _event(pilot_request, "evt_attest_bad_profile", profileId="\ud800")
    with served.client() as http:
        before = counts(http)
        r = http.post(ATTEST, content=json.dumps(body),
                      headers={**AUTH, "content-type": "application/json"})  # fmt: skip
        assert r.status_code == 422, r.text
        assert r.json()["detail"]["field"] == "profileId"
        assert counts(http) == before


def test_a_bundle_with_an_unknown_member_is_refused(
    tmp_path: Path, pilot_bundle: dict[str, Any], attester: Attester
) -> None:
    f = tmp_path / "extra.json"
    f.write_text(json.dumps({**pilot_bundle, "discount_micros": 100}))
    out = vbill("verify", "--json", str(f), "--trust-attester", attester.address, home=tmp_path)
    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout)
    assert result["verification"]["reason"] == "discount_micros: unknown member of a bundle"
    from vbill.verify.verify import request_from_bundle, verify_request

    body = {**request_from_bundle(pilot_bundle), "note": "x"}
    assert verify_request(body).verification.reason == "note: unknown member of a verify request"


def test_minus_zero_is_not_a_second_spelling_of_zero(
    served: Served, tmp_path: Path, pilot_request: dict[str, Any]
) -> None:
    text = json.dumps(_event(pilot_request, "evt_minus_zero")).replace(
        '"usage_units": 1842', '"usage_units": -0'
    )
    assert '"usage_units": -0' in text
    with served.client() as http:
        r = http.post(ATTEST, content=text, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422 and "-0" in r.json()["detail"]["message"], r.text
    f = tmp_path / "minus-zero.json"
    f.write_text(text)
    out = vbill("verify", str(f), home=tmp_path)
    assert out.returncode == 2 and "-0 is not an accepted integer" in out.stderr, out.stderr


def test_a_trailing_slash_redirect_never_names_the_host_header(served: Served) -> None:
    with served.client() as http:
        for path, where in (("/api/vdi/status/", "/api/vdi/status"),
                            ("/api/vdi/billing/transparency/head/?x=1",
                             "/api/vdi/billing/transparency/head?x=1")):  # fmt: skip
            r = http.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
            assert r.status_code == 307, (path, r.status_code)
            assert r.headers["location"] == where
