"""A store written by commit 4295cff (the release before issue 23's refactor) upgrades in place
and keeps every bundle verifying; so does the same store as the last release before Alembic
left it (schema 9), which is stamped in place. Both end with a new database's schema exactly.

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
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import needs_build
from support.http_server import AppClient, over_socket
from support.pg_server import PgServer
from support.schema import postgres_schema, sqlite_schema
from vbill.cli.main import main as cli
from vbill.ledger import legacy, schema, translog
from vbill.ledger.store import Store
from vbill.service import Settings, create_app

FIXTURE = Path(__file__).parents[1] / "data" / "compat" / "4295cff"
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
    key = home / "attester.key"  # the old home's key; kept in the manifest (git keeps no 0600)
    key.write_text(MANIFEST["attester_key_dev_only"] + "\n")
    key.chmod(0o600)
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


def cli_json(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    """`vbill ARGS --json` as a user with the old $VBILL_HOME runs it (default trust: the
    build's vkeys and the home's attester key); its exit code and parsed output."""
    env = {"VBILL_HOME": str(home), "DATABASE_URL": "", **(env or {})}
    result = CliRunner().invoke(cli, [*args, "--json"], env=env)
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


def test_the_migrations_run_in_place_to_today_s_schema(
    home: Path, upgraded: Store, tmp_path: Path
) -> None:
    """Legacy steps 7-9, then Alembic: the file ends with a new database's schema exactly."""
    assert upgraded.schema_version() == schema.HEAD
    assert MANIFEST["schema_version"] < len(legacy.MIGRATIONS)
    Store(tmp_path / "new.sqlite3").close()
    assert sqlite_schema(home / "vbill.sqlite3") == sqlite_schema(tmp_path / "new.sqlite3")


def assert_old_rows(store: Store) -> None:
    """Every row the old store held, as it held it: bundles (byte for byte as exported),
    their states, the settlement receipt, the tenant's key, limits and token, the log."""
    stored = {s.event_id: s for s in store.bundles(TENANT)}
    assert set(stored) == set(EVENTS)
    for event_id, s in stored.items():
        exported = json.loads((FIXTURE / "bundles" / f"{event_id}.json").read_text())
        assert s.bundle == exported, event_id
        assert s.settlement_status == EVENTS[event_id]["settlement_status"], event_id
        assert s.proof_status == "proven", event_id
        assert s.leaf_index == EVENTS[event_id]["leaf_index"], event_id
    settled = MANIFEST["settled"]
    assert stored[settled["event_id"]].settlement == settled["usage_receipt"]
    tenant = store.tenant(TENANT)
    assert tenant is not None and str(tenant.tenant_key) == MANIFEST["tenant"]["tenant_key"]
    limits = store.limits(TENANT)
    assert (limits.per_request_micros, limits.daily_micros) == tuple(
        MANIFEST["tenant"]["limits"].values()
    )
    token_sha256 = hashlib.sha256(MANIFEST["tenant"]["token"].encode()).hexdigest()
    assert store.active_token(token_sha256) == (TENANT, token_sha256)
    assert store.head().tree_size == MANIFEST["log_size"]


def test_the_old_rows_survive_the_upgrade_unchanged(upgraded: Store) -> None:
    assert_old_rows(upgraded)


def assert_stored_bundles_verify(home: Path, store: Store, tmp_path: Path) -> None:
    """Every bundle the store holds, exported to a file, passes today's `vbill verify`."""
    files = []
    for s in store.bundles(TENANT):
        files.append(tmp_path / f"{s.event_id}.json")
        files[-1].write_text(json.dumps(s.bundle))
    code, results = cli_json(home, "verify", *map(str, files))
    assert set(results) == {str(f) for f in files} and len(files) == len(EVENTS)
    assert_all_valid(results)
    assert code == 0


def test_every_bundle_the_store_held_verifies_with_today_s_vbill_verify(
    home: Path, upgraded: Store, tmp_path: Path
) -> None:
    assert_stored_bundles_verify(home, upgraded, tmp_path)


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
    assert http.app.state.svc.store.schema_version() == schema.HEAD
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


# --- PostgreSQL: the same store replayed onto 4295cff's PostgreSQL schema ---


