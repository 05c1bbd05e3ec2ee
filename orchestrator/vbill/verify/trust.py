"""What a verifier trusts: attester addresses, log signers and verification keys by hash.

A bundle names its verification key only by `vkey_sha256`; the key itself is looked up here,
so an embedded or substituted key is never taken on its own word. Revocations
(docs/protocol.md §11) remove attesters and keys from the set.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError

from vbill import jsonio, paths
from vbill.errors import InputError
from vbill.verify import revocation


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _norm(addresses: Iterable[str]) -> frozenset[str]:
    return frozenset(a.lower() for a in addresses)


@dataclass(frozen=True)
class TrustSet:
    attesters: frozenset[str] = frozenset()
    log_signers: frozenset[str] = frozenset()
    vkeys: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    revoked_attesters: frozenset[str] = frozenset()
    revoked_vkeys: frozenset[str] = frozenset()
    # rotated-out keys: address -> retired_at (ms); what they signed before stays valid
    retired_attesters: Mapping[str, int] = field(default_factory=dict)
    # keys from a dev-insecure setup (public toxic waste): trusted, but every verdict says so
    insecure_vkeys: frozenset[str] = frozenset()

    def attester_ok(self, address: str, signed_at: int | None = None) -> str | None:
        """None if trusted, else the reason. `signed_at` (ms: the log's signed tree head of
        the bundle's receipt) must precede the retirement of a retired key; a revoked key
        (compromised) is refused whenever it signed."""
        a = address.lower()
        if a in self.revoked_attesters:
            return f"attester {address} is revoked"
        if a not in self.attesters:
            return f"attester {address} is not in the trusted set"
        retired_at = self.retired_attesters.get(a)
        if retired_at is not None and (signed_at is None or signed_at >= retired_at):
            return f"attester {address} is retired since {retired_at} (ms); not logged before that"
        return None

    def log_signer_ok(self, address: str) -> bool:
        a = address.lower()
        return a in self.log_signers and a not in self.revoked_attesters

    def vkey(self, sha256: str) -> tuple[dict[str, Any] | None, str | None]:
        """The trusted key with this hash, or the reason there is none."""
        if sha256.lower() in self.revoked_vkeys:
            return None, f"verification key {sha256[:16]}… is revoked"
        key = self.vkeys.get(sha256)
        if key is None:
            return None, f"verification key {sha256[:16]}… is not in the trusted set"
        return key, None

    def with_(
        self,
        *,
        attesters: Iterable[str] = (),
        vkey_files: Iterable[Path] = (),
        revoked_attesters: Iterable[str] = (),
        revoked_vkeys: Iterable[str] = (),
        log_signers: Iterable[str] = (),
        retired_attesters: Mapping[str, int] | None = None,
    ) -> TrustSet:
        """A copy that also trusts / revokes the given items (attesters also sign log heads);
        a retired attester is trusted for what it signed before its `retired_at`."""
        vkeys = dict(self.vkeys)
        insecure = set(self.insecure_vkeys)
        dev_insecure = _dev_insecure_vkeys()
        for path in vkey_files:
            sha = file_sha256(path)
            vkeys[sha] = jsonio.read_file(path)
            if sha in dev_insecure:
                insecure.add(sha)
        retired = {a.lower(): int(t) for a, t in (retired_attesters or {}).items()}
        extra = _norm(attesters) | frozenset(retired)
        return TrustSet(
            attesters=self.attesters | extra,
            log_signers=self.log_signers | extra | _norm(log_signers),
            vkeys=vkeys,
            revoked_attesters=self.revoked_attesters | _norm(revoked_attesters),
            revoked_vkeys=self.revoked_vkeys | frozenset(v.lower() for v in revoked_vkeys),
            retired_attesters={**self.retired_attesters, **retired},
            insecure_vkeys=frozenset(insecure),
        )


def default_trust() -> TrustSet:
    """The operator's view: the built vkey (if it matches the manifest), the local attester,
    `$VBILL_HOME/trust.json` ({"attesters": [...], "vkeys": [paths]}) and
    `$VBILL_HOME/revocation.json` ({"revoked_attesters": [...], "revoked_vkeys": [...]}),
    env VBILL_TRUSTED_ATTESTERS (comma-separated) and the pinned trust document
    `$VBILL_HOME/trust-pin.json` (`vbill trust pin`: its keys, attesters, log signers,
    revocations and retired attesters)."""
    from vbill.bundle.keys import Attester, attester_key_path
    from vbill.verify import trust_document

    home = paths.vbill_home()
    attesters: list[str] = []
    vkey_files: list[Path] = []
    if paths.VKEY.exists() and _matches_manifest(paths.VKEY, "vkey"):
        vkey_files.append(paths.VKEY)
    vkey_files += _binding_vkeys()
    if attester_key_path().exists():
        attesters.append(Attester.load().address)
    env = os.environ.get("VBILL_TRUSTED_ATTESTERS", "")
    attesters += [a.strip() for a in env.split(",") if a.strip()]
    trust_file = home / "trust.json"
    if trust_file.exists():
        cfg = _trust_file(trust_file)
        attesters += cfg.attesters
        for i, name in enumerate(cfg.vkeys):
            if not Path(name).is_file():
                raise InputError(str(trust_file), f"vkeys[{i}]: no file {name}")
            vkey_files.append(Path(name))
    revoked: dict[str, Any] = {}
    revocation_file = home / "revocation.json"
    if revocation_file.exists():
        revoked = revocation.check_revocation(
            jsonio.read_file(revocation_file), attesters, str(revocation_file)
        )
    revoked_attesters = list(revoked.get("revoked_attesters", []))
    revoked_vkeys = list(revoked.get("revoked_vkeys", []))
    pinned = trust_document.load_pin(home)
    if pinned is not None:
        attesters += pinned.attesters
        vkey_files += trust_document.vkey_files(pinned, home)
        revoked_attesters += pinned.revoked.attesters
        revoked_vkeys += pinned.revoked.vkeys
    return TrustSet().with_(
        attesters=attesters,
        vkey_files=vkey_files,
        revoked_attesters=revoked_attesters,
        revoked_vkeys=revoked_vkeys,
        log_signers=pinned.log_signers if pinned is not None else (),
        retired_attesters={
            **(revoked.get("retired_attesters") or {}),
            **(pinned.retired_attesters if pinned is not None else {}),
        },
    )


class _TrustFile(BaseModel):
    """$VBILL_HOME/trust.json: extra attester addresses and verification-key paths."""

    model_config = ConfigDict(extra="forbid")
    attesters: list[StrictStr] = []
    vkeys: list[StrictStr] = []


def _trust_file(path: Path) -> _TrustFile:
    try:
        return _TrustFile.model_validate(jsonio.read_file(path))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "top level"
        raise InputError(str(path), f"{where}: {err['msg']}") from None


def _manifest() -> dict[str, Any]:
    try:
        manifest = json.loads(paths.MANIFEST.read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _binding_records() -> list[dict[str, Any]]:
    """v1's record (the top level of build/manifest.json) and each later binding's."""
    manifest = _manifest()
    bindings = manifest.get("bindings")
    later = (
        [b for b in bindings.values() if isinstance(b, dict)] if isinstance(bindings, dict) else []
    )
    return [manifest, *later] if manifest else []


def _dev_insecure_vkeys() -> frozenset[str]:
    """The SHA-256s of build/'s vkeys whose setup build/manifest.json calls dev-insecure."""
    out = set()
    for record in _binding_records():
        try:
            if record.get("ceremony") == "dev-insecure":
                out.add(record["artifacts"]["vkey"]["sha256"])
        except (KeyError, TypeError, AttributeError):
            continue
    return frozenset(s for s in out if isinstance(s, str))


def _binding_vkeys() -> list[Path]:
    """The vkeys of the bindings build/manifest.json records under `bindings` (every one but
    the top level's, trusted by `_matches_manifest`) whose files match their recorded SHA-256:
    one trusted key per binding, none unrecorded."""
    from vbill.bindings import all_artefacts

    manifest = _manifest()
    bindings = manifest.get("bindings")
    out = []
    for art in all_artefacts():
        record = bindings.get(art.version) if isinstance(bindings, dict) else None
        if art.top_level or not isinstance(record, dict) or not art.vkey.exists():
            continue
        if record.get("vkey_sha256") == file_sha256(art.vkey):
            out.append(art.vkey)
    return out


def _matches_manifest(path: Path, key: str) -> bool:
    """True only if build/manifest.json records this artefact's SHA-256 and it matches.

    Fails closed: no manifest, or no record for the artefact, means the file is not trusted
    (a stray or half-built key must never become trusted by default)."""
    if not paths.MANIFEST.exists():
        return False
    try:
        manifest = json.loads(paths.MANIFEST.read_text())
        recorded = manifest.get("artifacts", {}).get(key, {})
        want = recorded.get("sha256") if isinstance(recorded, dict) else None
    except (ValueError, AttributeError):
        return False
    return isinstance(want, str) and want == file_sha256(path)
