"""Ingestion over a socket: the events endpoint and the respond-async header, an event of the
pilot request, polling a bundle until its proof is attached, the three verdicts, and proving
workers as separate processes with the leases they hold (PostgreSQL)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from vbill import paths
from vbill.bundle.keys import Attester
from vbill.verify.trust import TrustSet
from vbill.verify.verify import Groth16Check, verify_bundle

from support.http_server import AUTH

EVENTS = "/api/vdi/billing/events"
ASYNC = {**AUTH, "Prefer": "respond-async"}


def event(pilot: dict[str, Any], event_id: str, **meter: Any) -> dict[str, Any]:
    req = copy.deepcopy(pilot)
    req["meter_event"].update({"event_id": event_id, **meter})
    return req


def trust_of(attester: Attester) -> TrustSet:
    return TrustSet().with_(attesters=[attester.address], vkey_files=[paths.VKEY])


def assert_verifies(
    bundle: dict[str, Any], attester: Attester, check: Groth16Check | None = None
) -> None:
    """Valid in all three verdicts; `check`: the pairing (default the py_ecc reference)."""
    result = verify_bundle(bundle, trust=trust_of(attester), check=check)
    assert result.verification.valid, result.verification.reason
    assert result.billing_check.valid, result.billing_check.reason
    binding = result.incircuit_binding_verification
    assert binding.valid, binding.reason


def finished(client: httpx.Client, event_id: str) -> dict[str, Any]:
    """Poll the bundle until the worker has attached its proof (no clock in the assertion)."""
    for _ in range(600):
        body = client.get(f"/api/vdi/billing/bundles/{event_id}", headers=AUTH).json()
        if "status" not in body:
            return body
        assert body["status"] == "proving"
        time.sleep(0.1)
    raise AssertionError(f"{event_id} never left `proving`")


def start_worker(home: Path, url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "VBILL_HOME": str(home)}
    cmd = [sys.executable, "-m", "vbill.cli.main", "worker", *args]
    log = open(home / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 (the child's)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def leased_to(url: str, pid: int) -> int:
    """How many unproven bundles a worker process holds a claim on."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM bundles WHERE proof_status = 'proving' AND claimed_by LIKE %s",
            (f"%:{pid}:%",),
        ).fetchone()
    return int(row[0])
