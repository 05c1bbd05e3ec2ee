"""The published trust document (`GET /.well-known/vdi-billing-trust.json`) and its pin.

A customer fetches this once from the provider, checks its signature and pins it under
`$VBILL_HOME/trust-pin.json` (trust on first use); from then on `vbill verify` and the browser
verifier trust exactly what it names — verification keys by SHA-256 per binding (with the key
itself, so verifying needs no build), attester and log-signer addresses, revoked attesters and
keys, retired (rotated-out) attesters with their cut-off — and a later document that differs is
refused unless re-pinned on purpose.

Signature: EIP-191 `personal_sign` by `issuer` over the UTF-8 bytes of the RFC 8785 canonical
JSON of the document without `"signature"`, with every JSON number written as its decimal
string first (`canonical_json`, the same form bundles and the revocation list are signed in).
The issuer must be one of the document's own attesters and not revoked by it. The format is
described field by field in docs/customer.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from eth_account import Account
from eth_account.messages import encode_defunct
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from vbill import paths
from vbill.bundle.attestation import canonical_json
from vbill.errors import InputError, ToolError, VerificationFailed

TRUST_VERSION = 1
WELL_KNOWN_PATH = "/.well-known/vdi-billing-trust.json"
REVOCATION_URL = "/.well-known/vdi-billing-revocation.json"
LOG_HEAD_URL = "/api/vdi/billing/transparency/head"
PIN_NAME = "trust-pin.json"

_ADDRESS = r"^0x[0-9a-fA-F]{40}$"
_SHA256 = r"^[0-9a-f]{64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BindingKey(_Strict):
    vkey_sha256: StrictStr = Field(pattern=_SHA256)
    ceremony: StrictStr  # "dev-insecure", "contributed", … as recorded by the setup
    vkey_json: StrictStr  # the exact bytes of the verification key file


class Revoked(_Strict):
    attesters: list[StrictStr] = Field(default_factory=list)
    vkeys: list[StrictStr] = Field(default_factory=list)


class Deployment(_Strict):
    settlement: StrictStr = Field(pattern=_ADDRESS)
    verifier: StrictStr = Field(pattern=_ADDRESS)
    chain_id: StrictInt


class TrustDocument(_Strict):
    trust_version: Literal[1]
    issued_at: StrictStr = Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
    issuer: StrictStr = Field(pattern=_ADDRESS)
    bindings: dict[StrictStr, BindingKey]
    attesters: list[StrictStr]
    log_signers: list[StrictStr]
    revocation_url: StrictStr
    log_head_url: StrictStr
    revoked: Revoked
    deployments: dict[StrictStr, Deployment]
    # rotated-out attester (lower-case address) -> retired_at (ms): what it signed before the
    # cut-off stays valid (docs/protocol.md §11); optional, so older documents still verify
    retired_attesters: dict[StrictStr, StrictInt] = Field(default_factory=dict)
    signature: StrictStr = Field(pattern=r"^0x[0-9a-fA-F]{130}$")

    @field_validator("retired_attesters")
    @classmethod
    def _retired(cls, value: dict[str, int]) -> dict[str, int]:
        for address, at in value.items():
            if re.fullmatch(_ADDRESS, address) is None:
                raise ValueError(f"{address!r} is not an Ethereum address")
            if at < 0:
                raise ValueError(f"{address}: retired_at must not be negative")
        return value


def rfc3339_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signing_bytes(document: Mapping[str, Any]) -> bytes:
    """What the issuer signs: the canonical JSON of the document without its signature."""
    return canonical_json({k: v for k, v in document.items() if k != "signature"})


def build(
    account: Any,
    *,
    bindings: Mapping[str, tuple[Path, str]],
    attesters: Iterable[str],
    log_signers: Iterable[str],
    revoked_attesters: Iterable[str] = (),
    revoked_vkeys: Iterable[str] = (),
    deployments: Mapping[str, Mapping[str, Any]] | None = None,
    issued_at: str | None = None,
    retired_attesters: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The signed document; `bindings` maps a binding version to (vkey file, ceremony);
    `retired_attesters` maps a rotated-out attester to its retired_at (ms)."""
    keys = {}
    for version, (path, ceremony) in sorted(bindings.items()):
        raw = path.read_bytes()
        keys[version] = {
            "vkey_sha256": hashlib.sha256(raw).hexdigest(),
            "ceremony": ceremony,
            "vkey_json": raw.decode("utf-8"),
        }
    document: dict[str, Any] = {
        "trust_version": TRUST_VERSION,
        "issued_at": issued_at or rfc3339_now(),
        "issuer": account.address,
        "bindings": keys,
        "attesters": _unique(attesters),
        "log_signers": _unique(log_signers),
        "revocation_url": REVOCATION_URL,
        "log_head_url": LOG_HEAD_URL,
        "revoked": {
            "attesters": sorted({a.lower() for a in revoked_attesters}),
            "vkeys": sorted(set(revoked_vkeys)),
        },
        "deployments": {k: dict(v) for k, v in sorted((deployments or {}).items())},
        "retired_attesters": {
            a.lower(): int(t) for a, t in sorted((retired_attesters or {}).items())
        },
    }
    signed = account.sign_message(encode_defunct(primitive=signing_bytes(document)))
    document["signature"] = "0x" + bytes(signed.signature).hex()
    return document


def _unique(addresses: Iterable[str]) -> list[str]:
    """Addresses in first-seen order, each once (compared case-insensitively)."""
    seen: dict[str, str] = {}
    for a in addresses:
        seen.setdefault(a.lower(), a)
    return list(seen.values())


