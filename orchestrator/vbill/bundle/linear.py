"""Bundles of usage_linear requests (binding bn128-poseidon8-v1, docs/protocol.md).

This module makes a linear event's draft (record, public signals, circuit input) from its
request; `vbill.bundle.bundle` proves and signs it as any draft.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vbill.bindings import version_of
from vbill.bundle.attestation import fingerprint
from vbill.bundle.draft import Draft, billing_record, parse_v2
from vbill.encode.charge import charge_for
from vbill.encode.encoding import (
    MeterFields,
    TariffFields,
    encode_meter_event,
    encode_tariff_snapshot,
)
from vbill.errors import ToolError
from vbill.models import AttestRequest, Bundle
from vbill.zk.witness import circuit_input, public_signals

VERSION = version_of("billing_binding")


@dataclass(frozen=True)
class Encoded:
    """A request reduced to field elements, with its reference charge."""

    request: AttestRequest
    meter: MeterFields
    tariff: TariffFields
    charge: int
    fingerprint: str


def encode_request(request: AttestRequest | Mapping[str, Any]) -> Encoded:
    req = parse_v2(AttestRequest, request)
    meter_json = req.meter_event.model_dump(mode="json")
    tariff_json = req.tariff_snapshot.model_dump(mode="json")
    meter = encode_meter_event(meter_json)
    tariff = encode_tariff_snapshot(tariff_json)
    charge = charge_for(meter, tariff)
    return Encoded(req, meter, tariff, charge, fingerprint(meter_json, tariff_json, charge))


def linear_draft(enc: Encoded, salt: int, account_salt: int) -> Draft:
    """Binding v1's draft; ToolError if the circuit's charge is not the reference's."""
    expected = public_signals(enc.meter, enc.tariff, salt, account_salt)
    if expected.charge != enc.charge:
        raise ToolError("circuit charge disagrees with the reference charge; not signing")
    billing = {"expected_charge_micros": enc.charge, "billing_verify_fingerprint": enc.fingerprint}
    return Draft(
        billing_record(enc.request, billing),
        VERSION,
        expected,
        lambda: circuit_input(enc.meter, enc.tariff, salt, account_salt),
        Bundle,
    )


def signed_witness_input(
    bundle: Mapping[str, Any], salt: int, account_salt: int
) -> Mapping[str, str]:
    """The circuit's input for a bundle signed before its proof, from its own meter event and
    tariff and its signed salts."""
    enc = encode_request({k: bundle[k] for k in ("meter_event", "tariff_snapshot")})
    return circuit_input(enc.meter, enc.tariff, salt, account_salt)
