"""Offline verification of a billing bundle: the three verdicts (docs/protocol.md §9).

- `verification`: the EIP-712 signature, recomputed from the record (never read from it),
  recovers to a trusted, unrevoked attester, and the transparency-log receipt proves inclusion
  of that digest under a head signed by a trusted log signer;
- `billing_check`: the charge recomputed from meter and tariff equals the billed and the
  expected charge, and the fingerprints match;
- `incircuit_binding_verification`: public signals recomputed from the records' own fields and
  salts equal the proof's, and the Groth16 proof verifies under a trusted key looked up by hash.

Fails closed: any malformed part, exception or missing item makes that verdict false with a
reason; nothing here raises.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from vbill.bindings.registry import default, event_binding
from vbill.bundle.attestation import SCHEMES, SignedStruct, bundle_digest, recover_signer
from vbill.bundle.bundle import signal_map
from vbill.errors import VbillError
from vbill.models import (
    BILLING_VERSION,
    Attestation,
    BillingRecord,
    BindingVerdict,
    Receipt,
    Verdict,
    VerifyResult,
)
from vbill.verify.rules import Recomputed, Rules
from vbill.verify.trust import TrustSet, default_trust
from vbill.zk import groth16
from vbill.zk.field import parse_field_element, to_dec
from vbill.zk.prover import Prover

# (vkey json, recomputed signals, parsed proof) -> valid?
Groth16Check = Callable[[Mapping[str, Any], Sequence[int], Mapping[str, Any]], bool]


def py_ecc_check(vkey: Mapping[str, Any], signals: Sequence[int], proof: Mapping[str, Any]) -> bool:
    """The reference Groth16 check (pure Python, ~1 s)."""
    key = groth16.parse_vkey(vkey)
    return groth16.verify(key, list(signals), groth16.parse_proof(proof))


@dataclass(frozen=True)
class _Parsed:
    """The parts of a verify request that parsed, each None when it did not, with reasons."""

    attestation: Attestation | None
    expected: BillingRecord | None
    billed: BillingRecord | None
    receipt: Receipt | None
    problems: dict[str, str]


def _parse(req: Mapping[str, Any], record_model: type[Any] = BillingRecord) -> _Parsed:
    problems: dict[str, str] = {}

    def model(cls: Any, key: str) -> Any:
        value = req.get(key)
        if value is None:
            problems[key] = f"{key}: missing"
            return None
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in (key, *err["loc"]))
            problems[key] = f"{where}: {err['msg']}"
            return None

    return _Parsed(
        attestation=model(Attestation, "attestation"),
        expected=model(record_model, "expected_billing_v2"),
        billed=model(record_model, "billed_billing_v2"),
        receipt=model(Receipt, "receipt"),
        problems=problems,
    )


def _record_json(record: BillingRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def _check_signature(
    p: _Parsed,
    trust: TrustSet,
    signals_for: Callable[[Any, Attestation], Any],
    signed_as: SignedStruct,
) -> Verdict:
    from vbill.ledger.translog import verify_receipt

    if p.attestation is None or p.expected is None:
        return Verdict(
            valid=False,
            reason=p.problems.get("attestation") or p.problems.get("expected_billing_v2"),
        )
    att = p.attestation
    if att.scheme not in SCHEMES:
        return Verdict(valid=False, reason=f"attestation.scheme: unknown scheme {att.scheme!r}")
    signals = signals_for(p.expected, att)
    digest = bundle_digest(
        _record_json(p.expected),
        att.billing_proof.model_dump(mode="json"),
        signal_map(signals),
        att.scheme,
        signed_as=signed_as,
    )
    if att.bundle_digest.lower() != "0x" + digest.hex():
        return Verdict(valid=False, reason="attestation.bundle_digest does not match the record")
    signer = recover_signer(digest, att.signature)
    if signer.lower() != att.attester.lower():
        return Verdict(valid=False, reason="signature was not made by attestation.attester")
    signed_at = p.receipt.tree_head.timestamp if p.receipt is not None else None
    reason = trust.attester_ok(signer, signed_at)
    if reason:
        return Verdict(valid=False, reason=reason)
    if p.receipt is None:
        return Verdict(valid=False, reason=p.problems.get("receipt", "receipt: missing"))
    ok, why = verify_receipt(
        p.receipt.model_dump(mode="json"), digest, trust.log_signers - trust.revoked_attesters
    )
    return Verdict(valid=True) if ok else Verdict(valid=False, reason=f"receipt: {why}")


def check_billing(p: _Parsed, recompute: Callable[[str, Any], Recomputed]) -> Verdict:
    """Each record's charge and fingerprint recomputed by its binding, then the billed
    record against the attested one."""
    if p.billed is None or p.expected is None:
        return Verdict(
            valid=False,
            reason=p.problems.get("billed_billing_v2") or p.problems.get("expected_billing_v2"),
        )
    for name, record in (("billed_billing_v2", p.billed), ("expected_billing_v2", p.expected)):
        if record.billing_version != BILLING_VERSION:
            return Verdict(
                valid=False, reason=f"{name}.billing_version: only {BILLING_VERSION} is supported"
            )
        ours = recompute(name, record)
        stated = record.billing.expected_charge_micros
        if ours.charge != stated:
            return Verdict(
                valid=False,
                reason=f"{name}.billing.expected_charge_micros: {stated} but the tariff gives "
                f"{ours.charge}{ours.source}",
            )
        if ours.problem is not None:
            return Verdict(valid=False, reason=ours.problem)
        if record.billing.billing_verify_fingerprint != ours.fingerprint:
            return Verdict(
                valid=False, reason=f"{name}.billing.billing_verify_fingerprint: mismatch"
            )
    return compare_billed(p)


def compare_billed(p: _Parsed) -> Verdict:
    """The billed record (the invoice line) against the attested one: every field counts."""
    assert p.billed is not None and p.expected is not None
    billed, attested = p.billed.billing, p.expected.billing
    if billed.expected_charge_micros != attested.expected_charge_micros:
        return Verdict(
            valid=False,
            reason="billed_billing_v2.billing.expected_charge_micros: billed charge "
            f"{billed.expected_charge_micros} differs from the attested charge "
            f"{attested.expected_charge_micros}",
        )
    where = _first_difference(_record_json(p.billed), _record_json(p.expected))
    if where is not None:
        return Verdict(
            valid=False, reason=f"billed_billing_v2.{where} differs from the attested record"
        )
    return Verdict(valid=True)


def _first_difference(billed: Any, attested: Any, path: str = "") -> str | None:
    """The dotted path of the first field where two records differ (every field counts)."""
    if isinstance(billed, dict) and isinstance(attested, dict):
        for key in [*attested, *(k for k in billed if k not in attested)]:
            where = _first_difference(
                billed.get(key), attested.get(key), f"{path}.{key}" if path else key
            )
            if where is not None:
                return where
        return None
    if billed == attested and type(billed) is type(attested):
        return None
    return path or "record"


def _check_binding(
    p: _Parsed, trust: TrustSet, check: Groth16Check, rules: Rules
) -> BindingVerdict:
    binding = rules.binding

    def no(reason: str | None, digest: str | None = None) -> BindingVerdict:
        return BindingVerdict(
            valid=False, reason=reason, binding_version=binding, commitment_digest=digest
        )

    if p.attestation is None or p.expected is None:
        return no(p.problems.get("attestation") or p.problems.get("expected_billing_v2"))
    bp = p.attestation.billing_proof
    if bp.binding_version != binding:
        return no(f"billing_proof.binding_version: {bp.binding_version!r} is not {binding}")
    signals = rules.signals_for(p.expected, p.attestation)
    digest = to_dec(signals.commitment)
    if p.expected.billing.expected_charge_micros != signals.charge:
        return no(
            "expected_billing_v2.billing.expected_charge_micros is not the proved charge", digest
        )
    if p.billed is not None and rules.signals_for(p.billed, p.attestation) != signals:
        return no("billed record is not the one bound by the proof", digest)
    stated = bp.public_signals
    ours = [to_dec(x) for x in signals.as_list()]
    if len(stated) != len(ours):
        return no(f"billing_proof.public_signals: expected {len(ours)} signals", digest)
    for i, (s, o) in enumerate(zip(stated, ours, strict=True)):
        parse_field_element(s, f"billing_proof.public_signals[{i}]")
        if s != o:
            return no(f"billing_proof.public_signals[{i}] does not match the record", digest)
    vkey, why = trust.vkey(bp.vkey_sha256)
    if vkey is None:
        return no(f"billing_proof.vkey_sha256: {why}", digest)
    if not check(vkey, signals.as_list(), bp.proof):
        return no("Groth16 proof does not verify", digest)
    return BindingVerdict(valid=True, binding_version=binding, commitment_digest=digest)


def _guard(fn: Callable[[], Any], make_false: Callable[[str], Any]) -> Any:
    """Run one verdict; any error becomes `valid: false` with its message (fail closed)."""
    try:
        return fn()
    except Exception as exc:  # any input can reach a library that raises its own kind
        return make_false(str(exc) or type(exc).__name__)


def verify_request(
    request: Mapping[str, Any] | Any,
    *,
    trust: TrustSet | None = None,
    check: Groth16Check | None = None,
) -> VerifyResult:
    """Judge a POST /verify body. Never raises; every failure is a verdict with a reason."""
    if not isinstance(request, Mapping):
        request = {}
    unknown = sorted(str(k) for k in set(request) - VERIFY_MEMBERS)
    if unknown:
        return unreadable_result(f"{unknown[0]}: unknown member of a verify request")
    trust = trust if trust is not None else default_trust()
    check = check or py_ecc_check
    plugin = event_binding(request.get("expected_billing_v2"))
    rules = plugin.rules
    pending = _proof_pending(request)
    p = _parse(_with_empty_proof(request) if pending else request, rules.record)
    verification = _guard(
        lambda: _check_signature(p, trust, rules.signals_for, plugin.signed_as),
        lambda r: Verdict(valid=False, reason=r),
    )
    billing = _guard(
        lambda: check_billing(p, rules.recompute), lambda r: Verdict(valid=False, reason=r)
    )
    # each optional check guarded on its own: an error in one fails that verdict, not the other
    att = request.get("attestation")
    att = att if isinstance(att, Mapping) else {}
    verification = _guard(
        lambda: _snapshot_verdict(att, verification),
        lambda r: Verdict(valid=False, reason=f"attestation.usd_rate: {r}"),
    )
    billing = _guard(
        lambda: _usage_verdict(request, att, billing),
        lambda r: Verdict(valid=False, reason=f"usage: {r}"),
    )
    binding = _guard(
        lambda: _check_binding(p, trust, check, rules),
        lambda r: BindingVerdict(valid=False, reason=r, binding_version=rules.binding),
    )
    if pending:
        binding = BindingVerdict(valid=False, reason=PROOF_PENDING, binding_version=rules.binding)
    return VerifyResult(
        verification=verification,
        billing_check=billing,
        incircuit_binding_verification=binding,
        valid=verification.valid and billing.valid and binding.valid,
        warnings=_warnings(p, trust),
    )


VERIFY_MEMBERS = frozenset(
    {"attestation", "receipt", "billed_billing_v2", "expected_billing_v2", "usage"}
)
BUNDLE_MEMBERS = frozenset(
    {
        "billing_version",
        "profileId",
        "meter_event",
        "tariff_snapshot",
        "billing",
        "attestation",
        "receipt",
        "settlement",
        "usage",
        "status",  # "proving": answered before its proof (docs/http-api.md)
    }
)
PROOF_PENDING = (
    "attestation.billing_proof.proof: absent, the proof is pending (a bundle answered before "
    "its proof, docs/http-api.md); the signature and the receipt are checked without it: "
    "fetch the bundle again once a worker has attached the proof"
)


def _proof_pending(request: Mapping[str, Any]) -> bool:
    """True for a bundle answered before its proof: an attestation whose billing_proof has
    every member but `proof`."""
    att = request.get("attestation")
    bp = att.get("billing_proof") if isinstance(att, Mapping) else None
    return isinstance(bp, Mapping) and "proof" not in bp


def _with_empty_proof(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request with an empty proof in its place, so the signature (digest version 2 does
    not cover the proof) and the receipt are judged as for a finished bundle."""
    att = request["attestation"]
    return {
        **request,
        "attestation": {**att, "billing_proof": {**att["billing_proof"], "proof": {}}},
    }


