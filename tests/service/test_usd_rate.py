"""`cost_usd` in a metered ETH bundle's usage object, from a USD rate snapshot the attester
signs at ingestion (docs/protocol-v2.md §12), over a real socket with real proofs.

With `usd_rate` configured the bundle carries `attestation.usd_rate` {rate, source, time,
signature} and `usage.cost_usd = cost_eth × rate`; verify (library, CLI, HTTP) checks the
signature and the arithmetic and names what was edited; a bundle without it verifies as
before; a rate file the operator updates is re-read.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from support import V2, needs_build, needs_v2
from support.http_server import ATTEST, AUTH, SECRET, VERIFY, serve
from support.ingest import ASYNC, finished
from vbill import paths
from vbill.bundle.keys import Attester
from vbill.bundle.usage import RateSource, cost_usd
from vbill.cli.main import main
from vbill.errors import ToolError
from vbill.models import MeteredAttestRequest
from vbill.service import Settings, create_app
from vbill.verify.trust import TrustSet
from vbill.verify.verify import request_from_bundle, verify_bundle

TENANT = "t_usd"
EXAMPLE: dict[str, Any] = MeteredAttestRequest.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
ETH_WEI = 10**18


def inference(event_id: str, currency: str = "ETH") -> dict[str, Any]:
    r = copy.deepcopy(EXAMPLE)
    r["meter_event"].update(tenant_id=TENANT, event_id=event_id)
    r["tariff_snapshot"]["currency"] = currency
    return r


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Attester, Path]]:
    """A service whose USD rate is a file the operator updates; the tenant has 1 ETH credited
    (no chain here: the deposit is recorded in the store as the settlement worker would)."""
    needs_build()
    needs_v2()
    home = tmp_path_factory.mktemp("usd-home")
    attester = Attester.new(home / "attester.key")
    rate_file = home / "usd-rate.json"
    rate_file.write_text(json.dumps({"rate": "3150.25", "time": "2026-05-29T11:59:00.000Z"}))
    settings = Settings(
        home=home,
        attest_secret=SECRET,
        prover_workers=1,
        usd_rate={"file": "usd-rate.json", "source": "ops-desk-spot"},
    )
    app = create_app(settings)
    with serve(app) as url, httpx.Client(base_url=url, timeout=120) as http:
        r = http.post("/api/vdi/billing/accounts", json={"tenant_id": TENANT}, headers=AUTH)
        assert r.status_code == 201, r.text
        store = app.state.svc.store
        store.record_deposit("0x" + "ab" * 32, 0, TENANT, ETH_WEI, 1)
        store.credit_confirmed(head_block=100, confirmations=1)
        yield http, attester, rate_file


def trust_of(attester: Attester) -> TrustSet:
    return TrustSet().with_(attesters=[attester.address], vkey_files=[paths.VKEY, V2.vkey])


def verdicts(bundle: dict[str, Any], attester: Attester) -> tuple[str | None, str | None, bool]:
    """(verification reason, billing reason, binding valid) of the library's verify."""
    result = verify_bundle(bundle, trust=trust_of(attester))
    assert result.valid == (
        result.verification.valid
        and result.billing_check.valid
        and result.incircuit_binding_verification.valid
    )
    return (
        result.verification.reason,
        result.billing_check.reason,
        result.incircuit_binding_verification.valid,
    )


def test_a_metered_eth_bundle_carries_cost_usd_from_a_signed_snapshot(
    live: tuple[httpx.Client, Attester, Path],
) -> None:
    http, attester, _ = live
    r = http.post(ATTEST, json=inference("usd_1"), headers=ASYNC)
    assert r.status_code == 202, r.text
    bundle = finished(http, "usd_1")
    snap = bundle["attestation"]["usd_rate"]
    assert (snap["rate"], snap["source"]) == ("3150.25", "ops-desk-spot")
    assert snap["time"] == "2026-05-29T11:59:00.000Z"
    usage = bundle["usage"]
    assert usage["cost_eth"] == "0.000529"  # 529 micro-ETH
    assert usage["cost_usd"] == "1.66648225"
    assert Decimal(usage["cost_usd"]) == Decimal(usage["cost_eth"]) * Decimal(snap["rate"])
    assert verdicts(bundle, attester) == (None, None, True)

    # HTTP verify takes the usage object beside the bundle's parts and checks it too
    body = request_from_bundle(bundle)
    assert body["usage"] == usage
    assert http.post(VERIFY, json=body).json()["valid"] is True
    body["usage"] = {**usage, "cost_usd": "1.67"}
    answer = http.post(VERIFY, json=body).json()
    assert answer["valid"] is False
    assert answer["billing_check"]["reason"] == (
        "usage.cost_usd: '1.67' but cost_eth × rate = 0.000529 × 3150.25 = '1.66648225'"
    )


