"""Groth16 proving through long-lived snarkjs workers (one node process per core).

Starting node and parsing the proving key costs more than the proof itself for a circuit of
this size, so each worker keeps the wasm and zkey in memory and proves on request. The one-shot
snarkjs CLI (`prove_cli`) stays only as an independent cross-check.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from vbill import paths
from vbill.errors import ToolError


class _Closeable(Protocol):
    @property
    def alive(self) -> bool: ...

    @property
    def pid(self) -> int: ...

    def close(self) -> None: ...


W = TypeVar("W", bound=_Closeable)


@dataclass(frozen=True)
class Proof:
    """A Groth16 proof in snarkjs's JSON form and the public signals it proves."""

    proof: dict[str, Any]
    public_signals: list[str]


class ProofSource(Protocol):
    """Anything that proves a circuit input: the snarkjs `Prover` or the native prover."""

    def prove(self, circuit_input: Mapping[str, str]) -> Proof: ...

    def close(self) -> None: ...


class _Worker:
    """One node process speaking JSON lines; requests are serialised by the pool."""

    def __init__(self, wasm: Path, zkey: Path | None, vkey: Path | None) -> None:
        script = paths.JS / "worker.mjs"
        # --no-liftoff: V8 compiles the circuit's wasm (and ffjavascript's) with its optimising
        # tier once, at start (≈ 50 ms of CPU). By default it starts on a baseline tier and
        # re-compiles hot functions while serving: a witness then cost 20-54 ms of CPU for a
        # worker's first ≈ 48 calls instead of 6.3 ms, so every short run (a 32-bundle bench,
        # a freshly started service or worker) paid ≈ 40 ms more CPU per bundle.
        args = [paths.node(), "--no-liftoff", script, wasm, zkey or "-", vkey or "-", paths.ROOT]
        self._proc = subprocess.Popen(
            [str(a) for a in args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._ids = itertools.count(1)
        ready = self._read()
        if not ready.get("ok"):
            raise ToolError(f"prover worker failed to start: {ready.get('error')}")

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise ToolError(f"prover worker exited: {err.strip()[-2000:]}")
        return json.loads(line)

    def call(self, op: str, **payload: Any) -> Any:
        assert self._proc.stdin is not None
        req_id = next(self._ids)
        self._proc.stdin.write(json.dumps({"id": req_id, "op": op, **payload}) + "\n")
        self._proc.stdin.flush()
        resp = self._read()
        if resp.get("id") != req_id:
            raise ToolError(f"prover worker answered request {resp.get('id')}, expected {req_id}")
        if not resp.get("ok"):
            raise ToolError(f"prover worker: {resp.get('error')}")
        return resp["result"]

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()


class WorkerPool(Generic[W]):
    """Up to `size` long-lived worker processes, started lazily, lent one caller at a time.

    Thread-safe. A worker that died while lent is dropped and its slot freed, so the next
    caller starts a fresh one instead of inheriting a broken process.
    """

    def __init__(self, size: int, start: Callable[[], W]) -> None:
        self._size = size
        self._start = start
        self._idle: queue.Queue[W] = queue.Queue()
        self._started = 0
        self._lock = threading.Lock()
        self._all: list[W] = []

    def _acquire(self) -> W:
        with self._lock:
            if self._idle.empty() and self._started < self._size:
                self._started += 1
                try:
                    worker = self._start()
                except BaseException:
                    self._started -= 1
                    raise
                self._all.append(worker)
                return worker
        return self._idle.get()

    def _release(self, worker: W) -> None:
        if worker.alive:
            self._idle.put(worker)
            return
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
                self._started -= 1
        worker.close()

    @contextmanager
    def use(self) -> Iterator[W]:
        """Borrow a worker for one request."""
        worker = self._acquire()
        try:
            yield worker
        finally:
            self._release(worker)

    def pids(self) -> list[int]:
        """Process ids of the workers started so far (for CPU accounting in the benches)."""
        with self._lock:
            return [w.pid for w in self._all]

    def close(self) -> None:
        with self._lock:
            for worker in self._all:
                worker.close()
            self._all.clear()
            self._started = 0
            self._idle = queue.Queue()


class Prover:
    """A pool of snarkjs workers; thread-safe, so a service can prove on several cores at once.

    Use as a context manager, or call `close()`; workers start lazily on first use.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        wasm: Path = paths.WASM,
        zkey: Path | None = paths.ZKEY,
        vkey: Path | None = paths.VKEY,
    ) -> None:
        self._size = workers or max(1, os.cpu_count() or 1)
        self._files = (
            paths.require(wasm),
            zkey and paths.require(zkey),
            vkey and paths.require(vkey),
        )
        self._pool: WorkerPool[_Worker] = WorkerPool(self._size, lambda: _Worker(*self._files))

    def _run(self, op: str, **payload: Any) -> Any:
        with self._pool.use() as worker:
            return worker.call(op, **payload)

    def pids(self) -> list[int]:
        """Process ids of the node workers started so far."""
        return self._pool.pids()

    def prove(self, circuit_input: Mapping[str, str]) -> Proof:
        """Compute the witness and a Groth16 proof for one circuit input."""
        result = self._run("prove", input=dict(circuit_input))
        return Proof(proof=result["proof"], public_signals=list(result["public_signals"]))

    def verify(
        self,
        public_signals: list[str],
        proof: Mapping[str, Any],
        vkey: Mapping[str, Any] | None = None,
    ) -> bool:
        """snarkjs's verifier in the worker (fast path; py_ecc in groth16.py is the reference).

        Uses `vkey` if given, else the key the pool was started with."""
        payload: dict[str, Any] = {"signals": list(public_signals), "proof": dict(proof)}
        if vkey is not None:
            payload["vkey"] = dict(vkey)
        return self._run("verify", **payload) is True

    def verify_batch(
        self,
        items: Sequence[tuple[Sequence[str], Mapping[str, Any]]],
        vkey: Mapping[str, Any] | None = None,
    ) -> bool:
        """One random-linear-combination multi-pairing for many (signals, proof) pairs.

        True only if every proof verifies (up to ~N/2^128); False says some proof is bad, not
        which (callers bisect)."""
        payload: dict[str, Any] = {
            "items": [{"signals": list(s), "proof": dict(p)} for s, p in items]
        }
        if vkey is not None:
            payload["vkey"] = dict(vkey)
        return self._run("verifyBatch", **payload) is True

    def witness(self, circuit_input: Mapping[str, str]) -> list[int]:
        """The full witness vector (index 0 is the constant 1, then the public outputs)."""
        return [int(v) for v in self._run("witness", input=dict(circuit_input))]

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Prover:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prove_cli(
    circuit_input: Mapping[str, str], *, wasm: Path = paths.WASM, zkey: Path = paths.ZKEY
) -> Proof:
    """One-shot `snarkjs groth16 fullprove` (slow; cross-check only)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "input.json").write_text(json.dumps(dict(circuit_input)))
        _snarkjs(
            "groth16",
            "fullprove",
            t / "input.json",
            wasm,
            zkey,
            t / "proof.json",
            t / "public.json",
        )
        return Proof(
            proof=json.loads((t / "proof.json").read_text()),
            public_signals=json.loads((t / "public.json").read_text()),
        )


def verify_cli(vkey: Path, public_signals: list[str], proof: Mapping[str, Any]) -> bool:
    """One-shot `snarkjs groth16 verify` (slow; cross-check only)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "public.json").write_text(json.dumps(public_signals))
        (t / "proof.json").write_text(json.dumps(dict(proof)))
        done = subprocess.run(
            [
                str(paths.node_bin("snarkjs")),
                "groth16",
                "verify",
                str(vkey),
                str(t / "public.json"),
                str(t / "proof.json"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode == 0 and "OK" in done.stdout


def _snarkjs(*args: object) -> str:
    done = subprocess.run(
        [str(paths.node_bin("snarkjs")), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ToolError(
            f"snarkjs {args[0]} {args[1]} failed: {(done.stdout + done.stderr)[-2000:]}"
        )
    return done.stdout
