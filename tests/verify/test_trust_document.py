"""The signed trust document: its exact format, tampering, pinning (trust on first use) and the
customer's offline flow of docs/customer.md, against the real service over a socket."""

from __future__ import annotations

import copy
import hashlib
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
from click.testing import CliRunner
from eth_account import Account
from eth_account.messages import encode_defunct
from support import V2, needs_build
from support.http_server import ATTEST, AUTH, service
from vbill import paths
from vbill.bindings import BINDING_V2, BINDING_V2C, artefacts
from vbill.bundle.keys import Attester
from vbill.cli.main import main
from vbill.errors import InputError, ToolError, VerificationFailed
from vbill.verify import trust_document
from vbill.verify.trust import default_trust

WELL_KNOWN = "/.well-known/vdi-billing-trust.json"
V2C = artefacts(BINDING_V2C)
KEYS = {
    "trust_version", "issued_at", "issuer", "bindings", "attesters", "log_signers",
    "revocation_url", "log_head_url", "revoked", "deployments", "retired_attesters", "signature",
}  # fmt: skip


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    needs_build()
    home = tmp_path_factory.mktemp("trust-home")
    record = {
        "network": "local",
        "chain_id": 31337,
        "contracts": {
            "BillingSettlement": {"address": "0x" + "5e" * 20},
            "BillingVerifier": {"address": "0x" + "fe" * 20},
        },
    }
    (home / "deployments").mkdir()
    (home / "deployments" / "local.json").write_text(json.dumps(record))
    with service(home) as (url, _app):
        yield url, home


@pytest.fixture(scope="module")
def served(live: tuple[str, Path]) -> dict[str, Any]:
    return httpx.get(live[0] + WELL_KNOWN).json()


@pytest.fixture
def customer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: dict[str, Any]) -> Path:
    """A customer's machine: its own VBILL_HOME, no attester key, and no build it could trust
    (no manifest vouches for build/vkey.json; the service in this process still serves it)."""
    home = tmp_path / "customer"
    monkeypatch.setenv("VBILL_HOME", str(home))
    monkeypatch.delenv("VBILL_TRUSTED_ATTESTERS", raising=False)
    monkeypatch.setattr(paths, "MANIFEST", tmp_path / "no-build" / "manifest.json")
    return home


def resign(doc: dict[str, Any], account: Any) -> dict[str, Any]:
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    sig = account.sign_message(encode_defunct(primitive=trust_document.signing_bytes(unsigned)))
    return {**unsigned, "signature": "0x" + bytes(sig.signature).hex()}


# --- the format ---


def test_served_document_has_the_published_shape(served: dict[str, Any], live: Any) -> None:
    assert set(served) == KEYS
    assert served["trust_version"] == 1
    assert served["issued_at"].endswith("Z") and "T" in served["issued_at"]
    issuer = Attester.load(live[1] / "attester.key").address
    assert served["issuer"] == issuer
    assert served["attesters"] == [issuer] and served["log_signers"] == [issuer]
    assert served["revocation_url"] == "/.well-known/vdi-billing-revocation.json"
    assert served["log_head_url"] == "/api/vdi/billing/transparency/head"
    assert served["revoked"] == {"attesters": [], "vkeys": []}
    assert served["retired_attesters"] == {}
    assert served["deployments"] == {
        "local": {"settlement": "0x" + "5e" * 20, "verifier": "0x" + "fe" * 20, "chain_id": 31337}
    }
    manifest = json.loads(paths.MANIFEST.read_text())
    files = {"bn128-poseidon8-v1": (paths.VKEY, manifest["ceremony"])}
    if V2.vkey.exists():  # metered billing is set up here: statements need v2's key
        files[BINDING_V2] = (V2.vkey, manifest["bindings"][BINDING_V2]["ceremony"])
    if V2C.vkey.exists():  # corrections are set up here: the page checks their proofs
        files[BINDING_V2C] = (V2C.vkey, manifest["bindings"][BINDING_V2C]["ceremony"])
    assert set(served["bindings"]) == set(files)
    for version, (path, ceremony) in files.items():
        key = served["bindings"][version]
        assert key["ceremony"] == ceremony
        assert key["vkey_json"].encode() == path.read_bytes()
        assert key["vkey_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_signature_is_personal_sign_over_rfc8785_with_numbers_as_strings(
    served: dict[str, Any],
) -> None:
    """The recipe an independent verifier (the browser page) follows, spelled out here."""

    def numbers_as_strings(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int):
            return str(v)
        if isinstance(v, dict):
            return {k: numbers_as_strings(x) for k, x in v.items()}
        if isinstance(v, list):
            return [numbers_as_strings(x) for x in v]
        return v

    body = numbers_as_strings({k: v for k, v in served.items() if k != "signature"})
    message = encode_defunct(primitive=rfc8785.dumps(body))
    assert Account.recover_message(message, signature=served["signature"]) == served["issuer"]
    assert trust_document.verify(served).issuer == served["issuer"]


