"""The chain stage's fixtures: one signer per role on the session's deployment (reverted after
each test by fresh_chain), and binding v2's snarkjs prover with the proven events of a window."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.chain import as_account
from support.chain_v2 import ACCOUNT_SALT, SALT, V2, needs_v2_setup, request
from vbill.bindings import BINDING_V2
from vbill.chain import Chain
from vbill.encode.metered import GENESIS, WindowState, encode_metered
from vbill.zk.prover import Prover
from vbill.zk.witness_metered import circuit_input, public_signals


@pytest.fixture
def owner(anvil, fresh_chain) -> Chain:
    return as_account(anvil, fresh_chain, 0)


@pytest.fixture
def tenant(anvil, fresh_chain) -> Chain:
    return as_account(anvil, fresh_chain, 1)


@pytest.fixture
def stranger(anvil, fresh_chain) -> Chain:
    return as_account(anvil, fresh_chain, 2)


@pytest.fixture
def payee(anvil, fresh_chain) -> Chain:
    return as_account(anvil, fresh_chain, 3)


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
