"""Bundles of metered requests (binding bn128-poseidon8-v2, docs/protocol-v2.md).

A metered event is charged from its window's state before it (cumulative units, exact amount
and charge), so the bundle carries both states in clear (`billing.window`) and the proof binds
them through `prev_state_key` and `state_key`. The caller supplies the state before (the store
reads it under the window's lock). This module makes a metered event's draft (record, public
signals, circuit input); `vbill.bundle.bundle` proves and signs it exactly as a v1 draft.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vbill.bindings import version_of
from vbill.bundle.attestation import fingerprint
from vbill.bundle.draft import Draft, billing_record, parse_v2
from vbill.encode.encoding import _DECIMAL_INT, U64_LIMIT
from vbill.encode.metered import (
    AMOUNT_LIMIT,
    MAX_DIMENSIONS,
    MeteredMeter,
    MeteredTariff,
    WindowState,
    encode_metered,
)
from vbill.errors import InputError
from vbill.models import MeteredAttestRequest, MeteredBundle, WindowStateJson, parse_as
from vbill.zk.witness_metered import MeteredPublicSignals, circuit_input, public_signals

WindowKey = tuple[str, str, str]
"""(tenant_id, billing_window_id, tariff_id): one chain of states per key."""


@dataclass(frozen=True)
class MeteredEncoded:
    """A metered request reduced to field elements (its charge needs a window state)."""

    request: MeteredAttestRequest
    meter: MeteredMeter
    tariff: MeteredTariff

    @property
    def window_key(self) -> WindowKey:
        m = self.request.meter_event
        return (m.tenant_id, m.billing_window_id, self.request.tariff_snapshot.tariff_id)

    def meter_json(self) -> dict[str, Any]:
        return self.request.meter_event.model_dump(mode="json")

    def tariff_json(self) -> dict[str, Any]:
        return self.request.tariff_snapshot.model_dump(mode="json")


def encode_metered_request(request: MeteredAttestRequest | Mapping[str, Any]) -> MeteredEncoded:
    req = parse_v2(MeteredAttestRequest, request)
    parts = {part: getattr(req, part).model_dump(mode="json") for part in _PARTS}
    return MeteredEncoded(req, *encode_metered(parts))


_PARTS = ("meter_event", "tariff_snapshot")


# --- the JSON form of a window state (docs/protocol-v2.md §8) ---


def state_to_json(state: WindowState, names: tuple[str, ...]) -> dict[str, Any]:
    """{"seq": int, "units": {name: "dec"}, "amount": "dec", "charge": "dec"}; units are
    named by the tariff's dimensions (padding dimensions are always 0 and not written)."""
    return {
        "seq": state.seq,
        "units": {name: str(state.units[d]) for d, name in enumerate(names)},
        "amount": str(state.amount),
        "charge": str(state.charge),
    }


def _decimal(value: str, path: str, limit: int) -> int:
    if not (isinstance(value, str) and len(value) <= 40 and _DECIMAL_INT.fullmatch(value)):
        raise InputError(path, "must be a canonical decimal string")
    v = int(value)
    if v >= limit:
        raise InputError(path, f"must be below 2^{limit.bit_length() - 1}")
    return v


def state_from_json(
    obj: WindowStateJson | Mapping[str, Any], names: tuple[str, ...], path: str
) -> WindowState:
    """Parse a state in clear, strictly: canonical decimals within their widths, and units
    named exactly by the tariff's dimensions (a new tariff version must keep them)."""
    state = parse_as(WindowStateJson, obj, path)
    if tuple(sorted(state.units)) != names:
        raise InputError(
            f"{path}.units",
            f"names {sorted(state.units)} but the tariff prices {list(names)} "
            "(a window's dimensions never change)",
        )
    if not 0 <= state.seq < U64_LIMIT:
        raise InputError(f"{path}.seq", "must be an integer 0 ≤ v < 2^64")
    units = [_decimal(state.units[n], f"{path}.units.{n}", U64_LIMIT) for n in names]
    units += [0] * (MAX_DIMENSIONS - len(units))
    return WindowState(
        seq=state.seq,
        units=tuple(units),
        amount=_decimal(state.amount, f"{path}.amount", AMOUNT_LIMIT),
        charge=_decimal(state.charge, f"{path}.charge", U64_LIMIT),
    )


def window_json(before: WindowState, after: WindowState, names: tuple[str, ...]) -> dict[str, Any]:
    """`billing.window`: the event's seq and the states before and after it."""
    return {
        "seq": after.seq,
        "before": state_to_json(before, names),
        "after": state_to_json(after, names),
    }


@dataclass(frozen=True)
class MeteredCharge:
    """What one metered event costs from a given window state, and the state it leaves."""

    charge: int
    before: WindowState
    after: WindowState
    signals: MeteredPublicSignals

    def window(self, names: tuple[str, ...]) -> dict[str, Any]:
        return window_json(self.before, self.after, names)


def charge_metered(
    enc: MeteredEncoded, before: WindowState, salt: int, account_salt: int
) -> MeteredCharge:
    """The reference: charge, state after and public signals (InputError on an overflow)."""
    signals, after = public_signals(enc.meter, enc.tariff, before, salt, account_salt)
    return MeteredCharge(signals.charge, before, after, signals)


def metered_record(enc: MeteredEncoded, mc: MeteredCharge) -> dict[str, Any]:
    """The billing v2 record of a metered event: the fingerprint covers its window too."""
    window = mc.window(enc.tariff.names)
    fp = fingerprint(enc.meter_json(), enc.tariff_json(), mc.charge, window)
    billing = {"expected_charge_micros": mc.charge, "billing_verify_fingerprint": fp}
    return billing_record(enc.request, {**billing, "window": window})


def metered_draft(enc: MeteredEncoded, before: WindowState, salt: int, account_salt: int) -> Draft:
    """Binding v2's draft, charged from the window's state `before` (InputError on an
    overflow); `vbill.bundle.bundle` builds and signs it as any draft."""
    mc = charge_metered(enc, before, salt, account_salt)
    return Draft(
        metered_record(enc, mc),
        version_of("metered_binding"),
        mc.signals,
        lambda: circuit_input(enc.meter, enc.tariff, before, salt, account_salt),
        MeteredBundle,
    )


def signed_witness_input(
    bundle: Mapping[str, Any], salt: int, account_salt: int
) -> Mapping[str, str]:
    """The circuit's input for a bundle signed before its proof, from its own record
    (meter, tariff, `billing.window.before`) and its signed salts."""
    enc = encode_metered_request({k: bundle[k] for k in _PARTS})
    before = state_from_json(bundle["billing"]["window"]["before"], enc.tariff.names, "before")
    return circuit_input(enc.meter, enc.tariff, before, salt, account_salt)
