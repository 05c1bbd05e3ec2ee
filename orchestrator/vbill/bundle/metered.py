"""Bundles of metered requests (binding bn128-poseidon8-v2, docs/protocol-v2.md).

A metered event is charged from its window's state before it (cumulative units, exact amount
and charge), so the bundle carries both states in clear (`billing.window`) and the proof binds
them through `prev_state_key` and `state_key`. The caller supplies the state before (the store
reads it under the window's lock); everything else is the v1 order of work: validate, charge,
prove, check the prover against the reference, sign.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vbill.bindings import BINDING_V2
from vbill.bundle.attestation import fingerprint
from vbill.bundle.bundle import prove_as_signed, sign_record, signed_salts
from vbill.bundle.keys import Attester
from vbill.encode.encoding import _DECIMAL_INT, U64_LIMIT
from vbill.encode.metered import (
    AMOUNT_LIMIT,
    GENESIS,
    MAX_DIMENSIONS,
    MeteredMeter,
    MeteredTariff,
    WindowState,
    encode_metered,
)
from vbill.errors import InputError, ToolError
from vbill.models import MeteredAttestRequest, MeteredBundle, WindowStateJson, parse_as
from vbill.zk.prover import ProofSource
from vbill.zk.witness import random_field_element
from vbill.zk.witness_metered import MeteredPublicSignals, circuit_input, public_signals

WindowKey = tuple[str, str, str]
"""(tenant_id, billing_window_id, tariff_id): one chain of states per key."""


def parse_metered_request(
    request: MeteredAttestRequest | Mapping[str, Any],
) -> MeteredAttestRequest:
    """Validate a metered attest request; the first problem is an InputError naming its field."""
    return parse_as(MeteredAttestRequest, request)


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
    req = parse_metered_request(request)
    if req.billing_version != "v2":
        raise InputError("billing_version", "only billing v2 is supported")
    meter, tariff = encode_metered(
        {
            "meter_event": req_json(req, "meter_event"),
            "tariff_snapshot": req_json(req, "tariff_snapshot"),
        }
    )
    return MeteredEncoded(req, meter, tariff)


def req_json(req: MeteredAttestRequest, part: str) -> dict[str, Any]:
    return getattr(req, part).model_dump(mode="json")


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
    req = enc.request
    return {
        "billing_version": req.billing_version,
        "profileId": req.profileId,
        "meter_event": enc.meter_json(),
        "tariff_snapshot": enc.tariff_json(),
        "billing": {
            "expected_charge_micros": mc.charge,
            "billing_verify_fingerprint": fingerprint(
                enc.meter_json(), enc.tariff_json(), mc.charge, window
            ),
            "window": window,
        },
    }


def build_metered_bundle(
    request: MeteredAttestRequest | Mapping[str, Any] | MeteredEncoded,
    *,
    attester: Attester,
    account_salt: int,
    prover: ProofSource,
    vkey_sha256: str,
    salt: int | None = None,
    before: WindowState = GENESIS,
) -> MeteredBundle:
    """Prove and sign one metered event from its window's state `before` (digest version 1,
    binding v2). Raises InputError for bad input or an overflowing window before proving."""
    enc = request if isinstance(request, MeteredEncoded) else encode_metered_request(request)
    salt = random_field_element() if salt is None else salt
    mc = charge_metered(enc, before, salt, account_salt)
    proof = prover.prove(circuit_input(enc.meter, enc.tariff, before, salt, account_salt))
    if proof.public_signals != mc.signals.as_decimal():
        raise ToolError("prover's public signals disagree with the Python reference; not signing")
    signed = _sign(enc, mc, attester, salt, account_salt, vkey_sha256, proof.proof)
    return MeteredBundle.model_validate(signed)


def sign_unproven_metered(
    enc: MeteredEncoded,
    before: WindowState,
    *,
    attester: Attester,
    account_salt: int,
    vkey_sha256: str,
    salt: int | None = None,
) -> dict[str, Any]:
    """Sign one metered event from `before` without its proof (digest version 2): the charge,
    the state after and all seven public signals, state keys included, are the reference's;
    the bundle carries the state before in clear, so any worker can prove it later, in any
    order (`prove_unproven_metered`). InputError if the window would overflow."""
    salt = random_field_element() if salt is None else salt
    mc = charge_metered(enc, before, salt, account_salt)
    return _sign(enc, mc, attester, salt, account_salt, vkey_sha256, None)


def prove_unproven_metered(bundle: Mapping[str, Any], prover: ProofSource) -> dict[str, Any]:
    """The Groth16 proof for a bundle signed by `sign_unproven_metered`, from its own record
    (meter, tariff, `billing.window.before`, salts); ToolError unless the prover reproduces
    the signed public signals (the proof is then never attached)."""
    enc = encode_metered_request({k: bundle[k] for k in ("meter_event", "tariff_snapshot")})
    before = state_from_json(bundle["billing"]["window"]["before"], enc.tariff.names, "before")
    salt, account_salt = signed_salts(bundle)
    witness_input = circuit_input(enc.meter, enc.tariff, before, salt, account_salt)
    return prove_as_signed(bundle, prover, witness_input)


def _sign(
    enc: MeteredEncoded,
    mc: MeteredCharge,
    attester: Attester,
    salt: int,
    account_salt: int,
    vkey_sha256: str,
    proof: dict[str, Any] | None,
) -> dict[str, Any]:
    return sign_record(
        metered_record(enc, mc),
        BINDING_V2,
        mc.signals,
        attester,
        salt,
        account_salt,
        vkey_sha256,
        proof,
    )
