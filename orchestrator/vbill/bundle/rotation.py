"""Attester key rotation: a new key, the old one retired (or revoked, if compromised).

Retired: the old key signs nothing from `retired_at` on, and what it signed before stays valid
(verifiers read `retired_attesters` from the signed revocation list and compare the bundle's
log time with it). Revoked: the key is compromised, and nothing it ever signed is valid. The
old key file is kept in $VBILL_HOME/retired-keys/ (its account may still hold gas money).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vbill.bundle.keys import Attester
from vbill.ledger.store import Store, now_ms
from vbill.verify import revocation

RETIRED_DIR = "retired-keys"


@dataclass(frozen=True)
class Rotation:
    old_address: str
    new_address: str
    at_ms: int
    compromised: bool


def rotate(home: Path, store: Store, *, reason: str, compromised: bool = False) -> Rotation:
    """Replace $VBILL_HOME/attester.key; record the retirement (or revocation) in the store and
    rewrite $VBILL_HOME/revocation.json, signed by the new key."""
    key_path = home / "attester.key"
    old = Attester.load(key_path)
    new = Attester.new(key_path.with_name("attester.key.next"), overwrite=True)
    at = now_ms()
    if compromised:
        store.revoke("attester", old.address, reason)
    else:
        store.retire(old.address, at, reason)
    retired = home / RETIRED_DIR
    retired.mkdir(mode=0o700, exist_ok=True)
    retired.chmod(0o700)
    os.replace(key_path, retired / f"{old.address}.key")
    os.replace(key_path.with_name("attester.key.next"), key_path)
    payload = revocation.build_payload(
        store.revocations(), new.address, now_ms(), retirements=store.retirements()
    )
    revocation.write_local(revocation.sign(payload, new.account), home)
    return Rotation(old.address, new.address, at, compromised)
