"""End to end over a real socket: `vbill serve` (uvicorn) in a subprocess on a loopback port,
a real anvil with the deployed contracts, and an httpx client.

- the whole story: onboard → deposit (credited after 12 confirmations) → attest an ETH charge
  → the worker settles it → the usage receipt matches the chain → verify;
- a bounded load test: concurrent attests from several tenants, duplicates included; no event
  lost or duplicated, every bundle verifies;
- kill -9 of the service while its settlement transaction is in the mempool, restart: every
  charge settled exactly once and the service's ledger equals the chain's.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from support import needs_build
from vbill import chain as chainmod
from vbill.bundle.keys import Attester
from vbill.ledger import translog
from vbill.ledger.store import WEI_PER_MICRO

pytestmark = [pytest.mark.slow, pytest.mark.chain]

SECRET = "e2e-secret-0123456789abcdefghij"
AUTH = {"X-VDI-Attest-Secret": SECRET}
ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Service:
    """`vbill serve` in its own process group, so kill() ends it and its prover workers."""

    def __init__(self, home: Path, rpc_url: str, settlement: str, **config: Any) -> None:
        self.home = home
        self.port = chainmod.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rpc_url = rpc_url
        self.settlement = settlement
        home.mkdir(parents=True, exist_ok=True)
        cfg = {"settle_interval": 0.5, "anchor_interval": 3600, "prover_workers": 2, **config}
        (home / "service.json").write_text(json.dumps(cfg))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "service.log"

    def start(self) -> Service:
        env = {
            **os.environ,
            "VBILL_HOME": str(self.home),
            "VDI_ATTEST_SECRET": SECRET,
            "PYTHONPATH": str(ROOT),
        }
        cmd = [sys.executable, "-c", "from vbill.cli.main import main; main()", "serve"]
        cmd += ["--port", str(self.port), "--network", "local", "--rpc-url", self.rpc_url]
        cmd += ["--settlement", self.settlement]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self._healthy, 60, f"the service on {self.url} (log: {self.log})")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"service exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)
        self.proc = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)


@pytest.fixture(scope="module")
def anvil() -> Iterator[chainmod.Anvil]:
    needs_build()
    node = chainmod.start_anvil()
    yield node
    node.stop()


def connect(anvil: chainmod.Anvil, key: str, settlement: str | None = None) -> chainmod.Chain:
    c = chainmod.connect("local", rpc_url=anvil.url, account=Account.from_key(key))
    if settlement:
        c.use_settlement(settlement)
    return c


def rpc(c: chainmod.Chain, method: str, *params: Any) -> Any:
    out = c.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in out, out
    return out.get("result")


@pytest.fixture(scope="module")
def deployed(anvil: chainmod.Anvil, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Contracts deployed with one attester key, shared by the services of this module."""
    keydir = tmp_path_factory.mktemp("attester")
    attester = Attester.new(keydir / "attester.key")
    owner = connect(anvil, chainmod.ANVIL_KEYS[0])
    dep = owner.deploy(attesters=[attester.address], write=False)
    rpc(owner, "anvil_setBalance", attester.address, hex(100 * 10**18))
    return {
        "settlement": dep["contracts"]["BillingSettlement"]["address"],
        "key_file": keydir / "attester.key",
    }


def new_home(tmp_path_factory: pytest.TempPathFactory, deployed: dict[str, Any]) -> Path:
    home = tmp_path_factory.mktemp("vbill-home")
    key = home / "attester.key"
    key.write_bytes(deployed["key_file"].read_bytes())
    key.chmod(0o600)
    return home


