"""Binding v2 on chain: real metered proofs of one billing window, made with snarkjs workers
(the fixtures v2_snarkjs and metered_window, in tests/chain/conftest.py).

Each window is a chain of events from genesis; an event's proof comes from the reference's
`circuit_input` (vbill.zk.witness_metered) and the v2 zkey, and its bundle carries only what
settlement reads (billing_proof: binding_version, proof, public_signals; the tariff currency).
The tenant is the pilot's (tenant_acme, account salt 12345), so v1 and v2 charges draw on one
account, and an event id settles once whatever its binding (same nullifier).
"""

from __future__ import annotations

from typing import Any

import pytest
from vbill.bindings import BINDING_V2, artefacts
from vbill.chain import Chain
from vbill.encode.metered import GENESIS, encode_metered
from vbill.zk.witness_metered import window_state_key
from vbill_tools.bench import metered_request
from web3.logs import DISCARD

V2 = artefacts(BINDING_V2)
ACCOUNT_SALT = 12345  # the pilot's: same tenant key as the v1 bundles
SALT = 424242


def needs_v2_setup() -> None:
    if not (V2.zkey.exists() and V2.wasm.exists() and V2.vkey.exists()):
        pytest.skip("build/ has no v2 proving key: run `make setup`")


def request(event_id: str, window: str, usage: dict[str, int]) -> dict[str, Any]:
    """One AI inference of the pilot's tenant (the bench's tariff: input tokens at 0.25
    micro-ETH, output tokens 1.25 then 1 past 10^6)."""
    return metered_request(
        event_id, usage, tenant_id="tenant_acme", window=window, tariff_id="llm-secure-7b"
    )


def genesis_key(window: str) -> int:
    """The state key a window's chain starts from."""
    meter, tariff = encode_metered(request("any", window, {}))
    return window_state_key(meter, tariff, GENESIS, ACCOUNT_SALT)


def receipt_logs(c: Chain, tx: str, event: str) -> list[dict[str, Any]]:
    rcpt = c.w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
    logs = getattr(c.settlement.events, event)().process_receipt(rcpt, errors=DISCARD)
    return [dict(e["args"]) for e in logs]
