"""Binding v2 (metered) as the tests build it: the documented example request with chosen
dimensions and usage, the example inference, a tiered tariff, and the one attest path into a
SQLite store (tenant_acme funded) with binding v2's prover; v1's prover must never be asked."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vbill.attest import attest_event
from vbill.bindings import BINDING_V2
from vbill.bundle.keys import Attester
from vbill.ingest import Proving
from vbill.ledger.store import Store
from vbill.models import MeteredAttestRequest, example

from support.store import signing_only

EXAMPLE = example(MeteredAttestRequest)


def request(dimensions: dict[str, Any], usage: dict[str, int], **tariff: Any) -> dict[str, Any]:
    """The documented example request (MeteredAttestRequest's) with these dimensions and usage,
    and `tariff`'s changes to its tariff."""
    return {
        "meter_event": {**EXAMPLE["meter_event"], "usage": usage},
        "tariff_snapshot": {**EXAMPLE["tariff_snapshot"], "dimensions": dimensions, **tariff},
    }


def flat(price: str) -> dict[str, Any]:
    return {"tiers": [{"up_to": None, "unit_price_micros": price}]}


INFERENCE = request(
    {
        "input_tokens": flat("0.25"),
        "output_tokens": {
            "tiers": [
                {"up_to": 1_000_000, "unit_price_micros": "1.25"},
                {"up_to": None, "unit_price_micros": "1"},
            ]
        },
    },
    {"input_tokens": 156, "output_tokens": 412},
)


def event(req: Mapping[str, Any], event_id: str, **usage: int) -> dict[str, Any]:
    out = copy.deepcopy(dict(req))
    out["meter_event"]["event_id"] = event_id
    if usage:
        out["meter_event"]["usage"] = usage
    return out


def store_at(path: Path, attester: Attester, *, funded: bool = True) -> Store:
    """The store under `path`; `funded`: tenant_acme exists with ETH credited (charges in ETH
    are refused past the available balance)."""
    store = Store(path / "vbill.sqlite3", log_key=attester.account)
    if funded and store.tenant("tenant_acme") is None:
        store.ensure_tenant("tenant_acme", lambda: (5, _tenant_key(5)))
        store.record_deposit("0x" + "ab" * 32, 0, "tenant_acme", 10**24, 1)
        store.credit_deposit("0x" + "ab" * 32, 0)
    return store


def attest(store: Store, attester: Attester, v2: Proving, req: Mapping[str, Any]) -> Any:
    # v1's prover is never asked: a metered request goes to binding v2's
    return attest_event(req, store=store, attester=attester, provers=provers(v2))


def provers(v2: Proving) -> dict[str, Proving]:
    """Binding v2's Proving, and a v1 one that fails the test if it is asked to prove."""
    return {**signing_only(), BINDING_V2: v2}


def attest_events(
    path: Path, attester: Attester, v2: Proving, req: Mapping[str, Any], usage: list[dict[str, int]]
) -> list[dict[str, Any]]:
    """A window of events `inf_0`, `inf_1`, … of `req` with these usages, attested in order
    into the store under `path`; their bundles."""
    store = store_at(path, attester)
    out = [attest(store, attester, v2, event(req, f"inf_{i}", **u)).stored.bundle
           for i, u in enumerate(usage)]  # fmt: skip
    store.close()
    return out


def _tenant_key(salt: int) -> int:
    from vbill.encode.encoding import hash_string
    from vbill.zk.poseidon import poseidon

    return poseidon([hash_string("tenant_acme"), salt])


TOKENS = [(156, 412), (300, 700), (40, 4100), (12, 333)]
TIERED = request(
    {
        "tokens": {
            "tiers": [
                {"up_to": 1000, "unit_price_micros": "0"},  # a free allowance
                {"up_to": 5000, "unit_price_micros": "0.5"},
                {"up_to": None, "unit_price_micros": "0.25"},
            ]
        },
        "images": flat("20"),
    },
    {},
    tariff_id="tiered",
)