def test_an_edited_snapshot_or_cost_fails_with_a_plain_reason(
    live: tuple[httpx.Client, Attester, Path], tmp_path: Path
) -> None:
    http, attester, _ = live
    assert http.post(ATTEST, json=inference("usd_2"), headers=AUTH).status_code == 200
    bundle = finished(http, "usd_2")

    richer = copy.deepcopy(bundle)  # a higher rate, and the cost made to agree with it
    richer["attestation"]["usd_rate"]["rate"] = "4000"
    charge = int(bundle["billing"]["expected_charge_micros"])
    richer["usage"]["cost_usd"] = cost_usd(charge, "4000")
    why, _, _ = verdicts(richer, attester)
    assert why is not None and why.startswith("attestation.usd_rate: its signature is not the")

    for member, value in (("source", "someone-else"), ("time", "2026-05-30T00:00:00.000Z")):
        edited = copy.deepcopy(bundle)
        edited["attestation"]["usd_rate"][member] = value
        assert verdicts(edited, attester)[0] == why

    moved = copy.deepcopy(bundle)  # another bundle's snapshot, signature and all
    moved["attestation"]["usd_rate"] = finished(http, "usd_1")["attestation"]["usd_rate"]
    assert verdicts(moved, attester)[0] == why

    bad_rate = copy.deepcopy(bundle)
    bad_rate["attestation"]["usd_rate"]["rate"] = "-1"
    assert verdicts(bad_rate, attester)[0].startswith("attestation.usd_rate.rate: must be")  # type: ignore[union-attr]

    orphan = copy.deepcopy(bundle)  # the snapshot dropped, its cost kept
    del orphan["attestation"]["usd_rate"]
    assert verdicts(orphan, attester)[1] == (
        "usage.cost_usd: stated, but the bundle has no signed rate snapshot"
    )
    eth = copy.deepcopy(bundle)
    eth["usage"]["cost_eth"] = "0.001"
    assert verdicts(eth, attester)[1] == (
        f"usage.cost_eth: '0.001' but the record gives {bundle['usage']['cost_eth']!r}"
    )

    # without the snapshot and the cost (an old bundle, or one served without a rate source)
    plain = copy.deepcopy(orphan)
    del plain["usage"]["cost_usd"]
    assert verdicts(plain, attester) == (None, None, True)
    del plain["usage"]
    assert verdicts(plain, attester) == (None, None, True)

    # the CLI reads the same reasons from the bundle file
    good, forged = tmp_path / "good.json", tmp_path / "forged.json"
    good.write_text(json.dumps(bundle))
    forged.write_text(json.dumps(richer))
    trust = ["--trust-attester", attester.address, "--vkey", str(V2.vkey)]
    ok = CliRunner().invoke(main, ["verify", str(good), *trust])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(main, ["verify", str(forged), *trust])
    assert bad.exit_code == 1 and "attestation.usd_rate: its signature is not" in bad.output


def test_the_rate_file_is_reread_and_usd_tariffs_carry_no_cost(
    live: tuple[httpx.Client, Attester, Path],
) -> None:
    http, attester, rate_file = live
    rate_file.write_text(json.dumps({"rate": "2999.5"}))  # no time: the file's mtime
    os.utime(rate_file, ns=(1_780_000_000_000_000_000, 1_780_000_000_000_000_000))
    r = http.post(ATTEST, json=inference("usd_3"), headers=AUTH)
    assert r.status_code == 200, r.text
    bundle = r.json()
    snap = bundle["attestation"]["usd_rate"]
    assert snap["rate"] == "2999.5" and snap["time"] == "2026-05-28T20:26:40.000Z"
    charge = int(bundle["billing"]["expected_charge_micros"])
    assert bundle["usage"]["cost_usd"] == cost_usd(charge, "2999.5")
    assert verdicts(bundle, attester) == (None, None, True)

    usd = http.post(ATTEST, json=inference("usd_4", currency="USD"), headers=AUTH).json()
    assert "usd_rate" not in usd["attestation"]
    assert set(usd["usage"]) == {"units", "total_units"}


def test_rate_source_configuration_is_checked_at_start(tmp_path: Path) -> None:
    fixed = RateSource.from_config({"rate": "3150.25", "source": "treasury"}, tmp_path)
    assert fixed is not None and fixed.snapshot().rate == "3150.25"  # type: ignore[union-attr]
    assert RateSource.from_config(None, tmp_path) is None
    for config, fragment in (
        ({"rate": 3150.25, "source": "x"}, "usd_rate.rate: must be a decimal string"),
        ({"rate": "3150.123456789", "source": "x"}, "at most 8 decimals"),
        ({"rate": "1"}, "usd_rate.source"),
        ({"rate": "1", "source": "x", "time": "yesterday"}, "usd_rate.time"),
        ({"rate": "1", "file": "f.json"}, "give rate or file"),
        ({"source": "x"}, "expected"),
        ({"file": "missing.json"}, "usd_rate file"),
    ):
        with pytest.raises(ToolError, match=fragment):
            RateSource.from_config(config, tmp_path)
    # a file that stops parsing keeps the last good rate (its own time says how old)
    f = tmp_path / "rate.json"
    f.write_text('{"rate": "10", "time": "2026-01-01T00:00:00.000Z"}')
    src = RateSource.from_config({"file": str(f), "source": "desk"}, tmp_path)
    assert src is not None
    f.write_text("{not json")
    assert src.snapshot() == src.snapshot(strict=False)
    assert src.snapshot().rate == "10"  # type: ignore[union-attr]
