"""The invoice: a verified window statement as lines a finance team reads (docs/protocol-v2.md §15).

Every number is re-derived from the verified bundles, never read from a summary: per (tariff
version, dimension, tier) the units the window's events moved through that tier × its unit
price = the exact amount (free allowances are zero-price lines); then the rounding difference
(the window is rounded once, on its cumulative exact amount) and each event's clamp difference
(a min/max charge) as lines of their own. So the lines' `amount_micros` sum exactly to
`total_micros`, the last state's cumulative charge.

Amounts are exact decimal strings, in micros and in the currency's units (1 unit = 10^6
micros: USD 0.027425, ETH 0.000554).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from vbill.billing.periods import period_of
from vbill.encode.encoding import PRICE_SCALE, ROUNDING_MODES, U64_LIMIT, encode_price
from vbill.encode.metered import round_micros
from vbill.errors import InputError, VerificationFailed
from vbill.verify.statement import Statement

INVOICE_VERSION = "vbill-invoice-1"
_SUB = PRICE_SCALE  # exact amounts are kept in 10^-6 micros (price_scaled × units)


def decimal_text(value: int, places: int) -> str:
    """value / 10^places as an exact decimal string, trailing zeros dropped ("-0.25", "3")."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**places)
    text = str(whole)
    if frac:
        text += "." + str(frac).rjust(places, "0").rstrip("0")
    return sign + text


def _money(sub_micros: int) -> dict[str, str]:
    """An amount in 10^-6 micros as {amount_micros, amount} (the currency's units)."""
    return {
        "amount_micros": decimal_text(sub_micros, 6),
        "amount": decimal_text(sub_micros, 12),
    }


@dataclass
class _Tier:
    tariff_version: str
    dimension: str
    tier: int
    lo: int
    hi: int | None
    price_scaled: int
    units: int = 0


def _tiers(tariff: Mapping[str, Any], name: str) -> list[tuple[int, int | None, int]]:
    """(lo, hi or None, price_scaled) of a dimension's tiers."""
    out, lo = [], 0
    for i, tier in enumerate(tariff["dimensions"][name]["tiers"]):
        price = encode_price(
            tier["unit_price_micros"], f"tariff_snapshot.dimensions.{name}.tiers[{i}]"
        )
        hi = tier["up_to"]
        out.append((lo, hi, price))
        lo = hi if hi is not None else U64_LIMIT
    return out


