"""HTTP endpoints (docs/http-api.md): attest, verify, trust endpoints, bundles, accounts, status.

Attest and the operator endpoints need `X-VDI-Attest-Secret` (constant-time compare); verify,
the transparency log, the revocation list, status and health are public. Proving and pairing
checks are CPU-bound and run in worker threads, bounded by a capacity limiter, never on the
event loop.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from vbill import jsonio
from vbill.bindings import BINDING_VERSION
from vbill.bindings.registry import event_binding
from vbill.errors import InputError
from vbill.ingest import new_account
from vbill.ledger.store import WEI_PER_MICRO, Conflict, Limits, StoredBundle
from vbill.models import (
    U64_SCHEMA,
    AttestRequest,
    Bundle,
    MeteredAttestRequest,
    MeteredBundle,
    TreeHead,
    VerifyRequest,
    VerifyResult,
)
from vbill.service import ingestion, windows
from vbill.service.auth import (
    AnyCaller,
    Caller,
    SecretHeader,
    operator_sent,
    require_operator,
    visible_to,
)
from vbill.service.openapi import CALLER, OPERATOR, Error, errors, json_body
from vbill.service.state import ServiceState
from vbill.service.views import (
    AccountView,
    ConsistencyProof,
    CorrectionRequest,
    CorrectionView,
    HealthView,
    InclusionProof,
    ProvingBundle,
    RevocationList,
    StatusView,
    TariffKeyRequest,
    TariffKeyView,
)
from vbill.verify import revocation
from vbill.verify.correction import is_correction_document, verify_correction
from vbill.verify.statement import statement_document
from vbill.verify.verify import default_check, verify_request
from vbill.version import __version__

router = APIRouter()


async def state(request: Request) -> ServiceState:
    """async: a sync dependency costs a worker-thread round trip per request."""
    return request.app.state.svc  # type: ignore[no-any-return]


State = Annotated[ServiceState, Depends(state)]


Authed = Depends(require_operator)  # operator only; tenant tokens get 403 (service/auth.py)


async def _json_body(request: Request) -> Any:
    """The body as JSON: bounded nesting and integers, any failure a 422 naming `body`."""
    return jsonio.loads(await request.body(), "body")


# --- attest and verify ---


@router.post(
    "/api/vdi/billing/attest",
    dependencies=[Authed],
    response_model=Bundle | MeteredBundle,
    openapi_extra=json_body(AttestRequest, MeteredAttestRequest),
    responses={
        202: {"model": ProvingBundle, "description": "`Prefer: respond-async`: proof follows"},
        **errors(*OPERATOR, 409, 422, 429, 503),
    },
)
async def attest(request: Request, svc: State) -> JSONResponse:
    """Prove, sign and log one billable event; idempotent per (tenant_id, event_id).
    Beyond the schema (422 naming the field): min_charge_micros ≤ max_charge_micros, each
    tier's up_to above the previous one's, every usage name priced by the tariff, a YYYY-MM or
    YYYY-MM-DD billing_window_id containing event_timestamp, integers written as integers."""
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise InputError("body", "expected a JSON object")
    # Signed and logged at ingestion (a metered event takes its window's next seq there);
    # proved here unless `Prefer: respond-async` (202). Everything that reads the store runs
    # in a worker thread: on the event loop each read waits for the GIL behind the committer.
    respond_async = ingestion.wants_async(request)
    limiter = None if respond_async else svc.limiter

    def work() -> Any:
        svc.refuse_if_cannot_sign()
        return ingestion.attest_one(svc, body, respond_async)

    outcome = await anyio.to_thread.run_sync(work, limiter=limiter)
    return ingestion.attest_response(svc, outcome)


def verify_shape(body: Any) -> None:
    """The verify body is a JSON object (422 otherwise, as the document states); whatever is in
    it, a member of any type or an unknown one, is judged: `valid: false` with a reason."""
    if not isinstance(body, dict):
        raise InputError("body", "expected a JSON object")


@router.post(
    "/api/vdi/billing/corrections",
    dependencies=[Authed],
    response_model=CorrectionView,
    openapi_extra=json_body(CorrectionRequest),
    responses={201: {"model": CorrectionView}, **errors(*OPERATOR, 404, 409, 422, 503)},
)
async def correct(request: Request, svc: State) -> JSONResponse:
    """Correct an attested event with a proven credit (docs/protocol-corrections.md): a metered
    event's credit is priced backwards from its window's state; a binding v1 event is voided
    whole. Idempotent per (tenant_id, correction_id); 404 for an unknown or another tenant's
    event, 409 for a second correction of one event, 422 naming the field (a dimension over the
    original's or one its tariff does not price, `usage` on a binding v1 event, an integer
    written as `2.0`)."""
    body = await _json_body(request)

    def work() -> Any:
        from vbill.correct import correct_event

        svc.refuse_if_cannot_sign()
        proving = svc.correction_proving()
        return correct_event(body, store=svc.store, attester=svc.attester, proving=proving)

    done = await anyio.to_thread.run_sync(work, limiter=svc.limiter)
    from vbill.correct import summary

    return JSONResponse(
        status_code=201 if done.created else 200,
        content={**summary(done.stored), "created": done.created, "correction": done.stored.doc},
    )


@router.get(
    "/api/vdi/billing/corrections/{tenant_id}/{correction_id}",
    responses={
        200: {
            "description": "the signed correction or void document, with its log receipt "
            "(`vbill verify FILE` verifies it) and, once the settlement worker has settled it "
            "on chain, `settlement` (its settleCorrection transaction, for `vbill receipt TX "
            "--correction FILE`)"
        },
        **errors(*CALLER),
    },
)
def correction_by_id(
    tenant_id: str, correction_id: str, svc: State, caller: AnyCaller
) -> JSONResponse:
    """A logged correction's document, as POST /corrections answered it under `correction`;
    once settled on chain, with `settlement` added outside the signed record, as a bundle
    carries it. A tenant token reads only its own tenant's corrections (another's is 404,
    like none)."""
    visible_to(caller, tenant_id)
    found = svc.store.find_correction(tenant_id, correction_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no correction {correction_id!r}")
    if found.settlement_status == "settled" and found.settlement is not None:
        return JSONResponse({**found.doc, "settlement": found.settlement})
    return JSONResponse(found.doc)


@router.post(
    "/api/vdi/billing/verify",
    response_model=VerifyResult,
    openapi_extra=json_body(VerifyRequest),
    responses=errors(422, 503),
)
async def verify(request: Request, svc: State) -> VerifyResult:
    """Check a bundle's signature and receipt, its charge, and its Groth16 binding; a
    correction or void document (`correction_version`) posted whole gets the same verdicts."""
    body = await _json_body(request)
    verify_shape(body)
    trust = svc.trust()
    check = default_check()

    def work() -> VerifyResult:
        if is_correction_document(body):  # a correction or void document, posted whole
            return verify_correction(body, trust=trust, check=check)
        return verify_request(body, trust=trust, check=check)

    return await anyio.to_thread.run_sync(work, limiter=svc.limiter)


# --- bundles ---


@router.get(
    "/api/vdi/billing/bundles/{event_id}",
    response_model=Bundle | MeteredBundle,
    responses=errors(*CALLER, 409, 422),
)
def bundle_by_event(
    event_id: str, svc: State, caller: AnyCaller, tenant_id: Annotated[str | None, Query()] = None
) -> JSONResponse:
    """The stored bundle for an event id (give tenant_id when event ids repeat across tenants);
    a tenant token sees only its own tenant's bundles."""
    found = find_bundle(svc, caller, event_id, tenant_id)
    correction = svc.store.correction_of(found.tenant_id, found.event_id)
    return JSONResponse(ingestion.bundle_view(found, correction))


