"""Writes tests/data/compat/4295cff/: a store made by commit 4295cff's code (the release before
issue 23's refactor), which tests/ledger/test_compat_store.py opens with today's code.

It must run with THAT commit's `vbill` on the path, never today's (it refuses otherwise):

    git worktree add /work/wt/old-4295cff 4295cff
    cp -a build/. /work/wt/old-4295cff/build/        # the dev ceremony (vkeys unchanged since)
    ln -s "$PWD/node_modules" /work/wt/old-4295cff/node_modules
    VBILL_ROOT=/work/wt/old-4295cff PYTHONPATH=/work/wt/old-4295cff/orchestrator \\
        .venv/bin/python tests/data/compat/make_4295cff_store.py
    git worktree remove /work/wt/old-4295cff

What it holds, all for one tenant (`tenant_compat`) and made through 4295cff's own entry points:
- `vbill attest` (the CLI: proved first, signed with digest scheme v1): two USD linear bundles,
  one ETH linear bundle (settled: a usage receipt attached by `Store.mark_settled`, written
  here, not taken from a chain), and seq 1 and 2 of a metered window (binding v2, ETH);
- POST /api/vdi/billing/attest on the service (signed at ingestion with digest scheme v2, then
  proved): one USD linear bundle and seq 3 of the same window;
- a credited deposit, spending limits and an API token (its secret is in manifest.json: a test
  tenant's, dev only);
- `vbill statement --store` of the window, written as statement.json, and every bundle's JSON as
  the store held it, in bundles/;
- pg_schema.json: the statements 4295cff's Store runs on a new PostgreSQL database (its SQLite
  migrations through its own `db.pg_ddl`), one list per schema version. With the SQLite file's
  rows it rebuilds the same store on PostgreSQL (a replay, done by the test: the rows are
  those of the SQLite file, the DDL is 4295cff's). `--pg-schema` rewrites only this file.

The attester key is derived from a public phrase: DEV ONLY, it signs nothing but this fixture;
it is kept in manifest.json (attester_key_dev_only), not as dev_only_home/attester.key.
Regenerating changes every file (account salts, proofs and timestamps are fresh); the test reads
manifest.json and never pins a value that a regeneration would change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

COMMIT = "4295cff"
OUT = Path(__file__).resolve().parent / COMMIT
HOME = OUT / "dev_only_home"
TENANT = "tenant_compat"
WINDOW = "2026-11"
SECRET = "compat-dev-only-attest-secret-0123456789"
DEV_ONLY_KEY = hashlib.sha256(b"vbill compat fixture: DEV ONLY attester key, public").hexdigest()


def request(example: str, event_id: str, day: int, **usage: Any) -> dict[str, Any]:
    """4295cff's docs/examples/<example>.json as `event_id` of the tenant's window."""
    from vbill import paths

    body = json.loads((paths.ROOT / "docs" / "examples" / f"{example}.json").read_text())
    event = body["meter_event"]
    event.update(event_id=event_id, tenant_id=TENANT, billing_window_id=WINDOW, **usage)
    event["event_timestamp"] = f"2026-11-{day:02d}T12:00:00.000Z"
    return body


def old_commit() -> str:
    """The commit of the `vbill` imported, which must be 4295cff (exit otherwise)."""
    import vbill
    from vbill import paths

    root = Path(vbill.__file__).resolve().parents[2]
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not head.startswith(COMMIT) or paths.ROOT.resolve() != root:
        sys.exit(f"run with commit {COMMIT}'s vbill and VBILL_ROOT (got {head[:7]} at {root})")
    return head


def write_pg_schema(head: str) -> None:
    """What 4295cff's Store._migrate executes on an empty PostgreSQL database, in order."""
    from vbill.ledger import db
    from vbill.ledger.store import MIGRATIONS

    schema = {
        "made_by_commit": head,
        "schema_version_table": "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER NOT NULL)",
        "migrations": [
            [s.strip() for s in db.statements(db.pg_ddl(script))] for script in MIGRATIONS
        ],
    }
    (OUT / "pg_schema.json").write_text(json.dumps(schema, indent=1) + "\n")


