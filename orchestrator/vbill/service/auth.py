"""Who is calling: the operator (header `X-VDI-Attest-Secret`) or a tenant (`Authorization:
Bearer TOKEN`, a token from vbill.ledger.tokens).

Three FastAPI dependencies: `require_operator` (attest, onboarding, tokens, revocations),
`require_tenant` and `require_caller` (operator or tenant). A missing, malformed, unknown or
revoked credential is 401; a valid tenant token on an operator endpoint is 403; another
tenant's data is 404 to a tenant, the same answer as data that does not exist, so a token
cannot even learn which tenants or events exist (see `visible_to`).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Header, HTTPException, Request

from vbill.ledger import tokens

SECRET_HEADER = "X-VDI-Attest-Secret"
_BEARER = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Caller:
    """The authenticated caller; `tenant_id` is None for the operator."""

    tenant_id: str | None

    @property
    def is_operator(self) -> bool:
        return self.tenant_id is None

    def may_see(self, tenant_id: str) -> bool:
        return self.is_operator or self.tenant_id == tenant_id


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=_BEARER)


def _caller(request: Request, secret: str | None, authorization: str | None) -> Caller | None:
    """The caller the credentials prove, None if there are none; 401 if they prove nothing."""
    svc = request.app.state.svc
    if secret is not None:
        expected = svc.settings.attest_secret or ""
        if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
            raise _unauthorized(f"missing or wrong {SECRET_HEADER}")
        return Caller(None)
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not tokens.well_formed(token.strip()):
        raise _unauthorized("malformed Authorization header: expected `Bearer vbt_…`")
    tenant_id = tokens.tenant_of(svc.store, token.strip())
    if tenant_id is None:
        raise _unauthorized("unknown or revoked token")
    return Caller(tenant_id)


SecretHeader = Annotated[str | None, Header(alias=SECRET_HEADER)]
AuthorizationHeader = Annotated[str | None, Header(alias="Authorization")]


def _dependency(
    missing: str, refusal: Callable[[Caller], str | None], doc: str
) -> Callable[..., Awaitable[Caller]]:
    """A FastAPI dependency on the caller: 401 `missing` without credentials, 403 with the
    reason `refusal` gives for a caller of the wrong kind (None: accepted)."""

    async def require(
        request: Request, secret: SecretHeader = None, authorization: AuthorizationHeader = None
    ) -> Caller:
        # async, and only a token (a store read) goes to a worker thread: the operator's
        # secret is checked on the loop instead of in a thread round trip per request
        if secret is None and authorization is not None:
            caller = await anyio.to_thread.run_sync(_caller, request, secret, authorization)
        else:
            caller = _caller(request, secret, authorization)
        if caller is None:
            raise _unauthorized(missing)
        reason = refusal(caller)
        if reason is not None:
            raise HTTPException(status_code=403, detail=reason)
        return caller

    require.__doc__ = doc
    return require


require_operator = _dependency(
    f"missing or wrong {SECRET_HEADER}",
    lambda c: None if c.is_operator else "operator only: a tenant token cannot do this",
    "The operator's secret, compared in constant time; a tenant token is 403 here.",
)
require_tenant = _dependency(
    "missing Authorization: Bearer token",
    lambda c: "tenant only: send a tenant token" if c.is_operator else None,
    'A tenant token (an endpoint that is about "my" data and has no operator meaning).',
)
require_caller = _dependency(
    f"missing {SECRET_HEADER} or Authorization: Bearer token",
    lambda c: None,
    "The operator or any tenant; what a tenant may see is then checked with `visible_to`.",
)


def operator_sent(request: Request, secret: str | None) -> bool:
    """On a public endpoint: True when the operator's secret came with the request (its
    fuller view), False without one; a wrong secret is 401 as everywhere."""
    return secret is not None and _caller(request, secret, None) is not None


def visible_to(caller: Caller, tenant_id: str) -> None:
    """404 (never 403) when a tenant asks for another tenant's account."""
    if not caller.may_see(tenant_id):
        raise HTTPException(status_code=404, detail=f"no account for tenant {tenant_id!r}")


Operator = Annotated[Caller, Depends(require_operator)]
Tenant = Annotated[Caller, Depends(require_tenant)]
AnyCaller = Annotated[Caller, Depends(require_caller)]
