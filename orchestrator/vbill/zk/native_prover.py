"""Groth16 proving with the native C prover (orchestrator/native, built as build/native/).

snarkjs spends most of a proof in wasm multi-scalar multiplications. Here the witness still
comes from the circuit's own wasm, run in this process by wasmtime (vbill/zk/wasm_witness.py;
env VBILL_WITNESS=node asks a snarkjs worker's `wtns` op instead), but the proof is computed by
`vbill-prover`: a long-lived process per core that parses and expands the proving key once,
then proves one length-prefixed .wtns frame per request. The output is
snarkjs's JSON form, so every consumer (verifiers, bundles) is unchanged.

`NativeVerifier` / `batch_verify` are the matching native Groth16 checks (`vbill-verify`, a
BN254 multi-pairing): one pairing product per batch with random 128-bit weights, bisected to
name the bad proofs; they agree with the py_ecc reference in vbill/zk/groth16.py.
`python -m vbill.zk.native_prover --proofs N --workers K` measures proving throughput.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import struct
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vbill import paths
from vbill.bindings import artefacts
from vbill.bindings.registry import default
from vbill.errors import ToolError
from vbill.zk import groth16
from vbill.zk.prover import Proof, ProofSource, Prover, WorkerPool

if TYPE_CHECKING:
    from vbill.zk.wasm_witness import WasmWitness

NATIVE_DIR = Path(__file__).resolve().parent / "native"
NATIVE_BIN = paths.BUILD / "native" / "vbill-prover"
NATIVE_VERIFY_BIN = paths.BUILD / "native" / "vbill-verify"
_build_lock = threading.Lock()


def ensure_built(binary: Path = NATIVE_BIN) -> Path:
    """Build with `make native` when `binary` is missing or older than the C sources."""
    with _build_lock:
        sources = [*NATIVE_DIR.glob("*.c"), *NATIVE_DIR.glob("*.h")]
        newest = max((s.stat().st_mtime for s in sources), default=0.0)
        if binary.exists() and binary.stat().st_mtime >= newest:
            return binary
        if binary not in (NATIVE_BIN, NATIVE_VERIFY_BIN):
            raise ToolError(f"native binary {binary} is missing or stale")
        done = subprocess.run(
            ["make", "--no-print-directory", "native"],
            cwd=paths.ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not binary.exists():
            raise ToolError(f"make native failed: {(done.stdout + done.stderr)[-2000:]}")
        return binary


def _stop(proc: subprocess.Popen[Any]) -> None:
    """Close stdin (the process's signal to finish), wait, kill if it hangs, close pipes."""
    if proc.poll() is None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


class NativeProverError(ToolError):
    """The native prover rejected a witness (the message is its own) or died."""


class NativeProcess:
    """One `vbill-prover ZKEY` process; not thread-safe (the pool serialises it)."""

    def __init__(self, zkey: Path, *, binary: Path | None = None, timing: bool = False) -> None:
        exe = binary or ensure_built()
        args = [str(exe), *(["--timing"] if timing else []), str(zkey)]
        self._proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            self.ready = self._read()
        except NativeProverError:
            self.close()
            raise
        if not self.ready.get("ready"):
            self.close()
            raise NativeProverError(f"native prover failed to start: {self.ready.get('error')}")

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            self._proc.wait()
            raise NativeProverError(
                f"native prover exited ({self._proc.returncode}): {err.strip()[-2000:]}"
            )
        return json.loads(line)

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def send_frame(self, payload: bytes) -> dict[str, Any]:
        """Send one raw frame and return the JSON line it produced (proof or error)."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(struct.pack("<I", len(payload)) + payload)
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # _read reports the exit and stderr
        return self._read()

    def prove_wtns(self, wtns: bytes) -> tuple[Proof, dict[str, float]]:
        out = self.send_frame(wtns)
        if "error" in out:
            raise NativeProverError(f"native prover: {out['error']}")
        proof = Proof(proof=out["proof"], public_signals=list(out["public_signals"]))
        return proof, dict(out.get("timing_ms", {}))

    def close(self) -> None:
        _stop(self._proc)


class NativeProver:
    """Same `prove(circuit_input) -> Proof` as `Prover`, with native Groth16; thread-safe.

    Witnesses come from the circuit's wasm in this process (wasmtime, one instance per
    worker) or, with `witness="node"` (env VBILL_WITNESS=node), from snarkjs workers started
    without a proving key; proofs from one native process per core. The pools start lazily.
    Use as a context manager or call `close()`.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        wasm: Path = paths.WASM,
        zkey: Path = paths.ZKEY,
        binary: Path | None = None,
        timing: bool = False,
        witness: str | None = None,
    ) -> None:
        self._size = workers or max(1, os.cpu_count() or 1)
        self._zkey = paths.require(zkey)
        self._binary = binary
        self._timing = timing
        asked = witness or os.environ.get("VBILL_WITNESS")
        if asked not in (None, "wasmtime", "node"):
            raise ToolError(f"witness calculator {asked!r}: expected wasmtime or node")
        self._wasm: WasmWitness | None = None
        self._node: Prover | None = None
        if asked != "node":
            try:
                from vbill.zk.wasm_witness import WasmWitness  # wasmtime only where it proves

                self._wasm = WasmWitness(wasm, self._size)
            except ImportError:  # an environment installed before the pin: node, unless asked
                if asked == "wasmtime":
                    raise ToolError("wasmtime is not installed; run `make install`") from None
        if self._wasm is None:
            self._node = Prover(self._size, wasm=wasm, zkey=None, vkey=None)
        self._pool: WorkerPool[NativeProcess] = WorkerPool(
            self._size,
            lambda: NativeProcess(self._zkey, binary=self._binary, timing=self._timing),
        )

    def wtns(self, circuit_input: Mapping[str, str]) -> bytes:
        """The .wtns file bytes for one circuit input (computed by the circuit's wasm)."""
        if self._wasm is not None:
            return self._wasm.wtns(circuit_input)
        assert self._node is not None
        encoded = self._node._run("wtns", input=dict(circuit_input))
        return base64.b64decode(encoded)

    def prove_wtns_timed(self, wtns: bytes) -> tuple[Proof, dict[str, float]]:
        """`prove_wtns` plus the prover's per-phase times in ms (when started with timing)."""
        with self._pool.use() as proc:
            return proc.prove_wtns(wtns)

    def prove_wtns(self, wtns: bytes) -> Proof:
        """A Groth16 proof for a ready .wtns; raises NativeProverError if it is rejected."""
        return self.prove_wtns_timed(wtns)[0]

    def prove(self, circuit_input: Mapping[str, str]) -> Proof:
        """Compute the witness and a Groth16 proof for one circuit input."""
        return self.prove_wtns(self.wtns(circuit_input))

    def pids(self) -> list[int]:
        """Process ids of the witness (node, if used) and native prover processes started so far."""
        return [*self.witness_pids(), *self._pool.pids()]

    def witness_pids(self) -> list[int]:
        """Process ids of the node witness workers ([] for the in-process witness)."""
        return self._node.pids() if self._node is not None else []

    def close(self) -> None:
        self._pool.close()
        for witness in (self._wasm, self._node):
            if witness is not None:
                witness.close()

    def __enter__(self) -> NativeProver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _g1_text(p: Any) -> list[str]:
    return [str(int(p[0])), str(int(p[1]))]


