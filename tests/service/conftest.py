"""The service stage's fixtures: a live service with one local proving worker (SQLite and
PostgreSQL), shared by the ingestion tests of both bindings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import needs_build
from support.http_server import SECRET, serve
from vbill.bundle.keys import Attester
from vbill.service import Settings, create_app


@pytest.fixture(params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Attester]]:
    """A service with one local proving worker, on a SQLite file or a fresh PostgreSQL db."""
    needs_build()
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    attester = Attester.new(tmp_path / "attester.key")
    settings = Settings(home=tmp_path, attest_secret=SECRET, prover_workers=1, database_url=url)
    with serve(create_app(settings)) as base:
        yield base, attester