def _snapshot_verdict(att: Mapping[str, Any], verification: Verdict) -> Verdict:
    """A USD rate snapshot's signature joins `verification` (docs/protocol-v2.md §12;
    optional: a bundle without one is judged as before)."""
    from vbill.bundle.usage import snapshot_problem

    if not verification.valid:
        return verification
    why = snapshot_problem(att)
    return Verdict(valid=False, reason=why) if why else verification


def _usage_verdict(request: Mapping[str, Any], att: Mapping[str, Any], billing: Verdict) -> Verdict:
    """A stated usage object's arithmetic joins `billing_check` (docs/protocol-v2.md §12)."""
    from vbill.bundle.usage import usage_problem

    record = request.get("billed_billing_v2")
    if not (billing.valid and isinstance(record, Mapping)):
        return billing
    why = usage_problem(request.get("usage"), {**record, "attestation": att})
    return Verdict(valid=False, reason=why) if why else billing


def _warnings(p: _Parsed, trust: TrustSet) -> list[str]:
    """What a reader must know even about a valid bundle."""
    if p.attestation is None:
        return []
    sha = p.attestation.billing_proof.vkey_sha256
    if sha not in trust.insecure_vkeys:
        return []
    return [
        f"verification key {sha[:16]}… is from a dev-insecure setup: its toxic waste is "
        "public, so anyone can forge proofs under it (not for real billing)"
    ]


