"""`make demo`: the whole story on one machine, over HTTP, against a real local chain.

Starts anvil and `vbill serve` in a fresh state directory, deploys the contracts, onboards a
tenant who deposits ETH on chain, attests the pilot request (in USD) and an ETH-priced
copy of it, verifies the bundle, shows a tampered copy failing, waits for the settlement worker
to settle the ETH charge and prints the usage receipt re-derived from the chain; then bills one
AI inference in ETH under a metered tariff (input and output tokens at different prices, a free
allowance crossed), settles it, re-derives its receipt and prints the window statement; then
closes the month (a signed, logged close record), shows a late event refused and the closed
statement failing without its last bundle, and prints the month's invoice lines and total.
Everything it started is stopped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from vbill import chain as chainmod
from vbill import paths
from vbill.bundle.keys import Attester

PILOT = json.loads(paths.PILOT_REQUEST.read_text())
RECORD_KEYS = ("billing_version", "profileId", "meter_event", "tariff_snapshot", "billing")


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def show(label: str, value: Any) -> None:
    print(f"   {label:<28} {value}", flush=True)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def running_service(
    home: Path, secret: str, rpc_url: str, settlement: str
) -> Iterator[httpx.Client]:
    """`vbill serve` in its own process group on a free loopback port; stopped on exit."""
    port = chainmod.free_port()
    (home / "service.json").write_text(json.dumps({"settle_interval": 0.5, "prover_workers": 1}))
    env = {**os.environ, "VBILL_HOME": str(home), "VDI_ATTEST_SECRET": secret}
    cmd = [sys.executable, "-c", "from vbill.cli.main import main; main()", "serve"]
    cmd += ["--port", str(port), "--network", "local", "--rpc-url", rpc_url]
    cmd += ["--settlement", settlement]
    log = (home / "service.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=paths.ROOT)  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited; see {home / 'service.log'}")
        try:
            return client.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 60, "the service to answer")
        show("service", f"{client.base_url} (pid {proc.pid}, log {home / 'service.log'})")
        yield client
    finally:
        client.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def verify_body(bundle: dict[str, Any]) -> dict[str, Any]:
    record = {k: bundle[k] for k in RECORD_KEYS}
    return {
        "attestation": bundle["attestation"],
        "receipt": bundle["receipt"],
        "billed_billing_v2": copy.deepcopy(record),
        "expected_billing_v2": record,
    }


def verdicts(result: dict[str, Any]) -> str:
    parts = []
    for key in ("verification", "billing_check", "incircuit_binding_verification"):
        v = result[key]
        parts.append(f"{key}={'ok' if v['valid'] else 'FAIL'}")
    return ", ".join(parts)


def reasons(result: dict[str, Any]) -> list[str]:
    return [
        f"{k}: {result[k]['reason']}"
        for k in ("verification", "billing_check", "incircuit_binding_verification")
        if not result[k]["valid"]
    ]


def run(home: Path) -> None:
    secret = secrets.token_urlsafe(32)
    auth = {"X-VDI-Attest-Secret": secret}
    with ExitStack() as stack:
        step("local chain")
        anvil = chainmod.start_anvil()
        stack.callback(anvil.stop)
        show("anvil", f"{anvil.url} (pid {anvil.pid})")

        step("deploy the verifier and settlement contracts")
        attester = Attester.new(home / "attester.key")
        owner = chainmod.connect(
            "local", rpc_url=anvil.url, account=Account.from_key(chainmod.ANVIL_KEYS[0])
        )
        dep = owner.deploy(attesters=[attester.address], write=False)
        settlement = dep["contracts"]["BillingSettlement"]["address"]
        owner.w3.provider.make_request("anvil_setBalance", [attester.address, hex(10**19)])
        show("BillingVerifier", dep["contracts"]["BillingVerifier"]["address"])
        show("BillingSettlement", settlement)
        show("attester (settles, signs)", attester.address)
        show("vkey sha256", dep["vkey_sha256"])

        step("start the service")
        http = stack.enter_context(running_service(home, secret, anvil.url, settlement))
        status = http.get("/api/vdi/status").json()
        show("binding", status["binding_version"])

        step("onboard tenant_acme and fund its account on chain")
        wallet = chainmod.connect(
            "local", rpc_url=anvil.url, account=Account.from_key(chainmod.ANVIL_KEYS[1])
        )
        wallet.use_settlement(settlement)
        # the service (an active attester) opens the account for the tenant key, naming the
        # tenant's wallet as controller; before that, deposits to the key revert
        acct = http.post(
            "/api/vdi/billing/accounts",
            json={"tenant_id": "tenant_acme", "controller": wallet.address},
            headers=auth,
        ).json()
        if acct["onchain_status"] != "bound":
            raise RuntimeError(f"the service could not open the account: {acct}")
        tenant_key = int(acct["tenant_key"])
        show("tenant_key", acct["tenant_key"])
        show("account opened", f"controller {wallet.address} (tx {acct['onchain_tx']})")
        eth_request = copy.deepcopy(PILOT)
        eth_request["meter_event"]["event_id"] = "evt_pilot_eth_001"
        eth_request["tariff_snapshot"]["currency"] = "ETH"
        tariff_key = int(
            http.post(
                "/api/vdi/billing/accounts/tenant_acme/tariff-key",
                json={"tariff_snapshot": eth_request["tariff_snapshot"]},
                headers=auth,
            ).json()["tariff_key"]
        )
        tx = wallet.deposit(tenant_key, 10**18)
        wallet.accept_tariff(tenant_key, tariff_key)
        show("deposit 1 ETH", f"tx {tx.transaction_hash} (block {tx.block_number})")
        show("accepted tariff_key", tariff_key)
        wallet.w3.provider.make_request("anvil_mine", [hex(12)])
        wait_for(
            lambda: (
                http.get("/api/vdi/billing/accounts/tenant_acme", headers=auth).json()["balance"][
                    "total"
                ]
                == str(10**18)
            ),
            60,
            "the deposit to be credited (12 confirmations)",
        )
        bal = http.get("/api/vdi/billing/accounts/tenant_acme", headers=auth).json()["balance"]
        show("credited after 12 blocks", f"available {bal['available']} wei")

        step("attest the pilot request (USD) over HTTP")
        t0 = time.perf_counter()
        r = http.post("/api/vdi/billing/attest", json=PILOT, headers=auth)
        r.raise_for_status()
        pilot = r.json()
        show("took", f"{time.perf_counter() - t0:.2f} s (includes starting the prover)")
        show("expected_charge_micros", pilot["billing"]["expected_charge_micros"])
        show("fingerprint", pilot["billing"]["billing_verify_fingerprint"])
        show("commitment", pilot["attestation"]["billing_proof"]["public_signals"][0])
        show("log leaf / tree size",
             f"{pilot['receipt']['leaf_index']} / {pilot['receipt']['tree_size']}")  # fmt: skip
        again = http.post("/api/vdi/billing/attest", json=PILOT, headers=auth)
        show("same request again", f"{again.status_code}, same bundle: {again.json() == pilot}")
        changed = copy.deepcopy(PILOT)
        changed["meter_event"]["usage_units"] = 1843
        conflict = http.post("/api/vdi/billing/attest", json=changed, headers=auth)
        show("same event, other usage", f"{conflict.status_code} {conflict.json()['detail']}")

        step("verify it")
        result = http.post("/api/vdi/billing/verify", json=verify_body(pilot)).json()
        show("result", verdicts(result))
        if not result["valid"]:
            raise RuntimeError(f"the pilot bundle did not verify: {reasons(result)}")

        step("a tampered copy fails")
        tampered = verify_body(pilot)
        tampered["billed_billing_v2"]["billing"]["expected_charge_micros"] = 2210400
        bad = http.post("/api/vdi/billing/verify", json=tampered).json()
        show("invoice charge ×10", verdicts(bad))
        for why in reasons(bad):
            show("", why)
        forged = verify_body(pilot)
        for rec in ("billed_billing_v2", "expected_billing_v2"):
            forged[rec]["meter_event"]["usage_units"] = 18420
        bad2 = http.post("/api/vdi/billing/verify", json=forged).json()
        show("usage edited in both", verdicts(bad2))
        if bad["valid"] or bad2["valid"]:
            raise RuntimeError("a tampered bundle verified")

        step("attest the ETH-priced copy and settle it on chain")
        r = http.post("/api/vdi/billing/attest", json=eth_request, headers=auth)
        r.raise_for_status()
        show("attested", f"{r.json()['billing']['expected_charge_micros']} micro-ETH reserved")

        def settled() -> Any:
            b = http.get("/api/vdi/billing/bundles/evt_pilot_eth_001", headers=auth).json()
            return b if b.get("settlement") else None

        bundle = wait_for(settled, 90, "the settlement worker")
        receipt = bundle["settlement"]
        for key in ("cost_eth", "transaction_hash", "block_number", "gas_used", "timestamp"):
            show(key, receipt[key])
        on_chain = wallet.receipt(receipt["transaction_hash"], bundle).as_json()
        same = all(on_chain[k] == receipt[k] for k in receipt)
        show("re-derived from the chain", "matches" if same else f"DIFFERS: {on_chain}")
        bal = http.get("/api/vdi/billing/accounts/tenant_acme", headers=auth).json()["balance"]
        show("service balance (wei)", f"total {bal['total']}, reserved {bal['reserved']}")
        show("chain balance (wei)", f"total {wallet.balance(tenant_key).total}")
        head = http.get("/api/vdi/billing/transparency/head").json()
        show("transparency head", f"size {head['tree_size']}, root {head['root_hash']}")
        if not same:
            raise RuntimeError("the stored receipt differs from the chain")

        bill_inference(http, auth, wallet, tenant_key, home, attester.address)

        step("stopping what the demo started")
    print("\ndemo complete", flush=True)


def inference_request() -> dict[str, Any]:
    """docs/examples/eth-metered.json with a free allowance: the window's first 100 input
    tokens cost nothing, then 0.25 micro-ETH each; output tokens 1.25 micro-ETH each."""
    request = json.loads((paths.ROOT / "docs" / "examples" / "eth-metered.json").read_text())
    request["tariff_snapshot"]["dimensions"]["input_tokens"]["tiers"] = [
        {"up_to": 100, "unit_price_micros": "0"},
        {"up_to": None, "unit_price_micros": "0.25"},
    ]
    return request


def bill_inference(
    http: httpx.Client,
    auth: dict[str, str],
    wallet: chainmod.Chain,
    tenant_key: int,
    home: Path,
    attester: str,
) -> None:
    """One AI inference billed in ETH (binding v2): attest, settle, re-derive its receipt from
    the chain, then the window's statement, verified offline."""
    from vbill.bindings import BINDING_V2, BINDING_V2C, artefacts
    from vbill.verify.statement import verify_statement
    from vbill.verify.trust import TrustSet
    from vbill.verify.verify import default_check

    step("bill one AI inference in ETH (metered tariff, binding v2)")
    request = inference_request()
    tariff_key = int(
        http.post(
            "/api/vdi/billing/accounts/tenant_acme/tariff-key",
            json={"tariff_snapshot": request["tariff_snapshot"]},
            headers=auth,
        ).json()["tariff_key"]
    )
    wallet.accept_tariff(tenant_key, tariff_key)
    show("accepted tariff_key", tariff_key)
    show("prices (micro-ETH/token)", "input 0 for the first 100, then 0.25; output 1.25")
    event_id = request["meter_event"]["event_id"]
    r = http.post("/api/vdi/billing/attest", json=request, headers=auth)
    r.raise_for_status()
    attested = r.json()
    usage = attested["usage"]
    show("tokens", f"{usage['units']} (total {usage['total_units']})")
    show("allowance crossed", "100 input tokens free, 56 paid: 14 + 412 × 1.25 = 529")
    show("expected_charge_micros", attested["billing"]["expected_charge_micros"])
    show("usage.cost_eth", usage["cost_eth"])
    show("window seq", attested["billing"]["window"]["seq"])
    if attested["billing"]["expected_charge_micros"] != 529:
        raise RuntimeError(f"the inference was charged {attested['billing']}")

    def settled() -> Any:
        b = http.get(f"/api/vdi/billing/bundles/{event_id}", headers=auth).json()
        return b if b.get("settlement") else None

    bundle = wait_for(settled, 90, "the settlement worker (settleV2)")
    receipt = bundle["settlement"]
    for key in ("cost_eth", "transaction_hash", "block_number", "gas_used"):
        show(key, receipt[key])
    on_chain = wallet.receipt(receipt["transaction_hash"], bundle)
    same = all(on_chain.as_json()[k] == receipt[k] for k in receipt)
    show("re-derived from the chain", "matches" if same else f"DIFFERS: {on_chain}")
    charge = on_chain.charges[0]
    show("WindowAdvanced state key", f"{charge.prev_state_key} → {charge.state_key}")
    if not same:
        raise RuntimeError("the stored inference receipt differs from the chain")

    step("the window statement (tenant_acme, 2026-05)")
    window = request["meter_event"]["billing_window_id"]
    doc = http.get(f"/api/vdi/billing/statements/tenant_acme/{window}", headers=auth).json()
    path = home / f"tenant_acme-{window}.statement.json"
    path.write_text(json.dumps(doc, indent=2))
    for key in ("tariff_id", "currency", "events", "total_micros", "totals_by_dimension"):
        show(key, doc[key])
    trust = TrustSet().with_(attesters=[attester], vkey_files=[artefacts(BINDING_V2).vkey])
    st = verify_statement(
        [(f"bundles[{i}]", b) for i, b in enumerate(doc["bundles"])],
        trust=trust,
        check=default_check(),
        claimed={k: v for k, v in doc.items() if k != "bundles"},
    )
    show("verified offline", "VALID" if st.valid else f"INVALID: {st.problems}")
    show("document", f"{path.name}, {path.stat().st_size} bytes (`vbill statement FILE`)")
    if not st.valid or int(doc["total_micros"]) != charge.charge:
        raise RuntimeError("the window statement does not hold or differs from the chain")
    trust = trust.with_(vkey_files=[artefacts(BINDING_V2C).vkey])  # corrections' key too
    dispute(http, auth, wallet, tenant_key, event_id, window, trust)
    close_month(http, auth, home, trust, request)


