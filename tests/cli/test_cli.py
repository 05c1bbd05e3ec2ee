"""The `vbill` bundle verbs through click's CliRunner, with a real $VBILL_HOME per test."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from vbill.cli.main import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VBILL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


# -- negative cases first --------------------------------------------------------------------


def test_attest_without_a_key_is_an_environment_error(home, tmp_path, pilot_request) -> None:
    code, _, err = run("attest", str(write(tmp_path / "r.json", pilot_request)))
    assert code == 3
    assert "vbill keys new" in err


def test_bad_request_names_the_field_and_stores_nothing(home, tmp_path, request_copy) -> None:
    assert run("keys", "new")[0] == 0
    request_copy["meter_event"]["event_timestamp"] = "2026-05-29T12:00:00.000"
    code, _, err = run(
        "attest", str(write(tmp_path / "r.json", request_copy)), "-o", str(tmp_path / "b.json")
    )
    assert code == 2
    assert "meter_event.event_timestamp" in err
    assert not (tmp_path / "b.json").exists()
    assert not (home / "vbill.sqlite3").exists() or _bundle_count(home) == 0


def _bundle_count(home: Path) -> int:
    import sqlite3

    with sqlite3.connect(home / "vbill.sqlite3") as db:
        return db.execute("SELECT COUNT(*) FROM bundles").fetchone()[0]


def test_keys_new_refuses_to_overwrite(home) -> None:
    assert run("keys", "new")[0] == 0
    code, _, err = run("keys", "new")
    assert code == 2 and "refusing" in err


def test_verify_of_unreadable_file_is_a_usage_error_not_a_crash(home, tmp_path) -> None:
    """A typo or a broken download must never look like a forgery: exit 2, not INVALID."""
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = run("verify", "--json", str(bad))
    assert code == 2
    assert "cannot read" in out + err


# -- the story of issue 4 --------------------------------------------------------------------


def test_attest_verify_and_tamper(home, tmp_path, pilot_request) -> None:
    code, out, _ = run("keys", "new", "--json")
    assert code == 0
    key_file = home / "attester.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() not in out  # the key is never printed

    request = write(tmp_path / "r.json", pilot_request)
    bundle_path = tmp_path / "bundle.json"
    code, out, err = run("attest", str(request), "-o", str(bundle_path))
    assert code == 0, err
    bundle = json.loads(bundle_path.read_text())
    assert bundle["billing"]["expected_charge_micros"] == 221040
    assert bundle["receipt"]["leaf_index"] == 0

    code, out, _ = run("verify", "--json", str(bundle_path))
    assert code == 0
    verdicts = json.loads(out)
    assert verdicts["verification"]["valid"] and verdicts["billing_check"]["valid"]
    assert verdicts["incircuit_binding_verification"]["valid"]

    bundle["tariff_snapshot"]["unit_price_micros"] = 121
    tampered = write(tmp_path / "tampered.json", bundle)
    code, out, _ = run("verify", "--json", str(tampered))
    assert code == 1
    verdicts = json.loads(out)
    assert verdicts["incircuit_binding_verification"]["valid"] is False
    assert verdicts["billing_check"]["valid"] is False

    # Same event, same payload: the stored bundle comes back, not a new proof.
    again = tmp_path / "again.json"
    assert run("attest", str(request), "-o", str(again))[0] == 0
    assert json.loads(again.read_text()) == json.loads(bundle_path.read_text())

    # Same event, different payload: refused, nothing written.
    changed = json.loads(request.read_text())
    changed["meter_event"]["usage_units"] = 1843
    code, _, err = run(
        "attest", str(write(tmp_path / "c.json", changed)), "-o", str(tmp_path / "c_bundle.json")
    )
    assert code == 2 and "different payload" in err
    assert not (tmp_path / "c_bundle.json").exists()


def test_setup_reports_the_cached_dev_manifest(home) -> None:
    code, out, _ = run("setup", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["ceremony"] == "dev-insecure"
    assert summary["binding_version"] == "bn128-poseidon8-v1"
    assert summary["constraints"] == 2721


def test_default_trust_fails_closed_without_a_manifest_record(tmp_path, monkeypatch) -> None:
    from vbill import paths
    from vbill.verify import trust

    vkey = tmp_path / "vkey.json"
    vkey.write_text(paths.VKEY.read_text())
    for manifest in (None, {}, {"artifacts": {}}, {"artifacts": {"vkey": {"sha256": "00"}}}):
        target = tmp_path / "manifest.json"
        if manifest is None:
            target.unlink(missing_ok=True)
        else:
            target.write_text(json.dumps(manifest))
        monkeypatch.setattr(paths, "MANIFEST", target)
        assert not trust._matches_manifest(vkey, "vkey"), manifest
    good = {"artifacts": {"vkey": {"sha256": trust.file_sha256(vkey)}}}
    (tmp_path / "manifest.json").write_text(json.dumps(good))
    assert trust._matches_manifest(vkey, "vkey")
