"""Circuit input and public signals of binding bn128-poseidon8-v2c, corrections
(docs/protocol-corrections.md; circuit: circuits/correction_binding.circom).

A correction takes units back from one earlier event of a metered window; the verifier
recomputes these signals from the correction record, the original event's bundle (its meter
event, tariff, charge and salt), the window's state before and the account salt.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from vbill.bindings import version_of
from vbill.encode.encoding import hash_string
from vbill.encode.metered import (
    MeteredCorrection,
    MeteredMeter,
    MeteredTariff,
    WindowState,
    correction_transition,
)
from vbill.zk.field import R, to_dec
from vbill.zk.poseidon import poseidon
from vbill.zk.witness import SignalList, declared_signal_names
from vbill.zk.witness_metered import circuit_input as event_input
from vbill.zk.witness_metered import commitment as event_commitment
from vbill.zk.witness_metered import pack, tariff_key, window_state_key

VERSION = version_of("correction_binding")
DOMAIN_TAG_V2C = hash_string(VERSION)
"""The correction commitment's domain tag and the correction nullifier's tag."""


@dataclass(frozen=True)
class CorrectionPublicSignals(SignalList):
    """The correction circuit's public signals, fields in circuit order (= outputs of `main`)."""

    commitment: int
    credit: int
    tariff_key: int
    nullifier: int
    tenant_key: int
    prev_state_key: int
    state_key: int
    corrects: int
    corrects_nullifier: int

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return public_signal_names()


@cache
def public_signal_names() -> tuple[str, ...]:
    """The correction binding's public signals in order (checked against circuits.json)."""
    return declared_signal_names(CorrectionPublicSignals, VERSION)


@dataclass(frozen=True)
class Original:
    """The corrected event as its v2 bundle states it: what its commitment opens to."""

    meter: MeteredMeter
    tariff: MeteredTariff
    charge: int
    salt: int


def correction_commitment(
    correction: MeteredCorrection, credit: int, corrects: int, salt: int
) -> int:
    """Poseidon7(DOMAIN_TAG_V2C, correction_id, reason, pack(u0, u1, u2), pack(u3, credit),
    corrects, salt)."""
    u = correction.units
    return poseidon(
        [
            DOMAIN_TAG_V2C,
            correction.correction_id,
            correction.reason,
            pack(u[0], u[1], u[2]),
            pack(u[3], credit),
            corrects,
            salt,
        ]
    )


def correction_nullifier(tenant_id: int, event_id: int, account_salt: int) -> int:
    """Poseidon4(tenant_id, corrected event_id, account_salt, DOMAIN_TAG_V2C): once per event."""
    return poseidon([tenant_id, event_id, account_salt, DOMAIN_TAG_V2C])


def public_signals(
    correction: MeteredCorrection,
    original: Original,
    before: WindowState,
    salt: int,
    account_salt: int,
) -> tuple[CorrectionPublicSignals, WindowState]:
    """What the correction circuit outputs, and the window's state after the correction."""
    for name, value in (
        ("salt", salt),
        ("account_salt", account_salt),
        ("original.salt", original.salt),
    ):
        if type(value) is not int or not 0 <= value < R:
            raise ValueError(f"{name} is not a field element")
    meter, tariff = original.meter, original.tariff
    credit, after = correction_transition(tariff, correction.units, before)
    tk = tariff_key(tariff, account_salt)
    corrects = event_commitment(meter, original.charge, tk, original.salt)
    signals = CorrectionPublicSignals(
        commitment=correction_commitment(correction, credit, corrects, salt),
        credit=credit,
        tariff_key=tk,
        nullifier=correction_nullifier(meter.tenant_id, meter.event_id, account_salt),
        tenant_key=poseidon([meter.tenant_id, account_salt]),
        prev_state_key=window_state_key(meter, tariff, before, account_salt),
        state_key=window_state_key(meter, tariff, after, account_salt),
        corrects=corrects,
        corrects_nullifier=poseidon([meter.tenant_id, meter.event_id, account_salt]),
    )
    return signals, after


def circuit_input(
    correction: MeteredCorrection,
    original: Original,
    before: WindowState,
    salt: int,
    account_salt: int,
) -> dict[str, Any]:
    """The correction circuit's input JSON: the original's fields (binding v2's names, its
    `units` as `units_original`, its `salt` as `salt_original`), the correction and the state
    before; canonical decimal strings, arrays as nested lists."""
    inp = event_input(original.meter, original.tariff, before, original.salt, account_salt)
    inp["units_original"] = inp.pop("units")
    inp["salt_original"] = inp.pop("salt")
    inp["charge_original"] = to_dec(original.charge)
    inp["correction_id"] = to_dec(correction.correction_id)
    inp["reason"] = to_dec(correction.reason)
    inp["units"] = [to_dec(u) for u in correction.units]
    inp["salt"] = to_dec(salt)
    return inp


__all__ = [
    "DOMAIN_TAG_V2C",
    "CorrectionPublicSignals",
    "Original",
    "circuit_input",
    "correction_commitment",
    "correction_nullifier",
    "public_signal_names",
    "public_signals",
]
