"""Corrections of metered events (binding bn128-poseidon8-v2c, docs/protocol-corrections.md).

A correction is a document of its own in the corrected event's window chain: the correction
record (what is taken back, why), the opening of the original event (its meter event, tariff,
charge and salt, so a verifier recomputes the original's commitment), the credit and the window
states before and after, the attester's EIP-712 signature, and the log receipt. This module
builds, proves and signs one from the original's bundle and the window's state before it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_account.messages import _hash_eip191_message, encode_typed_data

from vbill.bindings import version_of
from vbill.bundle.attestation import SCHEME_V1, canonical_json
from vbill.bundle.keys import Attester
from vbill.bundle.metered import encode_metered_request, state_from_json, window_json
from vbill.encode.metered import MeteredCorrection, WindowState
from vbill.errors import InputError, ToolError
from vbill.zk.field import to_dec
from vbill.zk.prover import ProofSource
from vbill.zk.witness import random_field_element
from vbill.zk.witness_correction import (
    CorrectionPublicSignals,
    Original,
    circuit_input,
    public_signals,
)

CORRECTION_VERSION = "vbill-correction-1"
VERSION = version_of("correction_binding")
DOMAIN_V2C = {"name": "vbill", "version": VERSION}
TYPES_V2C = {
    "BillingCorrection": [
        {"name": "correctionVersion", "type": "string"},
        {"name": "creditMicros", "type": "uint256"},
        {"name": "commitment", "type": "uint256"},
        {"name": "nullifier", "type": "uint256"},
        {"name": "corrects", "type": "uint256"},
        {"name": "correctsNullifier", "type": "uint256"},
        {"name": "prevStateKey", "type": "uint256"},
        {"name": "stateKey", "type": "uint256"},
        {"name": "vkeyHash", "type": "bytes32"},
        {"name": "contentHash", "type": "bytes32"},
    ]
}
RECORD_KEYS = ("correction_version", "correction", "original", "billing")


def is_correction(data: Any) -> bool:
    """True for a correction document (its `correction_version` says so)."""
    return isinstance(data, Mapping) and data.get("correction_version") == CORRECTION_VERSION


def original_of(bundle: Mapping[str, Any]) -> tuple[Original, tuple[str, ...]]:
    """What a metered bundle's commitment opens to, and its tariff's dimension names."""
    enc = encode_metered_request({k: bundle[k] for k in ("meter_event", "tariff_snapshot")})
    bp = bundle["attestation"]["billing_proof"]
    charge = bundle["billing"]["expected_charge_micros"]
    return Original(enc.meter, enc.tariff, charge, int(bp["salt"])), enc.tariff.names


def opening(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The `original` member: the corrected bundle's meter event, tariff, charge, salt and
    digest (its log leaf), everything a verifier needs to recompute its commitment."""
    bp = bundle["attestation"]["billing_proof"]
    return {
        "meter_event": bundle["meter_event"],
        "tariff_snapshot": bundle["tariff_snapshot"],
        "expected_charge_micros": bundle["billing"]["expected_charge_micros"],
        "salt": bp["salt"],
        "bundle_digest": bundle["attestation"]["bundle_digest"],
    }


@dataclass(frozen=True)
class CorrectionDraft:
    """A correction ready to prove and sign: its record, signals and circuit input."""

    record: dict[str, Any]
    signals: CorrectionPublicSignals
    correction: MeteredCorrection
    original: Original
    before: WindowState
    after: WindowState
    salt: int
    account_salt: int

    def witness_input(self) -> dict[str, Any]:
        return circuit_input(
            self.correction, self.original, self.before, self.salt, self.account_salt
        )


def correction_draft(
    request: Mapping[str, Any],
    original_bundle: Mapping[str, Any],
    before: WindowState,
    salt: int,
    account_salt: int,
) -> CorrectionDraft:
    """Encode and price a correction of `original_bundle` from the window's state `before`;
    InputError naming the field (a dimension over the original's units, an unpriced one)."""
    original, names = original_of(original_bundle)
    cor = MeteredCorrection.from_wire(request, original.tariff, original.meter.units)
    signals, after = public_signals(cor, original, before, salt, account_salt)
    usage = {name: cor.units[d] for d, name in enumerate(names)}
    record = {
        "correction_version": CORRECTION_VERSION,
        "correction": {
            "tenant_id": request["tenant_id"],
            "corrects": request["corrects"],
            "correction_id": request["correction_id"],
            "reason": request["reason"],
            "usage": usage,
        },
        "original": opening(original_bundle),
        "billing": {"credit_micros": signals.credit, "window": window_json(before, after, names)},
    }
    return CorrectionDraft(record, signals, cor, original, before, after, salt, account_salt)


