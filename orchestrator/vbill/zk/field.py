"""BN254 field moduli and the one canonical text form of a field element (docs/protocol.md §2.7).

A field element in JSON is a decimal string 0 ≤ x < r with no sign, no leading zeros and no
whitespace; accepting anything looser would let x and x + r (or "07" and "7") both pass as
the same signal.
"""

from __future__ import annotations

import re

from vbill.errors import InputError

R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
"""The BN254 scalar field modulus r: circuit signals, Poseidon inputs and outputs live here."""

P = 21888242871839275222246405745257275088696311157297823662689037894645226208583
"""The BN254 base field modulus p: coordinates of proof points live here."""

_CANONICAL_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_MAX_DIGITS = len(str(R))


def parse_field_element(value: object, field_name: str) -> int:
    """Parse a canonical decimal string 0 ≤ x < r; raise InputError naming `field_name`."""
    if not isinstance(value, str):
        raise InputError(
            field_name, f"must be a decimal string field element, got {type(value).__name__}"
        )
    if len(value) > _MAX_DIGITS or _CANONICAL_DECIMAL.fullmatch(value) is None:
        raise InputError(
            field_name,
            "must be a canonical decimal string (digits only, no sign, no leading zeros)",
        )
    x = int(value)
    if x >= R:
        raise InputError(field_name, "must be less than the BN254 scalar field modulus r")
    return x


def to_dec(x: int) -> str:
    """Write a field element in its canonical decimal form; rejects non-elements loudly."""
    if type(x) is not int or not 0 <= x < R:
        raise ValueError(f"not a field element: {x!r}")
    return str(x)
