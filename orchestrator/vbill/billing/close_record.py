"""Close records: the signed, logged end of a window's chain (docs/protocol-v2.md §13).

A close record names a window (tenant, billing_window_id, tariff_id), its last seq, the state
key that seq left (public signal 6 of the last bundle) and the totals; the attester signs it
under EIP-712 (domain `vbill` / `close-1`) and the transparency log holds its digest as a
leaf, like a bundle's. A statement of a closed window then verifies only from genesis to
exactly that seq and state key, so a statement missing its last entries fails.

This module builds and checks records; it never touches the store (vbill.billing.closing
does the closing).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from eth_account.messages import _hash_eip191_message, encode_typed_data

from vbill.bundle.attestation import canonical_json, recover_signer
from vbill.bundle.keys import Attester
from vbill.verify.trust import TrustSet
from vbill.zk.field import R

CLOSE_VERSION = "vbill-close-1"
SCHEME = "eip712-close-1"
DOMAIN = {"name": "vbill", "version": "close-1"}
TYPES = {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
    "WindowClose": [
        {"name": "tenantId", "type": "string"},
        {"name": "billingWindowId", "type": "string"},
        {"name": "tariffId", "type": "string"},
        {"name": "lastSeq", "type": "uint256"},
        {"name": "lastStateKey", "type": "uint256"},
        {"name": "totalMicros", "type": "uint256"},
        {"name": "contentHash", "type": "bytes32"},
    ],
}
BODY_KEYS = (
    "close_version",
    "tenant_id",
    "billing_window_id",
    "tariff_id",
    "currency",
    "last_seq",
    "last_event_id",
    "last_state_key",
    "total_micros",
    "amount",
    "totals_by_dimension",
    "closed_at",
    "closed_by",
)
_DEC = re.compile(r"0|[1-9][0-9]{0,77}", re.ASCII)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", re.ASCII)
_HEX32 = re.compile(r"0x[0-9a-f]{64}", re.ASCII)
CLOSED_BY = ("operator", "grace")


def body_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The signed part of a record: every member but `attestation` and `receipt`."""
    return {k: record[k] for k in BODY_KEYS if k in record}


def content_hash(body: Mapping[str, Any]) -> bytes:
    """SHA-256 of the body's canonical JSON (RFC 8785, numbers as decimal strings)."""
    return hashlib.sha256(canonical_json(dict(body))).digest()


def close_digest(body: Mapping[str, Any]) -> bytes:
    """The EIP-712 digest the attester signs and the log holds (its leaf: 0x00 || digest)."""
    message = {
        "tenantId": body["tenant_id"],
        "billingWindowId": body["billing_window_id"],
        "tariffId": body["tariff_id"],
        "lastSeq": int(body["last_seq"]),
        "lastStateKey": int(body["last_state_key"]),
        "totalMicros": int(body["total_micros"]),
        "contentHash": content_hash(body_of(body)),
    }
    full = {"types": TYPES, "primaryType": "WindowClose", "domain": DOMAIN, "message": message}
    return bytes(_hash_eip191_message(encode_typed_data(full_message=full)))


def make_record(body: Mapping[str, Any], attester: Attester) -> tuple[dict[str, Any], bytes]:
    """The signed record (no receipt yet) and its digest, for the log."""
    problem = shape_problem(body)
    if problem is not None:
        raise ValueError(problem)
    digest = close_digest(body)
    attestation = {
        "scheme": SCHEME,
        "attester": attester.address,
        "digest": "0x" + digest.hex(),
        "signature": attester.sign_hash(digest),
    }
    return {**body_of(body), "attestation": attestation}, digest


def shape_problem(record: Any) -> str | None:
    """Why a record is malformed (None: well-formed); the message names the member."""
    if not isinstance(record, Mapping):
        return "close: expected a JSON object"
    if record.get("close_version") != CLOSE_VERSION:
        return f"close.close_version: must be {CLOSE_VERSION!r}"
    for key in BODY_KEYS:
        if key not in record:
            return f"close.{key}: missing"
    extra = set(record) - set(BODY_KEYS) - {"attestation", "receipt"}
    if extra:
        return f"close.{sorted(extra)[0]}: unknown member"
    for key in ("tenant_id", "billing_window_id", "tariff_id", "currency", "last_event_id"):
        if not isinstance(record[key], str):
            return f"close.{key}: must be a string"
    seq = record["last_seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq < 2**64:
        return "close.last_seq: must be an integer 1 ≤ v < 2^64"
    for key, limit in (("last_state_key", R), ("total_micros", 2**64), ("amount", 2**130)):
        value = record[key]
        if not (isinstance(value, str) and _DEC.fullmatch(value) and int(value) < limit):
            return f"close.{key}: must be a canonical decimal string below its limit"
    totals = record["totals_by_dimension"]
    if not isinstance(totals, Mapping) or not totals:
        return "close.totals_by_dimension: must be an object of dimension → units"
    for name, units in totals.items():
        if not (isinstance(units, str) and _DEC.fullmatch(units) and int(units) < 2**64):
            return f"close.totals_by_dimension.{name}: must be a canonical decimal string"
    if not (isinstance(record["closed_at"], str) and _TIME.fullmatch(record["closed_at"])):
        return "close.closed_at: must be RFC 3339 UTC with milliseconds"
    if record["closed_by"] not in CLOSED_BY:
        return f"close.closed_by: must be one of {', '.join(CLOSED_BY)}"
    return None


def record_problem(record: Any, trust: TrustSet) -> str | None:
    """Why a close record does not hold (None: it holds): its shape, its digest, the
    attester's signature (a trusted, unrevoked key, not retired before the record was logged)
    and its log receipt (inclusion under a head signed by a trusted log key)."""
    from vbill.ledger.translog import verify_receipt

    problem = shape_problem(record)
    if problem is not None:
        return problem
    att = record.get("attestation")
    if not isinstance(att, Mapping):
        return "close.attestation: missing"
    if att.get("scheme") != SCHEME:
        return f"close.attestation.scheme: must be {SCHEME!r}"
    digest = close_digest(record)
    if att.get("digest") != "0x" + digest.hex():
        return "close.attestation.digest: not the digest of this record (it was edited)"
    if not (isinstance(att.get("attester"), str) and isinstance(att.get("signature"), str)):
        return "close.attestation: attester and signature must be strings"
    try:
        signer = recover_signer(digest, att["signature"])
    except ValueError as exc:
        return f"close.attestation.signature: {exc}"
    if signer.lower() != att["attester"].lower():
        return "close.attestation.signature: not the attester's signature over this record"
    receipt = record.get("receipt")
    if not isinstance(receipt, Mapping):
        return "close.receipt: missing (a close record is logged)"
    head = receipt.get("tree_head")
    signed_at = head.get("timestamp") if isinstance(head, Mapping) else None
    why = trust.attester_ok(att["attester"], signed_at if isinstance(signed_at, int) else None)
    if why is not None:
        return f"close.attestation: {why}"
    ok, reason = verify_receipt(receipt, digest, trust.log_signers - trust.revoked_attesters)
    if not ok:
        return f"close.receipt: {reason}"
    return None
