"""The signed digest and the canonical JSON under it, against their references.

`bundle_digest` hashes well-formed EIP-712 members itself (the fast path) and hands anything
else to eth_account's typed-data encoder. The fast path must equal the encoder byte for byte
on every value it accepts, and must accept exactly the values whose encoding it knows: a
member it misjudges would be signed as something the contract and other verifiers do not see.
"""

from __future__ import annotations

import copy
from types import MappingProxyType

import pytest
from eth_abi.exceptions import EncodingError
from eth_account.messages import _hash_eip191_message, encode_typed_data
from vbill.bundle import attestation as a

RECORD = {
    "billing_version": "1",
    "profileId": "pilot",
    "billing": {"billing_verify_fingerprint": "11" * 32, "expected_charge_micros": "5"},
}
PROOF = {"vkey_sha256": "22" * 32, "proof": {"pi_a": ["1", "2", "1"]}}
V1_SIGNALS = {"commitment": 7, "nullifier": 8}
V2_SIGNALS = {**V1_SIGNALS, "prev_state_key": 9, "state_key": 10}
TOP = 2**256 - 1


def reference(message: dict) -> bytes:
    return _hash_eip191_message(encode_typed_data(full_message=message))


def fast(message: dict) -> bytes | None:
    return a._struct_digest(message["domain"], message["message"])


def with_member(message: dict, name: str, value: object) -> dict:
    out = copy.deepcopy(message)
    out["message"][name] = value
    return out


@pytest.mark.parametrize(
    ("signals", "scheme"), [(V1_SIGNALS, a.SCHEME_V1), (V2_SIGNALS, a.SCHEME_V2)]
)
@pytest.mark.parametrize("word", [0, 1, 512, 513, 2**255, TOP])
def test_the_fast_digest_takes_every_uint256_and_equals_the_typed_data_encoder(
    signals, scheme, word
):
    message = a.typed_message(RECORD, PROOF, signals, scheme)
    names = ["chargeMicros", "commitment", "nullifier"]
    names += ["prevStateKey", "stateKey"] if "state_key" in signals else []
    for name in names:
        m = with_member(message, name, word)
        digest = fast(m)
        assert digest is not None, (name, word)  # taken by the fast path, not handed on
        assert digest == reference(m), (name, word)
    assert a.bundle_digest(RECORD, PROOF, signals, scheme) == reference(message)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("commitment", -1),
        ("commitment", 2**256),
        ("chargeMicros", True),  # a bool is an int to Python, not a uint256 to EIP-712
        ("nullifier", "8"),
        ("fingerprint", b"\x11" * 31),
        ("fingerprint", b"\x11" * 33),
        ("vkeyHash", "0x" + "22" * 32),
        ("contentHash", bytearray(32)),
        ("billingVersion", 1),
        ("profileId", None),
    ],
)
def test_the_fast_digest_hands_every_malformed_member_to_the_encoder(name, value):
    message = a.typed_message(RECORD, PROOF, V1_SIGNALS)
    assert fast(with_member(message, name, value)) is None


def test_a_member_the_fast_path_hands_on_is_digested_by_the_encoder_or_refused():
    as_text = {"commitment": "7", "nullifier": 8}  # the encoder reads a decimal string
    expected = reference(a.typed_message(RECORD, PROOF, V1_SIGNALS))
    assert a.bundle_digest(RECORD, PROOF, as_text) == expected
    with pytest.raises(EncodingError, match="cannot be encoded"):
        a.bundle_digest(RECORD, PROOF, {"commitment": True, "nullifier": 8})
    with pytest.raises(EncodingError, match="256 bits"):
        a.bundle_digest(RECORD, PROOF, {"commitment": -1, "nullifier": 8})


def test_version_2_content_hash_leaves_the_proof_out_and_version_1_keeps_it():
    other_proof = {**PROOF, "proof": {"pi_a": ["3", "4", "1"]}}
    other_key = {**PROOF, "vkey_sha256": "33" * 32}
    v2 = a.content_hash(RECORD, PROOF, a.SCHEME_V2)
    assert a.content_hash(RECORD, other_proof, a.SCHEME_V2) == v2
    assert a.content_hash(RECORD, other_key, a.SCHEME_V2) != v2
    assert a.content_hash(RECORD, other_proof, a.SCHEME_V1) != a.content_hash(RECORD, PROOF)
    with pytest.raises(ValueError, match="unknown attestation scheme 'eip712-v3'"):
        a.content_hash(RECORD, PROOF, "eip712-v3")


def test_canonical_json_writes_non_ascii_as_utf8_and_reads_any_mapping():
    value = {"b": "caf\u00e9 \u20ac", "a": MappingProxyType({"z": 1, "y": [2.5]})}
    expected = '{"a":{"y":["2.5"],"z":"1"},"b":"caf\u00e9 \u20ac"}'.encode()
    assert a.canonical_json(value) == expected
    assert a.canonical_json(value) == a.canonical_json_reference(value)