@pytest.fixture(scope="module")
def service(
    anvil: chainmod.Anvil, deployed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    svc = Service(new_home(tmp_path_factory, deployed), anvil.url, deployed["settlement"])
    svc.start()
    yield svc
    svc.kill(signal.SIGTERM)


def eth_request(pilot: dict[str, Any], tenant: str, event: str, units: int = 1842) -> dict:
    r = copy.deepcopy(pilot)
    r["meter_event"].update(tenant_id=tenant, event_id=event, usage_units=units)
    r["tariff_snapshot"]["currency"] = "ETH"
    return r


def onboard(
    http: httpx.Client, anvil: chainmod.Anvil, settlement: str, tenant: str, wallet_key: str,
    tariff: dict[str, Any], deposit_wei: int,
) -> dict[str, Any]:  # fmt: skip
    """Create the account over HTTP; the tenant funds it on chain and accepts the tariff."""
    wallet = connect(anvil, wallet_key, settlement)
    acct = http.post(
        "/api/vdi/billing/accounts",
        json={"tenant_id": tenant, "controller": wallet.address},
        headers=AUTH,
    )
    assert acct.status_code == 201, acct.text
    assert acct.json()["onchain_status"] == "bound", acct.json()
    assert wallet.controller_of(int(acct.json()["tenant_key"])) == wallet.address
    tenant_key = int(acct.json()["tenant_key"])
    tariff_key = int(
        http.post(
            f"/api/vdi/billing/accounts/{tenant}/tariff-key",
            json={"tariff_snapshot": tariff},
            headers=AUTH,
        ).json()["tariff_key"]
    )
    wallet.deposit(tenant_key, deposit_wei)
    wallet.accept_tariff(tenant_key, tariff_key)
    return {"tenant_key": tenant_key, "tariff_key": tariff_key, "wallet": wallet}


def account(http: httpx.Client, tenant: str) -> dict[str, Any]:
    return http.get(f"/api/vdi/billing/accounts/{tenant}", headers=AUTH).json()


def bundle(http: httpx.Client, tenant: str, event: str) -> dict[str, Any]:
    r = http.get(f"/api/vdi/billing/bundles/{event}", params={"tenant_id": tenant}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def verify_over_http(http: httpx.Client, b: dict[str, Any]) -> dict[str, Any]:
    record = {k: b[k] for k in ("billing_version", "profileId", "meter_event",
                                "tariff_snapshot", "billing")}  # fmt: skip
    body = {"attestation": b["attestation"], "receipt": b["receipt"],
            "billed_billing_v2": record, "expected_billing_v2": record}  # fmt: skip
    return http.post("/api/vdi/billing/verify", json=body).json()


# --- the whole story ---


def test_deposit_attest_settle_receipt_verify(
    service: Service, anvil: chainmod.Anvil, deployed: dict[str, Any], pilot_request: dict
) -> None:
    http = service.client()
    req = eth_request(pilot_request, "tenant_story", "evt_story_1")
    t = onboard(http, anvil, deployed["settlement"], "tenant_story", chainmod.ANVIL_KEYS[1],
                req["tariff_snapshot"], 10**18)  # fmt: skip
    # the worker sees the deposit, but it is not spendable before 12 confirmations
    wait_for(
        lambda: account(http, "tenant_story")["balance"]["pending_deposits"] == str(10**18),
        30,
        "the deposit to be seen",
    )
    refused = http.post("/api/vdi/billing/attest", json=req, headers=AUTH)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert account(http, "tenant_story")["onchain_status"] == "bound"
    rpc(t["wallet"], "anvil_mine", hex(12))
    wait_for(
        lambda: account(http, "tenant_story")["balance"]["total"] == str(10**18),
        30,
        "the deposit to be credited",
    )
    r = http.post("/api/vdi/billing/attest", json=req, headers=AUTH)
    assert r.status_code == 200, r.text
    settled = wait_for(
        lambda: bundle(http, "tenant_story", "evt_story_1").get("settlement"), 60, "settlement"
    )
    assert settled["cost_eth"] == "0.22104"
    stored = bundle(http, "tenant_story", "evt_story_1")
    from_chain = t["wallet"].receipt(settled["transaction_hash"], stored).as_json()
    assert {k: from_chain[k] for k in settled} == settled
    charge_wei = 221040 * WEI_PER_MICRO
    assert t["wallet"].balance(t["tenant_key"]).total == 10**18 - charge_wei
    bal = account(http, "tenant_story")["balance"]
    assert (bal["total"], bal["reserved"]) == (str(10**18 - charge_wei), "0")
    result = verify_over_http(http, stored)
    assert result["valid"], result


# --- bounded load ---


def test_concurrent_attests_lose_and_duplicate_nothing(
    service: Service, pilot_request: dict[str, Any]
) -> None:
    tenants, per_tenant, dup_every = 5, 6, 3
    requests = []
    for t in range(tenants):
        for e in range(per_tenant):
            r = copy.deepcopy(pilot_request)
            r["meter_event"].update(
                tenant_id=f"load_t{t}", event_id=f"load_e{e}", usage_units=1000 + 7 * e + t
            )
            requests.append(r)
    duplicates = requests[::dup_every]
    before = httpx.get(service.url + "/api/vdi/status").json()["counts"]

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=service.url, timeout=300) as client:
            jobs = [
                client.post("/api/vdi/billing/attest", json=r, headers=AUTH)
                for r in [*requests, *duplicates]
            ]
            return await asyncio.gather(*jobs)

    start = time.perf_counter()
    responses = asyncio.run(fire())
    elapsed = time.perf_counter() - start
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses][:3]
    created = [r for r in responses if r.headers["X-VDI-Replay"] == "false"]
    assert len(created) == len(requests)
    after = httpx.get(service.url + "/api/vdi/status").json()["counts"]
    assert after["bundles"] - before["bundles"] == len(requests)
    assert after["log_size"] - before["log_size"] == len(requests)
    by_key: dict[tuple[str, str], set[str]] = {}
    for r in responses:
        m = r.json()["meter_event"]
        by_key.setdefault((m["tenant_id"], m["event_id"]), set()).add(
            r.json()["attestation"]["bundle_digest"]
        )
    assert len(by_key) == len(requests) and all(len(v) == 1 for v in by_key.values())
    with service.client() as http:
        signer = http.get("/api/vdi/status").json()["attester"]
        indices = set()
        for r in created:
            b = r.json()
            assert verify_over_http(http, b)["valid"]
            digest = bytes.fromhex(b["attestation"]["bundle_digest"][2:])
            assert translog.verify_receipt(b["receipt"], digest, [signer])[0]
            indices.add(b["receipt"]["leaf_index"])
    assert len(indices) == len(requests)
    rate = len(requests) / elapsed
    print(
        f"\nBENCH attest: {len(requests)} events (+{len(duplicates)} duplicates) over "
        f"{tenants} tenants, {len(responses)} concurrent requests in {elapsed:.1f} s = "
        f"{rate:.2f} bundles/s"
    )


