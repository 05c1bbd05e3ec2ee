"""The README runs as written: its ```sh blocks, in order, as one bash script (`set -euo
pipefail`), in a fresh $VBILL_HOME against the real tools — the circuit and prover from build/,
anvil from node_modules, `vbill serve` on a socket. A block fenced ```sh no-run is an
illustration (a placeholder host, `make test` itself) and is skipped.

The script runs in a temporary directory that links the checkout's `docs/` and `.venv/`, so the
files it writes stay out of the tree. The README's fixed ports (anvil 8545, the service 8080) are
swapped for free ones, so the test runs beside anything else. Whatever the script leaves running
is stopped afterwards: its process group (`vbill serve &`), and the anvil `vbill chain up` started.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from support import needs_build
from vbill.chain.anvil import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.S | re.M)

pytestmark = [pytest.mark.slow, pytest.mark.chain]


def shell_blocks(markdown: str) -> list[str]:
    """The bodies of the ```sh blocks, in order; `sh no-run` (or any extra word) skips one."""
    return [body for info, body in FENCE.findall(markdown) if info.split() == ["sh"]]


def test_blocks_are_found_and_illustrations_skipped() -> None:
    text = README.read_text()
    blocks = shell_blocks(text)
    assert len(blocks) >= 4
    script = "\n".join(blocks)
    assert "billing.example.com" not in script  # the customers' illustration is no-run
    assert "make test" not in script
    assert "vbill chain up" in script and "vbill serve" in script
    for hack in ("anvil_setBalance", "anvil_mine"):  # the tools set up the local chain
        assert hack not in script
    sample = "```sh\necho a\n```\n\n```sh no-run\necho b\n```\n```python\nprint()\n```\n"
    assert shell_blocks(sample) == ["echo a\n"]


def test_readme_runs_as_written(tmp_path: Path) -> None:
    needs_build()
    work = tmp_path / "work"
    work.mkdir()
    for name in ("docs", ".venv"):
        (work / name).symlink_to(ROOT / name)
    anvil_port, service_port = free_port(), free_port()
    script = "\n".join(shell_blocks(README.read_text()))
    script = re.sub(r"\b8545\b", str(anvil_port), script)
    script = re.sub(r"\b8080\b", str(service_port), script)
    trace = "PS4='+ ${SECONDS}s: '\nset -euo pipefail\nset -x\n"  # timed trace on failure
    (work / "readme.sh").write_text(trace + script)
    home = tmp_path / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VBILL_", "VDI_")) and k != "DATABASE_URL"
    }
    env |= {"VBILL_HOME": str(home), "PATH": f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"}
    proc = subprocess.Popen(
        ["bash", "readme.sh"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=600)
    finally:
        _stop_group(proc.pid)
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "vbill"), "chain", "down"],
            env=env,
            capture_output=True,
            check=False,
        )
    tail = output[-6000:]
    assert proc.returncode == 0, tail
    assert "anchored in 0x" in output and "no ETH moved (currency USD)" in output, tail
    assert (home / "deployments" / "local.json").exists()  # a local record stays in the home


def _stop_group(pgid: int) -> None:
    """Stop what the script left running in its own session (`vbill serve &`)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
