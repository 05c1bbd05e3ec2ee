"""Binding bn128-poseidon8-v2 (circuit metered_binding): metered tariffs, dimensions ×
graduated tiers, each event charged from its window's proven state (docs/protocol-v2.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vbill.bindings import version_of
from vbill.bindings.base import EventBinding, OnChain
from vbill.bundle.attestation import SignedStruct
from vbill.bundle.metered import (
    MeteredEncoded,
    encode_metered_request,
    metered_draft,
    signed_witness_input,
)
from vbill.encode.metered import MeteredTariff
from vbill.models import (
    MeteredAttestRequest,
    MeteredBillingRecord,
    MeteredBundle,
    MeteredTariffSnapshot,
    parse_as,
)
from vbill.verify.metered import METERED
from vbill.zk import witness_metered


def tariff_key(tariff_snapshot: Mapping[str, Any], account_salt: int) -> int:
    """The metered tariff's key under the account salt (vbill.zk.witness_metered), of the
    tariff read as /attest reads it (the wire model first)."""
    model = MeteredTariffSnapshot
    wire = parse_as(model, tariff_snapshot, "tariff_snapshot").model_dump(mode="json")
    return witness_metered.tariff_key(MeteredTariff.from_wire(wire), account_salt)


BINDING = EventBinding(
    key="metered_binding",
    on_chain=OnChain(
        2,
        "BillingVerifierV2",
        "IBillingVerifierV2",
        "settleV2",
        "settleBatchV2",
        "anchorChargeV2",
        state_keys=True,
    ),
    tariff_class="metered",
    windowed=True,
    request_model=MeteredAttestRequest,
    record_model=MeteredBillingRecord,
    bundle_model=MeteredBundle,
    encoded_model=MeteredEncoded,
    encode=encode_metered_request,
    draft=lambda enc, salt, account_salt, before: metered_draft(enc, before, salt, account_salt),
    signed_witness_input=signed_witness_input,
    rules=METERED,
    tariff_key=tariff_key,
    # BillingBundle's members and the window states the event moves between
    signed_as=SignedStruct(
        "MeteredBillingBundle",
        version_of("metered_binding"),
        (("prevStateKey", "prev_state_key"), ("stateKey", "state_key")),
    ),
)
