"""The OpenAPI contract, as CI holds it (issue 24): schemathesis's own CLI against `vbill serve`
in its own process on a loopback socket, with exactly

    schemathesis run URL/openapi.json --checks all --max-examples 30 --seed 1 \\
        -H "X-VDI-Attest-Secret: …"

run from the repository's root, so schemathesis.toml applies as it does for a developer. Every
check is on: no 5xx, documented statuses, bodies and headers; schema-valid requests accepted
and schema-invalid ones refused; Allow headers, auth, stateful links. The run fails on any
failure; its whole output is the assertion's message.

The service holds a v1 bundle, a metered bundle (which also warms the v2 prover), a second
tenant and a token, so lookups can succeed. The few rules JSON Schema cannot state are excused
by vbill_tools.schemathesis_hooks, one by one (tested below: nothing else is excused).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from schemathesis.core.failures import ServerError
from schemathesis.openapi.checks import RejectedPositiveData
from support import needs_v2c
from support.http_server import ATTEST
from support.servicekit import AUTH, SECRET, Served, start_service
from vbill.models import MeteredAttestRequest, example
from vbill_tools.schemathesis_hooks import excused

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
ARGS = ["--checks", "all", "--max-examples", "30", "--seed", "1"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    needs_v2c()  # POST /corrections proves with binding v2c; without its key it is a 503
    service = start_service(tmp_path_factory.mktemp("schemathesis"))
    try:
        with service.client() as http:
            linear = json.loads((ROOT / "docs" / "examples" / "usd-linear.json").read_text())
            metered = example(MeteredAttestRequest)
            metered["meter_event"]["event_id"] = "inf_schemathesis"
            metered["tariff_snapshot"]["currency"] = "USD"  # no balance needed
            for request in (linear, metered):
                r = http.post(ATTEST, json=request, headers=AUTH)
                assert r.status_code == 200, r.text
            tenant = linear["meter_event"]["tenant_id"]
            r = http.post("/api/vdi/billing/accounts", json={"tenant_id": "t2"}, headers=AUTH)
            assert r.status_code == 201, r.text
            r = http.post(f"/api/vdi/billing/accounts/{tenant}/tokens", headers=AUTH)
            assert r.status_code == 201, r.text
        yield service
    finally:
        service.stop()


def test_schemathesis_finds_nothing(served: Served) -> None:
    cmd = [str(SCHEMATHESIS), "run", served.url + "/openapi.json", *ARGS]
    cmd += ["-H", f"X-VDI-Attest-Secret: {SECRET}"]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    try:  # below pytest-timeout's 900 s, so a run that hangs still shows how far it got
        run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=780)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"schemathesis ran over 780 s:\n{exc.stdout}\n{exc.stderr}")
    output = run.stdout + run.stderr
    assert "schemathesis.toml" in output, output  # its hooks and timeouts applied
    assert run.returncode == 0, output
    assert served.alive(), served.log.read_text()[-3000:]


def _rejected() -> RejectedPositiveData:
    return RejectedPositiveData(
        operation="POST /x", message="", status_code=422, allowed_statuses=[]
    )


def _linear(**tariff: Any) -> dict[str, Any]:
    body = json.loads((ROOT / "docs" / "examples" / "usd-linear.json").read_text())
    body["tariff_snapshot"].update(tariff)
    return body


def _metered(**meter: Any) -> dict[str, Any]:
    body = example(MeteredAttestRequest)
    body["meter_event"].update(meter)
    return body


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        (_linear(min_charge_micros=5, max_charge_micros=4), "min_charge_micros", True),
        (_linear(min_charge_micros=4, max_charge_micros=4), "min_charge_micros", False),
        (_linear(min_charge_micros=5, max_charge_micros=4), "max_charge_micros", False),
        (_linear(max_charge_micros=7.0), "max_charge_micros", True),
        (_linear(max_charge_micros=7.5), "max_charge_micros", False),
        (_linear(max_charge_micros=7), "max_charge_micros", False),
        (_metered(usage={"images": 1}), "meter_event.usage.images", True),
        (_metered(usage={"input_tokens": 1}), "meter_event.usage.input_tokens", False),
        (_metered(billing_window_id="2026-06"), "meter_event.billing_window_id", True),
        (_metered(billing_window_id="2026-05"), "meter_event.billing_window_id", False),
        (_metered(billing_window_id="2026-05-29"), "meter_event.billing_window_id", False),
        (_metered(billing_window_id="2026-05-28"), "meter_event.billing_window_id", True),
        (_metered(billing_window_id="month-5"), "meter_event.billing_window_id", False),
        (_metered(), "tariff_snapshot.dimensions.output_tokens.tiers[0].up_to", False),
        ({"daily_micros": 3.0}, "daily_micros", True),
        ({"daily_micros": 3}, "daily_micros", False),
        ({"usage": {"a": 2.0}}, "correction.usage.a", True),
    ],
)
def test_the_hooks_excuse_only_their_rules(
    body: dict[str, Any], field: str, expected: bool
) -> None:
    """A refusal is excused only when the request breaks the rule of the field it names."""
    if field.endswith("_charge_micros"):
        field = "tariff_snapshot." + field
    assert excused(_rejected(), body, 422, {"field": field, "message": "m"}) is expected


def test_the_hooks_excuse_no_other_failure() -> None:
    body = {"daily_micros": 3.0}
    detail = {"field": "daily_micros", "message": "m"}
    assert excused(_rejected(), body, 422, detail)
    assert not excused(_rejected(), body, 400, detail)  # only a 422 names the field
    assert not excused(_rejected(), body, 422, "a sentence")
    assert not excused(ServerError(operation="POST /x", status_code=500), body, 422, detail)
    tiers = [{"up_to": 10, "unit_price_micros": 1}, {"up_to": 10, "unit_price_micros": 1}]
    tiers.append({"up_to": None, "unit_price_micros": 1})
    body = _metered()
    body["tariff_snapshot"]["dimensions"]["input_tokens"]["tiers"] = tiers
    at = "tariff_snapshot.dimensions.input_tokens.tiers"
    assert excused(_rejected(), body, 422, {"field": f"{at}[1].up_to", "message": "m"})
    assert not excused(_rejected(), body, 422, {"field": f"{at}[0].up_to", "message": "m"})
    assert not excused(_rejected(), body, 422, {"field": f"{at}[2].up_to", "message": "m"})
