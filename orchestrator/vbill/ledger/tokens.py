"""Tenant-scoped API tokens: random, shown once, kept only as SHA-256 hashes.

A token is `vbt_` + 43 URL-safe characters (256 random bits). With that much entropy a plain
SHA-256 is enough to store it (there is nothing to brute-force, unlike a password); the store
is looked up by hash and the hash is then compared in constant time. The token id, the first
16 hex digits of the hash, names a token in listings and revocations without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from vbill.errors import InputError
from vbill.ledger.store import Store

PREFIX = "vbt_"
TOKEN_RE = re.compile(r"^vbt_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class IssuedToken:
    tenant_id: str
    token: str  # shown once, never stored
    token_id: str
    created_at: int


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str) -> bool:
    return TOKEN_RE.fullmatch(token) is not None


def issue(store: Store, tenant_id: str) -> IssuedToken:
    """A new token for an existing tenant (InputError naming `tenant_id` if there is none)."""
    if store.tenant(tenant_id) is None:
        raise InputError("tenant_id", f"no account for tenant {tenant_id!r}")
    token = PREFIX + secrets.token_urlsafe(32)
    digest = token_sha256(token)
    created = store.add_token(tenant_id, digest[:16], digest)
    return IssuedToken(tenant_id, token, digest[:16], created)


def tenant_of(store: Store, token: str) -> str | None:
    """The tenant an active, well-formed token belongs to; None if unknown or revoked."""
    if not well_formed(token):
        return None
    digest = token_sha256(token)
    found = store.active_token(digest)
    if found is None or not hmac.compare_digest(found[1], digest):
        return None
    return found[0]
