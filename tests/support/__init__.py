"""Helpers shared by the test folders (tests/<stage>/): skips with the fix, the v2 and v2c
artefacts, the documented metered event, the in-memory log receipt, a JSON edit and a bundle as
earlier releases signed it (digest version 1). Fixtures live
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
from vbill.bundle.bundle import digest_of, draft_of, prove_unproven, sign_draft, with_receipt
from vbill.bundle.keys import Attester
from vbill.encode.metered import GENESIS
from vbill.ledger.translog import MerkleTree, append_with_receipt
from vbill.models import Bundle, MeteredAttestRequest, MeteredBundle, example
from vbill.zk.prover import ProofSource
from vbill.zk.witness import random_field_element

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


def v1_bundle(
    request: Any, *, attester: Attester, account_salt: int, prover: ProofSource, vkey_sha256: str
) -> Bundle | MeteredBundle:
    """`build_bundle`'s bundle as earlier releases signed it: digest version 1, whose signature
    covers the Groth16 proof (a metered request charged from its window's genesis). Only for
    tests of what those releases made: today's bundles are version 2, and tests/data/compat
    holds bundles those releases stored."""
    salt = random_field_element()
    draft = draft_of(request, salt, account_salt, GENESIS)
    unproven = sign_draft(draft, attester, salt, account_salt, vkey_sha256, None)
    proof = prove_unproven(unproven, prover)  # checked against the reference's signals
    return draft.model.model_validate(
        sign_draft(draft, attester, salt, account_salt, vkey_sha256, proof)
    )
