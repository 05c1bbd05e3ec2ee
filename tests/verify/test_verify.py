"""Offline verification: the pilot bundle, the tamper matrix and the adversarial cases of
issue 4. Every verdict is computed from the bundle's own fields; each mutation must turn
exactly the verdicts that depend on the mutated field false."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import set_in, v1_bundle
from vbill import paths
from vbill.bundle.attestation import (
    SCHEME_V1,
    SCHEME_V2,
    canonical_json,
    canonical_json_reference,
)
from vbill.bundle.keys import Attester
from vbill.verify.trust import TrustSet
from vbill.verify.verify import py_ecc_check, snarkjs_check, verify_bundle
from vbill.zk.field import R
from vbill.zk.prover import Prover, verify_cli

V, B, C = "verification", "billing_check", "incircuit_binding_verification"
ALL = {V, B, C}


@pytest.fixture(scope="module")
def check(prover: Prover):
    return snarkjs_check(prover)


def falses(bundle: Any, trust: TrustSet, check) -> set[str]:
    result = verify_bundle(bundle, trust=trust, check=check)
    out = {name for name in (V, B, C) if not getattr(result, name).valid}
    assert result.valid == (not out)
    for name in out:
        reason = getattr(result, name).reason
        assert reason, f"{name} is false without a reason"
        assert not any(w in reason for w in INTERNAL), f"{name}: {reason}"
    return out


# Python's own exception texts: a verdict that shows one has lost the plain-words reason
INTERNAL = ("NoneType", "object has no attribute", "not subscriptable", "not iterable", "usage: ")


def leaves(node: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from leaves(v, (*path, i))
    elif node is not None:  # an absent optional part (settlement) has no leaf to tamper
        yield path


def mutated(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str) and value.isdigit():
        return str(int(value) + 1)
    if isinstance(value, str) and value.startswith("0x"):
        return value[:-1] + ("0" if value[-1] != "0" else "1")
    if value == "floor":
        return "ceil"
    return value + "x"


def get_in(data: Any, path: tuple) -> Any:
    for key in path:
        data = data[key]
    return data


def expected_falses(path: tuple) -> set[str]:
    """Which verdicts depend on the field at `path` (the matrix the issue asks for)."""
    head = path[0]
    if head in ("meter_event", "tariff_snapshot"):
        return ALL
    if head == "billing":
        return ALL if path[1] == "expected_charge_micros" else {V, B}
    if head == "profileId" or head == "receipt":
        return {V}
    if head == "billing_version":
        return {V, B}  # not in the circuit: the signature and the billing check catch it
    if path[:3] == ("attestation", "billing_proof", "proof"):
        return {C}  # digest version 2 signs everything but the proof, which only the binding checks
    if path[:2] == ("attestation", "billing_proof"):
        return {V, C}
    return {V}  # signature, attester, digest, scheme


# -- negative cases first --------------------------------------------------------------------


def test_tamper_matrix_every_leaf(pilot_bundle, trust, check) -> None:
    """Each leaf field, mutated alone, turns exactly its dependent verdicts false."""
    assert pilot_bundle["attestation"]["scheme"] == SCHEME_V2
    paths_seen = 0
    for path in leaves(pilot_bundle):
        if path[-1] == "protocol" or path[-1] == "curve":
            continue  # labels; covered by test_proof_labels_are_checked
        tampered = set_in(pilot_bundle, path, mutated(get_in(pilot_bundle, path)))
        got = falses(tampered, trust, check)
        assert got == expected_falses(path), f"{'.'.join(map(str, path))}: {got}"
        paths_seen += 1
    assert paths_seen > 50  # meter, tariff, billing, proof coordinates, signals, receipt, ...


def test_a_digest_v1_signature_covers_the_proof(make_bundle, pilot_request, trust, check) -> None:
    """A bundle signed as earlier releases did (digest version 1) keeps verifying, and each
    proof leaf, mutated alone, turns the signature false as well as the binding."""
    v1 = make_bundle(pilot_request, build=v1_bundle)
    assert v1["attestation"]["scheme"] == SCHEME_V1
    assert falses(v1, trust, check) == set()
    proof = [p for p in leaves(v1) if p[:3] == ("attestation", "billing_proof", "proof")]
    proof = [p for p in proof if p[-1] not in ("protocol", "curve")]
    assert len(proof) == 12  # pi_a, pi_b, pi_c coordinates
    for path in proof:
        tampered = set_in(v1, path, mutated(get_in(v1, path)))
        assert falses(tampered, trust, check) == {V, C}, ".".join(map(str, path))


def test_price_changed_to_121_breaks_binding_and_billing(pilot_bundle, trust, check) -> None:
    tampered = set_in(pilot_bundle, ("tariff_snapshot", "unit_price_micros"), 121)
    result = verify_bundle(tampered, trust=trust, check=check)
    assert not result.incircuit_binding_verification.valid
    assert not result.billing_check.valid
    assert "222882" in (result.billing_check.reason or "")


def test_proof_labels_are_checked(pilot_bundle, trust, check) -> None:
    for label, value in (("protocol", "plonk"), ("curve", "bls12381")):
        tampered = set_in(pilot_bundle, ("attestation", "billing_proof", "proof", label), value)
        assert C in falses(tampered, trust, check)


@pytest.mark.parametrize("field", ["salt", "account_salt"])
def test_salt_plus_r_does_not_alias(pilot_bundle, trust, check, field) -> None:
    path = ("attestation", "billing_proof", field)
    aliased = set_in(pilot_bundle, path, str(int(get_in(pilot_bundle, path)) + R))
    assert falses(aliased, trust, check) == {V, C}


def test_public_signal_plus_r_does_not_alias(pilot_bundle, trust, check) -> None:
    path = ("attestation", "billing_proof", "public_signals", 1)
    aliased = set_in(pilot_bundle, path, str(int(get_in(pilot_bundle, path)) + R))
    assert falses(aliased, trust, check) == {V, C}


def test_coordinate_at_or_above_p_is_rejected(pilot_bundle, trust, check) -> None:
    from vbill.zk.groth16 import P

    path = ("attestation", "billing_proof", "proof", "pi_a", 0)
    bumped = set_in(pilot_bundle, path, str(int(get_in(pilot_bundle, path)) + P))
    assert C in falses(bumped, trust, check)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: None,
        lambda b: [],
        lambda b: "not a bundle",
        lambda b: {k: v for k, v in b.items() if k != "attestation"},
        lambda b: {k: v for k, v in b.items() if k != "receipt"},
        lambda b: set_in(b, ("attestation", "billing_proof", "public_signals"), ["1"] * 4),
        lambda b: set_in(b, ("attestation", "billing_proof", "proof"), {}),
        lambda b: set_in(b, ("attestation", "signature"), "0x1234"),
        lambda b: set_in(b, ("meter_event", "usage_units"), -1),
        lambda b: set_in(b, ("meter_event", "usage_units"), 2**64),
        lambda b: set_in(b, ("meter_event", "event_timestamp"), "2026-05-29T12:00:00"),
        lambda b: set_in(b, ("attestation", "billing_proof", "salt"), "007"),
    ],
)
def test_malformed_bundles_fail_closed(pilot_bundle, trust, check, damage) -> None:
    result = verify_bundle(damage(copy.deepcopy(pilot_bundle)), trust=trust, check=check)
    assert not result.valid


def test_revoked_attester_is_rejected(pilot_bundle, trust, attester, check) -> None:
    revoked = trust.with_(revoked_attesters=[attester.address])
    assert falses(pilot_bundle, revoked, check) == {V}


def test_untrusted_attester_is_rejected(make_bundle, pilot_request, trust, check) -> None:
    stranger = Attester.generate()
    bundle = make_bundle(pilot_request, signer=stranger)
    assert falses(bundle, trust, check) == {V}


def test_revoked_vkey_is_rejected(pilot_bundle, trust, check, vkey_sha256) -> None:
    assert falses(pilot_bundle, trust.with_(revoked_vkeys=[vkey_sha256]), check) == {C}


@pytest.fixture(scope="module")
def foreign_setup(tmp_path_factory) -> tuple[Path, Path]:
    """A second, independent phase-2 setup of the same circuit (another beacon)."""
    tmp = tmp_path_factory.mktemp("foreign")
    snarkjs = str(paths.node_bin("snarkjs"))
    ptau = paths.ROOT / json.loads(paths.MANIFEST.read_text())["ptau"]["path"]
    zkey0, zkey, vkey = tmp / "f0.zkey", tmp / "f.zkey", tmp / "f_vkey.json"
    for args in (
        ["groth16", "setup", str(paths.R1CS), str(ptau), str(zkey0)],
        ["zkey", "beacon", str(zkey0), str(zkey), "ab" * 32, "10", "-n=foreign"],
        ["zkey", "export", "verificationkey", str(zkey), str(vkey)],
    ):
        subprocess.run([snarkjs, *args], check=True, capture_output=True)
    return zkey, vkey


def test_proof_from_another_setup_is_rejected(
    foreign_setup, pilot_request, attester, trust, check, vkey_sha256
) -> None:
    from vbill.bundle.bundle import build_bundle
    from vbill.verify.trust import file_sha256

    zkey, vkey = foreign_setup
    with Prover(workers=1, zkey=zkey, vkey=vkey) as foreign:
        for claimed in (file_sha256(vkey), vkey_sha256):
            bundle = build_bundle(
                pilot_request,
                attester=attester,
                account_salt=12345,
                prover=foreign,
                vkey_sha256=claimed,
            )
            data = bundle.model_dump(mode="json")
            result = verify_bundle(data, trust=trust, check=check)
            assert not result.incircuit_binding_verification.valid


def test_same_event_different_payload_shares_the_nullifier(make_bundle, pilot_request) -> None:
    """The chain's replay guard sees the second payload as a replay of the first."""
    other = set_in(pilot_request, ("meter_event", "usage_units"), 9999)
    a, b = make_bundle(pilot_request), make_bundle(other)
    sig = ("attestation", "billing_proof", "public_signals")
    assert get_in(a, sig)[3] == get_in(b, sig)[3]
    assert get_in(a, sig)[0] != get_in(b, sig)[0]


