"""A typed Python client for the vbill HTTP API: `Client` (blocking) and `AsyncClient`.

    >>> from vbill import Client
    >>> with Client("https://billing.example.com", token="vbt_…") as api:
    ...     bundle = api.bundle("evt_pilot_001")
    ...     api.verify(bundle).valid

Authenticate as the operator with `secret=` (header `X-VDI-Attest-Secret`) or as a tenant with
`token=` (`Authorization: Bearer`). Results are the pydantic models of vbill.models; a refusal
is an `ApiError` carrying the HTTP status and, where the service names one, the field. A
service that cannot be reached is a ToolError (exit code 3).

Both classes describe each call once (`_Call`: method, path, body, how to read the answer),
open their connection once (`_Base`) and differ only in how they send.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from vbill.billing.models import CloseRecord, EntryPage, Invoice, WindowPage
from vbill.bindings.registry import event_binding
from vbill.errors import ToolError, VbillError
from vbill.models import (
    Account,
    AccountBalance,
    AttestRequest,
    Bundle,
    IssuedToken,
    MeteredBundle,
    ReceiptView,
    RevokedTokens,
    VerifyResult,
)
from vbill.verify import trust_document
from vbill.verify.trust_document import TrustDocument

T = TypeVar("T")
HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)
Record = BaseModel | Mapping[str, Any]  # a billing v2 record (vbill.models.BillingRecord)
SECRET_HEADER = "X-VDI-Attest-Secret"
_LOCATIONS = {"body", "query", "path", "header"}


class ApiError(VbillError):
    """The service refused a request: `status` (HTTP), `field` (the input it names, if any)
    and `message`."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(f"HTTP {status}" + (f" {field}" if field else "") + f": {message}")
        self.status = status
        self.field = field
        self.message = message
        self.exit_code = 3 if status >= 500 else 2


def api_error(response: httpx.Response) -> ApiError:
    """The ApiError for a non-2xx answer, reading FastAPI's and vbill's error shapes:
    {"detail": "text"}, {"detail": {"field", "message"}}, {"detail": [{"loc", "msg"}]}."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, dict):
        return ApiError(response.status_code, detail.get("field"), str(detail.get("message")))
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = [str(p) for p in detail[0].get("loc", []) if p not in _LOCATIONS]
        return ApiError(response.status_code, ".".join(loc) or None, str(detail[0].get("msg")))
    if isinstance(detail, str):
        return ApiError(response.status_code, None, detail)
    return ApiError(response.status_code, None, response.text[:300] or response.reason_phrase)


def _dump(value: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else dict(value)


def verify_body(
    bundle: Bundle | Mapping[str, Any], billed: BaseModel | Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The POST /verify body for a bundle: expected = the attested record, billed = the
    record on the invoice (default: the same record)."""
    data = _dump(bundle)
    record = {
        k: data.get(k)
        for k in ("billing_version", "profileId", "meter_event", "tariff_snapshot", "billing")
    }
    return {
        "attestation": data.get("attestation"),
        "receipt": data.get("receipt"),
        "billed_billing_v2": _dump(billed) if billed is not None else record,
        "expected_billing_v2": record,
    }


@dataclass(frozen=True)
class _Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    text: bool = False  # the answer is text (HTML, CSV), handed to `parse` as it is


def parse_bundle(data: Any) -> Bundle | MeteredBundle:
    """A bundle of either binding: a metered one (binding v2) as MeteredBundle."""
    model: type[Bundle] | type[MeteredBundle] = event_binding(data).bundle_model
    return model.model_validate(data)


def _window(tenant_id: str, window: str, tail: str = "") -> str:
    return f"/api/vdi/billing/windows/{_seg(tenant_id)}/{_seg(window)}{tail}"


def _tariff(tariff_id: str | None) -> dict[str, Any]:
    return {"tariff_id": tariff_id} if tariff_id is not None else {}


def _seg(value: str) -> str:
    return quote(value, safe="")


def _tenant(tenant_id: str | None) -> dict[str, Any]:
    return {"tenant_id": tenant_id} if tenant_id is not None else {}


