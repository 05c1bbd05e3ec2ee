"""The service app on a real loopback socket (uvicorn in a thread), for tests that must see what
a client sees over HTTP: status codes, headers and bodies as they leave the server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from vbill.bundle.keys import Attester
from vbill.chain.anvil import free_port
from vbill.service import Settings, create_app

SECRET = "test-secret-0123456789abcdef"
AUTH = {"X-VDI-Attest-Secret": SECRET}
ATTEST = "/api/vdi/billing/attest"
VERIFY = "/api/vdi/billing/verify"


def chain_settings(home: Path, rpc_url: str, settlement: str, **more: Any) -> Settings:
    """A service on the local chain at `rpc_url`, settling through the contract at
    `settlement`, with one proving worker and the tests' secret; `more`: the test's own
    settings (intervals, confirmations, start block)."""
    return Settings(
        home=home,
        attest_secret=SECRET,
        prover_workers=1,
        network="local",
        rpc_url=rpc_url,
        settlement_address=settlement,
        **more,
    )


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` on 127.0.0.1:<free port> until the block ends; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    started = threading.Event()
    while not started.wait(0.05):
        if server.started:
            started.set()
        elif not thread.is_alive():
            raise RuntimeError("uvicorn exited before it started serving")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


class AppClient(httpx.Client):
    """An httpx client of one app served on a real socket; `app` reaches its state."""

    app: FastAPI


@contextmanager
def over_socket(app: FastAPI) -> Iterator[AppClient]:
    """`app` on a loopback socket (its lifespan run by uvicorn), and a client of it."""
    with serve(app) as url, AppClient(base_url=url, timeout=120) as client:
        client.app = app
        yield client


@contextmanager
def service(home: Path) -> Iterator[tuple[str, FastAPI]]:
    """A fresh service (own attester key and SQLite file under `home`, no chain) on a socket."""
    if not (home / "attester.key").exists():
        Attester.new(home / "attester.key")
    app = create_app(Settings(home=home, attest_secret=SECRET, prover_workers=1))
    with serve(app) as url:
        yield url, app
