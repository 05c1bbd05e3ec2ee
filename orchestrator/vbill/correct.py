"""The one correction path, shared by `vbill correct` / `vbill void` and POST /corrections
(docs/protocol-corrections.md).

The request is validated first; the store then guarantees one correction per correction_id
(same payload → the stored one, never re-proved; another payload → Conflict), at most one per
event (Conflict), none of an unknown or another tenant's event (NotFound). A metered event's
correction is priced from its window's head, proved by binding v2c and logged as the window's
next entry; a binding v1 event's is a void: a signed, logged record of the original's charge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vbill.bundle.attestation import canonical_json
from vbill.bundle.correction import (
    build_correction,
    build_void,
    head_state,
    original_of,
)
from vbill.bundle.keys import Attester
from vbill.encode.encoding import _kind, encode_string, field_paths
from vbill.encode.metered import CORRECTION_KEYS
from vbill.errors import InputError, ToolError
from vbill.ingest import Proving, signing_refused
from vbill.ledger.store import Store, StoredBundle, StoredCorrection, WindowHead


@dataclass(frozen=True)
class Corrected:
    stored: StoredCorrection
    created: bool


def check_request(request: Any, path: str = "correction") -> dict[str, Any]:
    """The correction request's shape (strings, an optional usage object); the units are
    checked against the original once it is found. Returns it with `usage` only if given."""
    if not isinstance(request, Mapping):
        raise InputError(path, f"must be an object, got {_kind(request)}")
    body = dict(request)
    if body.get("usage") is None:
        body.pop("usage", None)
    f = field_paths({"usage": None, **body}, path, CORRECTION_KEYS)
    for key in ("tenant_id", "corrects", "correction_id", "reason"):
        encode_string(body[key], f[key])
    if "usage" in body and not isinstance(body["usage"], Mapping):
        raise InputError(f["usage"], f"must be an object, got {_kind(body['usage'])}")
    return body


def request_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


def correct_event(
    request: Mapping[str, Any] | Any,
    *,
    store: Store,
    attester: Attester,
    proving: Proving | None,
) -> Corrected:
    """Correct one event exactly once; raises InputError (422), NotFound (404), Conflict
    (409), and ToolError if binding v2c is not set up (a metered event) or the key must not
    sign. `proving` is binding v2c's prover and vkey SHA-256."""
    body = check_request(request)
    refusal = store.signing_refusal(attester.address)
    if refusal is not None:
        raise signing_refused(refusal)
    tenant_id = body["tenant_id"]

    def build(original: StoredBundle, head: WindowHead | None) -> dict[str, Any]:
        tenant = store.tenant(tenant_id)
        assert tenant is not None  # it has the original
        if head is None:  # binding v1: no window chain
            if "usage" in body:
                raise InputError("correction.usage", "a binding v1 event is voided whole")
            return build_void(body, original.bundle, attester=attester)
        if proving is None:
            raise ToolError("binding bn128-poseidon8-v2c is not set up here (no correction key)")
        _, names = original_of(original.bundle)
        return build_correction(
            body,
            original.bundle,
            head_state(head.state, names),
            attester=attester,
            account_salt=tenant.account_salt,
            prover=proving.prover,
            vkey_sha256=proving.vkey_sha256,
        )

    stored, created = store.correct(
        tenant_id=tenant_id,
        correction_id=body["correction_id"],
        corrects=body["corrects"],
        request_hash=request_hash(body),
        build=build,
    )
    return Corrected(stored, created)


def summary(stored: StoredCorrection) -> dict[str, Any]:
    """What `vbill correct --json` and POST /corrections answer besides the document."""
    window = stored.doc.get("billing", {}).get("window")
    return {
        "credit_micros": stored.credit_micros,
        "correction_id": stored.correction_id,
        "corrects": stored.corrects,
        "tenant_id": stored.tenant_id,
        "seq": window["seq"] if isinstance(window, dict) else None,
        "currency": stored.currency,
        "leaf_index": stored.leaf_index,
    }
