"""The three verdicts for a correction document (binding bn128-poseidon8-v2c,
docs/protocol-corrections.md).

- `verification`: the EIP-712 digest, recomputed from the document with its public signals
  recomputed (never read from it), recovers to a trusted attester, and the log receipt proves
  inclusion of that digest;
- `billing_check`: the correction re-encoded against the original's tariff and units, its
  credit and state after recomputed from `billing.window.before` (the credit rule);
- `incircuit_binding_verification`: the nine signals recomputed from the correction, the
  original's opening, the state before and the salts equal the stated ones, and the Groth16
  proof verifies under the trusted key named by `vkey_sha256`.

Fails closed: any malformed part or exception is a false verdict with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vbill.bindings import version_of
from vbill.bundle.attestation import recover_signer
from vbill.bundle.correction import (
    CORRECTION_VERSION,
    correction_digest,
    correction_draft,
    is_correction,
    is_void,
    record_of,
    void_digest,
)
from vbill.bundle.metered import state_from_json, state_to_json
from vbill.models import BindingVerdict, Verdict, VerifyResult
from vbill.verify.trust import TrustSet, default_trust
from vbill.verify.verify import Groth16Check, _guard, py_ecc_check
from vbill.zk.field import parse_field_element, to_dec

VERSION = version_of("correction_binding")
# A void has no proof of its own: it rests on its original's billing_binding opening.
VOID_BINDING = version_of("billing_binding")


def is_correction_document(data: Any) -> bool:
    """A correction (binding v2c) or a void (binding v1) document, not an event's bundle."""
    return is_correction(data) or is_void(data)


def _redo(doc: Mapping[str, Any]) -> Any:
    """The correction re-priced from the document's own parts (a CorrectionDraft)."""
    if doc.get("correction_version") != CORRECTION_VERSION:
        raise ValueError(f"correction_version: only {CORRECTION_VERSION} is supported")
    original = doc["original"]
    bp = doc["attestation"]["billing_proof"]
    bundle = {
        "meter_event": original["meter_event"],
        "tariff_snapshot": original["tariff_snapshot"],
        "billing": {"expected_charge_micros": original["expected_charge_micros"]},
        "attestation": {
            "billing_proof": {"salt": str(parse_field_element(original["salt"], "original.salt"))},
            "bundle_digest": original.get("bundle_digest"),
        },
    }
    if type(original["expected_charge_micros"]) is not int:
        raise ValueError("original.expected_charge_micros: must be an integer")
    names = tuple(sorted(original["tariff_snapshot"]["dimensions"]))
    before = state_from_json(doc["billing"]["window"]["before"], names, "billing.window.before")
    return correction_draft(
        doc["correction"],
        bundle,
        before,
        parse_field_element(bp["salt"], "billing_proof.salt"),
        parse_field_element(bp["account_salt"], "billing_proof.account_salt"),
    )


def _signed_and_logged(doc: Mapping[str, Any], digest: bytes, trust: TrustSet) -> Verdict:
    """`verification`: the recomputed digest is the stated one, signed by a trusted attester,
    and the log receipt proves its inclusion."""
    from vbill.ledger.translog import verify_receipt

    att = doc["attestation"]
    if str(att["bundle_digest"]).lower() != "0x" + digest.hex():
        return Verdict(valid=False, reason="attestation.bundle_digest does not match the record")
    signer = recover_signer(digest, att["signature"])
    if signer.lower() != str(att["attester"]).lower():
        return Verdict(valid=False, reason="signature was not made by attestation.attester")
    receipt = doc.get("receipt")
    signed_at = receipt["tree_head"]["timestamp"] if isinstance(receipt, Mapping) else None
    reason = trust.attester_ok(signer, signed_at)
    if reason:
        return Verdict(valid=False, reason=reason)
    if not isinstance(receipt, Mapping):
        return Verdict(valid=False, reason="receipt: missing")
    ok, why = verify_receipt(dict(receipt), digest, trust.log_signers - trust.revoked_attesters)
    return Verdict(valid=True) if ok else Verdict(valid=False, reason=f"receipt: {why}")


def _verification(doc: Mapping[str, Any], trust: TrustSet) -> Verdict:
    att = doc["attestation"]
    digest = correction_digest(record_of(doc), att["billing_proof"], _redo(doc).signals)
    return _signed_and_logged(doc, digest, trust)


def _billing(doc: Mapping[str, Any]) -> Verdict:
    draft = _redo(doc)
    billing = doc["billing"]
    names = draft.original.tariff.names
    if billing.get("credit_micros") != draft.signals.credit:
        return Verdict(
            valid=False,
            reason=f"billing.credit_micros: {billing.get('credit_micros')!r} but the credit rule "
            f"gives {draft.signals.credit} from the window state before",
        )
    window = billing["window"]
    if window.get("seq") != draft.after.seq:
        return Verdict(
            valid=False,
            reason=f"billing.window.seq: {window.get('seq')!r} but before.seq + 1 is "
            f"{draft.after.seq}",
        )
    if window.get("after") != state_to_json(draft.after, names):
        return Verdict(
            valid=False,
            reason="billing.window.after: not the state the correction leaves (before − units)",
        )
    stated = doc["correction"].get("usage")
    if stated != {n: draft.correction.units[d] for d, n in enumerate(names)}:
        return Verdict(valid=False, reason="correction.usage: must name every dimension's units")
    return Verdict(valid=True)


