"""EIP-712 attestation of a bundle: the digest the attester signs and the log records.

The typed struct names the fields a verifier most needs to read at a glance (fingerprint,
charge, commitment, nullifier, verification-key hash) and binds everything else through
`contentHash`, the SHA-256 of the RFC 8785 canonical JSON of the record and its proof section.

Two digest versions, named by `attestation.scheme` (docs/protocol.md §7.1): `eip712` (version
1) hashes the whole proof section, the Groth16 proof included, so signing waits for proving;
`eip712-v2` hashes the proof section without `proof`. The public signals the proof must
reproduce are still covered, so the attester can sign and log an event at ingestion and a
worker attaches the proof later without changing what was signed.

Each binding says which struct its bundles are signed as (`SignedStruct`, its plug-in's
`signed_as`): BillingBundle's members, then any public signals of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any

import rfc8785
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils import keccak

SCHEME_V1 = "eip712"  # digest version 1: contentHash covers the Groth16 proof
SCHEME_V2 = "eip712-v2"  # digest version 2: contentHash covers everything but the proof
SCHEMES = (SCHEME_V1, SCHEME_V2)
# The members every bundle is signed with, in struct order.
MEMBERS = (
    {"name": "billingVersion", "type": "string"},
    {"name": "profileId", "type": "string"},
    {"name": "fingerprint", "type": "bytes32"},
    {"name": "chargeMicros", "type": "uint256"},
    {"name": "commitment", "type": "uint256"},
    {"name": "nullifier", "type": "uint256"},
    {"name": "vkeyHash", "type": "bytes32"},
    {"name": "contentHash", "type": "bytes32"},
)
_DOMAIN_TYPE = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}]


@dataclass(frozen=True)
class SignedStruct:
    """The EIP-712 struct a binding's bundles are signed as: `primary_type` with MEMBERS, then
    one uint256 member per `signals` pair (member name, public signal it carries), under the
    domain {name: "vbill", version: `version`}. A signed bundle's digest depends on all three:
    a binding keeps its struct for as long as its bundles must verify."""

    primary_type: str
    version: str
    signals: tuple[tuple[str, str], ...] = ()

    @cached_property
    def types(self) -> dict[str, list[dict[str, str]]]:
        extra = [{"name": member, "type": "uint256"} for member, _ in self.signals]
        return {self.primary_type: [*MEMBERS, *extra]}

    @property
    def domain(self) -> dict[str, str]:
        return {"name": "vbill", "version": self.version}


# Once numbers are strings, RFC 8785 is the C JSON encoder's compact output with keys in UTF-16
# order: it escapes exactly `"`, `\\` and U+0000..U+001F (the short forms \b \t \n \f \r, else
# \u00xx in lowercase hex) and writes everything else as UTF-8. rfc8785 (the reference, in
# pure Python) took 0.6 ms of each event's 1.1 ms at ingestion; tests hold the two equal.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON with numbers as decimal strings (docs/protocol.md §6)."""
    try:
        return _CANONICAL.encode(_numbers_as_strings(value)).encode("utf-8")
    except TypeError as exc:  # a value JSON has no form for: a ValueError, as rfc8785 says it
        raise ValueError(f"not JSON: {exc}") from None


def canonical_json_reference(value: Any) -> bytes:
    """The same bytes from the rfc8785 package: the oracle that canonical_json is tested on."""
    return rfc8785.dumps(_numbers_as_strings(value))


_ABOVE_SURROGATES = re.compile("[\ue000-\U0010ffff]")


def _sorted_keys(keys: list[str]) -> list[str]:
    """RFC 8785 §3.2.3: keys in UTF-16 code-unit order; that is code-point order unless keys
    hold characters from U+E000 up, where an astral character sorts before U+E000..U+FFFF."""
    keys.sort()
    if _ABOVE_SURROGATES.search("".join(keys)):
        keys.sort(key=lambda k: k.encode("utf-16-be"))
    return keys


def _numbers_as_strings(value: Any) -> Any:
    kind = type(value)  # exact types first: this runs for every node of every signed record
    if kind is str:
        return value
    if kind is dict or isinstance(value, Mapping):
        items = {str(k): v for k, v in value.items()}
        return {k: _numbers_as_strings(items[k]) for k in _sorted_keys(list(items))}
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return _decimal_text(value)
    if isinstance(value, list | tuple):
        return [_numbers_as_strings(v) for v in value]
    return value


def _decimal_text(x: int | float) -> str:
    if isinstance(x, int):
        return str(x)
    return format(Decimal(repr(x)).normalize(), "f")


def fingerprint(
    meter_event: Mapping[str, Any],
    tariff_snapshot: Mapping[str, Any],
    charge: int,
    window: Mapping[str, Any] | None = None,
) -> str:
    """billing_verify_fingerprint: SHA-256 hex of the canonical meter, tariff and charge, and
    for a metered event its `billing.window` too (the states it moves between)."""
    body: dict[str, Any] = {
        "meter_event": meter_event,
        "tariff_snapshot": tariff_snapshot,
        "expected_charge_micros": charge,
    }
    if window is not None:
        body["window"] = window
    return hashlib.sha256(canonical_json(body)).hexdigest()