class _Calls:
    """Every operation as a _Call (shared by both clients)."""

    @staticmethod
    def attest(request: AttestRequest | Mapping[str, Any]) -> _Call[Bundle | MeteredBundle]:
        return _Call("POST", "/api/vdi/billing/attest", parse_bundle, _dump(request))

    @staticmethod
    def verify(bundle: Bundle | Mapping[str, Any], billed: Record | None) -> _Call[VerifyResult]:
        body = verify_body(bundle, billed)
        return _Call("POST", "/api/vdi/billing/verify", VerifyResult.model_validate, body)

    @staticmethod
    def bundle(event_id: str, tenant_id: str | None) -> _Call[Bundle | MeteredBundle]:
        path = f"/api/vdi/billing/bundles/{_seg(event_id)}"
        return _Call("GET", path, parse_bundle, params=_tenant(tenant_id))

    @staticmethod
    def bundle_json(event_id: str, tenant_id: str | None) -> _Call[dict[str, Any]]:
        path = f"/api/vdi/billing/bundles/{_seg(event_id)}"
        return _Call("GET", path, dict, params=_tenant(tenant_id))

    @staticmethod
    def correction(tenant_id: str, correction_id: str) -> _Call[dict[str, Any]]:
        path = f"/api/vdi/billing/corrections/{_seg(tenant_id)}/{_seg(correction_id)}"
        return _Call("GET", path, dict)

    @staticmethod
    def receipt(event_id: str, tenant_id: str | None) -> _Call[ReceiptView]:
        path = f"/api/vdi/billing/bundles/{_seg(event_id)}/receipt"
        return _Call("GET", path, ReceiptView.model_validate, params=_tenant(tenant_id))

    @staticmethod
    def statement(tenant_id: str, window: str, tariff_id: str | None) -> _Call[dict[str, Any]]:
        path = f"/api/vdi/billing/statements/{_seg(tenant_id)}/{_seg(window)}"
        return _Call("GET", path, dict, params=_tariff(tariff_id))

    @staticmethod
    def close_window(tenant_id: str, window: str, tariff_id: str | None) -> _Call[CloseRecord]:
        path = _window(tenant_id, window, "/close")
        return _Call("POST", path, CloseRecord.model_validate, params=_tariff(tariff_id))

    @staticmethod
    def close_record(tenant_id: str, window: str, tariff_id: str | None) -> _Call[CloseRecord]:
        path = _window(tenant_id, window, "/close")
        return _Call("GET", path, CloseRecord.model_validate, params=_tariff(tariff_id))

    @staticmethod
    def invoice(tenant_id: str, window: str, tariff_id: str | None) -> _Call[Invoice]:
        path = f"/api/vdi/billing/invoices/{_seg(tenant_id)}/{_seg(window)}"
        return _Call("GET", path, Invoice.model_validate, params=_tariff(tariff_id))

    @staticmethod
    def invoice_html(tenant_id: str, window: str, tariff_id: str | None) -> _Call[str]:
        path = f"/api/vdi/billing/invoices/{_seg(tenant_id)}/{_seg(window)}"
        params = {**_tariff(tariff_id), "format": "html"}
        return _Call("GET", path, str, params=params, text=True)

    @staticmethod
    def windows(tenant_id: str | None, cursor: str | None, limit: int) -> _Call[WindowPage]:
        params = {**_tenant(tenant_id), "limit": limit, **({"cursor": cursor} if cursor else {})}
        return _Call("GET", "/api/vdi/billing/windows", WindowPage.model_validate, params=params)

    @staticmethod
    def entries(
        tenant_id: str, window: str, tariff_id: str | None, after_seq: int, limit: int
    ) -> _Call[EntryPage]:
        params = {**_tariff(tariff_id), "after_seq": after_seq, "limit": limit}
        path = _window(tenant_id, window, "/entries")
        return _Call("GET", path, EntryPage.model_validate, params=params)

    @staticmethod
    def export_csv(tenant_id: str, window: str, tariff_id: str | None) -> _Call[str]:
        path = _window(tenant_id, window, "/export.csv")
        return _Call("GET", path, str, params=_tariff(tariff_id), text=True)

    @staticmethod
    def account(tenant_id: str) -> _Call[Account]:
        return _Call("GET", f"/api/vdi/billing/accounts/{_seg(tenant_id)}", Account.model_validate)

    @staticmethod
    def create_account(tenant_id: str, controller: str | None) -> _Call[Account]:
        body = {"tenant_id": tenant_id, **({"controller": controller} if controller else {})}
        return _Call("POST", "/api/vdi/billing/accounts", Account.model_validate, body)

    @staticmethod
    def set_limits(
        tenant_id: str, per_request_micros: int | None, daily_micros: int | None
    ) -> _Call[Account]:
        body = {"per_request_micros": per_request_micros, "daily_micros": daily_micros}
        path = f"/api/vdi/billing/accounts/{_seg(tenant_id)}/limits"
        return _Call("PUT", path, Account.model_validate, body)

    @staticmethod
    def issue_token(tenant_id: str) -> _Call[IssuedToken]:
        path = f"/api/vdi/billing/accounts/{_seg(tenant_id)}/tokens"
        return _Call("POST", path, IssuedToken.model_validate)

    @staticmethod
    def revoke_tokens(tenant_id: str, token_id: str | None) -> _Call[RevokedTokens]:
        path = f"/api/vdi/billing/accounts/{_seg(tenant_id)}/tokens"
        params = {"token_id": token_id} if token_id else {}
        return _Call("DELETE", path, RevokedTokens.model_validate, params=params)

    @staticmethod
    def trust_document() -> _Call[TrustDocument]:
        # checked, not just parsed: a document whose signature fails is an error here
        return _Call("GET", trust_document.WELL_KNOWN_PATH, trust_document.verify)

    @staticmethod
    def status() -> _Call[dict[str, Any]]:
        return _Call("GET", "/api/vdi/status", dict)