def record_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The signed record of a correction document (everything but attestation and receipt)."""
    return {k: doc.get(k) for k in RECORD_KEYS}


def correction_digest(
    record: Mapping[str, Any],
    billing_proof: Mapping[str, Any],
    signals: CorrectionPublicSignals,
) -> bytes:
    """The EIP-712 digest a correction's attester signs and the log records (its whole proof
    section included: a correction is proved before it is signed)."""
    content = hashlib.sha256(
        canonical_json({"record": record, "billing_proof": billing_proof})
    ).digest()
    message = {
        "correctionVersion": record["correction_version"],
        "creditMicros": signals.credit,
        "commitment": signals.commitment,
        "nullifier": signals.nullifier,
        "corrects": signals.corrects,
        "correctsNullifier": signals.corrects_nullifier,
        "prevStateKey": signals.prev_state_key,
        "stateKey": signals.state_key,
        "vkeyHash": bytes.fromhex(billing_proof["vkey_sha256"]),
        "contentHash": content,
    }
    return _typed_digest(TYPES_V2C, DOMAIN_V2C, message)


def _typed_digest(
    types: Mapping[str, Any], domain: Mapping[str, str], message: Mapping[str, Any]
) -> bytes:
    """keccak256(0x1901 ‖ domainSeparator ‖ structHash) of one EIP-712 message."""
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
            ],
            **types,
        },
        "primaryType": next(iter(types)),
        "domain": dict(domain),
        "message": dict(message),
    }
    return _hash_eip191_message(encode_typed_data(full_message=typed))


def build_correction(
    request: Mapping[str, Any],
    original_bundle: Mapping[str, Any],
    before: WindowState,
    *,
    attester: Attester,
    account_salt: int,
    prover: ProofSource,
    vkey_sha256: str,
    salt: int | None = None,
) -> dict[str, Any]:
    """Prove and sign one correction (no receipt yet: the log's owner attaches it)."""
    salt = random_field_element() if salt is None else salt
    draft = correction_draft(request, original_bundle, before, salt, account_salt)
    proof = prover.prove(draft.witness_input())
    if proof.public_signals != draft.signals.as_decimal():
        raise ToolError("prover's public signals disagree with the Python reference; not signing")
    billing_proof = {
        "binding_version": VERSION,
        "proof": proof.proof,
        "public_signals": draft.signals.as_decimal(),
        "vkey_sha256": vkey_sha256,
        "salt": to_dec(salt),
        "account_salt": to_dec(account_salt),
    }
    digest = correction_digest(draft.record, billing_proof, draft.signals)
    return {
        **draft.record,
        "attestation": {
            "scheme": SCHEME_V1,
            "signature": attester.sign_hash(digest),
            "attester": attester.address,
            "bundle_digest": "0x" + digest.hex(),
            "billing_proof": billing_proof,
        },
    }


VOID_VERSION = "vbill-void-1"
DOMAIN_VOID = {"name": "vbill", "version": VOID_VERSION}
TYPES_VOID = {
    "BillingVoid": [
        {"name": "correctionVersion", "type": "string"},
        {"name": "creditMicros", "type": "uint256"},
        {"name": "corrects", "type": "uint256"},
        {"name": "correctsNullifier", "type": "uint256"},
        {"name": "contentHash", "type": "bytes32"},
    ]
}
VOID_KEYS = ("correction_version", "correction", "original", "billing")


def is_void(data: Any) -> bool:
    """True for a binding v1 void document."""
    return isinstance(data, Mapping) and data.get("correction_version") == VOID_VERSION


def void_digest(record: Mapping[str, Any]) -> bytes:
    """The EIP-712 digest of a void: its credit, the original's commitment and nullifier in
    clear, and the SHA-256 of the whole record (reason and opening included)."""
    original = record["original"]
    message = {
        "correctionVersion": record["correction_version"],
        "creditMicros": record["billing"]["credit_micros"],
        "corrects": int(original["commitment"]),
        "correctsNullifier": int(original["nullifier"]),
        "contentHash": hashlib.sha256(canonical_json(record)).digest(),
    }
    return _typed_digest(TYPES_VOID, DOMAIN_VOID, message)


def void_record(request: Mapping[str, Any], original_bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The record of a void of a binding v1 bundle: the correction, the original's opening
    (its meter event, tariff, charge, salts, commitment, nullifier, digest), its charge as
    the credit."""
    bp = original_bundle["attestation"]["billing_proof"]
    charge = original_bundle["billing"]["expected_charge_micros"]
    return {
        "correction_version": VOID_VERSION,
        "correction": {k: request[k] for k in ("tenant_id", "corrects", "correction_id", "reason")},
        "original": {
            "meter_event": original_bundle["meter_event"],
            "tariff_snapshot": original_bundle["tariff_snapshot"],
            "expected_charge_micros": charge,
            "salt": bp["salt"],
            "account_salt": bp["account_salt"],
            "commitment": bp["public_signals"][0],
            "nullifier": bp["public_signals"][3],
            "bundle_digest": original_bundle["attestation"]["bundle_digest"],
        },
        "billing": {"credit_micros": charge},
    }


def build_void(
    request: Mapping[str, Any], original_bundle: Mapping[str, Any], *, attester: Attester
) -> dict[str, Any]:
    """Sign a void of a binding v1 bundle (docs/protocol-corrections.md §9: its credit is the
    original's charge)."""
    record = void_record(request, original_bundle)
    digest = void_digest(record)
    return {
        **record,
        "attestation": {
            "scheme": SCHEME_V1,
            "signature": attester.sign_hash(digest),
            "attester": attester.address,
            "bundle_digest": "0x" + digest.hex(),
        },
    }


def head_state(state_json: Mapping[str, Any], names: tuple[str, ...]) -> WindowState:
    """A window head's stored state (the JSON of `billing.window.after`) as a WindowState."""
    try:
        return state_from_json(state_json, names, "window.head")
    except InputError as exc:
        raise ToolError(f"the window's stored head is unreadable: {exc}") from exc