# -- positive cases --------------------------------------------------------------------------


def test_pilot_bundle_is_valid(pilot_bundle, trust, check) -> None:
    result = verify_bundle(pilot_bundle, trust=trust, check=check)
    assert result.valid, result
    assert pilot_bundle["billing"]["expected_charge_micros"] == 221040
    binding = result.incircuit_binding_verification
    assert binding.binding_version == "bn128-poseidon8-v1"
    assert (
        binding.commitment_digest
        == pilot_bundle["attestation"]["billing_proof"]["public_signals"][0]
    )


def test_reference_and_snarkjs_cli_agree_on_the_pilot_proof(pilot_bundle, trust) -> None:
    result = verify_bundle(pilot_bundle, trust=trust, check=py_ecc_check)
    assert result.valid
    bp = pilot_bundle["attestation"]["billing_proof"]
    assert verify_cli(paths.VKEY, bp["public_signals"], bp["proof"])
    bad = copy.deepcopy(bp["public_signals"])
    bad[1] = str(int(bad[1]) + 1)
    assert not verify_cli(paths.VKEY, bad, bp["proof"])


def test_native_check_agrees_with_py_ecc(pilot_bundle, trust) -> None:
    from vbill.verify.verify import native_available, native_check

    if not native_available():
        pytest.skip("native verifier not built (make native)")
    cases = [pilot_bundle]
    for path in (
        ("attestation", "billing_proof", "proof", "pi_c", 1),
        ("attestation", "billing_proof", "proof", "pi_b", 0, 1),
        ("tariff_snapshot", "unit_price_micros"),
    ):
        cases.append(set_in(pilot_bundle, path, mutated(get_in(pilot_bundle, path))))
    for case in cases:
        native = verify_bundle(case, trust=trust, check=native_check)
        ref = verify_bundle(case, trust=trust, check=py_ecc_check)
        assert native.model_dump() == ref.model_dump()
    assert verify_bundle(pilot_bundle, trust=trust, check=native_check).valid