def dispute(
    http: httpx.Client,
    auth: dict[str, str],
    wallet: chainmod.Chain,
    tenant_key: int,
    event_id: str,
    window: str,
    trust: Any,
) -> None:
    """The tenant disputes the inference and wins: a proven correction voids it, verifies with
    the three verdicts, nets the window statement to zero and moves the credit back on chain."""
    from vbill.verify.correction import verify_correction
    from vbill.verify.verify import default_check

    step("a dispute: the inference was a test call; the provider voids it")
    before = wallet.balance(tenant_key).available
    r = http.post(
        "/api/vdi/billing/corrections",
        json={
            "tenant_id": "tenant_acme",
            "corrects": event_id,
            "correction_id": f"cor_{event_id}",
            "reason": "a test inference billed by mistake",
        },
        headers=auth,
    )
    r.raise_for_status()
    out = r.json()
    show("correction", f"{out['correction_id']} of {out['corrects']}, window seq {out['seq']}")
    show("credit_micros", out["credit_micros"])
    result = verify_correction(out["correction"], trust=trust, check=default_check())
    show("verified offline", verdicts(result.model_dump()))
    doc = http.get(f"/api/vdi/billing/statements/tenant_acme/{window}", headers=auth).json()
    show("statement after it", f"total {doc['total_micros']} micros, {doc['totals_by_dimension']}")
    if not result.valid or doc["total_micros"] != 0 or out["credit_micros"] != 529:
        raise RuntimeError(f"the correction does not verify or net the window: {doc}")

    def credited() -> Any:
        now = wallet.balance(tenant_key).available
        return now if now > before else None

    after = wait_for(credited, 90, "the settlement worker (settleCorrection)")
    show("chain: available balance (wei)", f"{before} → {after} (+{after - before})")
    if after - before != out["credit_micros"] * 10**12:
        raise RuntimeError("the credit on chain is not the correction's")


