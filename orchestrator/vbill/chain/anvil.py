"""The local chain: anvil from node_modules, started, recorded under $VBILL_HOME and stopped."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3

from vbill import paths
from vbill.errors import InputError, ToolError

# anvil's default mnemonic ("test test ... junk"): public, for the local chain only.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)


@dataclass
class Anvil:
    """A running anvil; `stop()` ends exactly this process."""

    process: subprocess.Popen[bytes] | None
    pid: int
    port: int
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        stop_anvil(self.pid)
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def anvil_bin() -> Path:
    path = paths.NODE_MODULES / ".bin" / "anvil"
    if not path.exists():
        path = paths.NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not path.exists():
        raise ToolError("anvil not found in node_modules; run `make install`")
    return path


def start_anvil(
    port: int | None = None,
    host: str = "127.0.0.1",
    state: Path | None = None,
    detach: bool = False,
    timeout: float = 20.0,
    chain_id: int = 31337,
    block_time: float | None = None,
) -> Anvil:
    """Start anvil (deterministic dev mnemonic) on 127.0.0.1 and wait until it answers.
    `block_time`: mine a block every so many seconds (else only when a transaction comes),
    so that confirmations keep arriving for a service that waits for them."""
    port = port or free_port(host)
    cmd = [
        str(anvil_bin()),
        "--host",
        host,
        "--port",
        str(port),
        "--silent",
        "--chain-id",
        str(chain_id),
        "--mnemonic",
        ANVIL_MNEMONIC,
    ]
    if block_time is not None:
        cmd += ["--block-time", str(block_time)]
    if state is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
        cmd += ["--state", str(state)]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=detach,
    )
    anvil = Anvil(None if detach else proc, proc.pid, port, host)
    w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 2}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ToolError(f"anvil exited with code {proc.returncode} (port {port} in use?)")
        try:
            if w3.eth.chain_id == chain_id:
                return anvil
        except Exception:  # not listening yet
            pass
        time.sleep(0.1)
    proc.kill()
    raise ToolError(f"anvil did not answer on {anvil.url} within {timeout:.0f} s")


def stop_anvil(pid: int) -> None:
    """Send SIGTERM to this anvil (anvil writes its --state on exit), then SIGKILL if needed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def anvil_record() -> Path:
    return paths.vbill_home() / "anvil.json"


def chain_up(port: int = 8545, block_time: float | None = 1.0) -> Anvil:
    """`vbill chain up`: a detached anvil whose pid and URL are kept in $VBILL_HOME/anvil.json;
    a block a second by default, so deposits reach their confirmations with nobody mining."""
    record = anvil_record()
    if record.exists():
        info = json.loads(record.read_text())
        if _alive(int(info["pid"])):
            raise InputError("chain", f"anvil already running (pid {info['pid']}, {info['url']})")
    anvil = start_anvil(
        port, state=paths.vbill_home() / "anvil-state.json", detach=True, block_time=block_time
    )
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"pid": anvil.pid, "port": anvil.port, "url": anvil.url}) + "\n")
    return anvil


def chain_down() -> int | None:
    """`vbill chain down`: stop the anvil `chain up` started; returns its pid, or None."""
    record = anvil_record()
    if not record.exists():
        return None
    pid = int(json.loads(record.read_text())["pid"])
    stop_anvil(pid)
    record.unlink()
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def fund_local(url: str, address: str, wei: int) -> None:
    """Set `address`'s balance on a local anvil (anvil_setBalance): gas for the service's
    attester key, which `vbill deploy` on local registers; no such call exists elsewhere."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
    answer = w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]
    if "error" in answer:
        raise ToolError(f"anvil_setBalance on {url}: {answer['error']}")


def local_rpc_url() -> str:
    record = anvil_record()
    if record.exists():
        return str(json.loads(record.read_text())["url"])
    return "http://127.0.0.1:8545"


# ---------------------------------------------------------------------------------- keys
