"""The customer's verbs: `vbill trust pin URL|FILE`, `vbill trust show`, `vbill fetch EVENT`.

Pinning checks the document's signature and stores it under $VBILL_HOME/trust-pin.json
(0600); `vbill verify` then trusts what it names. A document that differs from the pinned one
is refused (exit 1, naming what changed) unless --replace. `vbill fetch` downloads one of the
tenant's bundles with its token (docs/customer.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from vbill import jsonio
from vbill.cli.output import emit, json_option
from vbill.errors import InputError, ToolError
from vbill.verify import trust_document


@click.group()
def trust() -> None:
    """The provider's trust document: pin it once, verify offline against it."""


def fetch(source: str) -> Any:
    """The document from a URL (a bare service URL gets the well-known path) or a file."""
    if source.startswith(("http://", "https://")):
        import httpx

        url = source
        if urlsplit(source).path in ("", "/"):
            url = source.rstrip("/") + trust_document.WELL_KNOWN_PATH
        try:
            response = httpx.get(url, timeout=30, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise ToolError(f"cannot fetch {url}: {exc}") from None
        if response.status_code != 200:
            raise ToolError(f"{url} answered HTTP {response.status_code}")
        try:
            return jsonio.loads(response.content, url)
        except InputError as exc:
            raise InputError("SOURCE", f"{url}: {exc.message}") from None
    return jsonio.read_file(Path(source), "SOURCE")


def _summary(doc: trust_document.TrustDocument) -> str:
    keys = ", ".join(f"{v} ({k.vkey_sha256[:16]}…, {k.ceremony})" for v, k in doc.bindings.items())
    lines = [
        f"issuer       {doc.issuer} (issued {doc.issued_at})",
        f"keys         {keys or 'none'}",
        f"attesters    {', '.join(doc.attesters)}",
        f"log signers  {', '.join(doc.log_signers)}",
        f"revoked      {len(doc.revoked.attesters)} attester(s), {len(doc.revoked.vkeys)} key(s)",
    ]
    for address, at in doc.retired_attesters.items():
        lines.append(f"retired      {address} from {at} ms (bundles logged before stay valid)")
    for name, dep in doc.deployments.items():
        lines.append(f"deployment   {name} (chain {dep.chain_id}): settlement {dep.settlement}")
    return "\n".join(lines)


@trust.command("pin")
@click.argument("source")
@click.option("--replace", is_flag=True, help="Replace a pinned document that differs.")
@json_option
def trust_pin(source: str, replace: bool, as_json: bool) -> None:
    """Check and pin the trust document at SOURCE (a service URL, the document's URL or a file).

    \b
    Examples:
      vbill trust pin https://billing.example.com
      vbill trust pin trust.json --replace
    """
    document = fetch(source)
    status, diff = trust_document.pin(document, replace=replace)
    doc = trust_document.load_pin()
    assert doc is not None
    data = {"status": status, "changes": diff, "path": str(trust_document.pin_path())}
    emit(
        {**data, "issuer": doc.issuer},
        as_json,
        f"{status}: {trust_document.pin_path()}\n"
        + "".join(f"changed      {line}\n" for line in diff)
        + _summary(doc),
    )


@trust.command("show")
@json_option
def trust_show(as_json: bool) -> None:
    """The pinned trust document (exit 2 if nothing is pinned)."""
    doc = trust_document.load_pin()
    if doc is None:
        raise InputError("trust", "nothing pinned; run `vbill trust pin URL`")
    emit(doc.model_dump(mode="json"), as_json, _summary(doc))


@click.command("fetch")
@click.argument("event_id")
@click.option("--url", required=True, help="The provider's service URL.")
@click.option(
    "--token", envvar="VBILL_TOKEN", required=True, help="The tenant token (env VBILL_TOKEN)."
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--correction",
    "tenant_id",
    metavar="TENANT",
    default=None,
    help="Fetch the correction (or void) of this tenant whose correction_id is the argument.",
)
def fetch_bundle(
    event_id: str, url: str, token: str, output: Path | None, tenant_id: str | None
) -> None:
    """Download the bundle of EVENT_ID with a tenant token (to stdout, or -o FILE); with
    --correction TENANT, the correction document whose correction_id is the argument."""
    from pydantic import ValidationError

    from vbill.client import Client, parse_bundle
    from vbill.verify.correction import is_correction_document

    with Client(url, token=token) as api:
        if tenant_id is not None:  # as served: `vbill verify` checks these bytes
            bundle = api.correction(tenant_id, event_id)
        else:
            bundle = api.bundle_json(event_id)
    try:
        if tenant_id is None:
            parse_bundle(bundle)  # a bundle of either binding, or an error naming what is wrong
        elif not is_correction_document(bundle):
            raise InputError("correction", "the service's answer is no correction document")
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = f"the service's answer is no bundle: {err['msg']}"
        raise InputError(f"bundle.{where}", msg) from None
    text = json.dumps(bundle, indent=2, sort_keys=True) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)


COMMANDS = (trust, fetch_bundle)
