"""Binding v2 on chain: real metered proofs of one billing window, made with snarkjs workers.

Each window is a chain of events from genesis; an event's proof comes from the reference's
`circuit_input` (vbill.zk.witness_metered) and the v2 zkey, and its bundle carries only what
settlement reads (billing_proof: binding_version, proof, public_signals; the tariff currency).
The tenant is the pilot's (tenant_acme, account salt 12345), so v1 and v2 charges draw on one
account, and an event id settles once whatever its binding (same nullifier).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from vbill.bindings import BINDING_V2, artefacts
from vbill.encode.metered import GENESIS, WindowState, encode_metered
from vbill.zk.prover import Prover
from vbill.zk.witness_metered import circuit_input, public_signals, window_state_key
from vbill_tools.bench import metered_request

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


@pytest.fixture(scope="session")
def v2_snarkjs() -> Iterator[Prover]:
    needs_v2_setup()
    with Prover(workers=1, wasm=V2.wasm, zkey=V2.zkey, vkey=V2.vkey) as p:
        yield p


@pytest.fixture(scope="session")
def metered_window(v2_snarkjs: Prover) -> Callable[..., list[dict[str, Any]]]:
    """Factory: the first n proven events of `window`, in chain order, as settle-able bundles.
    Every event is one inference of 156 input and 412 output tokens (554 micros exactly, so no
    rounding carries between events); a window's chain is proved once and extended on demand."""
    chains: dict[tuple[str, str], list[tuple[str, WindowState]]] = {}

    def make(window: str = "2026-05", n: int = 1, prefix: str = "inf") -> list[dict[str, Any]]:
        chain = chains.setdefault((window, prefix), [])
        while len(chain) < n:
            i = len(chain)
            state = chain[-1][1] if chain else GENESIS
            req = request(
                f"{prefix}_{window}_{i:03d}", window, {"input_tokens": 156, "output_tokens": 412}
            )
            meter, tariff = encode_metered(req)
            signals, after = public_signals(meter, tariff, state, SALT + i, ACCOUNT_SALT)
            proof = v2_snarkjs.prove(circuit_input(meter, tariff, state, SALT + i, ACCOUNT_SALT))
            want = list(dataclasses.astuple(signals))
            assert [int(x) for x in proof.public_signals] == want, "circuit ≠ reference"
            bundle = {
                "tariff_snapshot": req["tariff_snapshot"],
                "meter_event": req["meter_event"],
                "attestation": {
                    "billing_proof": {
                        "binding_version": BINDING_V2,
                        "proof": proof.proof,
                        "public_signals": proof.public_signals,
                    }
                },
            }
            chain.append((json.dumps(bundle), after))
        return [json.loads(b) for b, _ in chain[:n]]

    return make