def find_bundle(
    svc: ServiceState, caller: Caller, event_id: str, tenant_id: str | None
) -> StoredBundle:
    """The one bundle of this event the caller may see: 404 if none, 409 if ambiguous."""
    if tenant_id is not None:
        visible_to(caller, tenant_id)
    tenant_id = tenant_id or caller.tenant_id
    found = (
        [b for b in [svc.store.find(tenant_id, event_id)] if b]
        if tenant_id is not None
        else svc.store.find_by_event(event_id)
    )
    if not found:
        raise HTTPException(status_code=404, detail=f"no bundle for event_id {event_id!r}")
    if len(found) > 1:
        raise HTTPException(
            status_code=409, detail="event_id exists for several tenants; pass ?tenant_id="
        )
    return found[0]


@router.get(
    "/api/vdi/billing/statements/{tenant_id}/{billing_window_id}",
    responses={
        200: {"description": "a statement document (`vbill statement FILE` verifies it)"},
        **errors(*CALLER, 409, 503),
    },
)
async def window_statement(
    tenant_id: str,
    billing_window_id: str,
    svc: State,
    caller: AnyCaller,
    tariff_id: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """A billing window's statement document: its metered bundles in seq order and their
    verified summary (total, per-dimension totals, count), to keep with the invoice and
    re-verify offline with `vbill statement FILE` (docs/protocol-v2.md), with `closed` and,
    once the window is closed, its close record. A tenant token sees only its own windows;
    give tariff_id when the window has several tariffs (409)."""
    visible_to(caller, tenant_id)
    key = windows.window_key(svc, tenant_id, billing_window_id, tariff_id)
    verified = await windows.verified_window(svc, key)
    return statement_document(verified.bundles, verified.statement)


# --- trust endpoints ---


@router.get("/.well-known/vdi-billing-revocation.json", responses={200: {"model": RevocationList}})
def revocation_list(svc: State) -> dict[str, Any]:
    """Revoked and retired attester keys and revoked verification keys, signed by the
    operator's attester key."""
    return svc.revocation_document()


REVOKED_VALUE = {"attester": "^0[xX][0-9a-fA-F]{40}$", "vkey": "^[0-9a-fA-F]{64}$"}
"""What a revocation names, per kind (the store keeps it in lower case)."""


class RevokeBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"properties": {"kind": {"const": k}, "value": {"pattern": v}}}
                for k, v in REVOKED_VALUE.items()
            ]
        },
    )
    kind: StrictStr = Field(pattern="^(attester|vkey)$")
    value: StrictStr = Field(
        min_length=1, max_length=128, description="a 0x address (attester) or a hex SHA-256 (vkey)"
    )
    reason: StrictStr = Field(min_length=1, max_length=500)


