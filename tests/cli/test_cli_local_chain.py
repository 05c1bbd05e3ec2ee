"""The on-chain CLI verbs as docs/cli.md states them, on a real anvil: `deploy` on local makes
the service's key an attester with gas, `settle` says when no ETH moved, and `limits set`
takes micro-ETH (the unit of tariffs and of the service's limits) and stores wei on chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support import needs_build
from vbill.bundle.keys import Attester
from vbill.chain import WEI_PER_MICRO, Anvil, connect, start_anvil
from vbill.cli.main import main

pytestmark = pytest.mark.chain


def run(args: list[str]) -> Result:
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result


@pytest.fixture
def chain_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Anvil, Path]:
    """A fresh anvil (its own, so deployments do not meet other tests') and $VBILL_HOME."""
    needs_build()
    monkeypatch.setenv("VBILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VBILL_PRIVATE_KEY", raising=False)
    node = start_anvil()
    yield node, tmp_path / "home"
    node.stop()


def test_deploy_on_local_registers_and_funds_the_service_key(chain_home) -> None:
    node, home = chain_home
    service = Attester.new(home / "attester.key")
    r = run(["deploy", "--rpc-url", node.url, "--json"])
    assert r.exit_code == 0, r.output
    dep = json.loads(r.output)
    deployer = connect("local", node.url)
    assert dep["attesters"] == [deployer.address, service.address]
    assert deployer.settlement.functions.attesterStatus(service.address).call() == 1  # Active
    assert deployer.w3.eth.get_balance(service.address) == 10 * 10**18


def test_deploy_without_a_service_key_registers_only_the_deployer(chain_home) -> None:
    node, _home = chain_home
    r = run(["deploy", "--rpc-url", node.url, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["attesters"] == [connect("local", node.url).address]


def test_settle_a_usd_bundle_anchors_and_says_no_eth_moved(
    chain_home, eth_bundle, tmp_path: Path
) -> None:
    node, _home = chain_home
    assert run(["deploy", "--rpc-url", node.url]).exit_code == 0
    usd = tmp_path / "usd.json"
    usd.write_text(json.dumps(eth_bundle(event="evt_usd", currency="USD")))
    r = run(["settle", "--rpc-url", node.url, str(usd)])
    assert r.exit_code == 0, r.output
    assert "anchored in 0x" in r.output and "no ETH moved (currency USD)" in r.output
    assert "settled" not in r.output
    r = run(["settle", "--rpc-url", node.url, str(usd), "--json"])
    assert r.exit_code == 1 and "NullifierUsed" in r.output  # anchored once, for good


def test_limits_set_takes_micro_eth_and_stores_wei(chain_home, eth_bundle, tmp_path) -> None:
    node, _home = chain_home
    assert run(["deploy", "--rpc-url", node.url]).exit_code == 0
    bundle = tmp_path / "eth.json"
    bundle.write_text(json.dumps(eth_bundle(event="evt_limits")))
    owner = connect("local", node.url)
    net = ["--rpc-url", node.url, "--bundle", str(bundle)]
    assert run(["account", "open", *net, "--controller", owner.address]).exit_code == 0
    r = run(["limits", "set", *net, "--per-request-micros", "250000", "--daily-micros", "1000000"])
    assert r.exit_code == 0, r.output
    assert "250000 micro-ETH per request" in r.output
    key = int(bundle_tenant_key(bundle))
    state = owner.account_of(key)
    assert state.per_request_limit == 250_000 * WEI_PER_MICRO
    assert state.daily_limit == 1_000_000 * WEI_PER_MICRO
    r = run(["limits", "set", *net, "--per-request-micros", "0.5", "--daily-micros", "1"])
    assert r.exit_code == 2  # whole micro-ETH only, like the service's limits


def bundle_tenant_key(path: Path) -> str:
    return json.loads(path.read_text())["attestation"]["billing_proof"]["public_signals"][4]


def test_attester_add_then_revoke_sets_its_status_and_revocation_is_final(chain_home) -> None:
    node, _home = chain_home
    assert run(["deploy", "--rpc-url", node.url]).exit_code == 0
    status = connect("local", node.url).settlement.functions.attesterStatus
    other = Attester.generate().address
    assert status(other).call() == 0  # None
    r = run(["attester", "add", "--rpc-url", node.url, other])
    assert r.exit_code == 0 and f"attester {other} added" in r.output, r.output
    assert status(other).call() == 1  # Active
    r = run(["attester", "revoke", "--rpc-url", node.url, other, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["transaction_hash"].startswith("0x")
    assert status(other).call() == 2  # Revoked
    r = run(["attester", "add", "--rpc-url", node.url, other])
    assert r.exit_code != 0 and status(other).call() == 2
