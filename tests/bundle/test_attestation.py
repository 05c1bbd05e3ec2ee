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
from vbill.bindings import registry
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
LINEAR = registry.binding("billing_binding").signed_as
METERED = registry.binding("metered_binding").signed_as
# the digests of RECORD, PROOF and V1_SIGNALS / V2_SIGNALS as the first releases signed them
DIGEST_LINEAR = "3fd128e5a0d1d64c575d00c4e30c65210bb24cbebc20d8a03c81e31d9ec1f58f"
DIGEST_METERED = "038328035cddd89151064b73255875eeb2c1989b7d4d9cf87d84961ca26daed2"


def reference(message: dict) -> bytes:
    return _hash_eip191_message(encode_typed_data(full_message=message))


def fast(message: dict, struct: a.SignedStruct = LINEAR) -> bytes | None:
    return a._struct_digest(struct, message["message"])


def with_member(message: dict, name: str, value: object) -> dict:
    out = copy.deepcopy(message)
    out["message"][name] = value
    return out


@pytest.mark.parametrize(
    ("signals", "scheme", "struct"),
    [(V1_SIGNALS, a.SCHEME_V1, LINEAR), (V2_SIGNALS, a.SCHEME_V2, METERED)],
)
@pytest.mark.parametrize("word", [0, 1, 512, 513, 2**255, TOP])
def test_the_fast_digest_takes_every_uint256_and_equals_the_typed_data_encoder(
    signals, scheme, struct, word
):
    message = a.typed_message(RECORD, PROOF, signals, scheme, signed_as=struct)
    names = ["chargeMicros", "commitment", "nullifier"]
    names += ["prevStateKey", "stateKey"] if struct is METERED else []
    for name in names:
        m = with_member(message, name, word)
        digest = fast(m, struct)
        assert digest is not None, (name, word)  # taken by the fast path, not handed on
        assert digest == reference(m), (name, word)
    assert a.bundle_digest(RECORD, PROOF, signals, scheme, signed_as=struct) == reference(message)


def test_each_binding_signs_the_struct_its_bundles_were_signed_with() -> None:
    """The digests of bundles attested by earlier releases: each binding's struct (its type,
    domain and members) must not change while its bundles have to verify."""
    pinned = {
        (LINEAR, a.SCHEME_V1): DIGEST_LINEAR,
        (METERED, a.SCHEME_V2): DIGEST_METERED,
    }
    for (struct, scheme), want in pinned.items():
        signals = V2_SIGNALS if struct is METERED else V1_SIGNALS
        assert a.bundle_digest(RECORD, PROOF, signals, scheme, signed_as=struct).hex() == want
    assert LINEAR.domain == {"name": "vbill", "version": "bn128-poseidon8-v1"}
    assert METERED.domain == {"name": "vbill", "version": "bn128-poseidon8-v2"}
    assert [m["name"] for m in METERED.types["MeteredBillingBundle"][-2:]] == [
        "prevStateKey",
        "stateKey",
    ]


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
    message = a.typed_message(RECORD, PROOF, V1_SIGNALS, signed_as=LINEAR)
    assert fast(with_member(message, name, value)) is None


def test_a_member_the_fast_path_hands_on_is_digested_by_the_encoder_or_refused():
    as_text = {"commitment": "7", "nullifier": 8}  # the encoder reads a decimal string
    expected = reference(a.typed_message(RECORD, PROOF, V1_SIGNALS, signed_as=LINEAR))
    assert a.bundle_digest(RECORD, PROOF, as_text, signed_as=LINEAR) == expected
    with pytest.raises(EncodingError, match="cannot be encoded"):
        a.bundle_digest(RECORD, PROOF, {"commitment": True, "nullifier": 8}, signed_as=LINEAR)
    with pytest.raises(EncodingError, match="256 bits"):
        a.bundle_digest(RECORD, PROOF, {"commitment": -1, "nullifier": 8}, signed_as=LINEAR)


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
