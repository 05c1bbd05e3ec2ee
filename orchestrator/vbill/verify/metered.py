"""The three verdicts for metered bundles (binding bn128-poseidon8-v2, docs/protocol-v2.md).

Same checks as v1 (vbill.verify.verify), with v2's recomputation: the public signals, the
state keys among them, come from the bundle's own meter event, tariff, window state before
and salts, never from the bundle's signals; the billing check recomputes the charge and the
state after from the state before, so a bundle cannot claim a window total it did not earn.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from vbill.bindings import version_of
from vbill.bundle.attestation import fingerprint
from vbill.bundle.metered import (
    MeteredCharge,
    MeteredEncoded,
    charge_metered,
    encode_metered_request,
    state_from_json,
    state_to_json,
    window_json,
)
from vbill.encode.metered import transition
from vbill.models import Attestation, MeteredBillingRecord
from vbill.verify.rules import Recomputed, Rules
from vbill.zk.field import parse_field_element
from vbill.zk.witness_metered import MeteredPublicSignals


def _encoded(record: MeteredBillingRecord) -> MeteredEncoded:
    return _encoded_cached(
        record.meter_event.model_dump_json(), record.tariff_snapshot.model_dump_json()
    )


@lru_cache(maxsize=256)
def _encoded_cached(meter_json: str, tariff_json: str) -> MeteredEncoded:
    return encode_metered_request(
        {"meter_event": json.loads(meter_json), "tariff_snapshot": json.loads(tariff_json)}
    )


def _recompute(record: MeteredBillingRecord, att: Attestation) -> MeteredCharge:
    return _recompute_cached(
        record.model_dump_json(), att.billing_proof.salt, att.billing_proof.account_salt
    )


@lru_cache(maxsize=256)
def _recompute_cached(record_json: str, salt: str, account_salt: str) -> MeteredCharge:
    """Cached: one verify needs it for the signature, the binding and the billed record."""
    record = MeteredBillingRecord.model_validate_json(record_json)
    s = parse_field_element(salt, "billing_proof.salt")
    a = parse_field_element(account_salt, "billing_proof.account_salt")
    enc = _encoded(record)
    before = state_from_json(
        record.billing.window.before, enc.tariff.names, "billing.window.before"
    )
    return charge_metered(enc, before, s, a)


def signals_for(record: MeteredBillingRecord, att: Attestation) -> MeteredPublicSignals:
    """The v2 public signals of a record under the attestation's salts."""
    return _recompute(record, att).signals


def recompute(name: str, record: MeteredBillingRecord) -> Recomputed:
    """Charge and state after recomputed from the state before, meter and tariff; the
    fingerprint covers the window."""
    enc = _encoded(record)
    window = record.billing.window
    where = f"{name}.billing.window"
    before = state_from_json(window.before, enc.tariff.names, f"{where}.before")
    charge, after = transition(enc.tariff, enc.meter, before)
    problem = None
    if window.seq != after.seq:
        problem = f"{where}.seq: {window.seq} but before.seq + 1 is {after.seq}"
    elif window.after.model_dump(mode="json") != state_to_json(after, enc.tariff.names):
        problem = f"{where}.after: not the state the event leaves (before + this event)"
    window_now = window_json(before, after, enc.tariff.names)
    fp = fingerprint(enc.meter_json(), enc.tariff_json(), charge, window_now)
    return Recomputed(charge, fp, " from the window state before", problem)


METERED = Rules(version_of("metered_binding"), MeteredBillingRecord, signals_for, recompute)
"""The v2 rules of vbill.verify.verify.verify_request (chosen by tariff_class "metered")."""


def window_of(bundle: Any) -> dict[str, Any] | None:
    """A bundle's `billing.window` if it has one (statements read seq and states here)."""
    billing = bundle.get("billing") if isinstance(bundle, dict) else None
    window = billing.get("window") if isinstance(billing, dict) else None
    return window if isinstance(window, dict) else None