def _headers(secret: str | None, token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _answer(call: _Call[T], response: httpx.Response) -> T:
    if not response.is_success:
        raise api_error(response)
    if call.text:
        return call.parse(response.text)
    try:
        data = response.json()
    except ValueError:
        raise ApiError(response.status_code, None, "the answer is not JSON") from None
    return call.parse(data)


def _unreachable(base_url: str, exc: httpx.HTTPError) -> ToolError:
    return ToolError(f"cannot reach the vbill service at {base_url}: {exc}")


class _Base(Generic[HttpT, TransportT]):
    """The connection both clients open (base URL, credentials, timeout): one constructor, so
    the blocking and the async client cannot authenticate differently."""

    _open: Callable[..., HttpT]  # httpx.Client or httpx.AsyncClient

    def __init__(
        self,
        base_url: str,
        *,
        secret: str | None = None,
        token: str | None = None,
        timeout: float = 120.0,
        transport: TransportT | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http: HttpT = self._open(
            base_url=self.base_url,
            headers=_headers(secret, token),
            timeout=timeout,
            transport=transport,
        )


class Client(_Base[httpx.Client, httpx.BaseTransport]):
    """Blocking client; use as a context manager or call close()."""

    _open = httpx.Client

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: _Call[T]) -> T:
        try:
            response = self._http.request(
                call.method, call.path, json=call.json, params=call.params
            )
        except httpx.HTTPError as exc:
            raise _unreachable(self.base_url, exc) from None
        return _answer(call, response)

    def attest(self, request: AttestRequest | Mapping[str, Any]) -> Bundle | MeteredBundle:
        """Prove, sign and log one billable event (operator); idempotent per event_id."""
        return self._run(_Calls.attest(request))

    def verify(
        self, bundle: Bundle | Mapping[str, Any], billed: Record | None = None
    ) -> VerifyResult:
        """The service's three verdicts on a bundle (billed: the invoice's record, if other)."""
        return self._run(_Calls.verify(bundle, billed))

    def bundle(self, event_id: str, tenant_id: str | None = None) -> Bundle | MeteredBundle:
        """The event's bundle: a MeteredBundle for a metered tariff (binding v2)."""
        return self._run(_Calls.bundle(event_id, tenant_id))

    def bundle_json(self, event_id: str, tenant_id: str | None = None) -> dict[str, Any]:
        """The bundle exactly as served (what `vbill verify` checks, byte for byte)."""
        return self._run(_Calls.bundle_json(event_id, tenant_id))

    def correction(self, tenant_id: str, correction_id: str) -> dict[str, Any]:
        """A logged correction or void document as served (what `vbill verify` checks); once
        settled on chain, with `settlement` (its settleCorrection transaction)."""
        return self._run(_Calls.correction(tenant_id, correction_id))

    def receipt(self, event_id: str, tenant_id: str | None = None) -> ReceiptView:
        """The bundle's settlement status and usage receipt (None until settled)."""
        return self._run(_Calls.receipt(event_id, tenant_id))

    def statement(
        self, tenant_id: str, window: str, tariff_id: str | None = None
    ) -> dict[str, Any]:
        """The window statement document (e.g. window "2026-05"): `vbill statement FILE`
        verifies it; `closed` and, once closed, the close record."""
        return self._run(_Calls.statement(tenant_id, window, tariff_id))

    def close_window(
        self, tenant_id: str, window: str, tariff_id: str | None = None
    ) -> CloseRecord:
        """Close the window (operator); closing again returns the same record."""
        return self._run(_Calls.close_window(tenant_id, window, tariff_id))

    def close_record(
        self, tenant_id: str, window: str, tariff_id: str | None = None
    ) -> CloseRecord:
        """The window's close record (ApiError 404 while it is open)."""
        return self._run(_Calls.close_record(tenant_id, window, tariff_id))

    def invoice(self, tenant_id: str, window: str, tariff_id: str | None = None) -> Invoice:
        """The window's invoice, re-derived by the service from its verified statement."""
        return self._run(_Calls.invoice(tenant_id, window, tariff_id))

    def invoice_html(self, tenant_id: str, window: str, tariff_id: str | None = None) -> str:
        return self._run(_Calls.invoice_html(tenant_id, window, tariff_id))

    def windows(
        self, tenant_id: str | None = None, *, cursor: str | None = None, limit: int = 100
    ) -> WindowPage:
        """One page of windows (a tenant token: its own); pass `next_cursor` for the next."""
        return self._run(_Calls.windows(tenant_id, cursor, limit))

    def entries(
        self,
        tenant_id: str,
        window: str,
        tariff_id: str | None = None,
        *,
        after_seq: int = 0,
        limit: int = 100,
    ) -> EntryPage:
        """One page of a window's entries after `after_seq`; pass `next_after_seq` on."""
        return self._run(_Calls.entries(tenant_id, window, tariff_id, after_seq, limit))

    def export_csv(self, tenant_id: str, window: str, tariff_id: str | None = None) -> str:
        """The window as CSV, one row per entry."""
        return self._run(_Calls.export_csv(tenant_id, window, tariff_id))

    def account(self, tenant_id: str) -> Account:
        return self._run(_Calls.account(tenant_id))

    def balance(self, tenant_id: str) -> AccountBalance:
        return self.account(tenant_id).balance

    def create_account(self, tenant_id: str, controller: str | None = None) -> Account:
        """Onboard a tenant (operator); the answer carries its account salt, once."""
        return self._run(_Calls.create_account(tenant_id, controller))

    def set_limits(
        self,
        tenant_id: str,
        *,
        per_request_micros: int | None = None,
        daily_micros: int | None = None,
    ) -> Account:
        """Set both limits (None: no limit); the operator or the tenant itself."""
        return self._run(_Calls.set_limits(tenant_id, per_request_micros, daily_micros))

    def issue_token(self, tenant_id: str) -> IssuedToken:
        return self._run(_Calls.issue_token(tenant_id))

    def revoke_tokens(self, tenant_id: str, token_id: str | None = None) -> RevokedTokens:
        return self._run(_Calls.revoke_tokens(tenant_id, token_id))

    def trust_document(self) -> TrustDocument:
        """The service's trust document, with its signature checked."""
        return self._run(_Calls.trust_document())

    def status(self) -> dict[str, Any]:
        return self._run(_Calls.status())


class AsyncClient(_Base[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """The same operations as `Client`, awaitable; use `async with` or `await aclose()`."""

    _open = httpx.AsyncClient

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: _Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, call.path, json=call.json, params=call.params
            )
        except httpx.HTTPError as exc:
            raise _unreachable(self.base_url, exc) from None
        return _answer(call, response)

    async def attest(self, request: AttestRequest | Mapping[str, Any]) -> Bundle | MeteredBundle:
        return await self._run(_Calls.attest(request))

    async def verify(
        self, bundle: Bundle | Mapping[str, Any], billed: Record | None = None
    ) -> VerifyResult:
        return await self._run(_Calls.verify(bundle, billed))

    async def bundle(self, event_id: str, tenant_id: str | None = None) -> Bundle | MeteredBundle:
        return await self._run(_Calls.bundle(event_id, tenant_id))

    async def bundle_json(self, event_id: str, tenant_id: str | None = None) -> dict[str, Any]:
        return await self._run(_Calls.bundle_json(event_id, tenant_id))

    async def correction(self, tenant_id: str, correction_id: str) -> dict[str, Any]:
        return await self._run(_Calls.correction(tenant_id, correction_id))

    async def receipt(self, event_id: str, tenant_id: str | None = None) -> ReceiptView:
        return await self._run(_Calls.receipt(event_id, tenant_id))

    async def statement(
        self, tenant_id: str, window: str, tariff_id: str | None = None
    ) -> dict[str, Any]:
        return await self._run(_Calls.statement(tenant_id, window, tariff_id))

    async def close_window(
        self, tenant_id: str, window: str, tariff_id: str | None = None
    ) -> CloseRecord:
        return await self._run(_Calls.close_window(tenant_id, window, tariff_id))

    async def close_record(
        self, tenant_id: str, window: str, tariff_id: str | None = None
    ) -> CloseRecord:
        return await self._run(_Calls.close_record(tenant_id, window, tariff_id))

    async def invoice(self, tenant_id: str, window: str, tariff_id: str | None = None) -> Invoice:
        return await self._run(_Calls.invoice(tenant_id, window, tariff_id))

    async def invoice_html(self, tenant_id: str, window: str, tariff_id: str | None = None) -> str:
        return await self._run(_Calls.invoice_html(tenant_id, window, tariff_id))

    async def windows(
        self, tenant_id: str | None = None, *, cursor: str | None = None, limit: int = 100
    ) -> WindowPage:
        return await self._run(_Calls.windows(tenant_id, cursor, limit))

    async def entries(
        self,
        tenant_id: str,
        window: str,
        tariff_id: str | None = None,
        *,
        after_seq: int = 0,
        limit: int = 100,
    ) -> EntryPage:
        return await self._run(_Calls.entries(tenant_id, window, tariff_id, after_seq, limit))

    async def export_csv(self, tenant_id: str, window: str, tariff_id: str | None = None) -> str:
        return await self._run(_Calls.export_csv(tenant_id, window, tariff_id))

    async def account(self, tenant_id: str) -> Account:
        return await self._run(_Calls.account(tenant_id))

    async def balance(self, tenant_id: str) -> AccountBalance:
        return (await self.account(tenant_id)).balance

    async def create_account(self, tenant_id: str, controller: str | None = None) -> Account:
        return await self._run(_Calls.create_account(tenant_id, controller))

    async def set_limits(
        self,
        tenant_id: str,
        *,
        per_request_micros: int | None = None,
        daily_micros: int | None = None,
    ) -> Account:
        return await self._run(_Calls.set_limits(tenant_id, per_request_micros, daily_micros))

    async def issue_token(self, tenant_id: str) -> IssuedToken:
        return await self._run(_Calls.issue_token(tenant_id))

    async def revoke_tokens(self, tenant_id: str, token_id: str | None = None) -> RevokedTokens:
        return await self._run(_Calls.revoke_tokens(tenant_id, token_id))

    async def trust_document(self) -> TrustDocument:
        return await self._run(_Calls.trust_document())

    async def status(self) -> dict[str, Any]:
        return await self._run(_Calls.status())
