"""The invoice's arithmetic, as a property: whatever the tariff (tiers, free allowances, prices
with six decimals, min/max clamps, rounding mode, a new tariff version mid-window) and whatever
the events, the lines' amounts sum exactly to the window's total, and each tier line is its
units × its unit price. The window states come from the reference (vbill.encode.metered),
which the circuit tests hold equal to the circuit; no proof is needed for the arithmetic.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from support.metered import request
from vbill.billing.invoice import decimal_text, invoice_of
from vbill.bundle.metered import encode_metered_request, state_to_json
from vbill.encode.metered import GENESIS, transition
from vbill.verify.statement import Statement

NAMES = ("input_tokens", "output_tokens")
price = st.builds(
    lambda whole, frac: decimal_text(whole * 10**6 + frac, 6),
    st.integers(0, 50),
    st.sampled_from([0, 1, 250_000, 500_000, 333_333, 999_999]),
)


@st.composite
def dimension(draw: Any) -> dict[str, Any]:
    bounds = sorted(set(draw(st.lists(st.integers(1, 5000), max_size=3))))
    prices = [draw(price) for _ in range(len(bounds) + 1)]
    ups: list[int | None] = [*bounds, None]
    return {
        "tiers": [{"up_to": u, "unit_price_micros": p} for u, p in zip(ups, prices, strict=True)]
    }


@st.composite
def tariff(draw: Any) -> dict[str, Any]:
    lo = draw(st.sampled_from([0, 0, 1, 50]))
    return {
        "dimensions": {n: draw(dimension()) for n in NAMES},
        "rounding_mode": draw(st.sampled_from(["floor", "ceil", "half_up"])),
        "min_charge_micros": lo,
        "max_charge_micros": draw(st.sampled_from([lo, lo + 3, 10**6, 5 * 10**9])),
    }


def window(tariffs: list[dict[str, Any]], events: list[tuple[int, int, int]]) -> list[dict]:
    """The window's bundles as the statement hands them to the invoice: meter, tariff, charge
    and states, from the reference transition (event i uses tariffs[version_i])."""
    out, state = [], GENESIS
    for i, (version, a, b) in enumerate(events):
        t = tariffs[version % len(tariffs)]
        req = request(t["dimensions"], {"input_tokens": a, "output_tokens": b}, tariff_id="t",
                      tariff_version=f"{version % len(tariffs)}.0",
                      **{k: v for k, v in t.items() if k != "dimensions"})  # fmt: skip
        req["meter_event"]["event_id"] = f"e{i}"
        enc = encode_metered_request(req)
        charge, after = transition(enc.tariff, enc.meter, state)
        out.append(
            {
                "meter_event": enc.meter_json(),
                "tariff_snapshot": enc.tariff_json(),
                "billing": {
                    "expected_charge_micros": charge,
                    "window": {
                        "seq": after.seq,
                        "before": state_to_json(state, enc.tariff.names),
                        "after": state_to_json(after, enc.tariff.names),
                    },
                },
                "attestation": {"billing_proof": {"public_signals": ["0"] * 7}},
            }
        )
        state = after
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(tariff(), min_size=1, max_size=2),
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 3000), st.integers(0, 3000)),
        min_size=1,
        max_size=8,
    ),
)
def test_the_lines_sum_exactly_to_the_total(
    tariffs: list[dict[str, Any]], events: list[tuple[int, int, int]]
) -> None:
    bundles = window(tariffs, events)
    last = bundles[-1]["billing"]["window"]["after"]
    total = sum(b["billing"]["expected_charge_micros"] for b in bundles)
    assert int(last["charge"]) == total
    statement = Statement(
        tenant_id="tenant_acme",
        billing_window_id="2026-05",
        tariff_id="t",
        currency="ETH",
        events=len(bundles),
        last_total=total,
        totals_by_dimension={k: int(v) for k, v in last["units"].items()},
    )
    inv = invoice_of(statement, bundles)
    assert inv["total_micros"] == str(total)
    assert sum(Decimal(line["amount_micros"]) for line in inv["lines"]) == total
    assert sum(Decimal(line["amount"]) for line in inv["lines"]) == Decimal(total) / 10**6
    for line in inv["lines"]:
        if line["kind"] == "usage":
            units, unit = Decimal(line["units"]), Decimal(line["unit_price_micros"])
            assert Decimal(line["amount_micros"]) == units * unit and units > 0
            assert line["free"] == (unit == 0)
    used = {
        n: sum(Decimal(li["units"]) for li in inv["lines"] if li.get("dimension") == n)
        for n in NAMES
    }
    assert used == {n: int(last["units"][n]) for n in NAMES}  # every unit on exactly one line


def test_decimal_text_is_exact() -> None:
    assert [decimal_text(v, 6) for v in (0, 1, 1_500_000, -250_000, 10**12)] == [
        "0", "0.000001", "1.5", "-0.25", "1000000",
    ]  # fmt: skip
