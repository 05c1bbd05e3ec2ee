"""`vbill setup`: the trusted-setup pipeline (docs/trusted-setup.md), which lives in the Makefile.

The Makefile is the single definition of the pipeline (auditors re-run it by hand); this verb
runs it from anywhere and reports the manifest, so the CLI and `make` can never disagree.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import click

from vbill import paths
from vbill.cli.output import emit, json_option
from vbill.errors import ToolError, VerificationFailed


def _make(target: str) -> None:
    make = shutil.which("make")
    if make is None:
        raise ToolError("make not found on PATH")
    # make's progress is streamed to stderr so that --json output on stdout stays parseable.
    with subprocess.Popen(
        [make, "--no-print-directory", "-C", str(paths.ROOT), target],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as done:
        assert done.stdout is not None
        for line in done.stdout:
            click.echo(line.rstrip("\n"), err=True)
    if done.returncode != 0:
        if target == "verify-setup":
            raise VerificationFailed("make verify-setup found a mismatch (see its output above)")
        raise ToolError(f"make {target} failed with exit code {done.returncode}")


@click.command()
@click.option(
    "--verify",
    "audit",
    is_flag=True,
    help="Run the auditor's re-run (make verify-setup) instead of building.",
)
@json_option
def setup(audit: bool, as_json: bool) -> None:
    """Build (or check) the circuit, proving key, verification key and manifest.

    Without options runs `make setup`: compile, phase-2 setup, beacon, `zkey verify`, export
    the verification key, write build/manifest.json (cached: a re-run with the same pinned
    inputs does nothing). With --verify runs `make verify-setup`: recompile and check every
    artefact byte for byte against the manifest; exit 1 on any mismatch.
    """
    _make("verify-setup" if audit else "setup")
    manifest = json.loads(paths.require(paths.MANIFEST).read_text())
    summary = {
        "binding_version": manifest.get("binding_version"),
        "ceremony": manifest.get("ceremony"),
        "constraints": manifest.get("constraints"),
        "vkey_sha256": manifest.get("artifacts", {}).get("vkey", {}).get("sha256"),
        "verified": audit,
    }
    emit(summary, as_json, "\n".join(f"{k}: {v}" for k, v in summary.items()))


COMMANDS = (setup,)