def test_canonical_json_writes_numbers_as_strings_and_keeps_true_false_null() -> None:
    # docs/protocol.md §6: an independent implementation hashes exactly these bytes; a boolean
    # is a JSON literal there (Python's True is also an int: it must not become "True" or "1")
    record = {"z": [1, 2.50, 1e21], "b": True, "f": False, "n": None, "s": "1"}
    assert canonical_json(record) == (
        b'{"b":true,"f":false,"n":null,"s":"1","z":["1","2.5","1000000000000000000000"]}'
    )


# -- reasons: each failed verdict says what is wrong, in words (docs/testing.md: mutants) ----


def verdicts(request: dict[str, Any], trust: TrustSet, check) -> dict[str, tuple[bool, Any]]:
    from vbill.verify.verify import verify_request

    r = verify_request(request, trust=trust, check=check)
    return {n: (getattr(r, n).valid, getattr(r, n).reason) for n in (V, B, C)}


def test_a_missing_part_is_named_by_every_verdict_that_needs_it(pilot_bundle, trust, check):
    from vbill.verify.verify import request_from_bundle

    full = request_from_bundle(pilot_bundle)
    no_att = {**full, "attestation": None}
    got = verdicts(no_att, trust, check)
    assert got[V] == (False, "attestation: missing")
    assert got[C] == (False, "attestation: missing")
    assert got[B] == (True, None)  # the arithmetic needs no signature
    no_billed = {**full, "billed_billing_v2": None}
    got = verdicts(no_billed, trust, check)
    assert got[B] == (False, "billed_billing_v2: missing")
    assert got[V] == (True, None) and got[C] == (True, None)
    no_expected = {**full, "expected_billing_v2": None}
    got = verdicts(no_expected, trust, check)
    assert got == {n: (False, "expected_billing_v2: missing") for n in (V, B, C)}
    no_receipt = {**full, "receipt": None}
    assert verdicts(no_receipt, trust, check)[V] == (False, "receipt: missing")


