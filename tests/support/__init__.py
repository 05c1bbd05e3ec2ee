"""Helpers shared by the test folders (tests/<stage>/): skips with the fix, the v2 and v2c
artefacts, the documented metered event, the in-memory log receipt and a JSON edit. Fixtures live
in the conftest.py files; the rest of the helpers are this package's modules: chain and chain_v2
(anvil), circuit_tools (the compiled circuits), http_server, servicekit and ingest (the service
over a socket), metered (binding v2's requests and attest path), pg_server, store (the store
without proofs), verifier_page (headless Chromium) and webhook_receiver."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from vbill import paths
from vbill.bindings import BINDING_V2, BINDING_V2C, artefacts
from vbill.bundle.bundle import digest_of, with_receipt
from vbill.bundle.keys import Attester
from vbill.ledger.translog import MerkleTree, append_with_receipt
from vbill.models import Bundle, MeteredAttestRequest, example

DATA = Path(__file__).resolve().parents[1] / "data"


def needs_build() -> None:
    """Skip (with the fix) when the dev setup has not been built; `make test` builds it first."""
    if not (paths.ZKEY.exists() and paths.WASM.exists() and paths.VKEY.exists()):
        pytest.skip("build/ has no proving key: run `make setup`")


def log_and_receipt(bundle: Bundle, tree: MerkleTree, signer: Attester) -> Bundle:
    """Append the bundle's digest to an in-memory RFC 9162 log and attach its receipt."""
    receipt = append_with_receipt(tree, digest_of(bundle), signer.account, 1_780_000_000_000)
    return with_receipt(bundle, receipt.to_dict())


V2 = artefacts(BINDING_V2)


def needs_v2() -> None:
    if not (V2.zkey.exists() and V2.wasm.exists() and V2.vkey.exists()):
        pytest.skip("build/ has no v2 proving key: run `make setup`")


def metered_event(
    tenant_id: str,
    event_id: str,
    input_tokens: int = 156,
    output_tokens: int = 412,
    currency: str | None = None,
) -> dict[str, Any]:
    """The documented metered example (an inference priced in ETH) as `tenant_id`'s event
    `event_id` with these token counts, in `currency` if given."""
    r = example(MeteredAttestRequest)
    r["meter_event"].update(
        tenant_id=tenant_id,
        event_id=event_id,
        usage={"input_tokens": input_tokens, "output_tokens": output_tokens},
    )
    if currency is not None:
        r["tariff_snapshot"]["currency"] = currency
    return r


V2C = artefacts(BINDING_V2C)


def needs_v2c() -> None:
    needs_v2()
    if not (V2C.zkey.exists() and V2C.wasm.exists() and V2C.vkey.exists()):
        pytest.skip("build/ has no correction proving key: run `make setup`")


def set_in(data: Any, path: tuple, value: Any) -> Any:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out