def unreadable_result(reason: str) -> VerifyResult:
    """The result for a bundle that could not even be read: every verdict false, with why."""
    return VerifyResult(
        verification=Verdict(valid=False, reason=reason),
        billing_check=Verdict(valid=False, reason=reason),
        incircuit_binding_verification=BindingVerdict(
            valid=False, reason=reason, binding_version=default().version
        ),
        valid=False,
    )


def request_from_bundle(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """A verify body that checks a stored bundle against itself (billed = expected)."""
    record = {
        k: bundle.get(k)
        for k in ("billing_version", "profileId", "meter_event", "tariff_snapshot", "billing")
    }
    out = {
        "attestation": bundle.get("attestation"),
        "receipt": bundle.get("receipt"),
        "billed_billing_v2": record,
        "expected_billing_v2": record,
    }
    return {**out, "usage": bundle["usage"]} if "usage" in bundle else out


def verify_bundle(
    bundle: Mapping[str, Any] | Any,
    *,
    trust: TrustSet | None = None,
    check: Groth16Check | None = None,
) -> VerifyResult:
    """Verify a bundle file's contents offline."""
    if not isinstance(bundle, Mapping):
        bundle = {}
    why = bundle_problem(bundle)
    if why is not None:
        return unreadable_result(why)
    return verify_request(request_from_bundle(bundle), trust=trust, check=check)


def bundle_problem(bundle: Mapping[str, Any]) -> str | None:
    """Why a bundle file is refused before any check: a member outside the bundle format
    (never silently ignored: no hash would cover it), or a `status` other than proving."""
    unknown = sorted(str(k) for k in set(bundle) - BUNDLE_MEMBERS)
    if unknown:
        return f"{unknown[0]}: unknown member of a bundle"
    if "status" in bundle and bundle["status"] != "proving":
        return f'status: {bundle["status"]!r} is not a bundle status (only "proving")'
    return None


def snarkjs_check(prover: Prover) -> Groth16Check:
    """Fast path: strict Python parsing of the proof, then snarkjs's pairing check in a worker."""

    def check(vkey: Mapping[str, Any], signals: Sequence[int], proof: Mapping[str, Any]) -> bool:
        groth16.parse_proof(proof, subgroup=False)  # the worker checks the subgroup
        return prover.verify([to_dec(s) for s in signals], proof, vkey)

    return check


_native: dict[str, Any] = {}
_native_lock = threading.Lock()


def native_verifier(vkey: Mapping[str, Any]) -> Any:
    """The long-lived native verifier process for this key (one per key, closed at exit)."""
    from vbill.zk.native_prover import NativeVerifier

    key = json.dumps(vkey, sort_keys=True)
    with _native_lock:
        verifier = _native.get(key)
        if verifier is None:
            verifier = _native[key] = NativeVerifier(vkey)
            atexit.register(verifier.close)
    return verifier


def native_check(vkey: Mapping[str, Any], signals: Sequence[int], proof: Mapping[str, Any]) -> bool:
    """The native BN254 pairing (build/native/vbill-verify), strict parsing included."""
    groth16.parse_proof(proof, subgroup=False)  # same errors, same reasons as the reference
    return native_verifier(vkey).verify([to_dec(s) for s in signals], proof)


def native_available() -> bool:
    """True when the native verifier is built (or can be built here)."""
    if os.environ.get("VBILL_VERIFIER") == "snarkjs":
        return False
    from vbill.zk.native_prover import NATIVE_VERIFY_BIN, ensure_built

    try:
        ensure_built(NATIVE_VERIFY_BIN)
    except VbillError:
        return False
    return True


_fallback: Prover | None = None


def default_check() -> Groth16Check:
    """The fastest Groth16 check available: native, else a snarkjs worker (started once)."""
    global _fallback
    if native_available():
        return native_check
    if _fallback is None:
        _fallback = Prover(workers=1, zkey=None, vkey=None)
        atexit.register(_fallback.close)
    return snarkjs_check(_fallback)
