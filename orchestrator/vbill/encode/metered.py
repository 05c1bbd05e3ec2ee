"""Metered tariffs (binding bn128-poseidon8-v2): encoding, tier math and the window state.

The reference for docs/protocol-v2.md, in exact integers and equal to circuits/
metered_binding.circom bit for bit: a tariff prices up to 4 usage dimensions with up to 4
graduated tiers each, tiers sit on the cumulative usage of the billing window, and rounding
happens on the window's cumulative exact amount, so sub-micro charges add up instead of
drifting. Everything is padded to the circuit's fixed 4 × 4 shape here, once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vbill.encode.charge import CEIL, HALF_UP
from vbill.encode.encoding import (
    PRICE_SCALE,
    U64_LIMIT,
    _check_keys,
    _kind,
    encode_event_fields,
    encode_price,
    encode_string,
    encode_tariff_fields,
    encode_u64,
    field_paths,
    hash_string,
)
from vbill.errors import InputError

MAX_DIMENSIONS = 4
MAX_TIERS = 4
METERED_CLASSES = {"metered": 2}
METERED = METERED_CLASSES["metered"]
UNBOUNDED = U64_LIMIT - 1
"""`up_to` of an unbounded tier: every cumulative value is < 2^64, so min(x, 2^64 - 1) = x."""
AMOUNT_LIMIT = 1 << 130
"""The window's cumulative exact amount (10^-6 micros) must stay below 2^130."""

DIMENSION_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)

METERED_METER_KEYS = (
    "event_id",
    "event_timestamp",
    "tenant_id",
    "api_key_id",
    "endpoint",
    "usage",
    "contract_version",
    "billing_window_id",
)
METERED_TARIFF_KEYS = (
    "tariff_id",
    "tariff_version",
    "tariff_class",
    "dimensions",
    "min_charge_micros",
    "max_charge_micros",
    "rounding_mode",
    "currency",
)
_HALF = PRICE_SCALE // 2


@dataclass(frozen=True)
class MeteredTariff:
    """A metered tariff snapshot, encoded and padded to 4 dimensions × 4 tiers.

    `names` are the priced dimensions in circuit order (sorted); dimension d > len(names) is
    padding. `up_to[d]` holds the 3 finite bounds of dimension d, UNBOUNDED where a tier is
    the last one or padding; `price_scaled[d]` the 4 tier prices, 0 for padding.
    """

    tariff_id: int
    tariff_version: int
    tariff_class: int
    names: tuple[str, ...]
    price_scaled: tuple[tuple[int, ...], ...]
    up_to: tuple[tuple[int, ...], ...]
    min_charge_micros: int
    max_charge_micros: int
    rounding_mode: int
    currency: int

    @property
    def dimension_names(self) -> int:
        """The string rule applied to the sorted names joined by "," (one field element)."""
        return hash_string(",".join(self.names))

    def words(self) -> list[int]:
        """The 32 64-bit words of the tariff key, in docs/protocol-v2.md order."""
        out = [
            self.tariff_class,
            self.rounding_mode,
            self.min_charge_micros,
            self.max_charge_micros,
        ]
        for prices, bounds in zip(self.price_scaled, self.up_to, strict=True):
            out += [*prices, *bounds]
        return out

    @classmethod
    def from_wire(cls, obj: Any, path: str = "tariff_snapshot") -> MeteredTariff:
        """Encode a metered `tariff_snapshot`; raises InputError naming the bad field."""
        f = field_paths(obj, path, METERED_TARIFF_KEYS)
        dims = obj["dimensions"]
        if not isinstance(dims, Mapping):
            raise InputError(f["dimensions"], f"must be an object, got {_kind(dims)}")
        if not 1 <= len(dims) <= MAX_DIMENSIONS:
            raise InputError(f["dimensions"], f"must price 1 to {MAX_DIMENSIONS} dimensions")
        names = tuple(sorted(dims))
        prices: list[tuple[int, ...]] = []
        bounds: list[tuple[int, ...]] = []
        for name in names:
            p, b = _encode_dimension(name, dims[name], f"{f['dimensions']}.{name}")
            prices.append(p)
            bounds.append(b)
        for _ in range(MAX_DIMENSIONS - len(names)):
            prices.append((0,) * MAX_TIERS)
            bounds.append((UNBOUNDED,) * (MAX_TIERS - 1))
        priced = {
            "names": lambda: names,
            "price_scaled": lambda: tuple(prices),
            "up_to": lambda: tuple(bounds),
        }
        return cls(**encode_tariff_fields(obj, f, METERED_CLASSES, priced, encode_string))


