"""A window's chain as the service reads it: the one tariff of a window, its bundles verified
as a statement with its close record (shared by statements and invoices)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import HTTPException

from vbill.errors import ToolError
from vbill.ledger.store import StoredBundle, WindowKey
from vbill.service.state import ServiceState
from vbill.verify.statement import Statement, verify_statement
from vbill.verify.verify import default_check


def window_key(
    svc: ServiceState, tenant_id: str, window_id: str, tariff_id: str | None
) -> WindowKey:
    """The window's one chain: 404 if it has none, 409 if it has several tariffs and
    `tariff_id` does not say which."""
    if tariff_id is None:
        tariffs = svc.store.window_tariffs(tenant_id, window_id)
        if len(tariffs) > 1:
            raise HTTPException(
                status_code=409,
                detail=f"window has several tariffs ({', '.join(tariffs)}); pass ?tariff_id=",
            )
        tariff_id = tariffs[0] if tariffs else None
    if tariff_id is None or svc.store.window_head((tenant_id, window_id, tariff_id)) is None:
        raise HTTPException(status_code=404, detail=f"no window {window_id!r}")
    return (tenant_id, window_id, tariff_id)


@dataclass(frozen=True)
class VerifiedWindow:
    stored: list[StoredBundle]
    statement: Statement
    bundles: list[dict[str, Any]]  # the chain's documents: events' bundles and corrections


async def verified_window(svc: ServiceState, key: WindowKey) -> VerifiedWindow:
    """The window's bundles in seq order verified as a statement (with its close record if
    it is closed): 409 while a bundle is still proving; a stored chain that does not verify
    is the service's fault (503), never handed out."""
    stored = svc.store.window_bundles(key)
    if not stored:
        raise HTTPException(status_code=404, detail=f"no window {key[1]!r}")
    if not all(sb.proven for sb in stored):
        raise HTTPException(status_code=409, detail="a bundle of this window is still proving")
    close = svc.store.window_close(key)
    items = svc.store.statement_items(key)  # events and corrections, in seq order
    trust = svc.trust()
    check = default_check()
    st = await anyio.to_thread.run_sync(
        lambda: verify_statement(items, trust=trust, check=check, close=close),
        limiter=svc.limiter,
    )
    if not st.valid:  # never hand out an invoice document that does not hold
        raise ToolError(f"the stored window does not verify: {st.problems[0].message}")
    return VerifiedWindow(stored, st, [doc for _, doc in items])
