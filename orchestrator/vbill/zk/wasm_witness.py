"""The witness in-process: the circuit's circom-generated wasm run by wasmtime, no node.

A port of circom's `witness_calculator.js` (circom 2's wasm interface, the one snarkjs's
`wtns calculate` drives): inputs are located by the FNV-1a 64 hash of their name
(`getInputSignalSize`, `setInputSignal`), values pass through the shared read/write memory as
`getFieldNumLen32()` little-endian 32-bit words, and the witness is read back with
`getWitness(i)`. The output is the same `.wtns` file, byte for byte (tests/zk/test_wasm_witness.py
compares it with the snarkjs CLI for every binding), so the native prover takes it unchanged.

A call from Python into wasmtime costs tens of microseconds, and a witness is thousands of
`getWitness` + `readSharedRWMemory` calls. So a few lines of glue wasm (`_GLUE`) make those
loops inside wasm and leave the whole witness in their own memory, read by Python at once.

A circuit `assert` and every other error of the calculator traps; it surfaces as a
`WitnessError` naming the input where it can (the circuit's source line of the failing
statement and the inputs on it), never as a crash. A calculator that trapped is dropped.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import struct
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import wasmtime

from vbill import paths
from vbill.errors import ToolError
from vbill.zk.prover import WorkerPool

CACHE_DIR = paths.BUILD / "wasmtime"

# circom_runtime's exceptionHandler codes
_EXCEPTIONS = {
    1: "Signal not found.",
    2: "Too many signals set.",
    3: "Signal already set.",
    4: "Assert Failed.",
    5: "Not enough memory.",
    6: "Input signal array access exceeds the size.",
}

# calc(table, entries, n32, count): init(0); for each 16-byte table entry (hash high, hash low,
# src, values): each value's n32 words from src into the shared memory, then
# setInputSignal(high, low, i) (the last value runs the circuit); then getWitness(i) for
# every i < count, its n32 words to offset 0. One call from Python per witness.
_GLUE = """
(module
  (import "c" "init" (func $init (param i32)))
  (import "c" "getWitness" (func $getWitness (param i32)))
  (import "c" "readSharedRWMemory" (func $read (param i32) (result i32)))
  (import "c" "writeSharedRWMemory" (func $write (param i32 i32)))
  (import "c" "setInputSignal" (func $set (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func $setInput
    (param $msb i32) (param $lsb i32) (param $src i32) (param $count i32) (param $n32 i32)
    (local $i i32) (local $j i32)
    (block $done (loop $values
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (local.set $j (i32.const 0))
      (block $wdone (loop $words
        (br_if $wdone (i32.ge_u (local.get $j) (local.get $n32)))
        (call $write (local.get $j) (i32.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $words)))
      (call $set (local.get $msb) (local.get $lsb) (local.get $i))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $values))))
  (func (export "calc")
    (param $table i32) (param $entries i32) (param $n32 i32) (param $count i32)
    (local $e i32) (local $i i32) (local $j i32) (local $dst i32)
    (call $init (i32.const 0))
    (block $done (loop $inputs
      (br_if $done (i32.ge_u (local.get $e) (local.get $entries)))
      (call $setInput
        (i32.load (local.get $table))
        (i32.load offset=4 (local.get $table))
        (i32.load offset=8 (local.get $table))
        (i32.load offset=12 (local.get $table))
        (local.get $n32))
      (local.set $table (i32.add (local.get $table) (i32.const 16)))
      (local.set $e (i32.add (local.get $e) (i32.const 1)))
      (br $inputs)))
    (block $done (loop $values
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (call $getWitness (local.get $i))
      (local.set $j (i32.const 0))
      (block $wdone (loop $words
        (br_if $wdone (i32.ge_u (local.get $j) (local.get $n32)))
        (i32.store (local.get $dst) (call $read (local.get $j)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $words)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $values))))
)
"""
_PAGE = 65536
_FRAME = re.compile(r"Error in template (\w+?)_\d+ line: (\d+)")
_IDENT = re.compile(r"[A-Za-z_]\w*")


class WitnessError(ToolError):
    """The circuit's wasm refused an input (a circuit `assert`, an unknown or missing input)."""


def fnv1a64(name: str) -> tuple[int, int]:
    """circom's signal-name hash (FNV-1a 64 over the name's UTF-16 code units, as JS's
    charCodeAt), as the (high, low) 32-bit halves the wasm takes, each a signed i32."""
    h = 0xCBF29CE484222325
    for unit in name.encode("utf-16-le")[::2]:
        h = ((h ^ unit) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return _i32(h >> 32), _i32(h & 0xFFFFFFFF)


def _i32(x: int) -> int:
    return x - (1 << 32) if x >= 1 << 31 else x


_engine = wasmtime.Engine()
_modules: dict[Path, tuple[tuple[int, int], wasmtime.Module, wasmtime.Module]] = {}
_modules_lock = threading.Lock()


def _compile(wasm: Path) -> wasmtime.Module:
    """The circuit's module, compiled once per wasm: from build/wasmtime/ when a compiled copy
    of these exact bytes is there (≈ 1 ms), else compiled (≈ 1.5 s of CPU) and stored there."""
    data = wasm.read_bytes()
    key = hashlib.sha256(data + importlib.metadata.version("wasmtime").encode()).hexdigest()
    cached = CACHE_DIR / f"{wasm.stem}-{key[:20]}.cwasm"
    if cached.exists():
        try:
            # wasmtime refuses an artefact of another engine version or configuration
            return wasmtime.Module.deserialize_file(_engine, str(cached))
        except wasmtime.WasmtimeError:
            pass
    module = wasmtime.Module(_engine, data)
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(module.serialize())
        tmp.replace(cached)
        for old in CACHE_DIR.glob(f"{wasm.stem}-*.cwasm"):
            if old != cached:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only build/: compile in every process instead
    return module


def _modules_for(wasm: Path) -> tuple[wasmtime.Module, wasmtime.Module]:
    path = paths.require(wasm).resolve()
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    with _modules_lock:
        hit = _modules.get(path)
        if hit is None or hit[0] != stamp:
            hit = (stamp, _compile(path), wasmtime.Module(_engine, _GLUE))
            _modules[path] = hit
        return hit[1], hit[2]


def _flatten(name: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, list | tuple):
        return [item for i, v in enumerate(value) for item in _flatten(f"{name}[{i}]", v)]
    return [(name, value)]


def _field_value(name: str, value: Any, prime: int) -> int:
    """A canonical field element, or WitnessError naming the input (snarkjs would reduce a
    value ≥ p or a negative one mod p; here that is refused, never silently aliased)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise WitnessError(f"witness: input {name} is not an integer or a decimal string")
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise WitnessError(f"witness: input {name} is not a decimal string")
        if len(value) > 2 * len(str(prime)):  # before int(): no 10^6-digit conversions
            raise WitnessError(f"witness: input {name} is out of range: not in [0, p)")
        value = int(value)
    if not 0 <= value < prime:
        raise WitnessError(f"witness: input {name} is out of range: not in [0, p)")
    return value


def _circuit_source(wasm: Path) -> dict[str, Path]:
    """Main template name -> its circuits/<file>.circom, for the circuit `wasm` was built from."""
    try:
        declared = json.loads((paths.CIRCUITS / "circuits.json").read_text())
    except (OSError, ValueError):
        return {}
    return {
        c["template"]: paths.CIRCUITS / f"{c['file']}.circom"
        for c in declared.values()
        if c.get("file") == wasm.stem and "template" in c
    }


class WitnessCalculator:
    """One instance of a circuit's wasm in its own wasmtime store; not thread-safe.

    `alive` turns False once a call trapped: the instance's memory may be half-written, so a
    pool drops it and starts another (≈ 1 ms)."""

    def __init__(self, wasm: Path) -> None:
        self.wasm = wasm
        circuit, glue = _modules_for(wasm)
        self._store = wasmtime.Store(_engine)
        self._error = ""
        self._message = ""
        self.alive = True
        handlers = {
            "exceptionHandler": self._exception,
            "printErrorMessage": self._print_error,
            "writeBufferMessage": self._write_buffer,
            "showSharedRWMemory": self._show_shared,
        }
        imports = []
        for imp in circuit.imports:
            ty = imp.type
            if not isinstance(ty, wasmtime.FuncType):
                raise WitnessError(
                    f"witness: {wasm} imports {imp.module}.{imp.name}, not a function"
                )
            handler = handlers.get(imp.name or "", self._unknown_import(imp.name or "?"))
            imports.append(wasmtime.Func(self._store, ty, handler, access_caller=True))
        instance = wasmtime.Instance(self._store, circuit, imports)
        ex = instance.exports(self._store)
        self._ex = ex
        if "getVersion" not in ex or ex["getVersion"](self._store) != 2:
            raise WitnessError(f"witness: {wasm} is not a circom 2 witness calculator")
        self._glue = wasmtime.Instance(
            self._store,
            glue,
            [
                ex["init"],
                ex["getWitness"],
                ex["readSharedRWMemory"],
                ex["writeSharedRWMemory"],
                ex["setInputSignal"],
            ],
        ).exports(self._store)
        self._mem = self._glue["memory"]
        assert isinstance(self._mem, wasmtime.Memory)
        self.n32 = ex["getFieldNumLen32"](self._store)
        self.n8 = self.n32 * 4
        ex["getRawPrime"](self._store)
        self._prime_bytes = self._shared_words(self._store)
        self.prime = int.from_bytes(self._prime_bytes, "little")
        self.witness_size = ex["getWitnessSize"](self._store)
        self.input_size = ex["getInputSize"](self._store)
        self._inputs: dict[str, tuple[int, int, int]] = {}
        self._mem_size = self._mem.data_len(self._store)
        self._mem_fit(self.witness_size * self.n8)
        self._header = (
            b"wtns"
            + struct.pack("<II", 2, 2)
            + struct.pack("<IQ", 1, 8 + self.n8)
            + struct.pack("<I", self.n8)
            + self._prime_bytes
            + struct.pack("<I", self.witness_size)
            + struct.pack("<IQ", 2, self.n8 * self.witness_size)
        )

    # --- the runtime imports (circom_runtime's, minus console output) ---

    def _shared_words(self, store: Any) -> bytes:
        read = self._ex["readSharedRWMemory"]
        return b"".join(struct.pack("<i", read(store, j)) for j in range(self.n32))

    def _message_text(self, caller: Any) -> str:
        get = self._ex["getMessageChar"]
        chars = []
        while (c := get(caller)) != 0 and len(chars) < 4096:
            chars.append(chr(c & 0xFF))
        return "".join(chars)

    def _exception(self, caller: Any, code: int) -> None:
        self._error = f"{_EXCEPTIONS.get(code, 'Unknown error.')} {self._error}".strip()
        raise WitnessError(self._error)

    def _print_error(self, caller: Any) -> None:
        self._error += self._message_text(caller) + "\n"

    def _write_buffer(self, caller: Any) -> None:
        # circuit log(): kept for an error message, never printed (stdout may carry JSON)
        self._message = (self._message + " " + self._message_text(caller))[-4096:]

    def _show_shared(self, caller: Any) -> None:
        value = int.from_bytes(self._shared_words(caller), "little")
        self._message = f"{self._message} {value}"[-4096:]

    def _unknown_import(self, name: str) -> Any:
        def handler(caller: Any, *args: Any) -> None:
            self._error = f"the wasm called runtime.{name}{args}, which this runtime lacks"
            raise WitnessError(self._error)

        return handler

    # --- one witness ---

    def _mem_fit(self, size: int) -> None:
        """Grow the glue's memory to hold `size` bytes (the witness, then the inputs)."""
        if size > self._mem_size:
            self._mem.grow(self._store, (size - self._mem_size + _PAGE - 1) // _PAGE)
            self._mem_size = self._mem.data_len(self._store)

    def _lookup(self, name: str) -> tuple[int, int, int]:
        """(hash high, hash low, number of values) of an input, asked of the wasm once."""
        hit = self._inputs.get(name)
        if hit is None:
            msb, lsb = fnv1a64(name)
            hit = (msb, lsb, self._ex["getInputSignalSize"](self._store, msb, lsb))
            if len(self._inputs) < 1024:
                self._inputs[name] = hit
        return hit

    def _encode(self, circuit_input: Mapping[str, Any]) -> tuple[bytes, int]:
        """The glue's input table and the values after it (at the witness's end), and the
        number of entries; refuses what the circuit would not take, naming the input, before
        the wasm sees any of it."""
        base = self.witness_size * self.n8
        table, values, total = [], [], 0
        src = base + 16 * len(circuit_input)
        for name, value in circuit_input.items():
            flat = _flatten(name, value)
            msb, lsb, size = self._lookup(name)
            if size <= 0:  # no input has that name's hash
                raise WitnessError(f"witness: {name} is not an input of the circuit")
            if len(flat) != size:
                raise WitnessError(
                    f"witness: input {name} has {len(flat)} values, the circuit takes {size}"
                )
            table.append(struct.pack("<iiII", msb, lsb, src, size))
            values += [_field_value(n, v, self.prime).to_bytes(self.n8, "little") for n, v in flat]
            src += size * self.n8
            total += size
        if total != self.input_size:
            raise WitnessError(
                f"witness: {total} input values given, the circuit takes {self.input_size}"
            )
        return b"".join(table) + b"".join(values), len(table)

    def values(self, circuit_input: Mapping[str, Any]) -> bytes:
        """The witness values, `n8` little-endian bytes each (the .wtns values section)."""
        if not self.alive:
            raise WitnessError("witness: this calculator trapped before; start another")
        data, entries = self._encode(circuit_input)
        store, base = self._store, self.witness_size * self.n8
        self._error = ""
        try:
            self._mem_fit(base + len(data))
            self._mem.write(store, data, base)
            self._glue["calc"](store, base, entries, self.n32, self.witness_size)
            return bytes(self._mem.read(store, 0, base))
        except Exception as exc:
            # a trap: a circuit assert (exceptionHandler), or the wasm's own (out of bounds,
            # stack overflow); the instance's memory is half-written, so it is not reused
            self.alive = False
            if self._error:
                raise WitnessError(self._explain(circuit_input)) from None
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise WitnessError(f"witness: the circuit's wasm trapped: {detail}") from None

    def wtns(self, circuit_input: Mapping[str, Any]) -> bytes:
        """The .wtns file bytes (iden3 binfile, version 2), as `snarkjs wtns calculate`."""
        return self._header + self.values(circuit_input)

    def witness(self, circuit_input: Mapping[str, Any]) -> list[int]:
        """The witness as integers; index 0 is the constant 1, then the public outputs."""
        raw, n8 = self.values(circuit_input), self.n8
        return [int.from_bytes(raw[i : i + n8], "little") for i in range(0, len(raw), n8)]

    def _explain(self, circuit_input: Mapping[str, Any]) -> str:
        """The calculator's message, led by the circuit's failing statement and the inputs it
        reads (from the outermost `Error in template Main line: N` and circuits/)."""
        text = self._error.strip()
        sources = _circuit_source(self.wasm)
        for template, line in reversed(_FRAME.findall(text)):
            source = sources.get(template)
            if source is None:
                continue
            try:
                statement = source.read_text().splitlines()[int(line) - 1].strip()
            except (OSError, IndexError):
                break
            named = [n for n in dict.fromkeys(_IDENT.findall(statement)) if n in circuit_input]
            where = f"{source.relative_to(paths.ROOT)}:{line} `{statement}`"
            lead = f"input {', '.join(named)} rejected by the circuit" if named else where
            return f"witness: {lead} ({where if named else 'no input on that line'}): {text}"
        return f"witness: {text}"

    @property
    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        self.alive = False


class WasmWitness:
    """Witnesses of one circuit from up to `size` wasm instances; thread-safe.

    wasmtime releases the GIL while the wasm runs, so two threads compute two witnesses on two
    cores. Instances start lazily (the compiled module is shared)."""

    def __init__(self, wasm: Path, size: int = 1) -> None:
        self.wasm = paths.require(wasm)
        self._pool: WorkerPool[WitnessCalculator] = WorkerPool(
            size, lambda: WitnessCalculator(self.wasm)
        )

    def wtns(self, circuit_input: Mapping[str, Any]) -> bytes:
        with self._pool.use() as calc:
            return calc.wtns(circuit_input)

    def witness(self, circuit_input: Mapping[str, Any]) -> list[int]:
        with self._pool.use() as calc:
            return calc.witness(circuit_input)

    def close(self) -> None:
        self._pool.close()


def witness_values(wasm: Path, circuit_input: Mapping[str, Any]) -> Sequence[int]:
    """One witness from a fresh calculator (tests, tools)."""
    return WitnessCalculator(wasm).witness(circuit_input)
