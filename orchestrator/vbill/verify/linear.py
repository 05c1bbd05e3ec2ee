"""The recomputation of usage_linear bundles (binding bn128-poseidon8-v1, docs/protocol.md §9):
the rules vbill.verify.verify applies to them.

The public signals come from the records' own meter event and tariff and the attestation's
salts; the billing check recomputes the charge and fingerprint from meter and tariff.
"""

from __future__ import annotations

from functools import lru_cache

from vbill.bindings import version_of
from vbill.bundle.linear import Encoded, encode_request
from vbill.models import Attestation, AttestRequest, BillingRecord, MeterEvent, TariffSnapshot
from vbill.verify.rules import Recomputed, Rules
from vbill.zk.field import parse_field_element
from vbill.zk.witness import PublicSignals, public_signals


def signals_for(record: BillingRecord, att: Attestation) -> PublicSignals:
    """Public signals recomputed from a record and the bundle's salts (canonical, < r)."""
    bp = att.billing_proof
    return _signals(record.meter_event, record.tariff_snapshot, bp.salt, bp.account_salt)


@lru_cache(maxsize=256)
def _signals(
    meter: MeterEvent, tariff: TariffSnapshot, salt: str, account_salt: str
) -> PublicSignals:
    """Cached: one verify needs the same recomputation for the signature and the binding."""
    s = parse_field_element(salt, "billing_proof.salt")
    a = parse_field_element(account_salt, "billing_proof.account_salt")
    enc = _encoded(meter, tariff)
    return public_signals(enc.meter, enc.tariff, s, a)


@lru_cache(maxsize=256)
def _encoded(meter: MeterEvent, tariff: TariffSnapshot) -> Encoded:
    """Encoding, reference charge and fingerprint of a meter + tariff (cached: a bundle's
    billed and expected records are usually the same, and the signature needs it too)."""
    return encode_request(AttestRequest(meter_event=meter, tariff_snapshot=tariff))


def recompute(name: str, record: BillingRecord) -> Recomputed:
    """Charge and fingerprint recomputed from the record's meter event and tariff."""
    enc = _encoded(record.meter_event, record.tariff_snapshot)
    return Recomputed(enc.charge, enc.fingerprint)


LINEAR = Rules(version_of("billing_binding"), BillingRecord, signals_for, recompute)
"""The v1 rules of vbill.verify.verify.verify_request (every tariff but a metered one)."""
