"""A webhook receiver on a loopback port (http.server in a thread) for the webhook tests: it
verifies every delivery with the Standard Webhooks helper the docs show customers, records what
it got, and can be told to fail its next n requests. And the events documented in
docs/webhooks.md, to hold them to what the code writes."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from vbill.chain.anvil import free_port


class Receiver:
    """POSTs to http://127.0.0.1:<port>/hook. `secret` (set once known) verifies each one;
    `events`: the verified bodies taken (2xx), in arrival order; `refused`: how many got 500."""

    def __init__(self, port: int | None = None, fail_first: int = 0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.secret: str | None = None
        self.fail_first = fail_first
        self.refused = 0
        self.events: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.bad: list[str] = []  # deliveries that did not verify
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                status = receiver._take(body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _take(self, body: bytes, headers: dict[str, str]) -> int:
        with self._cond:
            if self.refused < self.fail_first:
                self.refused += 1
                self._cond.notify_all()
                return 500
            try:
                assert self.secret is not None, "no secret yet"
                event = Webhook(self.secret).verify(body, headers)  # the documented helper
            except (WebhookVerificationError, AssertionError) as exc:
                self.bad.append(str(exc))
                self._cond.notify_all()
                return 400
            self.events.append(event)
            self.ids.append(headers.get("webhook-id") or headers["Webhook-Id"])
            self._cond.notify_all()
            return 204

    def wait(self, done: Callable[[Receiver], bool], timeout: float = 120) -> None:
        """Block until `done(self)` (a generous bound only against a hang)."""
        with self._cond:
            assert self._cond.wait_for(lambda: done(self), timeout), (self.events, self.bad)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def documented() -> dict[str, dict[str, Any]]:
    """Each event type's example in docs/webhooks.md: its `data`."""
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)
    examples = [json.loads(b) for b in blocks if '"type"' in b]
    return {e["type"]: e["data"] for e in examples}
