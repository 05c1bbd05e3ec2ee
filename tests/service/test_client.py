"""vbill.Client and vbill.AsyncClient against the real service over a socket: typed results,
and refusals as ApiError carrying the HTTP status and the field the service names."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import pytest
from support import needs_build
from support.http_server import SECRET, service
from vbill import ApiError, AsyncClient, Bundle, Client, ToolError, VerifyResult
from vbill.chain.anvil import free_port
from vbill.models import Account, IssuedToken, ReceiptView
from vbill.verify.trust_document import TrustDocument

TENANT = "tenant_client"


def request(
    pilot: dict[str, Any], event: str, tenant: str = TENANT, **meter: Any
) -> dict[str, Any]:
    body = copy.deepcopy(pilot)
    body["meter_event"].update(tenant_id=TENANT, event_id=event, **meter)
    return body


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    needs_build()
    with service(tmp_path_factory.mktemp("client-home")) as (base, _app):
        yield base


@pytest.fixture(scope="module")
def operator(url: str) -> Iterator[Client]:
    with Client(url, secret=SECRET) as api:
        yield api


@pytest.fixture(scope="module")
def attested(operator: Client, pilot_request: dict[str, Any]) -> Bundle:
    return operator.attest(request(pilot_request, "evt_client_001"))


@pytest.fixture(scope="module")
def tenant(url: str, operator: Client, attested: Bundle) -> Iterator[Client]:
    with Client(url, token=operator.issue_token(TENANT).token) as api:
        yield api


# --- refusals first ---


def test_refusals_are_api_errors_with_status_and_field(
    operator: Client, tenant: Client, attested: Bundle, pilot_request: dict[str, Any]
) -> None:
    with pytest.raises(ApiError) as bad:
        operator.attest(request(pilot_request, "evt_client_bad", usage_units=-1))
    assert bad.value.status == 422 and bad.value.field == "meter_event.usage_units"
    with pytest.raises(ApiError) as conflict:
        operator.attest(request(pilot_request, "evt_client_001", usage_units=7))
    assert conflict.value.status == 409 and conflict.value.field is None
    with pytest.raises(ApiError) as limits:
        tenant.set_limits(TENANT, per_request_micros=-1)
    assert limits.value.status == 422 and limits.value.field == "per_request_micros"
    with pytest.raises(ApiError) as forbidden:
        tenant.attest(request(pilot_request, "evt_client_002"))
    assert forbidden.value.status == 403
    with pytest.raises(ApiError) as hidden:
        tenant.account("tenant_acme")
    assert hidden.value.status == 404
    with pytest.raises(ApiError) as missing:
        tenant.bundle("evt_none")
    assert missing.value.status == 404 and "evt_none" in missing.value.message


def test_anonymous_client_is_refused_where_credentials_are_needed(url: str) -> None:
    with Client(url) as api, pytest.raises(ApiError) as info:
        api.account(TENANT)
    assert info.value.status == 401 and info.value.exit_code == 2


def test_unreachable_service_is_an_environment_error() -> None:
    api = Client(f"http://127.0.0.1:{free_port()}", timeout=5)
    with api, pytest.raises(ToolError, match="cannot reach"):
        api.status()


# --- typed results ---


def test_attest_bundle_verify_and_receipt_are_typed(
    operator: Client, tenant: Client, attested: Bundle
) -> None:
    assert isinstance(attested, Bundle) and attested.receipt is not None
    assert attested.billing.expected_charge_micros == 221040
    assert tenant.bundle("evt_client_001") == attested
    assert operator.bundle("evt_client_001", TENANT) == attested
    result = tenant.verify(attested)
    assert isinstance(result, VerifyResult) and result.valid
    billed = attested.record().model_dump(mode="json")
    billed["billing"]["expected_charge_micros"] = 2210400  # the disputed invoice
    disputed = tenant.verify(attested, billed)
    assert not disputed.valid and not disputed.billing_check.valid
    assert disputed.verification.valid
    receipt = tenant.receipt("evt_client_001")
    assert receipt == ReceiptView(
        event_id="evt_client_001", tenant_id=TENANT, settlement_status="none"
    )


def test_account_balance_limits_and_tokens(operator: Client, tenant: Client) -> None:
    account = tenant.account(TENANT)
    assert isinstance(account, Account) and account.tenant_id == TENANT
    assert account.balance.available == 0 and isinstance(account.balance.total, int)
    assert tenant.balance(TENANT) == account.balance
    changed = tenant.set_limits(TENANT, per_request_micros=300000, daily_micros=900000)
    assert changed.limits.per_request_micros == 300000
    assert operator.account(TENANT).limits.daily_micros == 900000
    onboarded = operator.create_account("tenant_client_new")
    assert onboarded.account_salt is not None and onboarded.tenant_id == "tenant_client_new"
    issued = operator.issue_token("tenant_client_new")
    assert isinstance(issued, IssuedToken) and issued.token.startswith("vbt_")
    assert operator.revoke_tokens("tenant_client_new").revoked == 1


def test_trust_document_and_statement(operator: Client, tenant: Client) -> None:
    doc = tenant.trust_document()
    assert isinstance(doc, TrustDocument)
    assert doc.issuer == operator.status()["attester"]
    with pytest.raises(ApiError) as info:  # no statements are published by this service yet
        tenant.statement(TENANT, "2026-05")
    assert info.value.status == 404


def test_async_client_does_the_same(
    url: str, pilot_request: dict[str, Any], attested: Bundle
) -> None:
    async def run() -> None:
        async with AsyncClient(url, secret=SECRET) as api:
            bundles = await asyncio.gather(
                *(api.attest(request(pilot_request, f"evt_async_{i}")) for i in range(2))
            )
            assert [b.meter_event.event_id for b in bundles] == ["evt_async_0", "evt_async_1"]
            token = (await api.issue_token(TENANT)).token
        async with AsyncClient(url, token=token) as mine:
            assert (await mine.bundle("evt_async_1")) == bundles[1]
            assert (await mine.verify(bundles[0])).valid
            assert (await mine.receipt("evt_async_0")).settlement_status == "none"
            assert (await mine.account(TENANT)).tenant_id == TENANT
            assert (await mine.set_limits(TENANT)).limits.per_request_micros is None
            assert (await mine.trust_document()).issuer == bundles[0].attestation.attester
            with pytest.raises(ApiError) as info:
                await mine.attest(request(pilot_request, "evt_async_x"))
            assert info.value.status == 403

    asyncio.run(run())


def test_client_is_exported_from_the_package() -> None:
    import vbill

    assert {"Client", "AsyncClient", "ApiError"} <= set(vbill.__all__)
    assert vbill.Client is Client and vbill.AsyncClient is AsyncClient