@router.post(
    "/api/vdi/billing/revocations",
    dependencies=[Authed],
    responses={200: {"model": RevocationList}, **errors(*OPERATOR, 422)},
)
def revoke(body: RevokeBody, svc: State) -> dict[str, Any]:
    """Revoke an attester address or a verification-key hash (operator only)."""
    if not re.fullmatch(REVOKED_VALUE[body.kind], body.value):
        what = "a 0x address" if body.kind == "attester" else "a hex SHA-256"
        raise InputError("value", f"an {body.kind} revocation must name {what}")
    svc.store.revoke(body.kind, body.value, body.reason)
    doc = svc.revocation_document()
    revocation.write_local(doc, svc.settings.home)
    return doc


@router.get("/api/vdi/billing/transparency/head", responses={200: {"model": TreeHead}})
def transparency_head(svc: State) -> dict[str, Any]:
    """The latest signed tree head of the RFC 9162 log."""
    return svc.store.head().to_dict()


@router.get(
    "/api/vdi/billing/transparency/inclusion",
    responses={
        200: {"model": InclusionProof},
        404: {
            "model": Error,
            "description": "no such leaf: leaf_index ≥ tree_size, or no tree "
            "of tree_size leaves yet (tree_size > the latest head's)",
        },
        **errors(422),
    },
)
def transparency_inclusion(
    svc: State,
    leaf_index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """Inclusion proof of a leaf in the tree of `tree_size` leaves (default: the latest head);
    needs `leaf_index < tree_size ≤` the latest head's size, else 404 (no such leaf)."""
    head = svc.store.head()
    size = head.tree_size if tree_size is None else tree_size
    if size > head.tree_size:
        raise HTTPException(
            status_code=404, detail=f"no tree of size {size}: the log has {head.tree_size} leaves"
        )
    if leaf_index >= size:
        raise HTTPException(
            status_code=404, detail=f"no leaf {leaf_index} in a tree of size {size}"
        )
    leaf = svc.store.leaf_hash(leaf_index)
    sth = svc.store.head_at(size)
    return {
        "leaf_index": leaf_index,
        "tree_size": size,
        "leaf_hash": "0x" + (leaf or b"").hex(),
        "inclusion_proof": ["0x" + p.hex() for p in svc.store.inclusion_proof(leaf_index, size)],
        "tree_head": sth.to_dict() if sth else None,
    }


@router.get(
    "/api/vdi/billing/transparency/consistency",
    responses={
        200: {"model": ConsistencyProof},
        404: {
            "model": Error,
            "description": "no such proof: it needs first ≤ second ≤ the latest head's size",
        },
        **errors(422),
    },
)
def transparency_consistency(
    svc: State,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """Consistency proof that the tree of `second` leaves (default: the latest head) extends
    the tree of `first`; needs `first ≤ second ≤` the latest head's size, else 404 (no such
    proof: a tree does not extend a larger one, and a tree not yet logged has none)."""
    head = svc.store.head()
    second = head.tree_size if second is None else second
    if not first <= second <= head.tree_size:
        raise HTTPException(
            status_code=404,
            detail=f"no consistency proof from {first} to {second} leaves: need first ≤ second "
            f"≤ {head.tree_size}",
        )
    old, new = svc.store.head_at(first), svc.store.head_at(second)
    return {
        "first": first,
        "second": second,
        "proof": ["0x" + p.hex() for p in svc.store.consistency_proof(first, second)],
        "first_head": old.to_dict() if old else None,
        "second_head": new.to_dict() if new else None,
    }


# --- accounts ---


class AccountBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: StrictStr = Field(min_length=1, max_length=256)
    controller: StrictStr | None = Field(
        default=None,
        pattern="^0x[0-9a-fA-F]{40}$",
        description="The tenant's address that will administer the on-chain account "
        "(accept tariffs, set limits, withdraw). With a chain configured, the service opens "
        "the account for the tenant key and this controller.",
    )


class BindBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    controller: StrictStr = Field(pattern="^0x[0-9a-fA-F]{40}$")


async def _bind(svc: ServiceState, tenant_id: str, controller: str) -> dict[str, Any]:
    """Open the on-chain account for the tenant's key; failures are reported, not raised, so
    onboarding stays idempotent (retry with POST …/accounts/{tenant}/bind)."""
    tenant = svc.store.tenant(tenant_id)
    assert tenant is not None and svc.worker is not None
    worker = svc.worker
    try:
        tx = await anyio.to_thread.run_sync(
            lambda: worker.open_account(tenant.tenant_key, controller)
        )
    except Exception as exc:
        return {"onchain_error": f"{type(exc).__name__}: {exc}"[:300]}
    svc.store.set_onchain(tenant_id, "bound", tx.transaction_hash)
    return {}


class LimitsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_request_micros: Annotated[StrictInt, U64_SCHEMA] | None = Field(
        default=None, ge=0, le=2**64 - 1
    )
    daily_micros: Annotated[StrictInt, U64_SCHEMA] | None = Field(default=None, ge=0, le=2**64 - 1)


def _account_view(svc: ServiceState, tenant_id: str) -> dict[str, Any]:
    tenant = svc.store.tenant(tenant_id)
    if tenant is None:
        raise HTTPException(status_code=404, detail=f"no account for tenant {tenant_id!r}")
    bal = svc.store.balance(tenant_id)
    lim = svc.store.limits(tenant_id)
    return {
        "tenant_id": tenant_id,
        "tenant_key": str(tenant.tenant_key),
        "onchain_status": tenant.onchain_status,
        "onchain_tx": tenant.onchain_tx,
        "balance": {
            "unit": "wei",
            "available": str(bal.available_wei),
            "reserved": str(bal.reserved_wei),
            "total": str(bal.total_wei),
            "pending_deposits": str(bal.pending_deposits_wei),
            "withdrawing": str(bal.withdrawing_wei),  # requested on chain by the controller
        },
        "limits": {
            "per_request_micros": lim.per_request_micros,
            "daily_micros": lim.daily_micros,
            "spent_today_micros": svc.store.spent_today_micros(tenant_id),
        },
        "micro_wei": str(WEI_PER_MICRO),
    }


def _need_chain(svc: ServiceState) -> None:
    """409 on a service without a chain: the request is well formed, the service is not set
    up to do it (the OpenAPI document says so on both routes)."""
    if svc.worker is None:
        raise HTTPException(
            status_code=409,
            detail="opening an on-chain account needs a chain: this service has none "
            "configured (vbill serve --network …)",
        )


@router.post(
    "/api/vdi/billing/accounts",
    dependencies=[Authed],
    status_code=201,
    responses={
        201: {"model": AccountView},
        **errors(*OPERATOR, 422),
        409: {
            "model": Error,
            "description": "the tenant exists already, or `controller` was "
            "given to a service without a chain",
        },
    },
)
async def create_account(body: AccountBody, svc: State) -> dict[str, Any]:
    """Onboard a tenant: a fresh account salt (a random field element) and its tenant key.
    With `controller`, the service also opens the on-chain account for that key and
    controller, after which the tenant funds it with `deposit(tenant_key)`; that needs a
    chain (`vbill serve --network …`): without one, `controller` is 409."""
    if body.controller is not None:
        _need_chain(svc)
    salt, key = new_account(body.tenant_id)
    try:
        svc.store.add_tenant(body.tenant_id, salt, key)
    except Conflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    extra = await _bind(svc, body.tenant_id, body.controller) if body.controller else {}
    view = _account_view(svc, body.tenant_id)
    view["account_salt"] = str(salt)  # shared with the tenant once, at onboarding
    return {**view, **extra}


@router.post(
    "/api/vdi/billing/accounts/{tenant_id}/bind",
    dependencies=[Authed],
    responses={
        200: {"model": AccountView},
        **errors(*OPERATOR, 404, 422),
        409: {"model": Error, "description": "this service has no chain configured"},
    },
)
async def bind_account(tenant_id: str, body: BindBody, svc: State) -> dict[str, Any]:
    """Open the on-chain account of an existing tenant (e.g. after a failed first attempt);
    needs a chain (`vbill serve --network …`): without one, 409."""
    _need_chain(svc)
    if svc.store.tenant(tenant_id) is None:
        raise HTTPException(status_code=404, detail=f"no account for tenant {tenant_id!r}")
    extra = await _bind(svc, tenant_id, body.controller)
    return {**_account_view(svc, tenant_id), **extra}


@router.get(
    "/api/vdi/billing/accounts/{tenant_id}",
    responses={200: {"model": AccountView}, **errors(*CALLER, 422)},
)
def get_account(tenant_id: str, svc: State, caller: AnyCaller) -> dict[str, Any]:
    """Balance {available, reserved, total} in wei, spending limits, on-chain binding."""
    visible_to(caller, tenant_id)
    return _account_view(svc, tenant_id)


@router.put(
    "/api/vdi/billing/accounts/{tenant_id}/limits",
    responses={200: {"model": AccountView}, **errors(*CALLER, 422)},
)
def put_limits(tenant_id: str, body: LimitsBody, svc: State, caller: AnyCaller) -> dict[str, Any]:
    """Set per-request and daily spending limits (micro-ETH; null = none); the operator or
    the tenant itself. Integers are written as integers (`5`, not `5.0`: 422)."""
    visible_to(caller, tenant_id)
    if svc.store.tenant(tenant_id) is None:
        raise HTTPException(status_code=404, detail=f"no account for tenant {tenant_id!r}")
    svc.store.set_limits(tenant_id, Limits(body.per_request_micros, body.daily_micros))
    return _account_view(svc, tenant_id)


def tariff_key_for(tariff_snapshot: Any, account_salt: int) -> int:
    """The tariff key a tenant accepts on chain: Poseidon(tariff_hash, account_salt)."""
    if not isinstance(tariff_snapshot, dict):
        raise InputError("tariff_snapshot", "expected a JSON object")
    # its binding parses it with its wire model first, as /attest reads it
    return event_binding({"tariff_snapshot": tariff_snapshot}).tariff_key(
        tariff_snapshot, account_salt
    )


@router.post(
    "/api/vdi/billing/accounts/{tenant_id}/tariff-key",
    dependencies=[Authed],
    openapi_extra=json_body(TariffKeyRequest),
    responses={200: {"model": TariffKeyView}, **errors(*OPERATOR, 404, 422)},
)
async def tariff_key(tenant_id: str, request: Request, svc: State) -> dict[str, Any]:
    """The `tariff_key` this tenant must accept on chain (`acceptTariff`) before ETH charges
    under this tariff can settle. Body: {"tariff_snapshot": {...}}. Beyond the schema (422
    naming the field): min_charge_micros ≤ max_charge_micros, each tier's up_to above the
    previous one's, integers written as integers."""
    body = await _json_body(request)
    tenant = svc.store.tenant(tenant_id)
    if tenant is None:
        raise HTTPException(status_code=404, detail=f"no account for tenant {tenant_id!r}")
    snapshot = body.get("tariff_snapshot") if isinstance(body, dict) else None
    return {
        "tenant_id": tenant_id,
        "tariff_key": str(tariff_key_for(snapshot, tenant.account_salt)),
    }


# --- status ---


@router.get("/api/vdi/status", responses={200: {"model": StatusView}, **errors(401)})
def status(request: Request, svc: State, secret: SecretHeader = None) -> dict[str, Any]:
    """What this service is, what it trusts and how far settlement has got. Public, so it
    names no tenant and no event: the number of tenants and the event ids of the last
    settlement batch only with the operator's secret."""
    operator = operator_sent(request, secret)
    counts = svc.store.counts()
    if not operator:
        counts.pop("tenants", None)
    chain = None
    if svc.worker:
        worker = dict(svc.worker.status.__dict__)
        if not operator:
            worker.pop("last_batch", None)
        chain = {**svc.chain_info, "worker": worker}
    bindings = [
        {"binding_version": version, "vkey_sha256": sha} for version, sha in svc.vkeys().items()
    ]
    return {
        "service": "vbill",
        "version": __version__,
        "binding_version": BINDING_VERSION,
        "attester": svc.attester.address,
        "vkey_sha256": svc.vkeys()[BINDING_VERSION],
        "bindings": bindings,
        "tree_head": svc.store.head().to_dict(),
        "counts": counts,
        "chain": chain,
        "revocation_list": "/.well-known/vdi-billing-revocation.json",
    }


@router.get(
    "/health",
    responses={
        200: {"model": HealthView},
        503: {"model": HealthView, "description": "degraded: `reasons` says why"},
    },
)
def health(svc: State) -> JSONResponse:
    """ok when the store answers and nothing keeps the service from its job; else 503
    `degraded` with the reasons (the configured chain unreachable, the attester key revoked
    or retired)."""
    svc.store.counts()
    problems = svc.problems()
    if problems:
        return JSONResponse({"status": "degraded", "reasons": problems}, status_code=503)
    return JSONResponse({"status": "ok"})
