"""The trust set a verifier judges by (vbill.verify.trust): which attesters, log signers and
verification keys it trusts, why it refuses one, and how `default_trust` assembles it from the
manifest, $VBILL_HOME/trust.json and revocation.json. Every refusal is checked by its words:
these sentences are what a customer reads when a bundle fails (docs/security.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from vbill import paths
from vbill.bindings import ARTEFACTS, BINDING_V1, BINDING_V2
from vbill.bundle.keys import Attester
from vbill.errors import InputError
from vbill.verify import revocation
from vbill.verify import trust as t
from vbill.verify.trust import TrustSet, default_trust, file_sha256

A = "0x" + "aa" * 20
B = "0x" + "bb" * 20
SHA = "c0" * 32


def test_an_attester_is_refused_with_the_reason() -> None:
    ts = TrustSet().with_(attesters=[A], revoked_attesters=[B])
    assert ts.attester_ok(A) is None
    assert ts.attester_ok(A.upper().replace("0X", "0x")) is None  # addresses are case-blind
    assert ts.attester_ok(B) == f"attester {B} is revoked"
    assert ts.attester_ok(A[:-1] + "1") == f"attester {A[:-1] + '1'} is not in the trusted set"


def test_a_retired_attester_counts_only_for_what_was_logged_before_its_retirement() -> None:
    ts = TrustSet().with_(retired_attesters={A: 1000})
    assert ts.attester_ok(A, 999) is None
    why = f"attester {A} is retired since 1000 (ms); not logged before that"
    assert ts.attester_ok(A, 1000) == why  # at the retirement instant it no longer signs
    assert ts.attester_ok(A, 1001) == why
    assert ts.attester_ok(A, None) == why  # no log time: nothing proves it came before


def test_a_log_signer_must_be_trusted_and_unrevoked() -> None:
    ts = TrustSet().with_(log_signers=[A, B], revoked_attesters=[B])
    assert ts.log_signer_ok(A) is True
    assert ts.log_signer_ok(B) is False  # revoked as an attester: no longer signs heads
    assert ts.log_signer_ok("0x" + "cc" * 20) is False  # neither listed nor revoked


def test_a_verification_key_is_looked_up_by_hash_and_refused_with_the_reason(tmp_path) -> None:
    vkey = tmp_path / "vkey.json"
    vkey.write_text('{"protocol": "groth16"}')
    sha = file_sha256(vkey)
    ts = TrustSet().with_(vkey_files=[vkey])
    assert ts.vkey(sha) == ({"protocol": "groth16"}, None)
    assert ts.vkey(SHA) == (None, f"verification key {SHA[:16]}… is not in the trusted set")
    revoked = ts.with_(revoked_vkeys=[sha.upper()])
    assert revoked.vkey(sha) == (None, f"verification key {sha[:16]}… is revoked")


def test_a_trust_set_cannot_be_changed_in_place() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrustSet().attesters = frozenset({A})  # type: ignore[misc]


# -- default_trust: the operator's view, assembled from files ---------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """An empty VBILL_HOME and a build/ with one v1 vkey that the manifest records."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("VBILL_HOME", str(h))
    monkeypatch.delenv("VBILL_TRUSTED_ATTESTERS", raising=False)
    build = tmp_path / "build"
    build.mkdir()
    vkey = build / "vkey.json"
    vkey.write_text('{"key": "v1"}')
    monkeypatch.setattr(paths, "VKEY", vkey)
    monkeypatch.setattr(paths, "MANIFEST", build / "manifest.json")
    write_manifest({"artifacts": {"vkey": {"sha256": file_sha256(vkey)}}})
    v2 = build / "vkey-v2.json"
    monkeypatch.setitem(ARTEFACTS, BINDING_V2, dataclasses.replace(ARTEFACTS[BINDING_V2], vkey=v2))
    return h


def write_manifest(manifest: object) -> None:
    paths.MANIFEST.write_text(json.dumps(manifest))


def test_the_built_key_is_trusted_only_while_the_manifest_records_it(home: Path) -> None:
    sha = file_sha256(paths.VKEY)
    assert set(default_trust().vkeys) == {sha}
    write_manifest({"artifacts": {"vkey": {"sha256": "00" * 32}}})
    assert default_trust().vkeys == {}
    paths.MANIFEST.write_text("not json")
    assert default_trust().vkeys == {}
    assert t._manifest() == {}
    assert t._matches_manifest(paths.VKEY, "vkey") is False  # a bool, as its callers expect
    paths.MANIFEST.unlink()
    assert t._matches_manifest(paths.VKEY, "vkey") is False


