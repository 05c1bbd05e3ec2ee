"""What the user's docs state about units, worked examples and numbering, recomputed from the
code (issue 24: an independent verifier written from the docs must get the code's numbers).

Fast: no proofs, no service; the numbers come from the reference encoders.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from click.testing import CliRunner
from vbill.bundle.bundle import encode_request
from vbill.bundle.metered import encode_metered_request
from vbill.bundle.usage import cost_eth, cost_usd
from vbill.cli.main import main
from vbill.encode.metered import PRICE_SCALE, transition
from vbill.models import AttestRequest, example

DOCS = Path(__file__).resolve().parents[2] / "docs"
RATE = "3150.25"  # the rate of the documented snapshot


def test_protocol_v2_sections_are_numbered_once_in_order() -> None:
    numbers = [
        int(n) for n in re.findall(r"^## (\d+)\.", (DOCS / "protocol-v2.md").read_text(), re.M)
    ]
    assert numbers == list(range(1, len(numbers) + 1))


def test_the_documented_metered_example_has_the_codes_amount_charge_and_costs() -> None:
    request = json.loads((DOCS / "examples" / "eth-metered.json").read_text())
    enc = encode_metered_request(request)
    charge, after = transition(enc.tariff, enc.meter)
    assert after.amount == charge * PRICE_SCALE  # amount is in 10^-6 micros
    v2 = (DOCS / "protocol-v2.md").read_text()
    assert "10^-6 micros" in v2
    assert not [d.name for d in DOCS.glob("*.md") if "10^-12" in d.read_text()]
    assert f'"expected_charge_micros": {charge},' in v2
    assert f'"amount": "{after.amount}", "charge": "{charge}"' in v2
    usage = f'"cost_eth": "{cost_eth(charge)}", "cost_usd": "{cost_usd(charge, RATE)}"'
    for doc in ("protocol-v2.md", "http-api.md"):
        text = (DOCS / doc).read_text()
        assert usage in text, doc
        assert text.count('"cost_eth"') == text.count(usage), doc  # no other figure
    stated = f"{cost_eth(charge)} × {RATE} = '{cost_usd(charge, RATE)}'"
    for doc in ("protocol-v2.md", "verifier-page.md"):
        assert stated in " ".join((DOCS / doc).read_text().split()), doc


def test_protocol_md_names_the_spellings_that_encode_alike() -> None:
    a = example(AttestRequest)
    b = copy.deepcopy(a)
    a["tariff_snapshot"]["unit_price_micros"] = "1.25"
    b["tariff_snapshot"]["unit_price_micros"] = "1.250"
    a["meter_event"]["event_timestamp"] = "2026-05-29T12:00:01.000Z"
    b["meter_event"]["event_timestamp"] = "2026-05-29T12:00:01Z"
    ea, eb = encode_request(a), encode_request(b)
    assert (ea.meter, ea.tariff, ea.charge) == (eb.meter, eb.tariff, eb.charge)
    text = " ".join((DOCS / "protocol.md").read_text().split())
    assert "exactly one accepted spelling" not in text
    for spelling in ('`"1.25"`, `"1.250"`', "`2026-05-29T12:00:01Z`, `…01.000Z`", "omitted"):
        assert spelling in text, spelling


def test_cli_md_states_the_on_chain_limits_in_micro_eth() -> None:
    text = (DOCS / "cli.md").read_text()
    section = text[text.index("### `vbill limits`") :]
    section = section[: section.index("```")]
    assert "in ETH" not in section and "(in ETH)" not in section
    assert "micro-ETH" in section


def test_the_help_funds_an_eth_account_before_its_first_attest() -> None:
    out = CliRunner().invoke(main, ["--help"]).output
    eth = out[out.index("An ETH charge") :]
    order = [eth.index(step) for step in ("vbill deposit", "vbill tariff accept", "vbill attest")]
    assert order == sorted(order), eth
