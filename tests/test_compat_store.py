"""A store written by commit 4295cff (the release before issue 23's refactor) upgrades in place
and keeps every bundle verifying.

tests/data/compat/4295cff/ was made by that commit's own code (make_4295cff_store.py there says
how): seven bundles of one tenant, binding v1 and v2, digest schemes eip712 (`vbill attest`)
and eip712-v2 (POST /attest), a metered window of three events, a settled charge, a deposit,
limits and an API token. Today's Store opens a copy so its migrations run on it; then the
bundles it held, the bundles as exported then and the window's statement must verify with
today's `vbill verify` / `vbill statement`, and today's service must attest the window's next
event from the old head.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import needs_build
from http_server import AppClient, over_socket
from vbill.cli.main import main as cli
from vbill.ledger import translog
from vbill.ledger.store import MIGRATIONS, Store
from vbill.service import Settings, create_app

FIXTURE = Path(__file__).parent / "data" / "compat" / "4295cff"
MANIFEST: dict[str, Any] = json.loads((FIXTURE / "manifest.json").read_text())
TENANT = MANIFEST["tenant"]["tenant_id"]
WINDOW = MANIFEST["window"]["billing_window_id"]
EVENTS = {e["event_id"]: e for e in MANIFEST["events"]}
OLD_STATEMENT: dict[str, Any] = json.loads((FIXTURE / "statement.json").read_text())


def old_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the old $VBILL_HOME (attester key + SQLite file), never the committed
    one; each module fixture takes its own, so no test sees another's writes."""
    needs_build()
    home = tmp_path_factory.mktemp("compat") / "home"
    shutil.copytree(FIXTURE / "dev_only_home", home)
    return home


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return old_home(tmp_path_factory)


@pytest.fixture(scope="module")
def upgraded(home: Path) -> Iterator[Store]:
    """Today's Store on the old file: the migrations since 4295cff run here, in place."""
    store = Store(home / "vbill.sqlite3")
    try:
        yield store
    finally:
        store.close()


def cli_json(home: Path, *args: str) -> tuple[int, Any]:
    """`vbill ARGS --json` as a user with the old $VBILL_HOME runs it (default trust: the
    build's vkeys and the home's attester key); its exit code and parsed output."""
    result = CliRunner().invoke(cli, [*args, "--json"], env={"VBILL_HOME": str(home)})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def assert_all_valid(results: dict[str, Any]) -> None:
    for name, result in results.items():
        verdicts = {
            key: (result[key]["valid"], result[key].get("reason"))
            for key in ("verification", "billing_check", "incircuit_binding_verification")
        }
        assert all(ok for ok, _ in verdicts.values()), (name, verdicts)
        assert result["valid"] is True, name


def test_the_fixture_is_the_old_release_s_own(upgraded: Store) -> None:
    """What the rest relies on: the file was 4295cff's at schema 6 and today has more."""
    assert MANIFEST["made_by_commit"].startswith("4295cff")
    assert MANIFEST["schema_version"] == 6
    assert len(EVENTS) == 7
    assert {e["scheme"] for e in EVENTS.values()} == {"eip712", "eip712-v2"}
    assert sorted(e["window_seq"] for e in EVENTS.values() if e["window_seq"]) == [1, 2, 3]


def test_the_migrations_run_in_place_to_today_s_schema(upgraded: Store) -> None:
    assert upgraded.schema_version() == len(MIGRATIONS)
    assert len(MIGRATIONS) >= MANIFEST["schema_version"]


def test_the_old_rows_survive_the_upgrade_unchanged(upgraded: Store) -> None:
    stored = {s.event_id: s for s in upgraded.bundles(TENANT)}
    assert set(stored) == set(EVENTS)
    for event_id, s in stored.items():
        exported = json.loads((FIXTURE / "bundles" / f"{event_id}.json").read_text())
        assert s.bundle == exported, event_id
        assert s.settlement_status == EVENTS[event_id]["settlement_status"], event_id
        assert s.proof_status == "proven", event_id
        assert s.leaf_index == EVENTS[event_id]["leaf_index"], event_id
    settled = MANIFEST["settled"]
    assert stored[settled["event_id"]].settlement == settled["usage_receipt"]
    tenant = upgraded.tenant(TENANT)
    assert tenant is not None and str(tenant.tenant_key) == MANIFEST["tenant"]["tenant_key"]
    limits = upgraded.limits(TENANT)
    assert (limits.per_request_micros, limits.daily_micros) == tuple(
        MANIFEST["tenant"]["limits"].values()
    )
    token_sha256 = hashlib.sha256(MANIFEST["tenant"]["token"].encode()).hexdigest()
    assert upgraded.active_token(token_sha256) == (TENANT, token_sha256)
    assert upgraded.head().tree_size == MANIFEST["log_size"]