# --- crash in the middle of settlement ---


def test_kill_during_settlement_then_restart_settles_each_charge_once(
    anvil: chainmod.Anvil,
    deployed: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    pilot_request: dict[str, Any],
) -> None:
    svc = Service(
        new_home(tmp_path_factory, deployed), anvil.url, deployed["settlement"], settle_batch=3
    ).start()
    try:
        http = svc.client()
        reqs = [eth_request(pilot_request, "tenant_crash", f"evt_crash_{i}", units=100 + i)
                for i in range(5)]  # fmt: skip
        t = onboard(http, anvil, deployed["settlement"], "tenant_crash", chainmod.ANVIL_KEYS[2],
                    reqs[0]["tariff_snapshot"], 10**18)  # fmt: skip
        rpc(t["wallet"], "anvil_mine", hex(12))
        wait_for(
            lambda: account(http, "tenant_crash")["balance"]["total"] == str(10**18),
            30,
            "the deposit to be credited",
        )
        # Transactions now wait in the mempool: the worker's settleBatch is sent, not mined.
        rpc(t["wallet"], "evm_setAutomine", False)
        for r in reqs:
            assert http.post("/api/vdi/billing/attest", json=r, headers=AUTH).status_code == 200
        wait_for(
            lambda: int(rpc(t["wallet"], "txpool_status")["pending"], 16),
            30,
            "a settlement transaction in the mempool",
        )
        svc.kill()  # SIGKILL: the batch is on its way, the store never heard back
        rpc(t["wallet"], "evm_mine")
        rpc(t["wallet"], "evm_setAutomine", True)
        used = [
            t["wallet"].settlement.functions.isNullifierUsed(int(bundle_signal(svc, r, 3))).call()
            for r in reqs
        ]
        assert any(used), "the killed service's batch should have been mined"
        svc.start()
        http = svc.client()
        for r in reqs:
            wait_for(
                lambda r=r: bundle(http, "tenant_crash", r["meter_event"]["event_id"]).get(
                    "settlement"
                ),
                60,
                f"settlement of {r['meter_event']['event_id']}",
            )
        bundles = [bundle(http, "tenant_crash", r["meter_event"]["event_id"]) for r in reqs]
        total_micros = sum(b["billing"]["expected_charge_micros"] for b in bundles)
        chain_total = t["wallet"].balance(t["tenant_key"]).total
        assert chain_total == 10**18 - total_micros * WEI_PER_MICRO
        bal = account(http, "tenant_crash")["balance"]
        assert (int(bal["total"]), bal["reserved"]) == (chain_total, "0")
        for b in bundles:  # each settlement names a transaction that really settled it
            t["wallet"].receipt(b["settlement"]["transaction_hash"], b)
    finally:
        svc.kill(signal.SIGTERM)