def _add_attester(d: dict[str, Any]) -> None:
    d["attesters"].append("0x" + "ab" * 20)


def _swap_key(d: dict[str, Any]) -> None:
    key = next(iter(d["bindings"].values()))
    key["vkey_json"] = key["vkey_json"].replace("bn128", "bn254")
    key["vkey_sha256"] = hashlib.sha256(key["vkey_json"].encode()).hexdigest()


TAMPERS = {
    "attester added": _add_attester,
    "vkey swapped with its hash": _swap_key,
    "key hash changed": lambda d: next(iter(d["bindings"].values())).update(vkey_sha256="0" * 64),
    "revocation dropped": lambda d: d["revoked"]["vkeys"].append("1" * 64),
    "issued_at changed": lambda d: d.update(issued_at="2020-01-01T00:00:00Z"),
    "chain id changed": lambda d: d["deployments"]["local"].update(chain_id=1),
    "issuer changed": lambda d: d.update(issuer="0x" + "ab" * 20),
    "signature flipped": lambda d: d.update(signature=d["signature"][:-4] + "0000"),
}


@pytest.mark.parametrize("tamper", TAMPERS, ids=list(TAMPERS))
def test_any_tampered_field_fails_verification(served: dict[str, Any], tamper: str) -> None:
    doc = copy.deepcopy(served)
    TAMPERS[tamper](doc)
    with pytest.raises(VerificationFailed):
        trust_document.verify(doc)


def test_a_self_signed_outsider_or_a_revoked_issuer_is_refused(served: dict[str, Any]) -> None:
    outsider = Account.create()
    forged = resign({**served, "issuer": outsider.address}, outsider)
    with pytest.raises(VerificationFailed, match="not one of the document's attesters"):
        trust_document.verify(forged)
    forged["attesters"] = [outsider.address]
    forged["revoked"] = {"attesters": [outsider.address.lower()], "vkeys": []}
    with pytest.raises(VerificationFailed, match="revoked"):
        trust_document.verify(resign(forged, outsider))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("bindings"), "bindings"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d.update(trust_version=2), "trust_version"),
        (lambda d: d.update(trust_version="1"), "trust_version"),
        (lambda d: d.update(signature="0x12"), "signature"),
        (lambda d: d["deployments"]["local"].pop("verifier"), "deployments.local.verifier"),
    ],
)
def test_malformed_documents_name_the_field(served: dict[str, Any], edit: Any, field: str) -> None:
    doc = copy.deepcopy(served)
    edit(doc)
    with pytest.raises(InputError) as info:
        trust_document.verify(doc)
    assert info.value.field == field
    with pytest.raises(InputError):
        trust_document.verify([served])


# --- pinning ---


