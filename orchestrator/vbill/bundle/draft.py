"""What both bindings' bundles are built from: the validated request and the draft of one event.

Below vbill.bundle.bundle (v1) and vbill.bundle.metered (v2), which both build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from vbill.errors import InputError
from vbill.models import AttestRequest, Bundle, MeteredAttestRequest, MeteredBundle, parse_as
from vbill.zk.witness import PublicSignals
from vbill.zk.witness_metered import MeteredPublicSignals

R = TypeVar("R", AttestRequest, MeteredAttestRequest)


def parse_v2(model: type[R], request: R | Mapping[str, Any]) -> R:
    """Validate an attest request of either binding (the first problem is an InputError
    naming its field); billing v2 is the only billing version there is."""
    req = parse_as(model, request)
    if req.billing_version != "v2":
        raise InputError("billing_version", "only billing v2 is supported")
    if not req.profileId.isascii() and not _well_formed(req.profileId):
        raise InputError("profileId", "must be valid Unicode (no lone surrogates)")
    return req


def _well_formed(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Draft:
    """One event of either binding, ready to prove and sign: its record (the bundle but its
    attestation), the reference's public signals and, when proving, the circuit's input."""

    record: dict[str, Any]
    binding_version: str
    signals: PublicSignals | MeteredPublicSignals
    witness_input: Callable[[], Mapping[str, str]]
    model: type[Bundle] | type[MeteredBundle]


def billing_record(
    req: AttestRequest | MeteredAttestRequest, billing: dict[str, Any]
) -> dict[str, Any]:
    """The record a bundle signs (either binding): the request as JSON, and its `billing`."""
    return {
        "billing_version": req.billing_version,
        "profileId": req.profileId,
        "meter_event": req.meter_event.model_dump(mode="json"),
        "tariff_snapshot": req.tariff_snapshot.model_dump(mode="json"),
        "billing": billing,
    }
