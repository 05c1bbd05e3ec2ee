"""The service as a process: `vbill serve` (uvicorn) in a subprocess on a loopback port, the
CLI as `vbill` subprocesses, and the app's endpoint table.

A crash under test then shows as what it is (a dead process, a signal exit code), never as a
dead test runner.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.routing import Mount
from vbill.bundle.keys import Attester
from vbill.chain.anvil import free_port

from support import needs_build
from support.http_server import AUTH, SECRET

__all__ = ["AUTH", "SECRET", "Served", "counts", "endpoints", "routes", "start_service", "vbill"]

VBILL = [sys.executable, "-m", "vbill"]


class Served:
    """`vbill serve` in its own process group on a free loopback port, no chain."""

    def __init__(
        self, home: Path, *args: str, env: dict[str, str] | None = None, log: str = "service.log"
    ) -> None:
        """`args`: more `vbill serve` options; `env`: more environment (DATABASE_URL)."""
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / log
        self._probe = httpx.Client(timeout=2)  # one client: building one costs ~0.1 s (TLS setup)
        env = {**os.environ, "VBILL_HOME": str(home), "VDI_ATTEST_SECRET": SECRET, **(env or {})}
        cmd = [*VBILL, "serve", "--port", str(self.port), "--workers", "1", *args]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        while not self._healthy():
            pass

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"service exited: {self.log.read_text()[-3000:]}")
        try:
            return self._probe.get(self.url + "/health").status_code == 200
        except httpx.HTTPError:
            return False

    def alive(self) -> bool:
        """The process still runs and answers."""
        return self.proc.poll() is None and self._healthy()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)

    def stop(self) -> None:
        self._probe.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=60)


def start_service(home: Path) -> Served:
    needs_build()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "attester.key").exists():
        Attester.new(home / "attester.key")
    return Served(home)


def vbill(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in its own process (a crash is an exit code, not a dead test runner)."""
    return subprocess.run(
        [*VBILL, *args],
        env={**os.environ, "VBILL_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def counts(http: httpx.Client) -> dict[str, int]:
    return http.get("/api/vdi/status", headers=AUTH).json()["counts"]  # with tenants


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app documents in its OpenAPI schema."""
    return {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


def endpoints(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, documented or not (docs and their assets, the
    verifier page), HEAD
    left out (Starlette derives it from GET). Walks included routers too (FastAPI ≥ 0.165 keeps
    them as one route each instead of copying their routes into the app)."""

    def walk(items: Iterable[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for route in items:
            included = getattr(route, "original_router", None)
            if included is not None:
                yield from walk(included.routes, prefix + route.include_context.prefix)
            elif isinstance(route, Mount):  # static files: any path below it
                yield "GET", prefix + route.path + "/{path}"
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD":
                    yield method, prefix + route.path

    return sorted(set(walk(app.routes, "")))