def test_pin_is_trust_on_first_use_and_refuses_a_changed_document(
    live: tuple[str, Path], customer: Path
) -> None:
    url, _ = live
    runner = CliRunner()
    first = runner.invoke(main, ["trust", "pin", url])  # a bare URL: the well-known path
    assert first.exit_code == 0, first.output
    assert first.output.startswith("pinned: ")
    pin = customer / "trust-pin.json"
    assert stat.S_IMODE(pin.stat().st_mode) == 0o600
    again = runner.invoke(main, ["trust", "pin", url + WELL_KNOWN, "--json"])
    assert json.loads(again.output)["status"] == "unchanged"  # a newer issued_at alone
    revoked = "0x" + "cd" * 20
    r = httpx.post(
        url + "/api/vdi/billing/revocations",
        json={"kind": "attester", "value": revoked, "reason": "test"},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    refused = runner.invoke(main, ["trust", "pin", url])
    assert refused.exit_code == 1
    assert f"revoked.attesters: added {revoked}" in refused.output
    assert "--replace" in refused.output
    assert trust_document.load_pin().revoked.attesters == []  # the old pin stands
    replaced = runner.invoke(main, ["trust", "pin", url, "--replace"])
    assert replaced.exit_code == 0 and replaced.output.startswith("replaced: ")
    shown = runner.invoke(main, ["trust", "show", "--json"])
    assert json.loads(shown.output)["revoked"]["attesters"] == [revoked]


def test_pin_refuses_a_bad_document_and_keeps_nothing(
    served: dict[str, Any], customer: Path, tmp_path: Path
) -> None:
    bad = copy.deepcopy(served)
    _add_attester(bad)
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    result = CliRunner().invoke(main, ["trust", "pin", str(tmp_path / "bad.json")])
    assert result.exit_code == 1, result.output
    assert not (customer / "trust-pin.json").exists()
    assert CliRunner().invoke(main, ["trust", "show"]).exit_code == 2


def test_pinned_document_is_what_default_trust_trusts(
    served: dict[str, Any], customer: Path
) -> None:
    sha = next(iter(served["bindings"].values()))["vkey_sha256"]
    assert default_trust().vkey(sha)[0] is None  # nothing built or pinned here
    assert trust_document.pin(served) == ("pinned", [])
    trust = default_trust()
    assert trust.vkey(sha)[0] == json.loads(paths.VKEY.read_text())
    assert trust.attester_ok(served["issuer"]) is None and trust.log_signer_ok(served["issuer"])
    # a key file swapped under $VBILL_HOME/vkeys is not trusted
    (customer / "vkeys" / f"{sha}.json").write_text('{"protocol": "groth16"}')
    assert default_trust().vkey(sha)[0] is None
    # a pin edited by hand is an environment error, not silently ignored
    pin = customer / "trust-pin.json"
    pin.write_text(pin.read_text().replace(served["issuer"], "0x" + "ab" * 20))
    with pytest.raises(ToolError, match="re-pin"):
        default_trust()
    with pytest.raises(ToolError, match="re-pin"):
        trust_document.pin(served)
    assert trust_document.pin(served, replace=True)[0] == "pinned"
    assert default_trust().vkey(sha)[0] is not None  # re-pinning rewrote the key file


def test_revocations_in_the_pin_are_honoured(served: dict[str, Any], customer: Path) -> None:
    key = Attester.generate()
    sha = next(iter(served["bindings"].values()))["vkey_sha256"]
    doc = json.loads(json.dumps(served))
    doc.update(issuer=key.address, attesters=[key.address, served["issuer"]])
    doc["revoked"] = {"attesters": [served["issuer"].lower()], "vkeys": [sha]}
    trust_document.pin(resign(doc, key.account))
    trust = default_trust()
    assert "revoked" in (trust.vkey(sha)[1] or "")
    assert "revoked" in (trust.attester_ok(served["issuer"]) or "")


def test_retirements_in_the_pin_keep_what_was_logged_before_the_cut_off(
    served: dict[str, Any], customer: Path
) -> None:
    key = Attester.generate()
    doc = json.loads(json.dumps(served))
    doc.update(issuer=key.address, attesters=[key.address])
    doc["retired_attesters"] = {served["issuer"].lower(): 1_780_000_000_000}
    trust_document.pin(resign(doc, key.account))
    trust = default_trust()
    assert trust.attester_ok(served["issuer"], 1_779_999_999_999) is None
    assert "retired" in (trust.attester_ok(served["issuer"], 1_780_000_000_000) or "")
    assert "retired" in (trust.attester_ok(served["issuer"]) or "")  # no receipt: no time
    retired_issuer = {**doc, "retired_attesters": {key.address.lower(): 1}}
    with pytest.raises(VerificationFailed, match="retired by its own document"):
        trust_document.verify(resign(retired_issuer, key.account))


def test_a_document_without_retirements_still_pins_and_re_verifies(
    served: dict[str, Any], customer: Path
) -> None:
    """An older document has no `retired_attesters`: pinning must not write the default into
    it (the signature covers the members the issuer wrote, no more)."""
    key = Attester.generate()
    doc = {k: v for k, v in served.items() if k != "retired_attesters"}
    doc.update(issuer=key.address, attesters=[key.address])
    assert trust_document.pin(resign(doc, key.account))[0] == "pinned"
    pinned = json.loads((customer / "trust-pin.json").read_text())
    assert "retired_attesters" not in pinned
    assert trust_document.load_pin() is not None


# --- the customer's three commands (docs/customer.md) ---


def test_customer_pins_fetches_and_verifies_offline(
    live: tuple[str, Path], customer: Path, pilot_request: dict[str, Any], tmp_path: Path
) -> None:
    url, _ = live
    http = httpx.Client(base_url=url, timeout=120)
    body = copy.deepcopy(pilot_request)
    body["meter_event"].update(tenant_id="tenant_cust", event_id="evt_customer_001")
    assert http.post(ATTEST, json=body, headers=AUTH).status_code == 200
    token = http.post("/api/vdi/billing/accounts/tenant_cust/tokens", headers=AUTH).json()["token"]
    runner = CliRunner(env={"VBILL_TOKEN": token})
    bundle = tmp_path / "bundle.json"

    fetched = runner.invoke(main, ["fetch", "evt_customer_001", "--url", url, "-o", str(bundle)])
    assert fetched.exit_code == 0, fetched.output
    untrusted = runner.invoke(main, ["verify", str(bundle)])
    assert untrusted.exit_code == 1, untrusted.output  # nothing pinned: not trusted

    assert runner.invoke(main, ["trust", "pin", url]).exit_code == 0
    verified = runner.invoke(main, ["verify", "--json", str(bundle)])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["valid"] is True

    tampered = json.loads(bundle.read_text())
    tampered["billing"]["expected_charge_micros"] += 1
    bundle.write_text(json.dumps(tampered))
    assert runner.invoke(main, ["verify", str(bundle)]).exit_code == 1
    wrong = runner.invoke(main, ["fetch", "evt_customer_001", "--url", url, "--token", "vbt_x"])
    assert wrong.exit_code == 2 and "HTTP 401" in wrong.output