def content_hash(
    record: Mapping[str, Any], billing_proof: Mapping[str, Any], scheme: str = SCHEME_V1
) -> bytes:
    """SHA-256 over the attested record and its proof section (not the signature or receipt);
    version 2 leaves the `proof` member out."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown attestation scheme {scheme!r}")
    if scheme == SCHEME_V2:
        billing_proof = {k: v for k, v in billing_proof.items() if k != "proof"}
    return hashlib.sha256(
        canonical_json({"record": record, "billing_proof": billing_proof})
    ).digest()


def typed_message(
    record: Mapping[str, Any],
    billing_proof: Mapping[str, Any],
    signals: Mapping[str, int],
    scheme: str = SCHEME_V1,
    *,
    signed_as: SignedStruct,
) -> dict[str, Any]:
    """The EIP-712 message of a bundle of the binding signing `signed_as` (for binding v2,
    `MeteredBillingBundle` under domain version bn128-poseidon8-v2, with both state keys)."""
    billing = record["billing"]
    message = {
        "billingVersion": record["billing_version"],
        "profileId": record["profileId"],
        "fingerprint": bytes.fromhex(billing["billing_verify_fingerprint"]),
        "chargeMicros": int(billing["expected_charge_micros"]),
        "commitment": signals["commitment"],
        "nullifier": signals["nullifier"],
        "vkeyHash": bytes.fromhex(billing_proof["vkey_sha256"]),
        "contentHash": content_hash(record, billing_proof, scheme),
    }
    for member, signal in signed_as.signals:
        message[member] = signals[signal]
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, **signed_as.types},
        "primaryType": signed_as.primary_type,
        "domain": signed_as.domain,
        "message": message,
    }


def bundle_digest(
    record: Mapping[str, Any],
    billing_proof: Mapping[str, Any],
    signals: Mapping[str, int],
    scheme: str = SCHEME_V1,
    *,
    signed_as: SignedStruct,
) -> bytes:
    """The 32-byte EIP-712 digest: what the attester signs and the transparency log records.

    Well-formed members are hashed directly (docs/protocol.md §7: ingestion signs thousands a
    second, and the generic typed-data encoder costs milliseconds); anything else goes through
    eth_account's encoder, which decides what a malformed member means."""
    message = typed_message(record, billing_proof, signals, scheme, signed_as=signed_as)
    fast = _struct_digest(signed_as, message["message"])
    if fast is not None:
        return fast
    return _hash_eip191_message(encode_typed_data(full_message=message))


@lru_cache(maxsize=16)
def _type_hash(struct: SignedStruct) -> bytes:
    fields = ",".join(f"{m['type']} {m['name']}" for m in struct.types[struct.primary_type])
    return keccak(f"{struct.primary_type}({fields})".encode())


_DOMAIN_TYPE_HASH = keccak(b"EIP712Domain(string name,string version)")


@lru_cache(maxsize=64)
def _text_hash(text: str) -> bytes:
    """keccak256 of a string member: a few recurring values (versions, profile ids), so each
    is hashed once, not per event."""
    return keccak(text.encode())


@lru_cache(maxsize=16)
def _domain_separator(name: str, version: str) -> bytes:
    return keccak(_DOMAIN_TYPE_HASH + _text_hash(name) + _text_hash(version))


def _struct_digest(struct: SignedStruct, m: Mapping[str, Any]) -> bytes | None:
    """keccak256(0x1901 ‖ domainSeparator ‖ structHash) of a message signed as `struct`, or
    None unless every bytes32 member is 32 bytes and every uint256 member is in range. The
    struct's own members (v2's state keys) follow MEMBERS'."""
    words = (m["chargeMicros"], m["commitment"], m["nullifier"])
    keys = tuple(m[member] for member, _ in struct.signals)
    blobs = (m["fingerprint"], m["vkeyHash"], m["contentHash"])
    uints = (*words, *keys)
    if not all(isinstance(w, int) and not isinstance(w, bool) and 0 <= w < 2**256 for w in uints):
        return None
    if not all(isinstance(b, bytes) and len(b) == 32 for b in blobs):
        return None
    if not isinstance(m["billingVersion"], str) or not isinstance(m["profileId"], str):
        return None
    domain = _domain_separator("vbill", struct.version)
    digest = keccak(
        _type_hash(struct)
        + _text_hash(m["billingVersion"])
        + _text_hash(m["profileId"])
        + m["fingerprint"]
        + b"".join(w.to_bytes(32, "big") for w in words)
        + m["vkeyHash"]
        + m["contentHash"]
        + b"".join(k.to_bytes(32, "big") for k in keys)
    )
    return keccak(b"\x19\x01" + domain + digest)


def recover_signer(digest: bytes, signature: str) -> str:
    """Address that produced `signature` over `digest`; raises ValueError if malformed."""
    sig = bytes.fromhex(signature.removeprefix("0x"))
    if len(sig) != 65:
        raise ValueError("signature must be 65 bytes")
    try:
        return Account._recover_hash(digest, signature=sig)
    except BadSignature:  # r is not a curve point: no key made this signature
        raise ValueError("signature does not recover to any key") from None
