"""`vbill webhooks`: the operator's webhook endpoints and the outbox (docs/cli.md).

Works on the store directly ($VBILL_HOME's SQLite file or DATABASE_URL), like `vbill accounts`:
a running `vbill serve` picks the changes up at once. A secret is printed when an endpoint is
added or rotated, never again.
"""

from __future__ import annotations

import click

from vbill.cli.output import emit, json_option
from vbill.cli.service import _store
from vbill.errors import InputError
from vbill.ledger.outbox import EVENT_TYPES, Outbox
from vbill.ledger.store import now_ms


@click.group()
def webhooks() -> None:
    """Webhook endpoints (signed per Standard Webhooks) and their deliveries."""


def _outbox() -> Outbox:
    return Outbox(_store())


@webhooks.command("add")
@click.argument("url")
@click.option(
    "--events",
    "events",
    multiple=True,
    metavar="TYPE[,TYPE…]",
    help="Event types to send (repeat or comma-separate; default: all of "
    f"{', '.join(EVENT_TYPES)}).",
)
@json_option
def add(url: str, events: tuple[str, ...], as_json: bool) -> None:
    """Register URL; prints the endpoint's id and its signing secret (shown only now)."""
    types = [t.strip() for e in events for t in e.split(",") if t.strip()]
    ep = _outbox().add_endpoint(url, types, now_ms())
    emit(
        {"id": ep.endpoint_id, "secret": ep.secret},
        as_json,
        f"endpoint {ep.endpoint_id}\nsecret   {ep.secret}\n"
        "(keep the secret: it verifies every delivery and is not shown again)",
    )


@webhooks.command("list")
@json_option
def list_(as_json: bool) -> None:
    """The registered endpoints (without secrets)."""
    eps = [ep.view() for ep in _outbox().endpoints()]
    lines = [f"{e['id']}  {e['url']}  {','.join(e['events']) or '*'}" for e in eps]
    emit({"endpoints": eps}, as_json, "\n".join(lines) or "no endpoints")


@webhooks.command("rotate")
@click.argument("endpoint_id", metavar="ID")
@json_option
def rotate(endpoint_id: str, as_json: bool) -> None:
    """A new secret for endpoint ID (the old one stops signing at once)."""
    ep = _outbox().rotate(endpoint_id, now_ms())
    emit({"id": ep.endpoint_id, "secret": ep.secret}, as_json, f"secret   {ep.secret}")


@webhooks.command("remove")
@click.argument("endpoint_id", metavar="ID")
@json_option
def remove(endpoint_id: str, as_json: bool) -> None:
    """Remove endpoint ID and drop its queued deliveries."""
    _outbox().remove(endpoint_id)
    emit({"id": endpoint_id, "removed": True}, as_json, f"removed {endpoint_id}")


@webhooks.command("test")
@click.argument("endpoint_id", metavar="ID")
@json_option
def test(endpoint_id: str, as_json: bool) -> None:
    """Send a signed webhook.test event to endpoint ID now (exit 1 if it is not taken)."""
    from vbill.service.webhooks import send_test

    result = send_test(_store(), endpoint_id)
    emit(
        result,
        as_json,
        f"delivered {result['webhook_id']}"
        if result["delivered"]
        else f"not delivered: {result['error']}",
    )
    if not result["delivered"]:
        raise SystemExit(1)


@webhooks.command("deliveries")
@click.option("--status", type=click.Choice(["pending", "delivered", "dead"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
def deliveries(status: str | None, limit: int, as_json: bool) -> None:
    """The latest outbox rows, newest first."""
    rows = _outbox().rows(status, limit)
    lines = [
        f"{r['msg_id']}  {r['endpoint_id']}  {r['event_type']:<24} {r['status']:<9} "
        f"attempts {r['attempts']}  {r['last_error'] or ''}"
        for r in rows
    ]
    emit({"deliveries": rows}, as_json, "\n".join(lines) or "no deliveries")


@webhooks.command("redeliver")
@click.argument("msg_id", metavar="[WEBHOOK_ID]", required=False)
@click.option("--dead", is_flag=True, help="Every dead delivery instead of one event.")
@click.option("--endpoint", "endpoint_id", default=None, help="Only to this endpoint.")
@json_option
def redeliver(msg_id: str | None, dead: bool, endpoint_id: str | None, as_json: bool) -> None:
    """Queue one event again (its webhook-id), or with --dead every dead delivery."""
    if (msg_id is None) == (not dead):
        raise InputError("WEBHOOK_ID", "give a webhook-id or --dead (not both)")
    n = _outbox().redeliver(now_ms(), msg_id=msg_id, endpoint_id=endpoint_id)
    emit({"queued": n}, as_json, f"queued {n} deliveries")


COMMANDS = (webhooks,)