def bundle_signal(svc: Service, request: dict[str, Any], index: int) -> str:
    """A public signal of the stored bundle, read straight from the SQLite file (service down)."""
    import sqlite3

    conn = sqlite3.connect(svc.home / "vbill.sqlite3")
    row = conn.execute(
        "SELECT bundle_json FROM bundles WHERE tenant_id = ? AND event_id = ?",
        (request["meter_event"]["tenant_id"], request["meter_event"]["event_id"]),
    ).fetchone()
    conn.close()
    return json.loads(row[0])["attestation"]["billing_proof"]["public_signals"][index]


# --- chain outage ---


def test_chain_outage_delays_settlement_and_loses_nothing(
    deployed: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    pilot_request: dict[str, Any],
) -> None:
    """A separate anvil that keeps its state across a stop: the service attests while the
    chain is down, the worker backs off, and settles everything once the chain is back."""
    state = tmp_path_factory.mktemp("anvil") / "state.json"
    node = chainmod.start_anvil(state=state)
    port = node.port
    owner = connect(node, chainmod.ANVIL_KEYS[0])
    attester = Attester.load(deployed["key_file"])
    dep = owner.deploy(attesters=[attester.address], write=False)
    settlement = dep["contracts"]["BillingSettlement"]["address"]
    rpc(owner, "anvil_setBalance", attester.address, hex(100 * 10**18))
    svc = Service(
        new_home(tmp_path_factory, deployed), node.url, settlement, anchor_interval=0
    ).start()
    try:
        http = svc.client()
        reqs = [eth_request(pilot_request, "tenant_outage", f"evt_out_{i}", units=200 + i)
                for i in range(2)]  # fmt: skip
        t = onboard(http, node, settlement, "tenant_outage", chainmod.ANVIL_KEYS[3],
                    reqs[0]["tariff_snapshot"], 10**18)  # fmt: skip
        rpc(t["wallet"], "anvil_mine", hex(12))
        wait_for(
            lambda: account(http, "tenant_outage")["balance"]["total"] == str(10**18),
            30,
            "the deposit to be credited",
        )
        node.stop()  # the chain goes away (anvil writes its state on SIGTERM)
        for r in reqs:
            assert http.post("/api/vdi/billing/attest", json=r, headers=AUTH).status_code == 200

        def worker() -> dict[str, Any]:
            return http.get("/api/vdi/status").json()["chain"]["worker"]

        wait_for(lambda: worker()["consecutive_errors"] >= 2, 30, "the worker to notice")
        assert all(
            bundle(http, "tenant_outage", r["meter_event"]["event_id"])["settlement"] is None
            for r in reqs
        )
        assert account(http, "tenant_outage")["balance"]["reserved"] != "0"
        node = chainmod.start_anvil(port=port, state=state)  # back, same state, same port
        for r in reqs:
            wait_for(
                lambda r=r: bundle(http, "tenant_outage", r["meter_event"]["event_id"]).get(
                    "settlement"
                ),
                90,
                "settlement after the outage",
            )
        chain_total = t["wallet"].balance(t["tenant_key"]).total
        bal = account(http, "tenant_outage")["balance"]
        assert (int(bal["total"]), bal["reserved"]) == (chain_total, "0")
        assert (
            chain_total
            == 10**18
            - sum(
                bundle(http, "tenant_outage", r["meter_event"]["event_id"])["billing"][
                    "expected_charge_micros"
                ]
                for r in reqs
            )
            * WEI_PER_MICRO
        )
        # the log head is anchored on chain, and the anchored root is a head the log signed
        head = wait_for(
            lambda: (
                (h := http.get("/api/vdi/billing/transparency/head").json())["tree_size"]
                == t["wallet"].settlement.functions.lastAnchoredSize().call()
                and h
            ),
            30,
            "the tree head to be anchored",
        )
        event = t["wallet"].settlement.events.TreeHeadAnchored()
        logs = t["wallet"].w3.eth.get_logs(
            {"address": settlement, "fromBlock": 0, "toBlock": "latest", "topics": [event.topic]}
        )
        anchored = [event.process_log(x)["args"] for x in logs]
        assert anchored[-1]["size"] == head["tree_size"]
        assert "0x" + bytes(anchored[-1]["root"]).hex() == head["root_hash"]
    finally:
        svc.kill(signal.SIGTERM)
        node.stop()