def test_every_bundle_the_store_held_verifies_with_today_s_vbill_verify(
    home: Path, upgraded: Store, tmp_path: Path
) -> None:
    files = []
    for s in upgraded.bundles(TENANT):
        files.append(tmp_path / f"{s.event_id}.json")
        files[-1].write_text(json.dumps(s.bundle))
    code, results = cli_json(home, "verify", *map(str, files))
    assert set(results) == {str(f) for f in files}
    assert_all_valid(results)
    assert code == 0


def test_the_bundles_exported_then_verify_with_today_s_vbill_verify(
    home: Path, upgraded: Store
) -> None:
    files = sorted((FIXTURE / "bundles").glob("*.json"))
    assert len(files) == len(EVENTS)
    code, results = cli_json(home, "verify", *map(str, files))
    assert_all_valid(results)
    assert code == 0


def test_the_old_statement_document_verifies_offline(home: Path) -> None:
    code, st = cli_json(home, "statement", str(FIXTURE / "statement.json"))
    assert (st["valid"], st["problems"]) == (True, [])
    assert (st["events"], st["total_micros"]) == (3, OLD_STATEMENT["total_micros"])
    assert code == 0


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, Any], AppClient, Path]]:
    """Today's service on its own copy of the old home (its start-up runs the migrations)
    attests the window's fourth event, proved inline: the bundle, a client, the home."""
    home = old_home(tmp_path_factory)
    body = json.loads((FIXTURE / "bundles" / "http-inf-3.json").read_text())
    request = {k: body[k] for k in ("billing_version", "profileId", "meter_event")}
    request["tariff_snapshot"] = body["tariff_snapshot"]
    request["meter_event"] = {
        **body["meter_event"],
        "event_id": "today-inf-4",
        "event_timestamp": "2026-11-20T12:00:00.000Z",
        "usage": {"input_tokens": 300, "output_tokens": 700},
    }
    secret = MANIFEST["attest_secret"]
    settings = Settings(home=home, attest_secret=secret, prover_workers=1)
    with over_socket(create_app(settings)) as http:
        answer = http.post(
            "/api/vdi/billing/attest", json=request, headers={"X-VDI-Attest-Secret": secret}
        )
        assert answer.status_code == 200, answer.text
        yield answer.json(), http, home


def test_the_service_continues_the_window_from_the_old_head(
    served: tuple[dict[str, Any], AppClient, Path], tmp_path: Path
) -> None:
    bundle, http, home = served
    assert http.app.state.svc.store.schema_version() == len(MIGRATIONS)
    old_head = json.loads((FIXTURE / "bundles" / "http-inf-3.json").read_text())
    window, before = bundle["billing"]["window"], old_head["billing"]["window"]
    assert window["seq"] == before["seq"] + 1 == 4
    assert window["before"] == before["after"]
    assert bundle["receipt"]["leaf_index"] == MANIFEST["log_size"]
    path = tmp_path / "today-inf-4.json"
    path.write_text(json.dumps(bundle))
    code, result = cli_json(home, "verify", str(path))
    assert_all_valid({str(path): result})
    assert code == 0
    code, st = cli_json(home, "statement", "--store", TENANT, WINDOW)
    assert (st["valid"], st["problems"], st["events"]) == (True, [], 4)
    charge = int(bundle["billing"]["expected_charge_micros"])
    assert int(st["total_micros"]) == int(OLD_STATEMENT["total_micros"]) + charge
    assert code == 0


def test_the_log_extends_the_old_signed_head(
    served: tuple[dict[str, Any], AppClient, Path],
) -> None:
    _, http, _ = served
    size = MANIFEST["log_size"]
    old = translog.SignedTreeHead.from_dict(
        json.loads((FIXTURE / "bundles" / "http-inf-3.json").read_text())["receipt"]["tree_head"]
    )
    answer = http.get("/api/vdi/billing/transparency/consistency", params={"first": size})
    assert answer.status_code == 200, answer.text
    proof = answer.json()
    assert proof["first_head"] == old.to_dict()
    new = translog.SignedTreeHead.from_dict(proof["second_head"])
    assert new.tree_size == size + 1
    hops = [bytes.fromhex(p.removeprefix("0x")) for p in proof["proof"]]
    assert translog.verify_consistency(
        size, size + 1, hops, old.head().root_hash, new.head().root_hash
    )


def test_the_old_token_still_reads_the_tenant_s_account(
    served: tuple[dict[str, Any], AppClient, Path],
) -> None:
    _, http, _ = served
    token = MANIFEST["tenant"]["token"]
    answer = http.get(
        f"/api/vdi/billing/accounts/{TENANT}", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["tenant_id"] == TENANT
    limits = answer.json()["limits"]
    assert {k: limits[k] for k in MANIFEST["tenant"]["limits"]} == MANIFEST["tenant"]["limits"]
    forged = "vbt_" + "A" * 43  # well formed, never issued: the token check still discriminates
    refused = http.get(
        f"/api/vdi/billing/accounts/{TENANT}", headers={"Authorization": f"Bearer {forged}"}
    )
    assert refused.status_code == 401, refused.text
