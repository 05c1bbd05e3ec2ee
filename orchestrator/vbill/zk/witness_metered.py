"""Circuit input and public signals of binding bn128-poseidon8-v2 (docs/protocol-v2.md).

The verifier recomputes these from a bundle's own fields, salts and window states, then asks
whether the proof verifies for them; the hash layout here is the circuit's (metered_hashes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from vbill import paths
from vbill.bindings import version_of
from vbill.encode.encoding import hash_string
from vbill.encode.metered import GENESIS, MeteredMeter, MeteredTariff, WindowState, transition
from vbill.zk.field import R, to_dec
from vbill.zk.poseidon import poseidon, poseidon_repeated
from vbill.zk.witness import SignalList, declared_signal_names

CIRCUITS_JSON = paths.CIRCUITS / "circuits.json"
VERSION = version_of("metered_binding")
DOMAIN_TAG_V2 = hash_string(VERSION)
"""The commitment's domain separation constant: the string rule applied to the binding."""


@dataclass(frozen=True)
class MeteredPublicSignals(SignalList):
    """The v2 circuit's public signals, fields in circuit order (= outputs of `main`)."""

    commitment: int
    charge: int
    tariff_key: int
    nullifier: int
    tenant_key: int
    prev_state_key: int
    state_key: int

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return public_signal_names()


@cache
def public_signal_names() -> tuple[str, ...]:
    """v2's public signals in circuit order (checked against circuits/circuits.json)."""
    return declared_signal_names(MeteredPublicSignals, VERSION)


def pack(*values: int) -> int:
    """Up to three 64-bit values in one field element, the first in the low bits."""
    assert len(values) <= 3 and all(0 <= v < 1 << 64 for v in values)
    return sum(v << (64 * i) for i, v in enumerate(values))


def tariff_key(tariff: MeteredTariff, account_salt: int) -> int:
    """Poseidon16(tariff_id, tariff_version, currency, dimension_names, 11 packed words, salt)."""
    words = tariff.words()
    packed = [pack(*words[i : i + 3]) for i in range(0, len(words), 3)]
    return poseidon_repeated(
        [
            tariff.tariff_id,
            tariff.tariff_version,
            tariff.currency,
            tariff.dimension_names,
            *packed,
            account_salt,
        ]
    )


def state_key(
    tenant_id: int, billing_window_id: int, tariff_id: int, state: WindowState, account_salt: int
) -> int:
    """Poseidon7 of the chain's identity and one window state, salted like the other keys."""
    u = state.units
    return poseidon_repeated(
        [
            tenant_id,
            billing_window_id,
            tariff_id,
            pack(state.seq, u[0], u[1]),
            pack(u[2], u[3], state.charge),
            state.amount,
            account_salt,
        ]
    )


def window_state_key(
    meter: MeteredMeter, tariff: MeteredTariff, state: WindowState, account_salt: int
) -> int:
    """The state key of `state` in the window this event belongs to."""
    return state_key(
        meter.tenant_id, meter.billing_window_id, tariff.tariff_id, state, account_salt
    )


def commitment(meter: MeteredMeter, charge: int, tariff_key_value: int, salt: int) -> int:
    """Poseidon11(DOMAIN_TAG_V2, meter strings, packed timestamp/units/charge, tariff_key, salt)."""
    u = meter.units
    return poseidon(
        [
            DOMAIN_TAG_V2,
            meter.event_id,
            meter.tenant_id,
            meter.api_key_id,
            meter.endpoint,
            meter.contract_version,
            meter.billing_window_id,
            pack(meter.event_timestamp, u[0], u[1]),
            pack(u[2], u[3], charge),
            tariff_key_value,
            salt,
        ]
    )


def public_signals(
    meter: MeteredMeter,
    tariff: MeteredTariff,
    before: WindowState,
    salt: int,
    account_salt: int,
) -> tuple[MeteredPublicSignals, WindowState]:
    """What the v2 circuit outputs for this event and window state, and the state after it."""
    for name, value in (("salt", salt), ("account_salt", account_salt)):
        if type(value) is not int or not 0 <= value < R:
            raise ValueError(f"{name} is not a field element")
    charge, after = transition(tariff, meter, before)
    tk = tariff_key(tariff, account_salt)
    signals = MeteredPublicSignals(
        commitment=commitment(meter, charge, tk, salt),
        charge=charge,
        tariff_key=tk,
        nullifier=poseidon([meter.tenant_id, meter.event_id, account_salt]),
        tenant_key=poseidon_repeated([meter.tenant_id, account_salt]),
        prev_state_key=window_state_key(meter, tariff, before, account_salt),
        state_key=window_state_key(meter, tariff, after, account_salt),
    )
    return signals, after


def circuit_input(
    meter: MeteredMeter,
    tariff: MeteredTariff,
    before: WindowState,
    salt: int,
    account_salt: int,
) -> dict[str, Any]:
    """The v2 circuit's input JSON: every private input by name, arrays as nested lists of
    canonical decimal strings (the state after is computed by the circuit, not an input)."""

    def dec(value: Any) -> Any:
        return [dec(v) for v in value] if isinstance(value, tuple | list) else to_dec(value)

    values: dict[str, Any] = {
        "event_id": meter.event_id,
        "event_timestamp": meter.event_timestamp,
        "tenant_id": meter.tenant_id,
        "api_key_id": meter.api_key_id,
        "endpoint": meter.endpoint,
        "units": meter.units,
        "contract_version": meter.contract_version,
        "billing_window_id": meter.billing_window_id,
        "tariff_id": tariff.tariff_id,
        "tariff_version": tariff.tariff_version,
        "tariff_class": tariff.tariff_class,
        "dimension_names": tariff.dimension_names,
        "price_scaled": tariff.price_scaled,
        "up_to": tariff.up_to,
        "min_charge_micros": tariff.min_charge_micros,
        "max_charge_micros": tariff.max_charge_micros,
        "rounding_mode": tariff.rounding_mode,
        "currency": tariff.currency,
        "seq_before": before.seq,
        "units_before": before.units,
        "amount_before": before.amount,
        "charge_before": before.charge,
        "salt": salt,
        "account_salt": account_salt,
    }
    return {name: dec(v) for name, v in values.items()}


__all__ = [
    "DOMAIN_TAG_V2",
    "GENESIS",
    "MeteredPublicSignals",
    "circuit_input",
    "commitment",
    "public_signal_names",
    "public_signals",
    "state_key",
    "tariff_key",
    "window_state_key",
]
