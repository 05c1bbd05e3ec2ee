"""`vbill serve` refusals and `vbill accounts` through click's CliRunner, on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from vbill.cli.main import main
from vbill.encode.encoding import hash_string
from vbill.ledger.store import Store
from vbill.zk.poseidon import poseidon


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("VBILL_HOME", str(tmp_path))
    monkeypatch.delenv("VDI_ATTEST_SECRET", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return CliRunner()


def test_serve_refuses_without_a_secret_with_exit_3(runner: CliRunner) -> None:
    result = runner.invoke(main, ["serve", "--port", "1"])
    assert result.exit_code == 3
    assert "VDI_ATTEST_SECRET" in result.output


def test_accounts_add_twice_is_refused(runner: CliRunner) -> None:
    assert runner.invoke(main, ["accounts", "add", "acme"]).exit_code == 0
    again = runner.invoke(main, ["accounts", "add", "acme"])
    assert again.exit_code == 2 and "already exists" in again.output


def test_accounts_show_and_limits_of_unknown_tenant_are_input_errors(runner: CliRunner) -> None:
    assert runner.invoke(main, ["accounts", "show", "nobody"]).exit_code == 2
    assert runner.invoke(main, ["accounts", "limits", "nobody", "--daily", "1"]).exit_code == 2
    assert runner.invoke(main, ["accounts", "add", " "]).exit_code == 2


def test_accounts_add_creates_salt_and_tenant_key(runner: CliRunner, tmp_path: Path) -> None:
    out = runner.invoke(main, ["accounts", "add", "acme", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    salt, key = int(data["account_salt"]), int(data["tenant_key"])
    assert key == poseidon([hash_string("acme"), salt])
    stored = Store(tmp_path / "vbill.sqlite3").tenant("acme")
    assert stored is not None and (stored.account_salt, stored.tenant_key) == (salt, key)
    other = json.loads(runner.invoke(main, ["accounts", "add", "globex", "--json"]).output)
    assert other["account_salt"] != data["account_salt"]
    lim = runner.invoke(
        main, ["accounts", "limits", "acme", "--per-request", "5", "--daily", "9", "--json"]
    )
    assert lim.exit_code == 0
    shown = json.loads(runner.invoke(main, ["accounts", "show", "acme", "--json"]).output)
    assert (shown["per_request_micros"], shown["daily_micros"]) == (5, 9)
    assert shown["total_wei"] == "0" and shown["onchain_status"] == "unbound"
