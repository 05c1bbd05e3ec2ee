"""The browser verifier page in headless Chromium: where the driver and the page's build script
are, the system Chromium (skip locally, fail under CI=true), running listed cases through the page,
and the trust set a case's signed trust document gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from vbill.verify import trust_document
from vbill.verify.trust import TrustSet

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests/js/verifier_page.mjs"
BUILD = ROOT / "orchestrator/vbill/verifier/build.mjs"
VERDICTS = ("verification", "billing_check", "incircuit_binding_verification")
LOGGED = 1_780_000_000_000  # the tree-head time of every receipt conftest's log gives


def chromium() -> str:
    """The system Chromium; skip (locally) or fail (CI=true) with the fix when it is absent."""
    found = os.environ.get("VBILL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    missing = [
        what
        for what, there in (
            (f"no headless browser at {found} (apt-get install -y chromium)", Path(found).exists()),
            ("no playwright-core (npm ci)", (ROOT / "node_modules/playwright-core").exists()),
            ("no node on PATH", shutil.which("node") is not None),
        )
        if not there
    ]
    if not missing:
        return found
    why = "verifier page not tested in a browser: " + "; ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} — CI must run the verifier page tests")
    pytest.skip(why)


def trust_set(doc: dict[str, Any], home: Path) -> TrustSet:
    """What `vbill verify` trusts once this document is pinned (as default_trust reads a pin)."""
    pinned = trust_document.verify(doc)
    return TrustSet().with_(
        attesters=pinned.attesters,
        vkey_files=trust_document.vkey_files(pinned, home),
        revoked_attesters=pinned.revoked.attesters,
        revoked_vkeys=pinned.revoked.vkeys,
        log_signers=pinned.log_signers,
        retired_attesters=pinned.retired_attesters,
    )


def run_page(page: Path, listing: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every case through the page in one browser; results by case name."""
    listing_file = page.with_name(f"cases-{len(listing)}-{listing[0]['name'][:8]}.json")
    listing_file.write_text(json.dumps(listing))
    run = subprocess.run(
        ["node", str(DRIVER), str(page), str(listing_file), chromium()],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return {c["name"]: c for c in json.loads(run.stdout)["cases"]}
