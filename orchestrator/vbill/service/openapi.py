"""The service's self-description: one error body, the statuses each route documents, an
OpenAPI document whose every `$ref` resolves, and `/docs` served without any CDN.

Every error answer is `{"detail": ...}` (`Error`): a 422 always carries `{field, message}`
naming the offending field, FastAPI's own request validation included; the others a sentence.
Routes list what they can answer with `responses=errors(...)` (docs/http-api.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
"""Swagger UI and ReDoc, shipped inside the `fastapi-offline` wheel (no CDN at run time)."""
ASSETS_URL = "/docs-assets"


class FieldError(BaseModel):
    """What was wrong with the request, and where."""

    field: str = Field(
        description="dotted path of the offending field, e.g. `meter_event.usage_units`"
    )
    message: str = Field(description="why it was refused")


class Error(BaseModel):
    """Every error answer. A 422's `detail` is a `FieldError`; other statuses give a sentence.
    A 429 adds `retry_after` (seconds), also sent as the `Retry-After` header."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"detail": {"field": "meter_event.usage_units", "message": "must be ≥ 0"}},
                {"detail": "missing or wrong X-VDI-Attest-Secret"},
            ]
        }
    )

    detail: FieldError | str = Field(description="a FieldError (422) or a sentence")
    retry_after: int | None = Field(
        default=None, description="429 only: seconds until the request may succeed"
    )


REASONS = {
    400: "refused for another reason (e.g. the chain reverted); `detail` says why",
    401: "missing, malformed, unknown or revoked credential",
    403: "a tenant token on an operator-only endpoint",
    404: "no such object, or it belongs to another tenant",
    409: "conflicts with what is stored (same event_id, another payload; an ambiguous event_id)",
    413: "request body larger than the limit (1 MiB)",
    422: "bad input; `detail.field` names the field, `detail.message` says why",
    429: "a spending limit or the balance would be passed; retry after `Retry-After` seconds",
    503: "the service cannot do this now (a tool, an artefact or the chain is unavailable)",
}


RULES_BEYOND_SCHEMA = (
    "Rules no JSON Schema keyword states (each refused with a 422 naming the field): "
    "`tariff_snapshot.min_charge_micros` ≤ `max_charge_micros`; each tier's `up_to` above the "
    "previous tier's; every `meter_event.usage` name one the tariff prices; a "
    "`billing_window_id` shaped YYYY-MM or YYYY-MM-DD contains `event_timestamp`; an integer "
    "is written as one (`2`, never `2.0` or `-0`, which JSON Schema counts as integers too)."
)
"""What the document says in words because JSON Schema cannot (vbill_tools.schemathesis_hooks
recognises exactly these when schemathesis sends a schema-valid request that breaks one)."""


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with its reason and the `Error` body."""
    return {code: {"model": Error, "description": REASONS[code]} for code in codes}


OPERATOR = (401, 403)
"""Statuses of the operator-only dependency (service/auth.py)."""
CALLER = (401, 404)
"""Statuses of an operator-or-own-tenant route: a foreign tenant's data is 404."""


_BODIES: dict[str, type[BaseModel]] = {}
"""Request-body models of routes that read their body themselves (to judge it in vbill's
words), added to components/schemas by `_document`."""


def json_body(*models: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` for a route that parses its JSON body itself: documents `models` (one
    of them, when several shapes are accepted)."""
    refs = []
    for model in models:
        _BODIES[model.__name__] = model
        refs.append({"$ref": f"#/components/schemas/{model.__name__}"})
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's request validation in vbill's shape: the first problem, naming its field."""
    first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid"}
    loc = [str(p) for p in first.get("loc", ())]
    if len(loc) > 1 and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    field = ".".join(loc) or "body"
    return JSONResponse(
        status_code=422, content={"detail": {"field": field, "message": str(first.get("msg"))}}
    )


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> Any:
    """Move every nested `$defs` into components/schemas and point `$ref`s there, so schemas
    given whole (`openapi_extra`, `model_json_schema()`) resolve in the OpenAPI document."""
    if isinstance(node, list):
        return [_hoist_defs(v, schemas) for v in node]
    if not isinstance(node, dict):
        return node
    for name, sub in node.pop("$defs", {}).items():
        schemas.setdefault(name, _hoist_defs(sub, schemas))
    out = {k: _hoist_defs(v, schemas) for k, v in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
    return out


def _document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, model in _BODIES.items():
        schemas.setdefault(name, model.model_json_schema(ref_template="#/$defs/{model}"))
    doc["paths"] = _hoist_defs(doc["paths"], schemas)
    for name in list(schemas):
        schemas[name] = _hoist_defs(schemas[name], schemas)
    error_ref = {"$ref": "#/components/schemas/Error"}
    schemas.setdefault(
        "Error", Error.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    schemas.setdefault("FieldError", FieldError.model_json_schema())
    for ops in doc["paths"].values():
        for op in ops.values():
            answer = op.get("responses", {}).get("422")
            if answer is not None:  # FastAPI's default 422 model is not what we send
                if answer.get("description") == "Validation Error":  # FastAPI's own words
                    answer["description"] = REASONS[422]
                answer["content"] = {"application/json": {"schema": error_ref}}
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return _exact_bounds(doc)


def _exact_bounds(node: Any) -> Any:
    """Integer bounds as integers: FastAPI's OpenAPI models hold `maximum` as a float, which
    turns 2^64 − 1 (every u64 field's `le`) into 2^64; no field accepts 2^64, so that float is
    the u64 bound, written exactly (an `exclusiveMaximum` of 2^64 stays 2^64)."""
    if isinstance(node, list):
        return [_exact_bounds(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _exact_bounds(v) for k, v in node.items()}
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        value = out.get(key)
        if isinstance(value, float) and value.is_integer():
            out[key] = 2**64 - 1 if key == "maximum" and value == 2.0**64 else int(value)
    return out


def install_docs(app: FastAPI) -> None:
    """Error shape, OpenAPI document and offline `/docs` + `/redoc` for `app` (created with
    `docs_url=None, redoc_url=None`)."""
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
