"""ASGI guard in front of every endpoint: bounded request bodies, bounded JSON nesting.

The body is read here, up to `max_bytes`, before any route sees it, and a body nested deeper
than `jsonio.MAX_DEPTH` is refused (422) before any JSON parser (ours or FastAPI's) recurses
into it; the route then receives the buffered body unchanged.

A body over the limit is never buffered: it gets a 413. Answering while the client is still
uploading makes the server close a socket with unread data, and the kernel then sends a reset
that the client sees instead of the 413 (the reason nginx and Apache "linger" on close). So a
body up to `DRAIN_BYTES` is read to its end and discarded, for at most `DRAIN_SECONDS`, before
the 413 goes out; an announced Content-Length above that is refused at once, nothing read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio

from vbill import jsonio
from vbill.errors import InputError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
"""Largest accepted request body; a verify request is about 10 KB."""

DRAIN_BYTES = 16 * MAX_BODY_BYTES
"""How much of a refused body is read and discarded so that the client sees the 413."""

DRAIN_SECONDS = 10.0
"""How long a refused upload may take to finish before the connection is closed anyway."""


class _TooLarge(Exception):
    def __init__(self, more_body: bool) -> None:
        self.more_body = more_body  # is some of the body still unread?


class BodyGuard:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        repeated = _repeated_parameter(scope.get("query_string", b""))
        if repeated is not None:  # which one counts would be a guess: every one is scalar
            await _refuse(send, 422, {"field": repeated, "message": "given more than once"})
            return
        too_large = f"request body larger than {self.max_bytes} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        announced = int(length) if length is not None and length.isdigit() else None
        if length is not None and (announced is None or announced > self.max_bytes):
            if announced is not None and announced <= DRAIN_BYTES:
                await _drain(receive, DRAIN_BYTES)
            await _refuse(send, 413, too_large)
            return
        try:
            body = await self._read(receive)
        except _TooLarge as exc:
            if exc.more_body:
                await _drain(receive, DRAIN_BYTES - self.max_bytes)
            await _refuse(send, 413, too_large)
            return
        if body:
            try:
                jsonio.check_depth(body.decode("utf-8", "replace"), "body")
            except InputError as exc:
                await _refuse(send, 422, {"field": exc.field, "message": exc.message})
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: disconnect notices, as before

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the route sees an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge(message.get("more_body", False))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _drain(receive: Receive, limit: int) -> None:
    """Read and discard what is left of a refused body, up to `limit` bytes and
    `DRAIN_SECONDS`: a client that finished its upload reads the answer instead of a reset."""
    size = 0
    with anyio.move_on_after(DRAIN_SECONDS):
        while size <= limit:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            size += len(message.get("body", b""))


def _repeated_parameter(query: bytes) -> str | None:
    """The first query parameter given twice (`?first=1&first=2`), or None."""
    seen: set[str] = set()
    for key, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key in seen:
            return key
        seen.add(key)
    return None


async def _refuse(send: Send, status: int, detail: Any) -> None:
    """Answer without reading further; `connection: close`, as the rest of the body (if any)
    is never read."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RelativeRedirects:
    """Starlette's trailing-slash redirect (`/x/` → `/x`) builds an absolute `Location` from the
    request's `Host` header, which the client chooses: behind a cache or a proxy that trusts
    it, the redirect points at another host. A relative `Location` (RFC 9110 §10.2.2) always
    points at this service; leading slashes are collapsed so `//host` cannot become a
    scheme-relative URL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def relative(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message["headers"] = [
                    (k, _relative(v) if k.lower() == b"location" else v)
                    for k, v in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, relative)


def _relative(location: bytes) -> bytes:
    parts = urlsplit(location.decode("latin-1"))
    path = "/" + parts.path.lstrip("/")
    return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")
