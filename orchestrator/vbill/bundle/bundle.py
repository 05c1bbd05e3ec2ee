"""Build the billing bundle (docs/protocol.md §5) for one billable event.

Every new bundle is signed before it is proved (digest version 2, docs/protocol.md §7.1):
validate and encode (nothing is signed or proved for bad input), compute the charge and
fingerprint with a fresh salt, sign the EIP-712 digest of everything but the proof
(`sign_unproven`: the public signals come from the Python reference), then prove it and check
the proof's public signals are the signed ones (`prove_unproven`: a prover that disagrees is an
environment fault, never a bundle) before the proof is attached (`with_proof`). Ingestion does
the last two later, in a worker; `build_bundle` does all of it in one call. The
transparency-log receipt is attached by whoever owns the log (`with_receipt`).

Digest version 1 (the proof inside the signed digest) is what earlier releases made; their
bundles keep verifying, and `sign_draft` with a proof still makes one for tests of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vbill.bindings.registry import event_binding
from vbill.bundle.attestation import SCHEME_V1, SCHEME_V2, bundle_digest
from vbill.bundle.draft import Draft
from vbill.bundle.keys import Attester
from vbill.bundle.linear import Encoded as Encoded
from vbill.bundle.linear import encode_request as encode_request
from vbill.encode.metered import GENESIS, WindowState
from vbill.errors import ToolError
from vbill.models import AttestRequest, Bundle, MeteredAttestRequest, MeteredBundle, Receipt
from vbill.zk.field import to_dec
from vbill.zk.prover import ProofSource
from vbill.zk.witness import PublicSignals, random_field_element
from vbill.zk.witness_metered import MeteredPublicSignals

if TYPE_CHECKING:
    from vbill.bundle.metered import MeteredEncoded


def draft_of(
    request: AttestRequest | MeteredAttestRequest | Mapping[str, Any] | Encoded | MeteredEncoded,
    salt: int,
    account_salt: int,
    before: WindowState,
) -> Draft:
    """The draft of a request or encoded request of any binding (a windowed one charged from
    its window's state `before`); InputError for bad input, before any proving."""
    binding = event_binding(request)
    enc = request if isinstance(request, binding.encoded_model) else binding.encode(request)
    return binding.draft(enc, salt, account_salt, before)


def build_bundle(
    request: AttestRequest | MeteredAttestRequest | Mapping[str, Any] | Encoded | MeteredEncoded,
    *,
    attester: Attester,
    account_salt: int,
    prover: ProofSource,
    vkey_sha256: str,
    salt: int | None = None,
    before: WindowState = GENESIS,
) -> Bundle | MeteredBundle:
    """Sign and prove one event (digest version 2: signed without its proof, which is then
    made, checked to reproduce the signed public signals and attached; ToolError if it does
    not, and no bundle). Raises InputError for bad input before any signing or proving. A
    metered request (binding v2) is charged and proved from its window's state `before`
    (vbill.bundle.metered); `prover` and `vkey_sha256` must then be v2's."""
    signed = sign_unproven(
        request,
        attester=attester,
        account_salt=account_salt,
        vkey_sha256=vkey_sha256,
        salt=salt,
        before=before,
    )
    bundle = with_proof(signed, prove_unproven(signed, prover))
    return event_binding(bundle).bundle_model.model_validate(bundle)


def sign_unproven(
    enc: AttestRequest | MeteredAttestRequest | Mapping[str, Any] | Encoded | MeteredEncoded,
    *,
    attester: Attester,
    account_salt: int,
    vkey_sha256: str,
    salt: int | None = None,
    before: WindowState = GENESIS,
) -> dict[str, Any]:
    """Sign and return one event's bundle before its proof exists (digest version 2): JSON
    data with no `billing_proof.proof`, until `prove_unproven` supplies it. A metered event
    is charged from `before`: its charge, the state after and all seven public signals,
    state keys included, are the reference's, and the bundle carries `before` in clear, so
    any worker can prove it later, in any order. InputError if its window would overflow."""
    salt = random_field_element() if salt is None else salt
    draft = draft_of(enc, salt, account_salt, before)
    return sign_draft(draft, attester, salt, account_salt, vkey_sha256, None)


def prove_unproven(bundle: Mapping[str, Any], prover: ProofSource) -> dict[str, Any]:
    """The Groth16 proof (snarkjs JSON) for a bundle signed by `sign_unproven`, from its own
    record (a metered one from its `billing.window.before` too); ToolError if the prover's
    public signals are not the signed ones (the proof is then never attached). A metered
    bundle's `prover` must be v2's."""
    salt, account_salt = signed_salts(bundle)
    witness_input = event_binding(bundle).signed_witness_input(bundle, salt, account_salt)
    proof = prover.prove(witness_input)
    if proof.public_signals != bundle["attestation"]["billing_proof"]["public_signals"]:
        raise ToolError("prover's public signals disagree with the signed ones; not attaching")
    return proof.proof


def with_proof(bundle: Mapping[str, Any], proof: dict[str, Any]) -> dict[str, Any]:
    """A bundle signed by `sign_unproven` with its checked proof (`prove_unproven`) attached;
    the digest does not cover it, so the signature stands."""
    attestation = bundle["attestation"]
    billing_proof = {**attestation["billing_proof"], "proof": proof}
    return {**bundle, "attestation": {**attestation, "billing_proof": billing_proof}}


def signed_salts(bundle: Mapping[str, Any]) -> tuple[int, int]:
    """The (salt, account_salt) a bundle's signed public signals were computed with."""
    bp = bundle["attestation"]["billing_proof"]
    return int(bp["salt"]), int(bp["account_salt"])


def sign_draft(
    draft: Draft,
    attester: Attester,
    salt: int,
    account_salt: int,
    vkey_sha256: str,
    proof: dict[str, Any] | None,
) -> dict[str, Any]:
    """Attach the proof section to a draft's record and sign it (any binding): digest
    version 1 with `proof`, version 2 without."""
    record, binding_version = draft.record, draft.binding_version
    billing_proof: dict[str, Any] = {
        "binding_version": binding_version,
        "public_signals": draft.signals.as_decimal(),
        "vkey_sha256": vkey_sha256,
        "salt": to_dec(salt),
        "account_salt": to_dec(account_salt),
    }
    scheme = SCHEME_V2 if proof is None else SCHEME_V1
    if proof is not None:
        billing_proof = {"binding_version": binding_version, "proof": proof, **billing_proof}
    signed_as = event_binding(record).signed_as
    digest = bundle_digest(
        record, billing_proof, signal_map(draft.signals), scheme, signed_as=signed_as
    )
    return {
        **record,
        "attestation": {
            "scheme": scheme,
            "signature": attester.sign_hash(digest),
            "attester": attester.address,
            "bundle_digest": "0x" + digest.hex(),
            "billing_proof": billing_proof,
        },
    }


def signal_map(signals: PublicSignals | MeteredPublicSignals) -> dict[str, int]:
    """Public signals by name (v2's state keys too: the digest signs them)."""
    return {f.name: getattr(signals, f.name) for f in dataclasses.fields(signals)}


def with_receipt(
    bundle: Bundle | MeteredBundle, receipt: Receipt | Mapping[str, Any]
) -> Bundle | MeteredBundle:
    """The same bundle carrying its transparency-log receipt."""
    return bundle.model_copy(update={"receipt": Receipt.model_validate(receipt)})


def digest_of(bundle: Bundle | MeteredBundle) -> bytes:
    """The bundle's EIP-712 digest as stated in it (verify recomputes it independently)."""
    return bytes.fromhex(bundle.attestation.bundle_digest.removeprefix("0x"))