def test_a_record_of_another_version_or_fingerprint_is_named(pilot_bundle, trust, check):
    from vbill.verify.verify import request_from_bundle

    full = request_from_bundle(pilot_bundle)
    other = {**full["billed_billing_v2"], "billing_version": "billing-v9"}
    got = verdicts({**full, "billed_billing_v2": other}, trust, check)
    assert got[B] == (False, "billed_billing_v2.billing_version: only v2 is supported")
    billing = {
        **full["expected_billing_v2"]["billing"],
        "billing_verify_fingerprint": "0x" + "ab" * 32,
    }
    record = {**full["expected_billing_v2"], "billing": billing}
    got = verdicts(
        {**full, "expected_billing_v2": record, "billed_billing_v2": record}, trust, check
    )
    assert got[B] == (False, "billed_billing_v2.billing.billing_verify_fingerprint: mismatch")


def test_the_first_difference_is_the_dotted_path_of_the_field() -> None:
    from vbill.verify.verify import _first_difference

    assert _first_difference({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == "a.c"
    assert _first_difference({"a": 1, "x": 0}, {"a": 1}) == "x"  # an extra billed field counts
    assert _first_difference({"a": 1}, {"a": True}) == "a"  # 1 == True, but not the same type
    assert _first_difference({"a": 1}, 5) == "record"  # a dict against a scalar: the whole record
    assert _first_difference(5, {"a": 1}) == "record"
    assert _first_difference({"a": [1]}, {"a": [1]}) is None


def test_an_error_inside_a_check_keeps_its_message_and_fails_only_its_verdict(
    pilot_bundle, trust, check, monkeypatch
) -> None:
    from vbill.bundle import usage
    from vbill.verify.verify import _guard, request_from_bundle

    assert _guard(lambda: 1 / 0, lambda r: r) == "division by zero"
    assert _guard(lambda: (_ for _ in ()).throw(KeyError()), lambda r: r) == "KeyError"

    def boom(*_: Any) -> str:
        raise ValueError("rate source unreadable")

    full = request_from_bundle(pilot_bundle)
    for problem in (lambda *_: "attestation.usd_rate.rate: edited", boom):
        monkeypatch.setattr(usage, "snapshot_problem", problem)
        assert not verdicts(full, trust, check)[V][0]
    monkeypatch.setattr(usage, "usage_problem", lambda *_: "usage.total: 3 but the record gives 2")
    assert verdicts(full, trust, check)[B] == (False, "usage.total: 3 but the record gives 2")
    monkeypatch.undo()
    monkeypatch.setattr(usage, "snapshot_problem", boom)
    got = verdicts(full, trust, check)
    assert got[V] == (False, "attestation.usd_rate: rate source unreadable")
    assert got[B] == (True, None) and got[C] == (True, None)
    monkeypatch.undo()
    monkeypatch.setattr(usage, "usage_problem", boom)
    got = verdicts(full, trust, check)
    assert got[B] == (False, "usage: rate source unreadable")
    assert got[V] == (True, None) and got[C] == (True, None)


def test_a_usage_problem_never_replaces_a_failed_billing_reason(pilot_bundle, trust, check):
    from vbill.verify.verify import request_from_bundle

    full = request_from_bundle(pilot_bundle)
    billing = {**full["billed_billing_v2"]["billing"], "expected_charge_micros": 1}
    billed = {**full["billed_billing_v2"], "billing": billing}
    got = verdicts({**full, "billed_billing_v2": billed, "usage": {"total": "x"}}, trust, check)
    assert got[B] == (
        False,
        "billed_billing_v2.billing.expected_charge_micros: 1 but the tariff gives 221040",
    )


def test_an_unreadable_bundle_fails_every_verdict_with_the_reason() -> None:
    from vbill.verify.verify import unreadable_result

    r = unreadable_result("bundle.json: not JSON")
    assert not r.valid
    for name in (V, B, C):
        assert getattr(r, name).valid is False
        assert getattr(r, name).reason == "bundle.json: not JSON"
    assert r.incircuit_binding_verification.binding_version == "bn128-poseidon8-v1"


def test_verify_defaults_to_the_reference_check(pilot_bundle, trust, monkeypatch) -> None:
    from vbill.verify import verify as v

    calls: list[int] = []
    real = v.py_ecc_check
    monkeypatch.setattr(v, "py_ecc_check", lambda *a: calls.append(1) or real(*a))
    assert v.verify_bundle(pilot_bundle, trust=trust).valid  # check=None: py_ecc
    assert calls == [1]
    refused = v.verify_bundle(pilot_bundle, trust=trust, check=lambda *_: False)
    assert refused.incircuit_binding_verification.reason == "Groth16 proof does not verify"
    assert calls == [1]  # a given check is the one used


def test_the_default_check_is_native_unless_snarkjs_is_asked_for(
    pilot_bundle, trust, monkeypatch
) -> None:
    from vbill.errors import VbillError
    from vbill.verify import verify as v
    from vbill.zk.native_prover import NATIVE_VERIFY_BIN, ensure_built

    monkeypatch.delenv("VBILL_VERIFIER", raising=False)
    try:
        ensure_built(NATIVE_VERIFY_BIN)  # not native_available(): that is what is under test
    except VbillError:
        pytest.skip("native verifier cannot be built here (make native)")
    assert v.native_available() is True
    assert v.default_check() is v.native_check
    monkeypatch.setenv("VBILL_VERIFIER", "snarkjs")
    assert v.native_available() is False
    fallback = v.default_check()
    assert fallback is not v.native_check
    bp = pilot_bundle["attestation"]["billing_proof"]
    signals = [int(x) for x in bp["public_signals"]]
    assert fallback(json.loads(paths.VKEY.read_text()), signals, bp["proof"]) is True
    assert v.verify_bundle(pilot_bundle, trust=trust, check=fallback).valid
    forged = set_in(pilot_bundle, ("attestation", "billing_proof", "proof", "pi_a", 0), "1")
    assert not v.verify_bundle(forged, trust=trust, check=fallback).valid
    monkeypatch.setenv("VBILL_VERIFIER", "native")
    assert v.native_available() is True

    def cannot_build(_binary):
        raise VbillError("no C compiler here")

    monkeypatch.setattr("vbill.zk.native_prover.ensure_built", cannot_build)
    assert v.native_available() is False  # a machine that cannot build it falls back


def test_verdict_records_are_immutable(pilot_bundle) -> None:
    import dataclasses

    from vbill.verify.linear import LINEAR
    from vbill.verify.verify import Recomputed, _parse, request_from_bundle

    parsed = _parse(request_from_bundle(pilot_bundle))
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.problems = {}  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        LINEAR.binding = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Recomputed(1, "0x").charge = 2  # type: ignore[misc]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_canonical_json_is_byte_equal_to_the_rfc8785_package(value: Any) -> None:
    assert canonical_json(value) == canonical_json_reference(value)


def test_canonical_json_agrees_on_escapes_key_order_and_refusals() -> None:
    tricky = {
        "\ue000": 1,  # after U+1F600 in code points, before it in UTF-16 code units
        "\U0001f600": 2,
        "ctl": '\x00\x07\x08\t\n\x0b\x0c\r\x1f\x7f\u2028"\\/é',
    }
    assert canonical_json(tricky) == canonical_json_reference(tricky)
    assert canonical_json(tricky).endswith('"\U0001f600":"2","\ue000":"1"}'.encode())
    for bad in ({"k": "\ud800"}, {"\udfff": 1}, {"k": object()}):
        with pytest.raises(ValueError):
            canonical_json(bad)
        with pytest.raises(ValueError):
            canonical_json_reference(bad)