def test_a_later_bindings_key_is_trusted_when_its_manifest_record_matches(home: Path) -> None:
    v2 = ARTEFACTS[BINDING_V2].vkey
    v2.write_text('{"key": "v2"}')
    v1_sha, v2_sha = file_sha256(paths.VKEY), file_sha256(v2)
    manifest = {"artifacts": {"vkey": {"sha256": v1_sha}}}
    write_manifest({**manifest, "bindings": {BINDING_V2: {"vkey_sha256": v2_sha}}})
    assert set(default_trust().vkeys) == {v1_sha, v2_sha}
    write_manifest({**manifest, "bindings": {BINDING_V2: {"vkey_sha256": v1_sha}}})
    assert set(default_trust().vkeys) == {v1_sha}  # a key its record does not name
    write_manifest({**manifest, "bindings": {BINDING_V2: "not a record"}})
    assert set(default_trust().vkeys) == {v1_sha}
    write_manifest({**manifest, "bindings": {BINDING_V1: {"vkey_sha256": v1_sha}}})
    assert t._binding_vkeys() == []  # v1's key comes only from the top-level record
    v2.unlink()
    write_manifest({**manifest, "bindings": {BINDING_V2: {"vkey_sha256": v2_sha}}})
    assert set(default_trust().vkeys) == {v1_sha}


def test_a_dev_insecure_ceremony_marks_its_key(home: Path) -> None:
    sha = file_sha256(paths.VKEY)
    write_manifest({"ceremony": "dev-insecure", "artifacts": {"vkey": {"sha256": sha}}})
    assert default_trust().insecure_vkeys == {sha}
    write_manifest({"ceremony": "production", "artifacts": {"vkey": {"sha256": sha}}})
    assert default_trust().insecure_vkeys == frozenset()


def test_the_local_attester_and_the_environment_are_trusted(home: Path, monkeypatch) -> None:
    local = Attester.new()
    monkeypatch.setenv("VBILL_TRUSTED_ATTESTERS", f" {A} ,,{B}")
    ts = default_trust()
    assert ts.attesters == {local.address.lower(), A, B}
    assert ts.log_signers == ts.attesters  # attesters also sign the log's heads


def test_trust_json_adds_attesters_and_keys_and_names_its_bad_field(home: Path) -> None:
    extra = home / "extra-vkey.json"
    extra.write_text('{"key": "extra"}')
    (home / "trust.json").write_text(json.dumps({"attesters": [A], "vkeys": [str(extra)]}))
    ts = default_trust()
    assert A in ts.attesters and file_sha256(extra) in ts.vkeys
    (home / "trust.json").write_text(json.dumps({"vkeys": [str(home / "nope.json")]}))
    with pytest.raises(InputError, match=r"vkeys\[0\]: no file .*nope.json"):
        default_trust()
    (home / "trust.json").write_text(json.dumps({"attesters": [1]}))
    with pytest.raises(InputError, match=r"attesters\.0: Input should be a valid string"):
        default_trust()
    (home / "trust.json").write_text("[]")
    with pytest.raises(InputError, match=r"top level: Input should be"):
        default_trust()


def test_revocation_json_revokes_and_retires(home: Path) -> None:
    signer = Attester.new()
    rows = [
        {"kind": "attester", "value": A, "reason": "leaked", "revoked_at": 5},
        {"kind": "vkey", "value": SHA, "reason": "bad setup", "revoked_at": 6},
    ]
    retired = [{"address": B, "retired_at": 1000, "reason": "rotated"}]
    payload = revocation.build_payload(rows, signer.address, 7, retired)
    (home / "revocation.json").write_text(json.dumps(revocation.sign(payload, signer.account)))
    ts = default_trust()
    assert ts.attester_ok(A) == f"attester {A} is revoked"
    assert ts.vkey(SHA) == (None, f"verification key {SHA[:16]}… is revoked")
    assert ts.retired_attesters == {B: 1000}
    assert ts.attester_ok(B, 999) is None
    forged = revocation.sign(payload, Attester.generate().account)
    (home / "revocation.json").write_text(json.dumps(forged))
    with pytest.raises(InputError, match="refusing the revocation list"):
        default_trust()
