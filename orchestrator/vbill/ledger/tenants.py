"""Tenants and their API tokens (hashes only; see vbill.ledger.tokens)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vbill.ledger.db import Database, mapper, now_ms
from vbill.ledger.errors import Conflict, TenantRaced


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    account_salt: int
    tenant_key: int
    onchain_status: str
    onchain_tx: str | None
    created_at: int


class Tenants:
    """The tenants table and tenant_tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_tenant(self, tenant_id: str, account_salt: int, tenant_key: int) -> Tenant:
        with self.db.tx() as c:
            if self._tenant(c, tenant_id) is not None:
                raise Conflict(f"tenant {tenant_id!r} already exists")
            self.create(c, tenant_id, account_salt, tenant_key)
            tenant = self._tenant(c, tenant_id)
        assert tenant is not None
        return tenant

    @classmethod
    def create(
        cls, c: sqlite3.Connection, tenant_id: str, account_salt: int, tenant_key: int
    ) -> None:
        """Insert the tenant unless it exists with this salt; TenantRaced if with another."""
        existing = cls._tenant(c, tenant_id)
        if existing is None:
            c.execute(
                "INSERT INTO tenants (tenant_id, account_salt, tenant_key, created_at) "
                "VALUES (?, ?, ?, ?)",
                (tenant_id, str(account_salt), str(tenant_key), now_ms()),
            )
        elif existing.account_salt != account_salt:
            raise TenantRaced(f"tenant {tenant_id!r} was created concurrently")

    def ensure_tenant(self, tenant_id: str, make: Callable[[], tuple[int, int]]) -> Tenant:
        """The tenant, created with `make() -> (account_salt, tenant_key)` if new."""
        existing = self.tenant(tenant_id)
        if existing is not None:
            return existing
        salt, key = make()
        try:
            return self.add_tenant(tenant_id, salt, key)
        except Conflict:  # created concurrently: theirs stands
            existing = self.tenant(tenant_id)
            assert existing is not None
            return existing

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self._tenant(self.db.conn(), tenant_id)

    def tenant_by_key(self, tenant_key: int) -> Tenant | None:
        row = (
            self.db.conn()
            .execute("SELECT * FROM tenants WHERE tenant_key = ?", (str(tenant_key),))
            .fetchone()
        )
        return _tenant_row(row) if row else None

    def tenants(self) -> list[Tenant]:
        rows = self.db.conn().execute("SELECT * FROM tenants ORDER BY tenant_id").fetchall()
        return [_tenant_row(r) for r in rows]

    @staticmethod
    def _tenant(c: sqlite3.Connection, tenant_id: str) -> Tenant | None:
        row = c.execute("SELECT * FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone()
        return _tenant_row(row) if row else None

    def set_onchain(self, tenant_id: str, status: str, tx: str | None) -> None:
        with self.db.tx() as c:
            c.execute(
                "UPDATE tenants SET onchain_status = ?, onchain_tx = ? WHERE tenant_id = ?",
                (status, tx, tenant_id),
            )

    def add_token(self, tenant_id: str, token_id: str, token_sha256: str) -> int:
        """Record a token hash for an existing tenant; returns its creation time (ms)."""
        at = now_ms()
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO tenant_tokens (token_id, tenant_id, token_sha256, created_at) "
                "VALUES (?, ?, ?, ?)",
                (token_id, tenant_id, token_sha256, at),
            )
        return at

    def revoke_tokens(self, tenant_id: str, token_id: str | None = None) -> int:
        """Revoke the tenant's active tokens (or just `token_id`); returns how many."""
        with self.db.tx() as c:
            cur = c.execute(
                "UPDATE tenant_tokens SET revoked_at = ? WHERE tenant_id = ? AND revoked_at "
                "IS NULL AND (CAST(? AS TEXT) IS NULL OR token_id = ?)",
                (now_ms(), tenant_id, token_id, token_id),
            )
            return cur.rowcount

    def active_token(self, token_sha256: str) -> tuple[str, str] | None:
        """(tenant_id, stored hash) of the unrevoked token with this hash, if any."""
        row = (
            self.db.conn()
            .execute(
                "SELECT tenant_id, token_sha256 FROM tenant_tokens "
                "WHERE token_sha256 = ? AND revoked_at IS NULL",
                (token_sha256,),
            )
            .fetchone()
        )
        return (row[0], row[1]) if row else None

    def tokens(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's tokens without their hashes (id, created, revoked)."""
        rows = self.db.conn().execute(
            "SELECT token_id, created_at, revoked_at FROM tenant_tokens WHERE tenant_id = ? "
            "ORDER BY created_at",
            (tenant_id,),
        )
        return [dict(r) for r in rows]


_tenant_row = mapper(Tenant, account_salt=int, tenant_key=int)