def close_month(
    http: httpx.Client, auth: dict[str, str], home: Path, trust: Any, request: dict[str, Any]
) -> None:
    """Close the month: the signed, logged close record; a late event refused; the closed
    statement verified to exactly its close; the invoice's lines summing to its total."""
    from decimal import Decimal

    from vbill.billing.invoice import invoice_html
    from vbill.verify.statement import verify_statement
    from vbill.verify.verify import default_check

    window = request["meter_event"]["billing_window_id"]
    step(f"close the month ({window}) and its invoice")
    second = json.loads(json.dumps(request))
    second["meter_event"]["event_id"] = "inf_second_of_the_month"
    r = http.post("/api/vdi/billing/attest", json=second, headers=auth)
    r.raise_for_status()
    show("another inference", f"{r.json()['billing']['expected_charge_micros']} micros, seq "
         f"{r.json()['billing']['window']['seq']}")  # fmt: skip
    base = f"/api/vdi/billing/windows/tenant_acme/{window}"
    r = http.post(base + "/close", headers=auth)
    r.raise_for_status()
    record = r.json()
    leaf, signer = record["receipt"]["leaf_index"], record["attestation"]["attester"]
    show("close record", f"seq {record['last_seq']}, total {record['total_micros']} micros, "
         f"log leaf {leaf}, signed by {signer}")  # fmt: skip
    late = json.loads(json.dumps(request))
    late["meter_event"]["event_id"] = "inf_after_close"
    refused = http.post("/api/vdi/billing/attest", json=late, headers=auth)
    show("a late event for the month", f"{refused.status_code}: {refused.json()['detail'][:60]}…")
    doc = http.get(f"/api/vdi/billing/statements/tenant_acme/{window}", headers=auth).json()
    st = verify_statement(
        [(f"bundles[{i}]", b) for i, b in enumerate(doc["bundles"])],
        trust=trust,
        check=default_check(),
        claimed={k: v for k, v in doc.items() if k not in ("bundles", "close")},
        close=doc.get("close"),
    )
    short = verify_statement(
        [(f"bundles[{i}]", b) for i, b in enumerate(doc["bundles"][:-1])],
        trust=trust,
        check=default_check(),
        close=doc.get("close"),
    )
    show(
        "closed statement", "VALID, closed" if st.valid and st.closed else f"INVALID: {st.problems}"
    )
    show("without its last bundle", short.problems[0].kind if short.problems else "VALID (wrong)")
    inv = http.get(f"/api/vdi/billing/invoices/tenant_acme/{window}", headers=auth).json()
    for line in inv["lines"]:
        what = line["kind"]
        if what == "usage":
            what = f"{line['dimension']} tier {line['tier']}: {line['units']} × "
            what += f"{line['unit_price_micros']}"
        show(f"  {what}", f"{line['amount_micros']} micros")
    show("invoice total", f"{inv['total_micros']} micros = {inv['total']} {inv['currency']}")
    html = home / f"tenant_acme-{window}.invoice.html"
    html.write_text(invoice_html(inv))
    show("invoice page", f"{html.name} (prints on A4)")
    lines_sum = sum(Decimal(line["amount_micros"]) for line in inv["lines"])
    if (
        refused.status_code != 409
        or not (st.valid and st.closed)
        or [p.kind for p in short.problems] != ["truncated"]
        or lines_sum != Decimal(inv["total_micros"])
        or inv["total_micros"] != record["total_micros"]
    ):
        raise RuntimeError("the month's close, statement or invoice does not hold")


def main() -> int:
    paths.require(paths.VKEY)
    with tempfile.TemporaryDirectory(prefix="vbill-demo-") as tmp:
        home = Path(tmp)
        os.environ["VBILL_HOME"] = str(home)
        try:
            run(home)
        except KeyboardInterrupt:
            print("\ninterrupted; stopped everything the demo started", file=sys.stderr)
            return 130
        except Exception as exc:
            log = home / "service.log"
            if log.exists():
                print(log.read_text()[-3000:], file=sys.stderr)
            print(f"\ndemo failed: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