def verify(document: Any) -> TrustDocument:
    """The document if it is well formed and signed by its issuer, one of its own unrevoked
    attesters, and every key matches its hash. InputError (malformed, naming the field) or
    VerificationFailed (a check failed) otherwise."""
    if isinstance(document, TrustDocument):
        document = document.model_dump(mode="json", exclude_unset=True)
    if not isinstance(document, Mapping):
        raise InputError("trust document", "expected a JSON object")
    try:
        doc = TrustDocument.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "trust document"
        raise InputError(field, first["msg"]) from None
    for version, key in doc.bindings.items():
        if hashlib.sha256(key.vkey_json.encode("utf-8")).hexdigest() != key.vkey_sha256:
            raise VerificationFailed(f"bindings.{version}: vkey_json does not hash to vkey_sha256")
        try:
            if not isinstance(json.loads(key.vkey_json), dict):
                raise ValueError
        except ValueError:
            raise InputError(f"bindings.{version}.vkey_json", "not a JSON object") from None
    message = encode_defunct(primitive=signing_bytes(document))
    try:
        signer = Account.recover_message(message, signature=bytes.fromhex(doc.signature[2:]))
    except Exception:  # malformed signature bytes (bad v, s out of range)
        raise VerificationFailed("trust document signature is malformed") from None
    if signer.lower() != doc.issuer.lower():
        raise VerificationFailed(
            f"trust document is not signed by its issuer {doc.issuer} (signer {signer})"
        )
    if doc.issuer.lower() not in {a.lower() for a in doc.attesters}:
        raise VerificationFailed(f"issuer {doc.issuer} is not one of the document's attesters")
    if doc.issuer.lower() in {a.lower() for a in doc.revoked.attesters}:
        raise VerificationFailed(f"issuer {doc.issuer} is revoked by its own document")
    if doc.issuer.lower() in {a.lower() for a in doc.retired_attesters}:
        raise VerificationFailed(f"issuer {doc.issuer} is retired by its own document")
    return doc


# --- comparing, pinning ---


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaves; lists become sets (order is not meaning), keys themselves are
    compared by hash only (vkey_json is bound by vkey_sha256)."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k not in ("vkey_json", "issued_at", "signature"):
                out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list):
        out[prefix] = frozenset(str(v).lower() for v in value)
    else:
        out[prefix] = value
    return out


def changes(old: TrustDocument, new: TrustDocument) -> list[str]:
    """What differs between two documents, one line per field (issued_at and signature aside)."""
    a, b = _flat(old.model_dump(mode="json")), _flat(new.model_dump(mode="json"))
    lines = []
    for path in sorted(a.keys() | b.keys()):
        was, now = a.get(path), b.get(path)
        if was == now:
            continue
        if isinstance(was, frozenset) or isinstance(now, frozenset):
            was, now = was or frozenset(), now or frozenset()
            parts = [f"added {', '.join(sorted(now - was))}"] if now - was else []
            parts += [f"removed {', '.join(sorted(was - now))}"] if was - now else []
            lines.append(f"{path}: {'; '.join(parts)}")
        elif was is None:
            lines.append(f"{path}: added {now}")
        elif now is None:
            lines.append(f"{path}: removed (was {was})")
        else:
            lines.append(f"{path}: {was} → {now}")
    return lines


def pin_path(home: Path | None = None) -> Path:
    return (home or paths.vbill_home()) / PIN_NAME


def load_pin(home: Path | None = None) -> TrustDocument | None:
    """The pinned document, re-checked; None if nothing is pinned. A pin that no longer
    verifies is an environment error (someone edited it), never silently ignored."""
    path = pin_path(home)
    if not path.exists():
        return None
    try:
        return verify(json.loads(path.read_text()))
    except (ValueError, InputError, VerificationFailed) as exc:
        raise ToolError(
            f"{path} is not a valid pinned trust document ({exc}); re-pin it with --replace"
        ) from None


def pin(document: Any, home: Path | None = None, *, replace: bool = False) -> tuple[str, list[str]]:
    """Verify and pin; returns (status, changes) with status "pinned", "unchanged" or
    "replaced". A document that differs from the pinned one is refused unless `replace`."""
    doc = verify(document)
    path = pin_path(home)
    try:
        old = load_pin(home)
    except ToolError:
        if not replace:
            raise
        old = None  # a damaged pin is replaced only on purpose
    diff = changes(old, doc) if old is not None else []
    if old is not None and not diff:
        return "unchanged", []
    if old is not None and not replace:
        raise VerificationFailed(
            "the trust document differs from the pinned one: "
            + "; ".join(diff)
            + " — pass --replace to pin it on purpose"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{PIN_NAME}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        # exclude_unset: a member the issuer did not write (an older document) stays unwritten,
        # so the signature still covers exactly the pinned bytes' members
        pinned = doc.model_dump(mode="json", exclude_unset=True)
        fh.write(json.dumps(pinned, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    vkey_files(doc, home, rewrite=True)
    return ("replaced" if old is not None else "pinned"), diff


def vkey_files(
    doc: TrustDocument, home: Path | None = None, *, rewrite: bool = False
) -> list[Path]:
    """The pinned keys as files `$VBILL_HOME/vkeys/<sha>.json` (written if missing, or always
    when pinning); only a file whose bytes hash to its name is returned, so a file swapped
    after pinning is never trusted."""
    folder = (home or paths.vbill_home()) / "vkeys"
    out = []
    for key in doc.bindings.values():
        path = folder / f"{key.vkey_sha256}.json"
        if rewrite or not path.exists():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_bytes(key.vkey_json.encode("utf-8"))
        if hashlib.sha256(path.read_bytes()).hexdigest() == key.vkey_sha256:
            out.append(path)
    return out