def _g2_text(p: Any) -> list[str]:
    return [str(int(c)) for c in (p[0][0], p[0][1], p[1][0], p[1][1])]


@functools.lru_cache(maxsize=8)
def _parsed_vkey(canonical_json: str) -> groth16.VerifyingKey:
    """Strict parse once per key: py_ecc's G2 subgroup checks cost ~0.1 s."""
    return groth16.parse_vkey(json.loads(canonical_json))


class NativeVerifier:
    """A long-lived `vbill-verify --serve` holding one verification key; thread-safe.

    `verify_batch(items)` returns the indices of the (signals, proof) pairs that do not
    verify ([] when all do): one native multi-pairing per batch (random linear combination
    with 128-bit coefficients, one final exponentiation), and a failing batch is bisected down
    to the bad proofs. Items are first parsed by the py_ecc reference's strict parser and
    anything it refuses counts as bad; pi_b's G2 subgroup check is done natively.
    """

    def __init__(self, vkey: Mapping[str, Any], *, binary: Path | None = None) -> None:
        self._key = _parsed_vkey(json.dumps(vkey, sort_keys=True))
        words = _g1_text(vkey["vk_alpha_1"])
        for name in ("vk_beta_2", "vk_gamma_2", "vk_delta_2"):
            words += _g2_text(vkey[name])
        words.append(str(len(vkey["IC"])))
        for point in vkey["IC"]:
            words += _g1_text(point)
        exe = binary or ensure_built(NATIVE_VERIFY_BIN)
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [str(exe), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._send(" ".join(words) + "\n")
        ready = self._read()
        if not ready.get("ready"):
            self.close()
            raise NativeProverError(f"vbill-verify: {ready.get('error')}")

    def _send(self, text: str) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.write(text)
            self._proc.stdin.flush()

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise NativeProverError(f"vbill-verify exited: {err.strip()[-2000:]}")
        return json.loads(line)

    def verify_batch(self, items: Sequence[tuple[Sequence[Any], Mapping[str, Any]]]) -> list[int]:
        sent: list[int] = []
        bad: list[int] = []
        body: list[str] = []
        for i, (signals, proof) in enumerate(items):
            try:
                groth16.parse_proof(proof, subgroup=False)
                values = groth16.parse_signals(signals, self._key.n_public)
            except groth16.Groth16Error:
                bad.append(i)
                continue
            sent.append(i)
            body += _g1_text(proof["pi_a"]) + _g2_text(proof["pi_b"]) + _g1_text(proof["pi_c"])
            body += [str(v) for v in values]
        with self._lock:
            self._send(f"{len(sent)} {' '.join(body)}\n")
            out = self._read()
        if "error" in out:
            raise NativeProverError(f"vbill-verify: {out['error']}")
        bad += [sent[j] for j in out["bad"]]
        return sorted(bad)

    def verify(self, signals: Sequence[Any], proof: Mapping[str, Any]) -> bool:
        """One proof (a batch of one)."""
        return self.verify_batch([(signals, proof)]) == []

    def close(self) -> None:
        _stop(self._proc)

    def __enter__(self) -> NativeVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batch_verify(
    vkey: Mapping[str, Any],
    items: Sequence[tuple[Sequence[Any], Mapping[str, Any]]],
    *,
    binary: Path | None = None,
) -> list[int]:
    """Indices of the (signals, proof) pairs that do not verify (one-off `NativeVerifier`)."""
    with NativeVerifier(vkey, binary=binary) as verifier:
        return verifier.verify_batch(items)


def open_prover(workers: int | None = None, binding: str | None = None) -> ProofSource:
    """The fastest prover this machine has for a binding's circuit and key (by default the
    default binding's): the native prover (build/native, built on first use) unless env
    VBILL_PROVER=snarkjs or it cannot be built; else snarkjs workers."""
    art = artefacts(binding or default().version)
    if os.environ.get("VBILL_PROVER", "native") != "snarkjs":
        try:
            ensure_built(NATIVE_BIN)
            return NativeProver(workers, wasm=art.wasm, zkey=art.zkey)
        except ToolError:
            if os.environ.get("VBILL_PROVER") == "native":
                raise
    return Prover(workers, wasm=art.wasm, zkey=art.zkey, vkey=art.vkey)


if __name__ == "__main__":  # the measurement lives with the other benches
    from vbill_tools.prover_bench import main

    main()
