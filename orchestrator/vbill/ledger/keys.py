"""Attester keys and verification keys taken out of service: revoked (compromised: nothing it
signed counts) or retired (rotated out: what it signed before stays valid)."""

from __future__ import annotations

import re
from typing import Any

from vbill.errors import InputError
from vbill.ledger.db import Database, now_ms

_ADDRESS = re.compile(r"0x[0-9a-f]{40}", re.ASCII)


_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)


class Keys:
    """The revocations and attester_retirements tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def revoke(self, kind: str, value: str, reason: str) -> None:
        """Revoke an attester address or a vkey SHA-256, kept in lower case (as they are
        matched); a value of neither form is refused: it could never take effect."""
        value = value.strip().lower()
        shapes = {
            "attester": (_ADDRESS, "an attester", "a 0x address"),
            "vkey": (_SHA256, "a vkey", "a hex SHA-256"),
        }
        if kind not in shapes:
            raise InputError("kind", f"must be 'attester' or 'vkey', not {kind!r}")
        shape, which, what = shapes[kind]
        if not shape.fullmatch(value):
            raise InputError("value", f"{which} revocation must name {what}")
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO revocations (kind, value, reason, revoked_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (kind, value, reason, now_ms()),
            )

    def retire(self, address: str, retired_at: int, reason: str) -> None:
        """Retire an attester key from `retired_at` (ms) on: what it signed before stays valid
        (rotation; a compromised key is revoked instead). The first retirement stands."""
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO attester_retirements (address, retired_at, reason) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (address.lower(), retired_at, reason),
            )

    def signing_refusal(self, address: str, at_ms: int | None = None) -> str | None:
        """Why `address` must not sign (revoked, or retired by `at_ms`), or None."""
        a, at = address.lower(), at_ms or now_ms()
        c = self.db.conn()
        if c.execute(
            "SELECT 1 FROM revocations WHERE kind = 'attester' AND value = ?", (a,)
        ).fetchone():
            return f"attester key {address} is revoked"
        row = c.execute(
            "SELECT retired_at FROM attester_retirements WHERE address = ?", (a,)
        ).fetchone()
        if row is not None and row[0] <= at:
            return f"attester key {address} is retired (since {row[0]} ms)"
        return None

    def retirements(self) -> list[dict[str, Any]]:
        rows = self.db.conn().execute("SELECT * FROM attester_retirements ORDER BY retired_at")
        return [dict(r) for r in rows]

    def revocations(self) -> list[dict[str, Any]]:
        rows = self.db.conn().execute("SELECT * FROM revocations ORDER BY revoked_at, kind, value")
        return [dict(r) for r in rows]
