"""Honest operations and key rotation (issue 10 items 9 and 10): start-up problems are one line
and exit 3, /health says when the chain is gone or the key may not sign, a 429 that no retry
can fix still says when to come back, and a rotated key keeps what it signed before valid
while a revoked one invalidates everything it signed."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import needs_build
from support.http_server import ATTEST, AUTH, SECRET, VERIFY, AppClient, chain_settings, over_socket
from vbill import paths
from vbill.bundle.bundle import build_bundle, digest_of, with_receipt
from vbill.bundle.keys import Attester
from vbill.chain import free_port
from vbill.cli.main import main
from vbill.errors import ToolError
from vbill.ledger.store import NEVER_RETRY_AFTER
from vbill.ledger.translog import MerkleTree, append_with_receipt
from vbill.service import Settings, create_app
from vbill.verify.trust import TrustSet
from vbill.verify.verify import verify_bundle

ROOT = Path(__file__).resolve().parents[2]


def serve(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`vbill serve` as a real process that is expected to refuse to start."""
    env = {**os.environ, "VBILL_HOME": str(home), "VDI_ATTEST_SECRET": SECRET}
    cmd = [sys.executable, "-c", "from vbill.cli.main import main; main()", "serve", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def one_line_exit_3(result: subprocess.CompletedProcess[str]) -> str:
    out = (result.stdout + result.stderr).strip()
    assert result.returncode == 3, out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    return out


def home_with_key(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    Attester.new(home / "attester.key")
    return home


# --- item 10: start-up ---


def test_missing_attester_key_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    needs_build()
    out = one_line_exit_3(serve(tmp_path, "--port", str(free_port())))
    assert "attester key" in out and "vbill keys new" in out


def test_port_in_use_is_one_line_and_nothing_claims_to_be_up(tmp_path: Path) -> None:
    needs_build()
    home = home_with_key(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = serve(home, "--port", str(port))
    out = one_line_exit_3(result)
    assert str(port) in out and "--port" in out
    assert "startup complete" not in out.lower()


def test_unknown_key_in_service_json_is_refused_by_name(tmp_path: Path) -> None:
    home = home_with_key(tmp_path)
    (home / "service.json").write_text(json.dumps({"settle_intervall": 1}))
    with pytest.raises(ToolError, match="settle_intervall"):
        Settings.from_env(home=home)
    out = one_line_exit_3(serve(home, "--port", str(free_port())))
    assert "'settle_intervall'" in out


# --- item 10: /health and Retry-After ---


def test_health_is_degraded_while_the_configured_chain_is_unreachable(tmp_path: Path) -> None:
    needs_build()
    home = home_with_key(tmp_path)
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = chain_settings(home, nowhere, "0x" + "11" * 20, settle_interval=0.1)
    with over_socket(create_app(settings)) as client:
        worker = client.app.state.svc.worker  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while worker.status.ticks < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.status.ticks >= 1, "the worker never ran"
        r = client.get("/health")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "degraded"
    assert any("chain unreachable" in reason for reason in body["reasons"]), body


@pytest.fixture(scope="module")
def plain_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    """A service without a chain (attest and verify only)."""
    needs_build()
    home = home_with_key(tmp_path_factory.mktemp("plain"))
    settings = Settings(home=home, attest_secret=SECRET, prover_workers=1)
    with over_socket(create_app(settings)) as c:
        yield c


def eth(pilot: dict[str, Any], tenant: str, event: str) -> dict[str, Any]:
    r = copy.deepcopy(pilot)
    r["meter_event"].update(tenant_id=tenant, event_id=event)
    r["tariff_snapshot"]["currency"] = "ETH"
    return r


def test_a_429_no_retry_can_fix_still_says_when_to_come_back(
    plain_client: AppClient, pilot_request: dict[str, Any]
) -> None:
    # no chain configured: no deposit can ever be credited
    r = plain_client.post(ATTEST, json=eth(pilot_request, "t_nochain", "e1"), headers=AUTH)
    assert r.status_code == 429
    assert "no chain configured" in r.json()["detail"]
    assert r.headers["Retry-After"] == str(NEVER_RETRY_AFTER)
    # a per-request limit below the charge
    plain_client.post("/api/vdi/billing/accounts", json={"tenant_id": "t_cap"}, headers=AUTH)
    store = plain_client.app.state.svc.store  # type: ignore[attr-defined]
    store.record_deposit("0x" + "cd" * 32, 0, "t_cap", 10**18, 1)
    store.credit_confirmed(100)
    plain_client.put(
        "/api/vdi/billing/accounts/t_cap/limits", json={"per_request_micros": 1}, headers=AUTH
    )
    r = plain_client.post(ATTEST, json=eth(pilot_request, "t_cap", "e1"), headers=AUTH)
    assert r.status_code == 429 and "per-request" in r.json()["detail"]
    assert r.headers["Retry-After"] == str(NEVER_RETRY_AFTER)


# --- item 9: revocation and rotation ---


def verify_body(bundle: dict[str, Any]) -> dict[str, Any]:
    record = {k: bundle[k] for k in ("billing_version", "profileId", "meter_event",
                                     "tariff_snapshot", "billing")}  # fmt: skip
    return {"attestation": bundle["attestation"], "receipt": bundle["receipt"],
            "billed_billing_v2": record, "expected_billing_v2": record}  # fmt: skip


def usd(pilot: dict[str, Any], event: str) -> dict[str, Any]:
    r = copy.deepcopy(pilot)
    r["meter_event"]["event_id"] = event
    return r


def test_a_revoked_own_key_stops_signing_with_503(
    tmp_path: Path, pilot_request: dict[str, Any]
) -> None:
    needs_build()
    home = home_with_key(tmp_path)
    settings = Settings(home=home, attest_secret=SECRET, prover_workers=1)
    with over_socket(create_app(settings)) as client:
        me = client.get("/api/vdi/status").json()["attester"]
        revoked = client.post(
            "/api/vdi/billing/revocations",
            json={"kind": "attester", "value": me, "reason": "key leaked"},
            headers=AUTH,
        )
        assert revoked.status_code == 200
        before = client.get("/api/vdi/status", headers=AUTH).json()["counts"]
        r = client.post(ATTEST, json=usd(pilot_request, "evt_after_revoke"), headers=AUTH)
        assert r.status_code == 503, r.text
        assert "revoked" in r.json()["detail"] and "vbill keys rotate" in r.json()["detail"]
        assert client.get("/api/vdi/status", headers=AUTH).json()["counts"] == before
        health = client.get("/health")
        assert health.status_code == 503 and "revoked" in " ".join(health.json()["reasons"])


def test_rotation_retires_the_old_key_and_keeps_its_bundles_valid(
    tmp_path: Path, pilot_request: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_build()
    home = home_with_key(tmp_path)
    monkeypatch.setenv("VBILL_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(home=home, attest_secret=SECRET, prover_workers=1)
    with over_socket(create_app(settings)) as client:
        old = client.get("/api/vdi/status").json()["attester"]
        before = client.post(ATTEST, json=usd(pilot_request, "evt_rot_1"), headers=AUTH)
        assert before.status_code == 200, before.text
        rotated = CliRunner().invoke(main, ["keys", "rotate", "--json"])
        assert rotated.exit_code == 0, rotated.output
        info = json.loads(rotated.output)
        assert info["old_address"] == old and info["new_address"] != old
        assert info["retired_at"] is not None and info["revoked"] is False
        # still running on the retired key: it refuses to sign until restarted
        r = client.post(ATTEST, json=usd(pilot_request, "evt_rot_2"), headers=AUTH)
        assert r.status_code == 503 and "retired" in r.json()["detail"]
    assert (home / "retired-keys" / f"{old}.key").stat().st_mode & 0o077 == 0
    with over_socket(create_app(settings)) as client:
        status = client.get("/api/vdi/status").json()
        assert status["attester"] == info["new_address"]
        after = client.post(ATTEST, json=usd(pilot_request, "evt_rot_2"), headers=AUTH)
        assert after.status_code == 200, after.text
        assert after.json()["attestation"]["attester"] == info["new_address"]
        for b in (before.json(), after.json()):
            result = client.post(VERIFY, json=verify_body(b)).json()
            assert result["valid"], result
        doc = client.get("/.well-known/vdi-billing-revocation.json").json()
        assert doc["payload"]["retired_attesters"] == {old.lower(): info["retired_at"]}
        assert doc["payload"]["revoked_attesters"] == []
    # offline, from $VBILL_HOME/revocation.json: the old bundle still verifies
    assert verify_bundle(before.json()).valid


def test_retired_keys_sign_until_the_cut_off_and_revoked_keys_never(
    prover: Any, vkey_sha256: str, pilot_request: dict[str, Any]
) -> None:
    old = Attester.generate()
    cut_off = 1_780_000_000_000
    bundle = build_bundle(
        usd(pilot_request, "evt_cutoff"),
        attester=old,
        account_salt=777,
        prover=prover,
        vkey_sha256=vkey_sha256,
    )

    def logged_at(ts: int) -> dict[str, Any]:
        receipt = append_with_receipt(MerkleTree(), digest_of(bundle), old.account, ts)
        return with_receipt(bundle, receipt.to_dict()).model_dump(mode="json")

    base = TrustSet().with_(vkey_files=[paths.VKEY])
    retired = base.with_(retired_attesters={old.address: cut_off})
    assert verify_bundle(logged_at(cut_off - 1), trust=retired).valid
    late = verify_bundle(logged_at(cut_off), trust=retired)
    assert not late.valid and "retired" in (late.verification.reason or "")
    revoked = retired.with_(revoked_attesters=[old.address])
    early = verify_bundle(logged_at(cut_off - 1), trust=revoked)
    assert not early.valid and "revoked" in (early.verification.reason or "")


@pytest.mark.chain
def test_an_attester_revoked_on_chain_stops_signing(
    tmp_path: Path, anvil: Any, fresh_chain: dict[str, Any], pilot_request: dict[str, Any]
) -> None:
    from eth_account import Account
    from vbill import chain as ch

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    service_key = ch.ANVIL_KEYS[2]  # funded by anvil; registered as an attester below
    key = home / "attester.key"
    key.write_text(service_key.removeprefix("0x") + "\n")
    key.chmod(0o600)
    settlement = fresh_chain["contracts"]["BillingSettlement"]["address"]
    owner = ch.connect("local", anvil.url, account=Account.from_key(ch.ANVIL_KEYS[0]))
    owner.use_settlement(settlement)
    service_address = Account.from_key(service_key).address
    owner.add_attester(service_address)
    settings = chain_settings(home, anvil.url, settlement, settle_interval=0.1, start_block=0)
    with over_socket(create_app(settings)) as client:
        worker = client.app.state.svc.worker  # type: ignore[attr-defined]

        def a_whole_tick() -> None:
            """Wait until a tick that started after this call has ended."""
            target = worker.status.ticks + 2
            deadline = time.monotonic() + 60
            while worker.status.ticks < target and time.monotonic() < deadline:
                time.sleep(0.05)
            assert worker.status.ticks >= target, "the worker never ran"

        a_whole_tick()
        assert worker.status.attester_status == "active"
        ok = client.post(ATTEST, json=usd(pilot_request, "evt_chain_rev_1"), headers=AUTH)
        assert ok.status_code == 200, ok.text
        owner.revoke_attester(service_address)
        a_whole_tick()
        r = client.post(ATTEST, json=usd(pilot_request, "evt_chain_rev_2"), headers=AUTH)
        assert r.status_code == 503, r.text
        assert "revoked on chain" in r.json()["detail"]
        assert "vbill keys rotate" in r.json()["detail"]
        health = client.get("/health")
        assert health.status_code == 503 and "revoked on chain" in " ".join(
            health.json()["reasons"]
        )