def invoice_of(st: Statement, bundles: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The invoice of a statement that holds (VerificationFailed otherwise), `bundles` in its
    chain order (the ones it verified)."""
    if not st.valid:
        why = st.problems[0].message if st.problems else "no bundles"
        raise VerificationFailed(f"the statement does not verify, so there is no invoice: {why}")
    tiers: dict[tuple[str, str, int], _Tier] = {}
    exact = 0  # Σ units × price over every tier line (10^-6 micros)
    rounded = 0  # Σ R(A_after) − R(A_before): what the window's rounding gives
    clamps: list[dict[str, Any]] = []
    modes = []
    for bundle in bundles:
        # a correction (docs/protocol-corrections.md) takes units back at the original's
        # tariff: its tiers' units and money go negative, its credit is minus a charge
        correction = "correction" in bundle and "original" in bundle
        source = bundle["original"] if correction else bundle
        tariff, meter = source["tariff_snapshot"], source["meter_event"]
        window = bundle["billing"]["window"]
        version = tariff["tariff_version"]
        sign = -1 if correction else 1
        for name in sorted(tariff["dimensions"]):
            a = int(window["before"]["units"][name])
            b = int(window["after"]["units"][name])
            lo_x, hi_x = (b, a) if correction else (a, b)
            for t, (lo, hi, price) in enumerate(_tiers(tariff, name)):
                top = U64_LIMIT if hi is None else hi
                n = max(0, min(hi_x, top) - max(lo_x, lo))
                if n == 0:
                    continue
                line = tiers.setdefault(
                    (version, name, t), _Tier(version, name, t + 1, lo, hi, price)
                )
                line.units += sign * n
                exact += sign * n * price
        mode = ROUNDING_MODES[tariff["rounding_mode"]]
        modes.append(tariff["rounding_mode"])
        delta = round_micros(int(window["after"]["amount"]), mode) - round_micros(
            int(window["before"]["amount"]), mode
        )
        rounded += delta
        if correction:
            charge = -int(bundle["billing"]["credit_micros"])
            if charge != delta:  # the credit is capped by the window's charge
                clamps.append(
                    {
                        "kind": "clamp",
                        "description": f"credit of {bundle['correction']['correction_id']} "
                        f"capped by the window's charge: credited {-charge}, the tariff gives "
                        f"{-delta}",
                        "event_id": bundle["correction"]["correction_id"],
                        "seq": window["seq"],
                        **_money((charge - delta) * _SUB),
                    }
                )
            continue
        charge = int(bundle["billing"]["expected_charge_micros"])
        if charge != delta:
            bound = "minimum" if charge > delta else "maximum"
            clamps.append(
                {
                    "kind": "clamp",
                    "description": f"{bound} charge per event applied to {meter['event_id']} "
                    f"(seq {window['seq']}): charged {charge}, the tariff gives {delta}",
                    "event_id": meter["event_id"],
                    "seq": window["seq"],
                    **_money((charge - delta) * _SUB),
                }
            )
    last_amount = int(bundles[-1]["billing"]["window"]["after"]["amount"])
    if exact != last_amount:  # the verified chain's states are this very sum
        raise VerificationFailed(
            f"the tier lines give {exact} but the window's exact amount is {last_amount}"
        )
    lines: list[dict[str, Any]] = []
    for key in sorted(tiers):
        tier = tiers[key]
        if tier.units == 0:  # moved through and taken back whole by corrections: nothing left
            continue
        lines.append(
            {
                "kind": "usage",
                "tariff_version": tier.tariff_version,
                "dimension": tier.dimension,
                "tier": tier.tier,
                "tier_from": str(tier.lo),
                "tier_to": None if tier.hi is None else str(tier.hi),
                "units": str(tier.units),
                "unit_price_micros": decimal_text(tier.price_scaled, 6),
                "free": tier.price_scaled == 0,
                **_money(tier.units * tier.price_scaled),
            }
        )
    rounding = rounded * _SUB - exact
    if rounding:
        lines.append(
            {
                "kind": "rounding",
                "description": "rounding of the window's exact total to whole micros "
                f"({', '.join(sorted(set(modes)))})",
                **_money(rounding),
            }
        )
    lines += clamps
    total = int(st.total_micros or 0)
    if sum(Decimal(line["amount_micros"]) for line in lines) != total:
        raise VerificationFailed("the invoice lines do not sum to the statement's total")
    close = st.close
    period = period_of(st.billing_window_id or "") if _is_period(st.billing_window_id) else None
    return {
        "invoice_version": INVOICE_VERSION,
        "tenant_id": st.tenant_id,
        "billing_window_id": st.billing_window_id,
        "tariff_id": st.tariff_id,
        "currency": st.currency,
        "period": {"start": period.start, "end": period.end} if period else None,
        "closed": st.closed,
        "close": None
        if close is None
        else {
            "last_seq": close["last_seq"],
            "last_state_key": close["last_state_key"],
            "closed_at": close["closed_at"],
            "closed_by": close["closed_by"],
            "leaf_index": close["receipt"]["leaf_index"],
        },
        "events": st.events,
        "total_micros": str(total),
        "total": decimal_text(total, 6),
        "totals_by_dimension": {k: str(v) for k, v in st.totals_by_dimension.items()},
        "lines": lines,
        "corrections": [
            {
                **c,
                "credit_micros": str(c["credit_micros"]),
                "credit": decimal_text(c["credit_micros"], 6),
            }
            for c in st.corrections
        ],
        "last_state_key": str(bundles[-1]["attestation"]["billing_proof"]["public_signals"][6]),
    }


def _is_period(window_id: str | None) -> bool:
    try:
        return window_id is not None and period_of(window_id) is not None
    except InputError:
        return False


_TEMPLATES = Path(__file__).parent / "templates"


def invoice_html(invoice: Mapping[str, Any]) -> str:
    """The invoice as one self-contained HTML page that prints on A4 (jinja2, autoescaped)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("invoice.html.j2").render(inv=invoice)