def _encode_dimension(name: Any, obj: Any, path: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """One dimension's tiers → (4 prices, 3 bounds), padded; checks the name and the bounds."""
    if not isinstance(name, str) or DIMENSION_NAME.fullmatch(name) is None:
        raise InputError(path, "dimension names must match ^[a-z][a-z0-9_]{0,31}$")
    _check_keys(obj, path, ("tiers",))
    tiers = obj["tiers"]
    if not isinstance(tiers, list) or not 1 <= len(tiers) <= MAX_TIERS:
        raise InputError(f"{path}.tiers", f"must be a list of 1 to {MAX_TIERS} tiers")
    prices, bounds = [], []
    previous = 0
    for i, tier in enumerate(tiers):
        at = f"{path}.tiers[{i}]"
        _check_keys(tier, at, ("up_to", "unit_price_micros"))
        prices.append(encode_price(tier["unit_price_micros"], f"{at}.unit_price_micros"))
        last = i == len(tiers) - 1
        if tier["up_to"] is None:
            if not last:
                raise InputError(f"{at}.up_to", "only the last tier is unbounded (null)")
            continue
        if last:
            raise InputError(f"{at}.up_to", "the last tier must be unbounded (null)")
        up_to = encode_u64(tier["up_to"], f"{at}.up_to")
        if up_to <= previous:
            raise InputError(f"{at}.up_to", "must be greater than the previous bound (and 0)")
        if up_to >= UNBOUNDED:
            raise InputError(f"{at}.up_to", "must be below 2^64 - 1 (cumulative units are)")
        bounds.append(up_to)
        previous = up_to
    prices += [0] * (MAX_TIERS - len(prices))
    bounds += [UNBOUNDED] * (MAX_TIERS - 1 - len(bounds))
    return tuple(prices), tuple(bounds)


@dataclass(frozen=True)
class MeteredMeter:
    """A metered meter event; `units` in the tariff's dimension order, padded to 4."""

    event_id: int
    event_timestamp: int
    tenant_id: int
    api_key_id: int
    endpoint: int
    units: tuple[int, ...]
    contract_version: int
    billing_window_id: int

    @classmethod
    def from_wire(cls, obj: Any, tariff: MeteredTariff, path: str = "meter_event") -> MeteredMeter:
        """Encode a metered `meter_event`; every usage name must be priced by `tariff`."""
        f = field_paths(obj, path, METERED_METER_KEYS)
        usage = obj["usage"]
        if not isinstance(usage, Mapping):
            raise InputError(f["usage"], f"must be an object, got {_kind(usage)}")
        for name in usage:
            if name not in tariff.names:
                raise InputError(f"{f['usage']}.{name}", "is not priced by the tariff")
        units = [encode_u64(usage.get(n, 0), f"{f['usage']}.{n}") for n in tariff.names]
        units += [0] * (MAX_DIMENSIONS - len(units))
        return cls(**encode_event_fields(obj, f, {"units": lambda: tuple(units)}))


def encode_metered(request: Mapping[str, Any]) -> tuple[MeteredMeter, MeteredTariff]:
    """Encode a metered request `{"meter_event", "tariff_snapshot"}` (tariff first: it fixes
    the dimension order the usage is read in)."""
    tariff = MeteredTariff.from_wire(request.get("tariff_snapshot"))
    return MeteredMeter.from_wire(request.get("meter_event"), tariff), tariff


@dataclass(frozen=True)
class WindowState:
    """The running total of one billing window (tenant, billing_window_id, tariff_id).

    seq counts the events attested so far; units are cumulative per dimension (padded to 4,
    tariff order); amount is the cumulative exact amount in 10^-6 micros; charge is the sum
    of the clamped charges. Units, seq and charge < 2^64, amount < 2^130.
    """

    seq: int = 0
    units: tuple[int, ...] = (0,) * MAX_DIMENSIONS
    amount: int = 0
    charge: int = 0

    def check(self, path: str = "window") -> None:
        """Raise InputError unless every value fits its width (a state read from a file)."""
        if len(self.units) != MAX_DIMENSIONS:
            raise InputError(f"{path}.units", f"must have {MAX_DIMENSIONS} entries")
        for name, value, limit in (
            ("seq", self.seq, U64_LIMIT),
            ("amount", self.amount, AMOUNT_LIMIT),
            ("charge", self.charge, U64_LIMIT),
            *((f"units[{d}]", u, U64_LIMIT) for d, u in enumerate(self.units)),
        ):
            if type(value) is not int or not 0 <= value < limit:
                raise InputError(
                    f"{path}.{name}", f"must be an integer 0 ≤ v < 2^{limit.bit_length() - 1}"
                )


GENESIS = WindowState()
"""The state before a window's first event: seq 0, everything zero."""


def tier_cost(x: int, up_to: tuple[int, ...], prices: tuple[int, ...]) -> int:
    """F(x): the exact cost (10^-6 micros) of cumulative units [0, x) under a dimension's tiers."""
    cost, lo = 0, 0
    for t, price in enumerate(prices):
        hi = up_to[t] if t < len(up_to) else U64_LIMIT
        cost += price * (min(x, hi) - min(x, lo))
        lo = hi
    return cost


def event_amount(tariff: MeteredTariff, before: tuple[int, ...], units: tuple[int, ...]) -> int:
    """raw = Σ_d F_d(a_d + units_d) − F_d(a_d) = Σ price × |[a, b) ∩ [tier_lo, tier_hi)|."""
    return sum(
        tier_cost(a + u, bounds, prices) - tier_cost(a, bounds, prices)
        for a, u, bounds, prices in zip(
            before, units, tariff.up_to, tariff.price_scaled, strict=True
        )
    )


def round_micros(amount: int, rounding_mode: int) -> int:
    """R(x): x / 10^6 in micros, rounded by the mode (floor 0, ceil 1, half_up 2)."""
    q, rem = divmod(amount, PRICE_SCALE)
    return q + (rounding_mode == CEIL and rem > 0) + (rounding_mode == HALF_UP and rem >= _HALF)


def transition(
    tariff: MeteredTariff, meter: MeteredMeter, before: WindowState = GENESIS
) -> tuple[int, WindowState]:
    """(charge, state after) of one event; raises InputError if a cumulative value overflows.

    charge = clamp(R(A_after) − R(A_before), min, max), with A the window's exact amount.
    """
    before.check("window.before")
    units = tuple(a + u for a, u in zip(before.units, meter.units, strict=True))
    for d, total in enumerate(units):
        if total >= U64_LIMIT:
            name = tariff.names[d] if d < len(tariff.names) else f"[{d}]"
            raise InputError(
                f"meter_event.usage.{name}", "cumulative units in the window reach 2^64"
            )
    amount = before.amount + event_amount(tariff, before.units, meter.units)
    if amount >= AMOUNT_LIMIT:
        raise InputError("window.after.amount", "the window's cumulative amount reaches 2^130")
    delta = round_micros(amount, tariff.rounding_mode) - round_micros(
        before.amount, tariff.rounding_mode
    )
    charge = min(max(delta, tariff.min_charge_micros), tariff.max_charge_micros)
    if before.charge + charge >= U64_LIMIT:
        raise InputError("window.after.charge", "the window's cumulative charge reaches 2^64")
    if before.seq + 1 >= U64_LIMIT:
        raise InputError("window.after.seq", "the window has 2^64 - 1 events")
    return charge, WindowState(before.seq + 1, units, amount, before.charge + charge)


def correction_transition(
    tariff: MeteredTariff, units: tuple[int, ...], before: WindowState
) -> tuple[int, WindowState]:
    """(credit, state after) of a correction taking `units` back (docs/protocol-corrections.md §2).

    Priced by the original event's `tariff`, backwards from the window's current state: with
    a_d = before.units[d] and b_d = a_d − units_d, raw = Σ_d F_d(a_d) − F_d(b_d),
    amount_after = A − raw, credit = min(R(A) − R(amount_after), before.charge), and the state
    after is (seq + 1, b, amount_after, before.charge − credit). Because F telescopes, a window
    without a binding clamp ends where it would have without the corrected units. The caller
    checks `units` against the original's (≤ per dimension); this refuses what no window allows.
    """
    before.check("window.before")
    if len(units) != MAX_DIMENSIONS:
        raise InputError("correction.usage", f"must have {MAX_DIMENSIONS} entries")
    after_units = []
    for d, (a, u) in enumerate(zip(before.units, units, strict=True)):
        name = tariff.names[d] if d < len(tariff.names) else f"[{d}]"
        if type(u) is not int or not 0 <= u <= a:
            raise InputError(
                f"correction.usage.{name}", "must be 0 ≤ units ≤ the window's cumulative units"
            )
        after_units.append(a - u)
    b = tuple(after_units)
    raw = event_amount(tariff, b, units)  # Σ F_d(b_d + units_d) − F_d(b_d), b_d + units_d = a_d
    amount = before.amount - raw
    if amount < 0:
        raise InputError(
            "window.after.amount",
            "the correction takes back more than the window's amount (its prices changed)",
        )
    mode = tariff.rounding_mode
    credit = min(round_micros(before.amount, mode) - round_micros(amount, mode), before.charge)
    if before.seq + 1 >= U64_LIMIT:
        raise InputError("window.after.seq", "the window has 2^64 - 1 entries")
    return credit, WindowState(before.seq + 1, b, amount, before.charge - credit)


CORRECTION_KEYS = ("tenant_id", "corrects", "correction_id", "reason", "usage")


@dataclass(frozen=True)
class MeteredCorrection:
    """A correction of one metered event (docs/protocol-corrections.md §1), encoded: the string
    fields hashed, the units taken back per dimension in the original tariff's order, padded
    to 4."""

    tenant_id: int
    corrects: int
    correction_id: int
    reason: int
    units: tuple[int, ...]

    @classmethod
    def from_wire(
        cls,
        obj: Any,
        tariff: MeteredTariff,
        original: tuple[int, ...],
        path: str = "correction",
    ) -> MeteredCorrection:
        """Encode a correction of an event of `original` units under its `tariff`; `usage`
        absent (or null) takes back every unit (a void). 0 ≤ units ≤ the original's per
        dimension, every name priced; raises InputError naming the field."""
        if not isinstance(obj, Mapping):
            raise InputError(path, f"must be an object, got {_kind(obj)}")
        _check_keys({"usage": None, **obj}, path, CORRECTION_KEYS)
        usage = obj.get("usage")
        if usage is None:
            units = tuple(original)
        else:
            if not isinstance(usage, Mapping):
                raise InputError(f"{path}.usage", f"must be an object, got {_kind(usage)}")
            for name in usage:
                if name not in tariff.names:
                    raise InputError(f"{path}.usage.{name}", "is not priced by the tariff")
            taken = []
            for d, name in enumerate(tariff.names):
                u = encode_u64(usage.get(name, 0), f"{path}.usage.{name}")
                if u > original[d]:
                    raise InputError(
                        f"{path}.usage.{name}",
                        f"{u} units is more than the corrected event's {original[d]}",
                    )
                taken.append(u)
            units = tuple(taken) + (0,) * (MAX_DIMENSIONS - len(taken))
        return cls(
            tenant_id=encode_string(obj["tenant_id"], f"{path}.tenant_id"),
            corrects=encode_string(obj["corrects"], f"{path}.corrects"),
            correction_id=encode_string(obj["correction_id"], f"{path}.correction_id"),
            reason=encode_string(obj["reason"], f"{path}.reason"),
            units=units,
        )
