"""The reference charge in exact integers, the arithmetic the circuit constrains (protocol.md §4).

raw = usage_units × price_scaled is in micros × 10^6; one division by 10^6 gives micros, the
rounding mode decides what the remainder adds, and the result is clamped to [min, max].
"""

from __future__ import annotations

from vbill.encode.encoding import PRICE_SCALE, ROUNDING_MODES, U64_LIMIT, MeterFields, TariffFields
from vbill.errors import InputError

FLOOR = ROUNDING_MODES["floor"]
CEIL = ROUNDING_MODES["ceil"]
HALF_UP = ROUNDING_MODES["half_up"]
_HALF = PRICE_SCALE // 2


def compute_charge(
    usage_units: int,
    price_scaled: int,
    min_charge: int,
    max_charge: int,
    rounding_mode: int,
) -> int:
    """Charge in micros for an encoded usage and usage_linear tariff; raises InputError."""
    for name, value in (
        ("meter_event.usage_units", usage_units),
        ("tariff_snapshot.unit_price_micros", price_scaled),
        ("tariff_snapshot.min_charge_micros", min_charge),
        ("tariff_snapshot.max_charge_micros", max_charge),
    ):
        if type(value) is not int or not 0 <= value < U64_LIMIT:
            raise InputError(name, "must be an integer 0 ≤ v < 2^64")
    if rounding_mode not in (FLOOR, CEIL, HALF_UP) or type(rounding_mode) is not int:
        raise InputError(
            "tariff_snapshot.rounding_mode", "must be floor (0), ceil (1) or half_up (2)"
        )
    if min_charge > max_charge:
        raise InputError("tariff_snapshot.min_charge_micros", "must not exceed max_charge_micros")
    q, rem = divmod(usage_units * price_scaled, PRICE_SCALE)
    rounded = q + (rounding_mode == CEIL and rem > 0) + (rounding_mode == HALF_UP and rem >= _HALF)
    return min(max(rounded, min_charge), max_charge)


def charge_for(meter: MeterFields, tariff: TariffFields) -> int:
    """The charge an encoded meter event owes under an encoded tariff."""
    return compute_charge(
        meter.usage_units,
        tariff.price_scaled,
        tariff.min_charge_micros,
        tariff.max_charge_micros,
        tariff.rounding_mode,
    )
