"""A real PostgreSQL server for the tests, started from the system's `initdb`/`pg_ctl` in a
temporary directory on a free loopback port, once per session, and a fresh database per test.

As root the server runs as the `postgres` user (PostgreSQL refuses to run as root), in a
directory that user owns; its unix socket lives in that directory too, never in /var/run.
Without the binaries the tests that need it are skipped with the reason, except under CI=true,
where a missing server is a failure (CI must exercise the PostgreSQL backend).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from vbill.chain.anvil import free_port

_counter = itertools.count()


def pg_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory that has initdb and pg_ctl."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for bin_dir in reversed(found):
        if (bin_dir / "pg_ctl").exists():
            return bin_dir
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


@dataclass
class PgServer:
    """One running cluster; `stop()` shuts it down and removes its directory."""

    bin_dir: Path
    root: Path
    port: int
    user: str
    as_postgres: bool
    _dbs: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, check=False)

    def start(self) -> None:
        init = self._run(
            "initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
            "--no-sync", "--locale=C",
        )  # fmt: skip
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root}"
            " -c fsync=off -c max_connections=200 -c shared_buffers=32MB"
        )
        started = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", opts,
            "-w", "-t", "120", "start",
        )  # fmt: skip
        if started.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()}\n{log}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        import psycopg

        name = f"vbill_test_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._dbs.append(name)
        return self.url(name)


def start_server() -> PgServer:
    """Start a cluster, or skip (fail under CI=true) when PostgreSQL is not installed."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must run the PostgreSQL backend tests")
        pytest.skip(reason)
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="vbill-pg-"))
    if as_postgres:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    server = PgServer(bin_dir, root, free_port(), "vbill", as_postgres)
    try:
        server.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


_server: PgServer | None = None


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[PgServer]:
    """The session's one PostgreSQL server (shared by every module that imports this
    fixture), stopped when the session ends."""
    global _server
    if _server is None:
        _server = start_server()

        def stop() -> None:
            global _server
            if _server is not None:
                _server.stop()
                _server = None

        request.session.config.add_cleanup(stop)
    yield _server


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's server."""
    return pg_server.new_database()
