"""Shared fixtures: real prover workers, a fresh attester, the pilot request and its bundle."""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Deploys render and compile the contracts; in a test run they go to a temp dir, never build/
# (set before vbill is imported: vbill.chain.contracts reads it once; subprocesses inherit it).
_OWN_CONTRACTS_BUILD: str | None = None
if not os.environ.get("VBILL_CONTRACTS_BUILD"):
    _OWN_CONTRACTS_BUILD = tempfile.mkdtemp(prefix="vbill-contracts-")
    os.environ["VBILL_CONTRACTS_BUILD"] = _OWN_CONTRACTS_BUILD

from support import DATA, V2, V2C, log_and_receipt, needs_build, needs_v2, needs_v2c  # noqa: E402
from support.pg_server import pg_server, pg_url  # noqa: E402, F401  (session-wide fixtures)
from vbill import paths  # noqa: E402
from vbill.bindings import BINDING_V2, BINDING_V2C  # noqa: E402
from vbill.bundle.bundle import build_bundle  # noqa: E402
from vbill.bundle.keys import Attester  # noqa: E402
from vbill.ingest import Proving  # noqa: E402
from vbill.ledger.translog import MerkleTree  # noqa: E402
from vbill.verify.trust import TrustSet, file_sha256  # noqa: E402
from vbill.zk.native_prover import open_prover  # noqa: E402
from vbill.zk.prover import Prover  # noqa: E402


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_CONTRACTS_BUILD is not None:
        shutil.rmtree(_OWN_CONTRACTS_BUILD, ignore_errors=True)


@pytest.fixture(scope="session")
def pilot_request() -> dict[str, Any]:
    return json.loads((DATA / "pilot_request.json").read_text())


@pytest.fixture
def request_copy(pilot_request: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(pilot_request)


@pytest.fixture(scope="session")
def prover() -> Iterator[Prover]:
    needs_build()
    with Prover(workers=1) as p:
        yield p


@pytest.fixture(scope="session")
def attester() -> Attester:
    return Attester.generate()


@pytest.fixture(scope="session")
def vkey_sha256() -> str:
    needs_build()
    return file_sha256(paths.VKEY)


@pytest.fixture(scope="session")
def v1(prover: Prover, vkey_sha256: str) -> Proving:
    """Binding v1's Proving (prover + vkey hash), for attest_event(provers={BINDING_V1: v1})."""
    return Proving(prover, vkey_sha256)


@pytest.fixture(scope="session")
def trust(attester: Attester) -> TrustSet:
    needs_build()
    return TrustSet().with_(attesters=[attester.address], vkey_files=[paths.VKEY])


@pytest.fixture(scope="session")
def make_bundle(prover: Prover, attester: Attester, vkey_sha256: str):
    """Factory: sign, prove and log a request (digest version 2; `build=v1_bundle` signs it as
    earlier releases did); returns the bundle as plain JSON data."""
    tree = MerkleTree()

    def make(
        request: dict[str, Any],
        *,
        account_salt: int = 12345,
        signer: Attester | None = None,
        build: Callable[..., Any] = build_bundle,
        **kw: Any,
    ) -> dict[str, Any]:
        signer = signer or attester
        bundle = build(
            request,
            attester=signer,
            account_salt=account_salt,
            prover=prover,
            vkey_sha256=kw.pop("vkey_sha256", vkey_sha256),
            **kw,
        )
        return log_and_receipt(bundle, tree, signer).model_dump(mode="json")

    return make


@pytest.fixture(scope="session")
def pilot_bundle(make_bundle, pilot_request: dict[str, Any]) -> dict[str, Any]:
    return make_bundle(pilot_request)


# --- on chain (issue 5): one anvil per session, one deployment, a snapshot per test ---------


@pytest.fixture(scope="session")
def anvil():
    """A real anvil from node_modules on a free 127.0.0.1 port, stopped after the session."""
    from vbill.chain import start_anvil

    node = start_anvil()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def deployment(anvil) -> dict[str, Any]:
    """Verifier + settlement deployed once from build/vkey.json (payee: anvil account 3)."""
    needs_build()
    from eth_account import Account
    from vbill.chain import ANVIL_KEYS, connect

    owner = connect("local", anvil.url, account=Account.from_key(ANVIL_KEYS[0]))
    payee = Account.from_key(ANVIL_KEYS[3]).address
    return owner.deploy(paths.VKEY, payee=payee, write=False)


@pytest.fixture
def fresh_chain(anvil, deployment):
    """Revert the chain to the freshly deployed state after each test (evm_snapshot)."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil.url))
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    yield deployment
    w3.provider.make_request("evm_revert", [snap])


@pytest.fixture(scope="session")
def eth_bundle(make_bundle, pilot_request):
    """Factory of real proved bundles with an ETH tariff, cached per distinct event."""
    import functools

    @functools.cache
    def make(
        event: str = "evt_pilot_001",
        account_salt: int = 12345,
        currency: str = "ETH",
        usage: int = 1842,
    ) -> str:
        req = copy.deepcopy(pilot_request)
        req["meter_event"]["event_id"] = event
        req["meter_event"]["usage_units"] = usage
        req["tariff_snapshot"]["currency"] = currency
        return json.dumps(make_bundle(req, account_salt=account_salt))

    return lambda *a, **kw: json.loads(make(*a, **kw))


# --- binding v2 (metered tariffs): its own prover, key and trust ---------------------------


@pytest.fixture(scope="session")
def v2_prover() -> Iterator[Any]:
    from vbill.zk.native_prover import open_prover

    needs_v2()
    prover = open_prover(1, binding=BINDING_V2)
    yield prover
    prover.close()


@pytest.fixture(scope="session")
def v2(v2_prover: Any) -> Proving:
    """Binding v2's Proving (prover + vkey hash), for attest_event(provers={V2.version: v2})."""
    return Proving(v2_prover, file_sha256(V2.vkey))


@pytest.fixture(scope="session")
def v2_trust(attester: Attester) -> TrustSet:
    needs_v2()
    return TrustSet().with_(attesters=[attester.address], vkey_files=[V2.vkey])


@pytest.fixture(scope="module")
def v2c() -> Iterator[Proving]:
    needs_v2c()
    prover = open_prover(1, binding=BINDING_V2C)
    yield Proving(prover, file_sha256(V2C.vkey))
    prover.close()
