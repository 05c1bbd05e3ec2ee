"""Where the project's artefacts and tools live, resolved once from the repository root."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vbill.errors import ToolError

ROOT = Path(os.environ.get("VBILL_ROOT", Path(__file__).resolve().parents[2]))
CIRCUITS = ROOT / "circuits"
BUILD = ROOT / "build"
CONTRACTS = ROOT / "contracts"
NODE_MODULES = ROOT / "node_modules"
JS = Path(__file__).resolve().parent / "js"

CIRCUIT_NAME = "billing_binding"
R1CS = BUILD / f"{CIRCUIT_NAME}.r1cs"
WASM = BUILD / f"{CIRCUIT_NAME}_js" / f"{CIRCUIT_NAME}.wasm"
ZKEY = BUILD / f"{CIRCUIT_NAME}.zkey"
VKEY = BUILD / "vkey.json"
MANIFEST = BUILD / "manifest.json"
# The pilot request (= docs/examples/usd-linear.json; 1,842 units × 120 micros → 221040).
PILOT_REQUEST = ROOT / "tests" / "data" / "pilot_request.json"


def vbill_home() -> Path:
    """State directory (SQLite, keys, salts, anvil state); env `VBILL_HOME`, default ./.vbill."""
    return Path(os.environ.get("VBILL_HOME", ".vbill")).resolve()


def private_dir(path: Path) -> Path:
    """Create `path` if needed and force it to 0700 even if it existed: it holds keys and
    every tenant's account salt."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(path, 0o700)
    except OSError as exc:
        raise ToolError(f"cannot make {path} private (chmod 700): {exc.strerror}") from None
    return path


def node_bin(name: str) -> Path:
    """A pinned node tool from node_modules/.bin; raises ToolError naming the fix if absent."""
    path = NODE_MODULES / ".bin" / name
    if not path.exists():
        raise ToolError(f"{name} not found in {path.parent}; run `make install`")
    return path


def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        raise ToolError("node not found on PATH; install Node.js 20")
    return exe


def require(path: Path, hint: str = "run `make setup`") -> Path:
    """Fail with an environment error when a build artefact is missing."""
    if not path.exists():
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        raise ToolError(f"missing {shown}; {hint}")
    return path
