"""Circuit input and the Python recomputation of the circuit's public signals (docs/protocol.md §3).

The verifier never reads public signals from a bundle: it recomputes them here from the
bundle's own fields and salts, and only then asks whether the proof verifies for them.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Self

from vbill import paths
from vbill.bindings import version_of
from vbill.encode.charge import charge_for
from vbill.encode.encoding import DOMAIN_TAG, MeterFields, TariffFields
from vbill.zk.field import R, to_dec
from vbill.zk.poseidon import poseidon, poseidon_repeated

CIRCUITS_JSON = paths.CIRCUITS / "circuits.json"


class SignalList:
    """List forms of a binding's public-signal dataclass, in circuit order (`names()`)."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        raise NotImplementedError

    def as_list(self) -> list[int]:
        return [getattr(self, name) for name in self.names()]

    def as_decimal(self) -> list[str]:
        """The snarkjs `publicSignals` form: canonical decimal strings."""
        return [to_dec(x) for x in self.as_list()]

    @classmethod
    def from_list(cls, values: list[int]) -> Self:
        names = cls.names()
        if len(values) != len(names):
            raise ValueError(f"expected {len(names)} public signals, got {len(values)}")
        return cls(**dict(zip(names, values, strict=True)))


def declared_signal_names(cls: type, binding: str) -> tuple[str, ...]:
    """Dataclass field order, checked against `binding`'s `pubs` in circuits/circuits.json."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    if CIRCUITS_JSON.exists():
        declared = json.loads(CIRCUITS_JSON.read_text())
        pubs = [c.get("pubs") for c in declared.values() if c.get("binding_version") == binding]
        if len(pubs) != 1 or tuple(pubs[0]) != names:
            raise AssertionError(
                f"{CIRCUITS_JSON} declares {binding} public signals {pubs}, Python {names}"
            )
    return names


@dataclass(frozen=True)
class PublicSignals(SignalList):
    """The circuit's public signals, fields in circuit order (= outputs of `main`)."""

    commitment: int
    charge: int
    tariff_key: int
    nullifier: int
    tenant_key: int

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return public_signal_names()


@cache
def public_signal_names() -> tuple[str, ...]:
    """v1's public signals in circuit order (checked against circuits/circuits.json)."""
    return declared_signal_names(PublicSignals, version_of("billing_binding"))


def circuit_input(
    meter: MeterFields, tariff: TariffFields, salt: int, account_salt: int
) -> dict[str, str]:
    """The circuit's input JSON: every private input by name, as a canonical decimal string."""
    values = {
        **dataclasses.asdict(meter),
        **dataclasses.asdict(tariff),
        "salt": salt,
        "account_salt": account_salt,
    }
    return {name: to_dec(v) for name, v in values.items()}


def public_signals(
    meter: MeterFields, tariff: TariffFields, salt: int, account_salt: int
) -> PublicSignals:
    """What the circuit outputs for these inputs, computed in Python."""
    for name, value in (("salt", salt), ("account_salt", account_salt)):
        if type(value) is not int or not 0 <= value < R:
            raise ValueError(f"{name} is not a field element")
    meter_hash = poseidon(meter.as_list())
    tariff_hash = poseidon_repeated(tariff.as_list())
    charge = charge_for(meter, tariff)
    return PublicSignals(
        commitment=poseidon([DOMAIN_TAG, meter_hash, tariff_hash, charge, salt, 0, 0, 0]),
        charge=charge,
        tariff_key=poseidon_repeated([tariff_hash, account_salt]),
        nullifier=poseidon([meter.tenant_id, meter.event_id, account_salt]),
        tenant_key=poseidon_repeated([meter.tenant_id, account_salt]),
    )


def random_field_element() -> int:
    """A uniform field element from the OS CSPRNG (rejection sampling, no modulo bias)."""
    while True:
        x = secrets.randbits(R.bit_length())
        if x < R:
            return x