def _binding(doc: Mapping[str, Any], trust: TrustSet, check: Groth16Check) -> BindingVerdict:
    def no(reason: str, digest: str | None = None) -> BindingVerdict:
        return BindingVerdict(
            valid=False, reason=reason, binding_version=VERSION, commitment_digest=digest
        )

    bp = doc["attestation"]["billing_proof"]
    if bp.get("binding_version") != VERSION:
        return no(f"billing_proof.binding_version: {bp.get('binding_version')!r} is not {VERSION}")
    signals = _redo(doc).signals
    digest = to_dec(signals.commitment)
    stated = bp.get("public_signals")
    ours = signals.as_decimal()
    if not isinstance(stated, list) or len(stated) != len(ours):
        return no(f"billing_proof.public_signals: expected {len(ours)} signals", digest)
    for i, (s, o) in enumerate(zip(stated, ours, strict=True)):
        parse_field_element(s, f"billing_proof.public_signals[{i}]")
        if s != o:
            return no(f"billing_proof.public_signals[{i}] does not match the record", digest)
    vkey, why = trust.vkey(bp.get("vkey_sha256"))
    if vkey is None:
        return no(f"billing_proof.vkey_sha256: {why}", digest)
    if not check(vkey, signals.as_list(), bp.get("proof")):
        return no("Groth16 proof does not verify", digest)
    return BindingVerdict(valid=True, binding_version=VERSION, commitment_digest=digest)


def _void_verification(doc: Mapping[str, Any], trust: TrustSet) -> Verdict:
    return _signed_and_logged(doc, void_digest(record_of(doc)), trust)


def _void_original(doc: Mapping[str, Any]) -> tuple[int, Any]:
    """The v1 charge and public signals recomputed from the void's opening of the original."""
    from vbill.bundle.bundle import encode_request
    from vbill.zk.witness import public_signals as v1_signals

    o = doc["original"]
    enc = encode_request(
        {
            "billing_version": "v2",
            "profileId": "void",
            "meter_event": o["meter_event"],
            "tariff_snapshot": o["tariff_snapshot"],
        }
    )
    salt = parse_field_element(o["salt"], "original.salt")
    account_salt = parse_field_element(o["account_salt"], "original.account_salt")
    return enc.charge, v1_signals(enc.meter, enc.tariff, salt, account_salt)


def _void_billing(doc: Mapping[str, Any]) -> Verdict:
    charge, _ = _void_original(doc)
    stated = doc["original"]["expected_charge_micros"]
    if stated != charge:
        return Verdict(
            valid=False,
            reason=f"original.expected_charge_micros: {stated!r} but the tariff gives {charge}",
        )
    if doc["billing"].get("credit_micros") != charge:
        return Verdict(
            valid=False,
            reason=f"billing.credit_micros: a void credits the original's charge, {charge}",
        )
    return Verdict(valid=True)


def _void_binding(doc: Mapping[str, Any]) -> BindingVerdict:
    """A void has no proof of its own: its original's commitment and nullifier, recomputed
    from the opening it carries, must be the ones it names (the original's proof binds them)."""
    _, signals = _void_original(doc)
    o = doc["original"]
    for name in ("commitment", "nullifier"):
        if o.get(name) != to_dec(getattr(signals, name)):
            return BindingVerdict(
                valid=False,
                reason=f"original.{name} is not what the original's opening gives",
                binding_version=VOID_BINDING,
            )
    return BindingVerdict(
        valid=True, binding_version=VOID_BINDING, commitment_digest=o["commitment"]
    )


def _verdicts(
    verification: Callable[[], Verdict],
    billing: Callable[[], Verdict],
    binding: Callable[[], BindingVerdict],
    binding_version: str,
) -> VerifyResult:
    """The three verdicts, each guarded on its own (an error fails that verdict only)."""
    v = _guard(verification, lambda r: Verdict(valid=False, reason=r))
    b = _guard(billing, lambda r: Verdict(valid=False, reason=r))
    k = _guard(
        binding, lambda r: BindingVerdict(valid=False, reason=r, binding_version=binding_version)
    )
    return VerifyResult(
        verification=v,
        billing_check=b,
        incircuit_binding_verification=k,
        valid=v.valid and b.valid and k.valid,
    )


def verify_void(doc: Mapping[str, Any] | Any, *, trust: TrustSet | None = None) -> VerifyResult:
    """Judge a binding v1 void document offline. Never raises."""
    doc = doc if isinstance(doc, Mapping) else {}
    trust = trust if trust is not None else default_trust()
    return _verdicts(
        lambda: _void_verification(doc, trust),
        lambda: _void_billing(doc),
        lambda: _void_binding(doc),
        VOID_BINDING,
    )


def verify_correction(
    doc: Mapping[str, Any] | Any,
    *,
    trust: TrustSet | None = None,
    check: Groth16Check | None = None,
) -> VerifyResult:
    """Judge a correction or void document offline. Never raises."""
    doc = doc if isinstance(doc, Mapping) else {}
    if is_void(doc):
        return verify_void(doc, trust=trust)
    trust = trust if trust is not None else default_trust()
    check = check or py_ecc_check
    return _verdicts(
        lambda: _verification(doc, trust),
        lambda: _billing(doc),
        lambda: _binding(doc, trust, check),
        VERSION,
    )