def replay_on_postgres(url: str, sqlite_file: Path) -> None:
    """4295cff's store rebuilt on PostgreSQL as a restore would: that commit's DDL
    (pg_schema.json, what its Store ran on a new database), the SQLite file's rows table by
    table (foreign keys held off during the load, like pg_restore --disable-triggers), and each
    identity sequence moved past the copied ids."""
    import psycopg

    schema = json.loads((FIXTURE / "pg_schema.json").read_text())
    assert schema["made_by_commit"] == MANIFEST["made_by_commit"]
    src = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
    tables = [r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    with psycopg.connect(url) as pg:
        pg.execute(schema["schema_version_table"])
        for script in schema["migrations"]:
            for statement in script:
                pg.execute(statement)
        pg.execute("SET session_replication_role = replica")
        for table in tables:
            cur = src.execute(f'SELECT * FROM "{table}"')
            columns = ", ".join(f'"{d[0]}"' for d in cur.description)
            marks = ", ".join(["%s"] * len(cur.description))
            rows = cur.fetchall()
            if rows:
                pg.cursor().executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', rows)
        pg.execute("SET session_replication_role = DEFAULT")
        identity = pg.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE is_identity = 'YES' AND column_name = 'id' AND table_schema = 'public'"
        ).fetchall()
        for (table,) in identity:
            pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) "
                f'FROM "{table}" HAVING max(id) IS NOT NULL'
            )
    src.close()


@pytest.fixture(scope="module")
def pg_upgraded(
    pg_server: PgServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Store, str]]:
    url = pg_server.new_database()
    # from a copy: even a read-only SQLite connection leaves -shm/-wal files beside a WAL file
    replay_on_postgres(url, old_home(tmp_path_factory) / "vbill.sqlite3")
    store = Store(url)
    try:
        yield store, url
    finally:
        store.close()


def test_postgres_the_replayed_old_store_upgrades_in_place(
    pg_upgraded: tuple[Store, str], pg_server: PgServer
) -> None:
    store, url = pg_upgraded
    assert store.schema_version() == schema.HEAD
    assert_old_rows(store)
    fresh = pg_server.new_database()
    Store(fresh).close()
    assert postgres_schema(url) == postgres_schema(fresh)


def test_postgres_the_window_s_statement_verifies_and_the_service_continues_it(
    pg_upgraded: tuple[Store, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, url = pg_upgraded
    home = old_home(tmp_path_factory)  # the attester key; the store is the database
    code, st = cli_json(home, "statement", "--store", TENANT, WINDOW, env={"DATABASE_URL": url})
    assert (st["valid"], st["problems"], st["events"]) == (True, [], 3)
    assert st["total_micros"] == OLD_STATEMENT["total_micros"]
    assert code == 0
    body = json.loads((FIXTURE / "bundles" / "http-inf-3.json").read_text())
    request = {k: body[k] for k in ("billing_version", "profileId", "tariff_snapshot")}
    request["meter_event"] = {**body["meter_event"], "event_id": "today-inf-4-pg"}
    secret = MANIFEST["attest_secret"]
    settings = Settings(
        home=home, attest_secret=secret, database_url=url, prover_workers=1, local_provers=0
    )
    with over_socket(create_app(settings)) as http:  # signed and logged; no proof needed here
        answer = http.post(
            "/api/vdi/billing/attest",
            json=request,
            headers={"X-VDI-Attest-Secret": secret, "Prefer": "respond-async"},
        )
    assert answer.status_code == 202, answer.text
    window = answer.json()["billing"]["window"]
    assert (window["seq"], window["before"]) == (4, body["billing"]["window"]["after"])
    assert answer.json()["receipt"]["leaf_index"] == MANIFEST["log_size"]


# --- the release before Alembic (schema 9): the same store as it left it, stamped in place ---


def to_schema_9(execute: Any, *, postgres: bool) -> None:
    """What the last release before Alembic did on opening the old store: its migrations 7-9
    (vbill.ledger.legacy holds them as it ran them), recorded in schema_version."""
    legacy.upgrade(execute, postgres=postgres, current=MANIFEST["schema_version"])


def test_a_store_of_the_release_before_alembic_is_stamped_in_place(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    home = old_home(tmp_path_factory)
    path = home / "vbill.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    to_schema_9(conn.execute, postgres=False)
    conn.execute("COMMIT")
    conn.close()
    before = sqlite_schema(path)
    store = Store(path)
    try:
        assert store.schema_version() == schema.HEAD
        assert sqlite_schema(path) == before  # stamped: no table, column or index changed
        assert_old_rows(store)
        assert_stored_bundles_verify(home, store, tmp_path)
    finally:
        store.close()


def test_postgres_a_store_of_the_release_before_alembic_upgrades_in_place(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    import psycopg

    home = old_home(tmp_path_factory)
    url = pg_server.new_database()
    replay_on_postgres(url, home / "vbill.sqlite3")
    with psycopg.connect(url) as conn:
        to_schema_9(conn.execute, postgres=True)
    store = Store(url)
    try:
        assert store.schema_version() == schema.HEAD
        assert_old_rows(store)
        assert_stored_bundles_verify(home, store, tmp_path)
    finally:
        store.close()
    fresh = pg_server.new_database()
    Store(fresh).close()
    assert postgres_schema(url) == postgres_schema(fresh)
