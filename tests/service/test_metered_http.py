"""Metered billing (binding v2) as a client sees it: a real socket, a real anvil chain, real
proofs, the service's own settlement worker.

One inference tariff in ETH (input tokens free up to 100, then 0.25 micro-ETH; output tokens
1.25): attest answers a bundle with its usage object; concurrent attests to one window take
distinct seqs; once settled, the window's statement (GET /statements/…) verifies offline with
`vbill statement FILE` and its total is what the chain's ChargeSettled events charged; an
inference over the per-request limit is 429 and moves nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from eth_account import Account
from support import V2, metered_event, needs_build, needs_v2
from support.http_server import ATTEST, AUTH, VERIFY, chain_settings, serve
from vbill import chain as ch
from vbill.bindings import BINDING_V2C, artefacts
from vbill.bundle.keys import Attester
from vbill.cli.main import main
from vbill.service import create_app

pytestmark = pytest.mark.chain

TENANT = "t_infer"
WINDOW = "2026-05"
ETH = 10**18
STATEMENT = f"/api/vdi/billing/statements/{TENANT}/{WINDOW}"
CORRECTIONS = "/api/vdi/billing/corrections"
V2C = artefacts(BINDING_V2C)


def inference(event_id: str, input_tokens: int = 156, output_tokens: int = 412) -> dict:
    return metered_event(TENANT, event_id, input_tokens, output_tokens)


class Live:
    def __init__(self, http: httpx.Client, owner: ch.Chain, wallet: ch.Chain, app: Any) -> None:
        self.http, self.owner, self.wallet, self.app = http, owner, wallet, app
        self.attester = app.state.svc.attester.address
        self.tenant_key = 0

    def bundle(self, event_id: str) -> dict[str, Any]:
        r = self.http.get(
            f"/api/vdi/billing/bundles/{event_id}", params={"tenant_id": TENANT}, headers=AUTH
        )
        assert r.status_code == 200, r.text
        return r.json()

    def counts(self) -> dict[str, int]:
        return self.http.get("/api/vdi/status", headers=AUTH).json()["counts"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    needs_build()
    needs_v2()
    node = ch.start_anvil()
    try:
        home = tmp_path_factory.mktemp("metered-home")
        attester = Attester.new(home / "attester.key")
        owner = ch.connect("local", node.url, account=Account.from_key(ch.ANVIL_KEYS[0]))
        dep = owner.deploy(attesters=[attester.address], write=False)
        settlement = dep["contracts"]["BillingSettlement"]["address"]
        owner.w3.eth.send_transaction(
            {"from": owner.address, "to": attester.address, "value": 10 * ETH}
        )  # anvil's accounts are unlocked: the attester pays its own settlement gas
        wallet = ch.connect("local", node.url, account=Account.from_key(ch.ANVIL_KEYS[1]))
        wallet.use_settlement(settlement)
        settings = chain_settings(
            home,
            node.url,
            settlement,
            settle_interval=0.5,
            confirmations=1,
            anchor_interval=3600,
            start_block=0,
        )
        app = create_app(settings)
        with serve(app) as url, httpx.Client(base_url=url, timeout=300) as http:
            yield onboard(Live(http, owner, wallet, app))
    finally:
        node.stop()


def onboard(live: Live) -> Live:
    """The tenant's account over HTTP; its wallet funds it and accepts the metered tariff."""
    r = live.http.post(
        "/api/vdi/billing/accounts",
        json={"tenant_id": TENANT, "controller": live.wallet.address},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    live.tenant_key = int(r.json()["tenant_key"])
    r = live.http.post(
        f"/api/vdi/billing/accounts/{TENANT}/tariff-key",
        json={"tariff_snapshot": inference("")["tariff_snapshot"]},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    live.wallet.deposit(live.tenant_key, ETH)
    live.wallet.accept_tariff(live.tenant_key, int(r.json()["tariff_key"]))
    wait(lambda: int(account(live)["balance"]["available"]) > 0, "the deposit credited")
    return live


def account(live: Live) -> dict[str, Any]:
    return live.http.get(f"/api/vdi/billing/accounts/{TENANT}", headers=AUTH).json()


def wait(predicate: Any, what: str, tries: int = 600) -> None:
    """Poll (the settlement worker runs every 0.5 s); a bound on tries, not on time."""
    import time

    for _ in range(tries):
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


def test_a_metered_eth_attest_answers_a_bundle_with_its_usage(live: Live) -> None:
    r = live.http.post(ATTEST, json=inference("inf_001"), headers=AUTH)
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["billing"]["window"]["seq"] == 1
    # 56 paid input tokens × 0.25 + 412 × 1.25 = 14 + 515 micro-ETH
    assert b["billing"]["expected_charge_micros"] == 529
    assert b["usage"] == {
        "units": {"input_tokens": 156, "output_tokens": 412},
        "total_units": 568,
        "cost_eth": "0.000529",
    }
    assert len(b["attestation"]["billing_proof"]["public_signals"]) == 7
    verdict = live.http.post(VERIFY, json=_verify_body(b)).json()
    assert verdict["valid"], verdict
    again = live.http.post(ATTEST, json=inference("inf_001"), headers=AUTH)
    assert again.headers["X-VDI-Replay"] == "true" and again.json()["billing"] == b["billing"]


def _verify_body(b: dict[str, Any]) -> dict[str, Any]:
    from vbill.verify.verify import request_from_bundle

    return request_from_bundle(b)


def test_concurrent_attests_to_one_window_never_share_a_seq(live: Live) -> None:
    events = [f"inf_c{i}" for i in range(4)]
    with ThreadPoolExecutor(len(events)) as pool:
        answers = list(
            pool.map(lambda e: live.http.post(ATTEST, json=inference(e), headers=AUTH), events)
        )
    assert [a.status_code for a in answers] == [200] * len(events), [a.text for a in answers]
    seqs = sorted(a.json()["billing"]["window"]["seq"] for a in answers)
    assert seqs == [2, 3, 4, 5]  # after inf_001's seq 1: distinct and without a gap


def test_the_statement_verifies_offline_and_totals_what_the_chain_charged(
    live: Live, tmp_path: Path
) -> None:
    live.http.post(ATTEST, json=inference("inf_s1", 1000, 10), headers=AUTH)
    r = live.http.get(STATEMENT, headers=AUTH)
    assert r.status_code == 200, r.text
    doc = r.json()
    events = [b["meter_event"]["event_id"] for b in doc["bundles"]]
    assert doc["events"] == len(events) >= 1

    def settled() -> bool:
        return all(live.bundle(e).get("settlement") for e in events)

    wait(settled, "every charge of the window settled")
    on_chain = 0
    for e in events:
        b = live.bundle(e)
        tx = b["settlement"]["transaction_hash"]
        on_chain += sum(c.charge for c in live.owner.receipt(tx, b).charges)
    assert int(doc["total_micros"]) == on_chain

    token = live.http.post(f"/api/vdi/billing/accounts/{TENANT}/tokens", headers=AUTH).json()
    mine = live.http.get(STATEMENT, headers={"Authorization": f"Bearer {token['token']}"})
    assert mine.status_code == 200 and mine.json()["total_micros"] == doc["total_micros"]

    path = tmp_path / "statement.json"
    path.write_text(json.dumps(doc))
    args = ["statement", str(path), "--json", "--trust-attester", live.attester]
    ok = CliRunner().invoke(main, [*args, "--vkey", str(V2.vkey)])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["total_micros"] == doc["total_micros"]
    doc["total_micros"] = int(doc["total_micros"]) - 1  # a statement that claims less fails
    path.write_text(json.dumps(doc))
    bad = CliRunner().invoke(main, [*args, "--vkey", str(V2.vkey)])
    assert bad.exit_code == 1, bad.output


def test_an_inference_over_the_per_request_limit_is_429_and_stores_nothing(live: Live) -> None:
    assert live.http.post(ATTEST, json=inference("inf_l1"), headers=AUTH).status_code == 200
    before = live.counts()
    head = live.http.get(STATEMENT, headers=AUTH).json()["events"]
    r = live.http.put(
        f"/api/vdi/billing/accounts/{TENANT}/limits",
        json={"per_request_micros": 528, "daily_micros": None},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    try:
        refused = live.http.post(ATTEST, json=inference("inf_big"), headers=AUTH)
        assert refused.status_code == 429, refused.text
        assert "per-request" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) > 0
        assert live.counts() == before
        assert live.http.get(STATEMENT, headers=AUTH).json()["events"] == head
        missing = live.http.get(
            "/api/vdi/billing/bundles/inf_big", params={"tenant_id": TENANT}, headers=AUTH
        )
        assert missing.status_code == 404
    finally:
        live.http.put(
            f"/api/vdi/billing/accounts/{TENANT}/limits",
            json={"per_request_micros": None, "daily_micros": None},
            headers=AUTH,
        )


def test_the_public_status_names_no_tenant_and_no_event(live: Live) -> None:
    def operator() -> dict[str, Any]:
        return live.http.get("/api/vdi/status", headers=AUTH).json()

    wait(lambda: operator()["chain"]["worker"]["last_batch"], "a settlement batch")
    full = operator()
    assert full["counts"]["tenants"] >= 1
    public = live.http.get("/api/vdi/status").json()
    assert "tenants" not in public["counts"] and "last_batch" not in public["chain"]["worker"]
    text = json.dumps(public)
    assert TENANT not in text and not any(e in text for e in full["chain"]["worker"]["last_batch"])
    svc = live.app.state.svc
    assert public["bindings"] == [
        {"binding_version": v, "vkey_sha256": svc.provers[v].vkey_sha256}
        for v in ("bn128-poseidon8-v1", "bn128-poseidon8-v2")
    ]
    wrong = live.http.get("/api/vdi/status", headers={"X-VDI-Attest-Secret": "nope"})
    assert wrong.status_code == 401


def test_a_settled_correction_carries_its_settlement_for_vbill_receipt(
    live: Live, tmp_path: Path
) -> None:
    """A correction of a settled ETH charge: its GET has no `settlement` while pending, and
    once the service's worker has settled it, the same signed document plus `settlement` (the
    settleCorrection transaction, as a bundle carries its own), whose hash `vbill receipt TX
    --correction FILE` accepts for the fetched file. Another tenant's token gets 404."""
    if not all(p.exists() for p in (V2C.zkey, V2C.wasm, V2C.vkey)):
        pytest.skip("build/ has no correction proving key: run `make setup`")
    wait(lambda: live.bundle("inf_001").get("settlement"), "inf_001 settled")
    path = f"/api/vdi/billing/corrections/{TENANT}/cor_001"
    body = {"tenant_id": TENANT, "corrects": "inf_001", "correction_id": "cor_001"}
    with live.app.state.svc.worker._lock:  # between two ticks: the correction stays pending
        r = live.http.post(CORRECTIONS, json={**body, "reason": "a test call"}, headers=AUTH)
        assert r.status_code == 201, r.text
        doc, credit = r.json()["correction"], r.json()["credit_micros"]
        stored = live.app.state.svc.store.find_correction(TENANT, "cor_001")
        assert stored is not None and stored.settlement_status == "pending"
        assert live.http.get(path, headers=AUTH).json() == doc
    assert "settlement" not in doc
    wait(lambda: live.http.get(path, headers=AUTH).json().get("settlement"), "cor_001 settled")

    r = live.http.post("/api/vdi/billing/accounts", json={"tenant_id": "t_other"}, headers=AUTH)
    assert r.status_code == 201, r.text
    tokens = {
        t: live.http.post(f"/api/vdi/billing/accounts/{t}/tokens", headers=AUTH).json()["token"]
        for t in (TENANT, "t_other")
    }
    foreign = live.http.get(path, headers={"Authorization": f"Bearer {tokens['t_other']}"})
    assert foreign.status_code == 404 and "settlement" not in foreign.text

    file = tmp_path / "cor.json"
    url = str(live.http.base_url)
    fetch = ["fetch", "cor_001", "--correction", TENANT, "--url", url, "-o", str(file)]
    got = CliRunner().invoke(main, fetch, env={"VBILL_TOKEN": tokens[TENANT]})
    assert got.exit_code == 0, got.output
    served = json.loads(file.read_text())
    settlement = served.pop("settlement")
    assert served == doc  # the signed document is unchanged: `settlement` is an addition
    assert set(settlement) == {
        "credit_eth", "transaction_hash", "block_number", "gas_used", "timestamp",
    }  # fmt: skip
    assert settlement["credit_eth"] == ch.wei_to_eth(credit * 10**12)
    verdict = live.http.post(VERIFY, json=json.loads(file.read_text())).json()
    assert verdict["valid"], verdict  # as fetched, with its settlement, it still verifies

    home = tmp_path / "home"
    (home / "deployments").mkdir(parents=True)
    (home / "deployments" / "local.json").write_text(json.dumps(live.owner.load_deployment()))
    tx = settlement["transaction_hash"]
    argv = ["receipt", "--network", "local", "--rpc-url", live.owner.rpc_url, tx, "--json"]
    env = {"VBILL_HOME": str(home), "VBILL_PRIVATE_KEY": None}
    run = CliRunner().invoke(main, [*argv, "--correction", str(file)], env=env)
    assert run.exit_code == 0, run.output
    from_chain = json.loads(run.output)
    assert {k: from_chain[k] for k in settlement} == settlement
    assert [c["nullifier"] for c in from_chain["corrections"]] == [
        doc["attestation"]["billing_proof"]["public_signals"][3]
    ]
