"""The signed revocation list served at /.well-known/vdi-billing-revocation.json (protocol.md §11).

A verifier that trusts the operator's address fetches this document and drops the revoked
attester keys and verification-key hashes from its trust set. The payload is signed as an
EIP-191 personal message over its RFC 8785 canonical JSON, so any Ethereum tool can check it;
`verify_revocation` fails closed (None) on any malformed field, unknown signer or bad signature.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

from vbill.bundle.attestation import canonical_json
from vbill.errors import InputError

VERSION = "vbill-revocation-v1"


def build_payload(
    revocations: Iterable[Mapping[str, Any]],
    issuer: str,
    issued_at: int,
    retirements: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The unsigned payload from store rows ({kind, value, reason, revoked_at}) and retired
    keys ({address, retired_at, reason}): `revoked_attesters` are compromised (nothing they
    signed is valid), `retired_attesters` maps a rotated-out key to the time (ms) from which
    it no longer signs (bundles logged before stay valid)."""
    rows = list(revocations)
    retired = list(retirements)
    return {
        "version": VERSION,
        "issuer": issuer,
        "issued_at": issued_at,
        "revoked_attesters": sorted(r["value"].lower() for r in rows if r["kind"] == "attester"),
        "revoked_vkeys": sorted(r["value"].lower() for r in rows if r["kind"] == "vkey"),
        "retired_attesters": {r["address"].lower(): r["retired_at"] for r in retired},
        "entries": [
            {k: r[k] for k in ("kind", "value", "reason", "revoked_at")}
            for r in sorted(rows, key=lambda r: (r["revoked_at"], r["kind"], r["value"]))
        ],
    }


def sign(payload: Mapping[str, Any], account: Any) -> dict[str, Any]:
    """The signed document: {payload, signer, signature}."""
    signed = account.sign_message(encode_defunct(primitive=canonical_json(dict(payload))))
    return {
        "payload": dict(payload),
        "signer": account.address,
        "signature": "0x" + bytes(signed.signature).hex(),
    }


def check_revocation(
    document: Any, trusted_signers: Iterable[str], what: str = "revocation list"
) -> dict[str, Any]:
    """The payload of a revocation list signed by a trusted signer; InputError saying why not
    (a list we cannot rely on is refused, never silently used or ignored)."""
    payload = (
        verify_revocation(document, trusted_signers) if isinstance(document, Mapping) else None
    )
    if payload is not None:
        return payload
    signer = document.get("signer") if isinstance(document, Mapping) else None
    if not isinstance(signer, str) or signer.lower() not in {s.lower() for s in trusted_signers}:
        why = f"signed by {signer!r}, not by a trusted attester"
    else:
        why = "its signature does not match its payload and signer (or it is malformed)"
    raise InputError(what, f"refusing the revocation list: {why}")


def verify_revocation(
    document: Mapping[str, Any], trusted_signers: Iterable[str]
) -> dict[str, Any] | None:
    """The payload if the document is signed by a trusted signer, else None."""
    try:
        payload = document["payload"]
        signer = document["signer"]
        if payload.get("version") != VERSION:
            return None
        if signer.lower() not in {s.lower() for s in trusted_signers}:
            return None
        msg = encode_defunct(primitive=canonical_json(payload))
        sig = bytes.fromhex(document["signature"].removeprefix("0x"))
        if Account.recover_message(msg, signature=sig).lower() != signer.lower():
            return None
        if not all(isinstance(a, str) for a in payload["revoked_attesters"]):
            return None
        if not all(isinstance(v, str) for v in payload["revoked_vkeys"]):
            return None
        retired = payload.get("retired_attesters", {})
        if not isinstance(retired, dict) or not all(
            isinstance(a, str) and type(t) is int for a, t in retired.items()
        ):
            return None
        return dict(payload)
    except Exception:  # any malformed part: not a revocation list we can rely on
        return None


def write_local(document: Mapping[str, Any], home: Path) -> Path:
    """Keep a copy at $VBILL_HOME/revocation.json, which the offline verifier honours."""
    path = home / "revocation.json"
    tmp = path.with_name(".revocation.json.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
