"""Binding bn128-poseidon8-v1 (circuit billing_binding): usage_linear tariffs, units × unit
price clamped to [min, max], one event at a time (docs/protocol.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vbill.bindings import version_of
from vbill.bindings.base import EventBinding, OnChain
from vbill.bundle.attestation import SignedStruct
from vbill.bundle.linear import Encoded, encode_request, linear_draft, signed_witness_input
from vbill.encode.encoding import encode_tariff
from vbill.models import AttestRequest, BillingRecord, Bundle, TariffSnapshot, parse_as
from vbill.verify.linear import LINEAR
from vbill.zk.poseidon import poseidon


def tariff_key(tariff_snapshot: Mapping[str, Any], account_salt: int) -> int:
    """Poseidon(Poseidon(encoded tariff), account_salt), of the tariff read as /attest reads
    it (the wire model first: JSON integers only, the document's shapes)."""
    wire = parse_as(TariffSnapshot, tariff_snapshot, "tariff_snapshot").model_dump(mode="json")
    return poseidon([poseidon(encode_tariff(wire).as_list()), account_salt])


BINDING = EventBinding(
    key="billing_binding",
    on_chain=OnChain(
        1, "BillingVerifier", "IBillingVerifier", "settle", "settleBatch", "anchorCharge"
    ),
    tariff_class="usage_linear",
    windowed=False,
    request_model=AttestRequest,
    record_model=BillingRecord,
    bundle_model=Bundle,
    encoded_model=Encoded,
    encode=encode_request,
    draft=lambda enc, salt, account_salt, _before: linear_draft(enc, salt, account_salt),
    signed_witness_input=signed_witness_input,
    rules=LINEAR,
    tariff_key=tariff_key,
    signed_as=SignedStruct("BillingBundle", version_of("billing_binding")),
)