def main() -> None:
    from vbill import paths

    head = old_commit()
    if sys.argv[1:] == ["--pg-schema"]:
        write_pg_schema(head)
        return
    shutil.rmtree(OUT, ignore_errors=True)
    HOME.mkdir(parents=True, mode=0o700)
    os.environ["VBILL_HOME"] = str(HOME)
    key_file = HOME / "attester.key"
    key_file.write_text(DEV_ONLY_KEY + "\n")
    key_file.chmod(0o600)

    from click.testing import CliRunner
    from starlette.testclient import TestClient
    from vbill.bindings import BINDING_V2, artefacts
    from vbill.bundle.keys import Attester
    from vbill.chain.records import wei_to_eth
    from vbill.cli.main import main as cli
    from vbill.ledger import tokens
    from vbill.ledger.store import MIGRATIONS, Limits, open_store
    from vbill.models import UsageReceipt
    from vbill.service import Settings, create_app
    from vbill.verify.trust import default_trust, file_sha256
    from vbill.verify.verify import verify_bundle

    attester = Attester.load()
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    # The tenant exists once it has a bundle; an ETH charge needs a credited deposit first, so
    # the first bundle is a USD one.
    work = Path(tempfile.mkdtemp(prefix="compat-"))
    first = work / "cli-usd-1.json"
    first.write_text(json.dumps(request("usd-linear", "cli-usd-1", 1, usage_units=1842)))
    run("attest", str(first), "-o", str(work / "cli-usd-1.bundle.json"), "--json")
    store = open_store(log_key=attester.account)
    store.record_deposit("0x" + "d0" * 32, 0, TENANT, 10**18, 1)  # 1 ETH, credited
    store.credit_confirmed(100)
    store.set_limits(TENANT, Limits(per_request_micros=2_000_000, daily_micros=50_000_000))
    token = tokens.issue(store, TENANT)
    store.close()

    cli_requests = {
        "cli-usd-2": request("usd-linear", "cli-usd-2", 2, usage_units=10),
        "cli-eth-1": request("eth-linear", "cli-eth-1", 3),
        "cli-inf-1": request("eth-metered", "cli-inf-1", 4),
        "cli-inf-2": request(
            "eth-metered", "cli-inf-2", 5, usage={"input_tokens": 1000, "output_tokens": 2500}
        ),
    }
    files = []
    for event_id, body in cli_requests.items():
        files.append(work / f"{event_id}.json")
        files[-1].write_text(json.dumps(body))
    run("attest", *map(str, files), "-o", str(work / "out"), "--json")

    service_requests = [
        request("usd-linear", "http-usd-3", 6, usage_units=77),
        request("eth-metered", "http-inf-3", 7, usage={"input_tokens": 40, "output_tokens": 9}),
    ]
    settings = Settings(home=HOME, attest_secret=SECRET, prover_workers=1)
    with TestClient(create_app(settings)) as http:
        for body in service_requests:
            answer = http.post(
                "/api/vdi/billing/attest", json=body, headers={"X-VDI-Attest-Secret": SECRET}
            )
            assert answer.status_code == 200, answer.text
        account = http.get(
            f"/api/vdi/billing/accounts/{TENANT}",
            headers={"Authorization": f"Bearer {token.token}"},
        )
        assert account.status_code == 200, account.text

    store = open_store(log_key=attester.account)
    settled = store.find(TENANT, "cli-eth-1")
    assert settled is not None
    charge_wei = int(settled.bundle["billing"]["expected_charge_micros"]) * 10**12
    receipt = UsageReceipt(
        cost_eth=wei_to_eth(charge_wei),
        transaction_hash="0x" + "5e" * 32,
        block_number=7,
        gas_used=61_234,
        timestamp=1_795_000_000,
    ).model_dump()
    assert store.mark_settled(TENANT, "cli-eth-1", receipt)
    run("statement", "--store", TENANT, WINDOW, "-o", str(OUT / "statement.json"), "--json")

    trust = default_trust().with_(attesters=[attester.address])
    (OUT / "bundles").mkdir()
    events = []
    for stored in store.bundles(TENANT):
        bundle = stored.bundle
        result = verify_bundle(bundle, trust=trust)
        assert result.valid, (stored.event_id, result)
        window = bundle["billing"].get("window")
        events.append(
            {
                "event_id": stored.event_id,
                "binding_version": bundle["attestation"]["billing_proof"]["binding_version"],
                "scheme": bundle["attestation"]["scheme"],
                "made_by": "vbill attest" if stored.event_id.startswith("cli-") else "POST /attest",
                "charge_micros": bundle["billing"]["expected_charge_micros"],
                "currency": bundle["tariff_snapshot"]["currency"],
                "window_seq": window["seq"] if window else None,
                "settlement_status": stored.settlement_status,
                "proof_status": stored.proof_status,
                "leaf_index": stored.leaf_index,
            }
        )
        (OUT / "bundles" / f"{stored.event_id}.json").write_text(
            json.dumps(bundle, indent=1, sort_keys=True) + "\n"
        )
    tenant = store.tenant(TENANT)
    manifest = {
        "made_by_commit": head,
        "how": "tests/data/compat/make_4295cff_store.py (its docstring says how to rerun it)",
        "dev_only": "attester key, attest secret and API token are test values; never deploy",
        "schema_version": store.schema_version(),
        "migrations": len(MIGRATIONS),
        "attester": attester.address,
        "attester_key_dev_only": DEV_ONLY_KEY,
        "attest_secret": SECRET,
        "vkey_sha256": {
            "bn128-poseidon8-v1": file_sha256(paths.VKEY),
            BINDING_V2: file_sha256(artefacts(BINDING_V2).vkey),
        },
        "tenant": {
            "tenant_id": TENANT,
            "tenant_key": str(tenant.tenant_key),
            "token": token.token,
            "token_id": token.token_id,
            "limits": {"per_request_micros": 2_000_000, "daily_micros": 50_000_000},
            "deposit_wei": str(10**18),
        },
        "window": {"tenant_id": TENANT, "billing_window_id": WINDOW, "tariff_id": "llm-secure-7b"},
        "log_size": store.counts()["log_size"],
        "settled": {"event_id": "cli-eth-1", "usage_receipt": receipt},
        "events": events,
    }
    store.close()
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    # One file, no WAL beside it: the last connection closed checkpointed it; VACUUM drops the
    # free pages so the committed file stays small.
    import sqlite3

    db = sqlite3.connect(HOME / "vbill.sqlite3")
    db.execute("VACUUM")
    db.close()
    write_pg_schema(head)
    # Not committed (*.key is ignored, and git would not keep its 0600 mode, which Attester.load
    # requires): the test writes it into its copy from manifest.json's attester_key_dev_only.
    key_file.unlink()
    leftovers = sorted(p.name for p in HOME.iterdir())
    shutil.rmtree(work)
    print(json.dumps({"out": str(OUT), "home": leftovers, "events": len(events)}, indent=1))


if __name__ == "__main__":
    main()
