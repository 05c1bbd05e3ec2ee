"""Trusted-setup bookkeeping: pinned phase-1 hashes and build/manifest.json (docs/trusted-setup.md).

The Makefile runs circom and snarkjs; this module checks what goes in (a supplied ptau must
match its published blake2b-512) and records or re-checks what comes out (SHA-256 of every
artefact, the contribution chain as `snarkjs zkey verify` reported it, the ceremony kind).
The manifest holds no timestamps and no absolute paths, so two dev setups from the same
pinned inputs write byte-identical manifests.

Invoked as `python -m vbill.zk.setup <command>`; stdlib + pydantic only.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import re
import struct
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from vbill.bindings import BindingArtefacts, artefacts, top_level
from vbill.errors import InputError, ToolError, VbillError, VerificationFailed
from vbill.paths import BUILD, CIRCUITS, MANIFEST, NODE_MODULES, R1CS, ROOT, VKEY, WASM, ZKEY
from vbill.zk import circuits

PINNED_PTAU = ROOT / "ptau" / "pinned.json"
CIRCUITS_JSON = CIRCUITS / "circuits.json"
VERIFIER = BUILD / "BillingVerifier.sol"
TOOLS = ("circom2", "snarkjs", "circomlib")
MANIFEST_VERSION = 1

Ceremony = Literal["dev-insecure", "contributed"]
PtauSource = Literal["dev-beacon", "pinned"]


# --- manifest model (the file is an edge: validated on read) ---


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Artefact(_Strict):
    path: str  # relative to the repository root
    sha256: str


class Contribution(_Strict):
    """One phase-2 contribution as `snarkjs zkey verify` reported it, in chain order."""

    index: int
    name: str
    kind: Literal["beacon", "random"]
    hash: str  # snarkjs contribution hash (blake2b-512, hex)
    beacon_hash: str | None = None
    beacon_iterations_exp: int | None = None


class Ptau(_Strict):
    path: str
    power: int
    source: PtauSource
    blake2b_512: str
    beacon_hash: str | None = None  # dev ceremony only: the public beacon that made it
    beacon_iterations_exp: int | None = None


class _BindingFields(BaseModel):
    """One binding's circuit, ceremony and artefacts, declared once: a BindingRecord, and v1's
    at the manifest's top level."""

    model_config = ConfigDict(frozen=True)

    binding_version: str
    circuit: str
    template: str
    public_signals: list[str]
    ceremony: Ceremony
    constraints: int
    wires: int
    circuit_sources_sha256: str
    circuit_hash: str  # snarkjs's hash of the circuit, printed by `zkey verify`
    ptau: Ptau
    contributions: list[Contribution]
    artifacts: dict[str, Artefact]  # r1cs, wasm, zkey, vkey (+ verifier once rendered)
    vkey_sha256: str  # convenience copy of artifacts["vkey"].sha256, the value bundles carry


class BindingRecord(_BindingFields):
    """One binding's circuit, ceremony and artefacts: what the top level of the manifest says
    for v1, and what `bindings[version]` says for every later binding."""

    model_config = ConfigDict(extra="forbid")


class Manifest(_BindingFields):
    """build/manifest.json. Extra top-level keys (e.g. "contracts", written by
    vbill.chain.contracts after `make verifier`) are kept as they are."""

    model_config = ConfigDict(extra="allow")

    manifest_version: int
    toolchain: dict[str, str]
    # Bindings after v1 (v1 stays at the top level, where its readers look), by version.
    bindings: dict[str, BindingRecord] | None = None

    def binding(self, version: str) -> BindingRecord | None:
        """The record of one binding version, v1's from the top level; None if not set up."""
        if version == self.binding_version:
            fields = set(BindingRecord.model_fields)
            return BindingRecord(**{k: getattr(self, k) for k in fields})
        return (self.bindings or {}).get(version)


def load_manifest(path: Path = MANIFEST) -> Manifest:
    """Read and validate build/manifest.json."""
    if not path.exists():
        raise ToolError(f"missing {_rel(path)}; run `make setup`")
    return Manifest.model_validate_json(path.read_bytes())


@contextlib.contextmanager
def manifest_lock(path: Path = MANIFEST) -> Iterator[None]:
    """Hold the manifest's writer lock (an flock beside it) around a read-modify-write, so
    bindings set up in parallel (`make -j2 setup`) never lose each other's records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def dump_manifest(manifest: Manifest, path: Path = MANIFEST) -> None:
    """Canonical form (sorted keys, 2-space indent), the same vbill.chain.contracts writes,
    so the file's bytes depend only on its content and not on which tool wrote it last."""
    data = manifest.model_dump(mode="json", exclude_none=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


# --- hashing ---


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def blake2b_file(path: Path) -> str:
    """blake2b-512 hex digest, the algorithm of the published ptau hashes (`b2sum`)."""
    h = hashlib.blake2b(digest_size=64)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def circuit_sources(circuit: str = "billing_binding", circuits_dir: Path = CIRCUITS) -> list[Path]:
    """A circuit's own sources: its main file and every local file it includes (transitively);
    circomlib is pinned by the toolchain versions instead."""
    return circuits.sources(circuit, circuits_dir)


def circuit_sources_sha256(circuit: str = "billing_binding", circuits_dir: Path = CIRCUITS) -> str:
    """One digest over a circuit's sources and its own circuits.json entry: sorted
    `path NUL sha256(content) LF` lines, then `circuits.json[<circuit>] NUL sha256(entry) LF`
    (the entry without the fields that only name files, so another binding's entry, or a
    renamed artefact, does not change this binding's digest)."""
    files = circuit_sources(circuit, circuits_dir)
    lines = "".join(f"{p.relative_to(circuits_dir.resolve())}\0{sha256_file(p)}\n" for p in files)
    entry = hashlib.sha256(circuits.keyed_entry(circuit, circuits_dir).encode()).hexdigest()
    lines += f"circuits.json[{circuit}]\0{entry}\n"
    return hashlib.sha256(lines.encode()).hexdigest()


def toolchain_versions() -> dict[str, str]:
    versions = {}
    for tool in TOOLS:
        pkg = NODE_MODULES / tool / "package.json"
        if not pkg.exists():
            raise ToolError(f"{tool} not installed in node_modules; run `make install`")
        versions[tool] = json.loads(pkg.read_text())["version"]
    return versions


def _rel(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# --- phase 1 ---


@dataclass(frozen=True)
class PinnedPtau:
    name: str
    power: int
    blake2b_512: str


def pinned_ptau(pinned: Path = PINNED_PTAU) -> dict[str, PinnedPtau]:
    doc = json.loads(pinned.read_text())
    return {
        name: PinnedPtau(name, entry["power"], entry["blake2b_512"])
        for name, entry in doc["files"].items()
    }


def check_pinned_ptau(path: Path, pinned: Path = PINNED_PTAU) -> PinnedPtau:
    """Accept a phase-1 file only if its blake2b-512 is the one published for its file name."""
    if not path.is_file():
        raise InputError("ptau", f"{path} does not exist")
    table = pinned_ptau(pinned)
    entry = table.get(path.name)
    if entry is None:
        raise InputError(
            "ptau",
            f"{path.name} is not a pinned phase-1 file; expected one of "
            f"{', '.join(sorted(table))} (keep the published file name)",
        )
    actual = blake2b_file(path)
    if actual != entry.blake2b_512:
        raise VerificationFailed(
            f"ptau: {path} has blake2b-512 {actual}, but {entry.name} is pinned to "
            f"{entry.blake2b_512} (ptau/pinned.json); refusing a tampered or truncated file"
        )
    return entry


# --- r1cs and snarkjs output ---


@dataclass(frozen=True)
class R1csInfo:
    wires: int
    constraints: int
    outputs: int
    public_inputs: int
    private_inputs: int


def _header_section(path: Path, magic: bytes) -> bytes:
    """Section type 1 (the header) of an iden3 binary file (.r1cs, .ptau), read without loading
    the rest: a phase-1 file is megabytes of points."""
    with path.open("rb") as f:
        if f.read(4) != magic:
            raise InputError(magic.decode(), f"{path} is not a {magic.decode()} file")
        _version, n_sections = struct.unpack("<II", f.read(8))
        for _ in range(n_sections):
            kind, size = struct.unpack("<IQ", f.read(12))
            if kind == 1:
                return f.read(size)
            f.seek(size, 1)
    raise InputError(magic.decode(), f"{path} has no header section")


def r1cs_info(path: Path = R1CS) -> R1csInfo:
    """The header of a .r1cs file: wires, constraints, outputs, public and private inputs."""
    head = _header_section(path, b"r1cs")
    n8 = struct.unpack_from("<I", head, 0)[0]
    wires, outs, pub, prv = struct.unpack_from("<IIII", head, 4 + n8)
    constraints = struct.unpack_from("<I", head, 4 + n8 + 16 + 8)[0]
    return R1csInfo(wires, constraints, outs, pub, prv)


def ptau_power(path: Path) -> int:
    """The power a .ptau file holds (2^power points), from its header: the dev phase 1 is one
    file at the largest power any binding needs, so a binding's record says the file's."""
    head = _header_section(path, b"ptau")
    n8 = struct.unpack_from("<I", head, 0)[0]
    return int(struct.unpack_from("<I", head, 4 + n8)[0])


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEX_LINE = re.compile(r"^\s+((?:[0-9a-f]{8}\s*)+)$")


@dataclass(frozen=True)
class ZkeyVerifyReport:
    ok: bool
    circuit_hash: str
    contributions: list[Contribution]


def parse_zkey_verify(log: str) -> ZkeyVerifyReport:
    """Read the contribution chain out of `snarkjs zkey verify` output."""
    lines = [_ANSI.sub("", line).replace("[INFO]  snarkJS: ", "") for line in log.splitlines()]
    circuit_hash = ""
    contributions: list[dict[str, object]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        head = re.match(r"^contribution #(\d+) (.*):$", line)
        if line.startswith("Circuit hash:") or head:
            digest = ""
            j = i + 1
            while j < len(lines) and _HEX_LINE.match(lines[j]):
                digest += re.sub(r"\s", "", lines[j])
                j += 1
            if head:
                contributions.append(
                    {"index": int(head.group(1)), "name": head.group(2), "hash": digest}
                )
            else:
                circuit_hash = digest
            i = j
            continue
        beacon = re.match(r"^Beacon generator: ([0-9a-fA-F]+)$", line)
        if beacon and contributions:
            contributions[-1]["beacon_hash"] = beacon.group(1).lower()
        iters = re.match(r"^Beacon iterations Exp: (\d+)$", line)
        if iters and contributions:
            contributions[-1]["beacon_iterations_exp"] = int(iters.group(1))
        i += 1
    records = [
        Contribution(kind="beacon" if "beacon_hash" in c else "random", **c)  # type: ignore[arg-type]
        for c in contributions
    ]
    records.sort(key=lambda c: c.index)
    ok = any(line.strip() == "ZKey Ok!" for line in lines)
    return ZkeyVerifyReport(ok, circuit_hash, records)


def ceremony_kind(ptau_source: PtauSource, contributions: Iterable[Contribution]) -> Ceremony:
    """Secure only if phase 1 is the public Hermez ceremony and someone added real randomness.

    A beacon's randomness is public, so beacons alone (in either phase) leave the toxic waste
    computable by anyone: such a setup is `dev-insecure`.
    """
    has_random = any(c.kind == "random" for c in contributions)
    return "contributed" if ptau_source == "pinned" and has_random else "dev-insecure"


# --- manifest writing and checking ---


def _artefact(path: Path) -> Artefact:
    return Artefact(path=_rel(path), sha256=sha256_file(path))


def build_binding_record(
    binding: BindingArtefacts,
    *,
    ptau_path: Path,
    ptau_source: PtauSource,
    verify_log: str,
    beacon_hash: str | None = None,
    beacon_exp: int | None = None,
) -> BindingRecord:
    """Describe one binding's artefacts now in build/; `verify_log` is `zkey verify` output."""
    report = parse_zkey_verify(verify_log)
    if not report.ok:
        raise VerificationFailed("zkey: `snarkjs zkey verify` did not report `ZKey Ok!`")
    if not report.contributions:
        raise VerificationFailed("zkey: no phase-2 contribution; the key is forgeable")
    if ptau_source == "pinned":
        check_pinned_ptau(ptau_path)
    circuit = json.loads(CIRCUITS_JSON.read_text())[binding.circuit]
    if circuit["binding_version"] != binding.version:
        raise InputError("circuits.json", f"{binding.circuit} is not {binding.version}")
    info = r1cs_info(binding.r1cs)
    power = ptau_power(ptau_path) if ptau_source == "dev-beacon" else _pinned_power(ptau_path)
    # The verifier is not recorded here even if an old one sits in build/: setup output must
    # be a function of the pinned inputs only. `make verifier` records the one it renders
    # (contracts.verifier_sol_sha256), and `record` can add it under artifacts.verifier.
    files = {"r1cs": binding.r1cs, "wasm": binding.wasm, "zkey": binding.zkey, "vkey": binding.vkey}
    records = {k: _artefact(p) for k, p in files.items()}
    return BindingRecord(
        binding_version=circuit["binding_version"],
        circuit=circuit["file"],
        template=circuit["template"],
        public_signals=list(circuit["pubs"]),
        ceremony=ceremony_kind(ptau_source, report.contributions),
        constraints=info.constraints,
        wires=info.wires,
        circuit_sources_sha256=circuit_sources_sha256(binding.circuit),
        circuit_hash=report.circuit_hash,
        ptau=Ptau(
            path=_rel(ptau_path),
            power=power,
            source=ptau_source,
            blake2b_512=blake2b_file(ptau_path),
            beacon_hash=beacon_hash if ptau_source == "dev-beacon" else None,
            beacon_iterations_exp=beacon_exp if ptau_source == "dev-beacon" else None,
        ),
        contributions=report.contributions,
        artifacts=records,
        vkey_sha256=records["vkey"].sha256,
    )


def build_manifest(
    *,
    ptau_path: Path,
    ptau_source: PtauSource,
    verify_log: str,
    beacon_hash: str | None = None,
    beacon_exp: int | None = None,
) -> Manifest:
    """build/manifest.json for the artefacts now in build/ of the binding it records at its
    top level (v1)."""
    record = build_binding_record(
        top_level(),
        ptau_path=ptau_path,
        ptau_source=ptau_source,
        verify_log=verify_log,
        beacon_hash=beacon_hash,
        beacon_exp=beacon_exp,
    )
    return _with_top_level(None, record)


def keys_reusable(
    binding: BindingArtefacts, *, ptau_path: Path, phase2_beacon: str, phase2_exp: int
) -> str | None:
    """None when the keys in build/ are the ones `make setup` would make from the r1cs just
    compiled into build/: the binding's record names this r1cs, this zkey and vkey, this ptau,
    and a chain that starts with this phase-2 beacon. Else why not. A circuit whose sources
    moved but compile to the same r1cs then keeps its keys (and any contribution to them)."""
    if not MANIFEST.exists():
        return f"no {_rel(MANIFEST)}"
    record = load_manifest().binding(binding.version)
    if record is None:
        return f"{binding.version} is not recorded"
    for kind, path in (("r1cs", binding.r1cs), ("zkey", binding.zkey), ("vkey", binding.vkey)):
        if not path.exists() or sha256_file(path) != record.artifacts[kind].sha256:
            return f"{_rel(path)} is not the recorded {kind}"
    if not ptau_path.exists() or blake2b_file(ptau_path) != record.ptau.blake2b_512:
        return f"the keys were set up from another ptau than {_rel(ptau_path)}"
    first = record.contributions[0] if record.contributions else None
    if first is None or (first.beacon_hash, first.beacon_iterations_exp) != (
        phase2_beacon.lower(),
        phase2_exp,
    ):
        return "the recorded chain does not start with this phase-2 beacon"
    return None


def _pinned_power(path: Path) -> int:
    return pinned_ptau()[path.name].power


def check_manifest(
    manifest: Manifest,
    *,
    rebuilt: dict[str, Path],
    verify_log: str | None = None,
    binding: str | None = None,
) -> list[str]:
    """Compare one binding's files (rebuilt by an auditor, or the ones in build/) with the
    manifest; by default the top level's binding (v1). Returns human-readable mismatches;
    empty means everything matched.
    """
    problems: list[str] = []
    top = top_level().version
    if manifest.binding_version != top:
        problems.append(f"binding_version: manifest says {manifest.binding_version}, code {top}")
    binding = binding or top
    entry = manifest.binding(binding)
    if entry is None:
        return [*problems, f"{binding}: not recorded in the manifest"]
    for kind, path in rebuilt.items():
        record = entry.artifacts.get(kind)
        if record is None:
            problems.append(f"{kind}: not recorded in the manifest")
        elif not path.exists():
            problems.append(f"{kind}: {_rel(path)} is missing")
        elif (actual := sha256_file(path)) != record.sha256:
            problems.append(
                f"{kind}: {_rel(path)} has sha256 {actual}, manifest records {record.sha256}"
            )
    if entry.vkey_sha256 != entry.artifacts["vkey"].sha256:
        problems.append("vkey_sha256 disagrees with artifacts.vkey.sha256")
    ptau = ROOT / entry.ptau.path
    if entry.ptau.source == "pinned" and ptau.exists():
        try:
            check_pinned_ptau(ptau)
        except VbillError as exc:
            problems.append(str(exc))
    if not ptau.exists():
        problems.append(f"ptau: {entry.ptau.path} is missing")
    elif blake2b_file(ptau) != entry.ptau.blake2b_512:
        problems.append(f"ptau: {entry.ptau.path} differs from the manifest's blake2b-512")
    if entry.circuit_sources_sha256 != circuit_sources_sha256(entry.circuit):
        problems.append("circuit sources changed since the manifest was written")
    if entry.ceremony != ceremony_kind(entry.ptau.source, entry.contributions):
        problems.append(f"ceremony: {entry.ceremony} does not follow from the contributions")
    if verify_log is not None:
        report = parse_zkey_verify(verify_log)
        if not report.ok:
            problems.append("zkey: `snarkjs zkey verify` failed against the r1cs and ptau")
        if report.contributions != entry.contributions:
            problems.append("contributions: zkey chain differs from the manifest's record")
        if report.circuit_hash != entry.circuit_hash:
            problems.append("circuit_hash: zkey verify reports a different circuit hash")
    return problems


# --- command line (used by the Makefile) ---


def _cmd_check_ptau(args: argparse.Namespace) -> None:
    entry = check_pinned_ptau(Path(args.ptau))
    print(f"ptau: {entry.name} matches its pinned blake2b-512 (power {entry.power})")


def _cmd_write_binding(args: argparse.Namespace) -> None:
    """Record one binding in build/manifest.json: the first (v1) at the top level, where its
    readers look, every later one under `bindings`. Re-writing an unchanged record leaves the
    file's bytes as they were; `make setup` does it on every run."""
    with manifest_lock():
        _write_binding(args)


def _write_binding(args: argparse.Namespace) -> None:
    current = load_manifest() if MANIFEST.exists() else None
    if args.from_manifest:  # after contribute/beacon/vkey: the phase 1 the record names
        recorded = current.binding(args.binding) if current else None
        if recorded is None:
            raise ToolError(f"{args.binding} is not recorded in {_rel(MANIFEST)}; run `make setup`")
        ptau = recorded.ptau
        source, ptau_path = ptau.source, ROOT / ptau.path
        beacon_hash, beacon_exp = ptau.beacon_hash, ptau.beacon_iterations_exp
    elif args.ptau and args.ptau_source:
        source, ptau_path = args.ptau_source, Path(args.ptau)
        beacon_hash, beacon_exp = args.beacon_hash, args.beacon_exp
    else:
        raise InputError("write-binding", "give --ptau and --ptau-source, or --from-manifest")
    record = build_binding_record(
        artefacts(args.binding),
        ptau_path=ptau_path,
        ptau_source=source,
        verify_log=Path(args.verify_log).read_text(),
        beacon_hash=beacon_hash,
        beacon_exp=beacon_exp,
    )
    if artefacts(args.binding).top_level:
        manifest = _with_top_level(current, record)
    elif current is None:
        first = top_level().version
        raise ToolError(f"missing {_rel(MANIFEST)}: set up {first} first (`make setup`)")
    else:
        bindings = {**(current.bindings or {}), args.binding: record}
        manifest = current.model_copy(update={"bindings": bindings})
    dump_manifest(manifest)
    names = ", ".join(f"{c.name} ({c.kind})" for c in record.contributions)
    print(
        f"manifest: {args.binding} recorded ({record.constraints} constraints, ptau 2^"
        f"{record.ptau.power}, ceremony {record.ceremony}; chain: {names})"
    )


def _with_top_level(current: Manifest | None, record: BindingRecord) -> Manifest:
    """The manifest with `record` (v1's) at its top level. The other bindings' records are
    kept; so are what describes v1's vkey from outside (the rendered verifier, `contracts`),
    but only while that vkey is unchanged."""
    top = {k: getattr(record, k) for k in BindingRecord.model_fields}
    extra: dict[str, object] = {}
    if current is not None and current.vkey_sha256 == record.vkey_sha256:
        extra = dict(current.model_extra or {})
        if "verifier" in current.artifacts:
            top["artifacts"] = {**record.artifacts, "verifier": current.artifacts["verifier"]}
    return Manifest(
        manifest_version=MANIFEST_VERSION,
        toolchain=toolchain_versions(),
        bindings=current.bindings if current is not None else None,
        **top,
        **extra,
    )


def _cmd_reuse_keys(args: argparse.Namespace) -> None:
    why_not = keys_reusable(
        artefacts(args.binding),
        ptau_path=Path(args.ptau),
        phase2_beacon=args.phase2_beacon,
        phase2_exp=args.phase2_exp,
    )
    if why_not is not None:  # the usual answer for a first setup: not an error
        print(f"setup: {args.binding} needs new keys ({why_not})")
        sys.exit(1)
    print(
        f"setup: {args.binding} keeps its keys: the recompiled r1cs is the one they were set up for"
    )


def _cmd_record(args: argparse.Namespace) -> None:
    """Refresh artefact hashes (e.g. after `make verifier` wrote BillingVerifier.sol)."""
    with manifest_lock():
        _record()


def _record() -> None:
    manifest = load_manifest()
    artefacts = dict(manifest.artifacts)
    for kind, path in (("r1cs", R1CS), ("wasm", WASM), ("zkey", ZKEY), ("vkey", VKEY)):
        artefacts[kind] = _artefact(path)
    if VERIFIER.exists():
        artefacts["verifier"] = _artefact(VERIFIER)
    else:
        artefacts.pop("verifier", None)
    updated = manifest.model_copy(
        update={"artifacts": artefacts, "vkey_sha256": artefacts["vkey"].sha256}
    )
    dump_manifest(updated)
    print(f"manifest: recorded {', '.join(sorted(artefacts))}")


def _cmd_check(args: argparse.Namespace) -> None:
    manifest = load_manifest()
    if not artefacts(args.binding).top_level:
        _check_binding(manifest, args)
        return
    rebuilt = {
        "r1cs": Path(args.r1cs or R1CS),
        "wasm": Path(args.wasm or WASM),
        "zkey": Path(args.zkey or ZKEY),
        "vkey": Path(args.vkey or VKEY),
    }
    if args.verifier:
        rebuilt["verifier"] = Path(args.verifier)
    log = Path(args.verify_log).read_text() if args.verify_log else None
    problems = check_manifest(manifest, rebuilt=rebuilt, verify_log=log)
    if args.render_verifier:
        problems += _check_rendered_verifier(manifest, rebuilt["vkey"], Path(args.render_verifier))
    if problems:
        raise VerificationFailed(
            "setup does not match build/manifest.json:\n  " + "\n  ".join(problems)
        )
    print(
        f"verify-setup: OK ({', '.join(sorted(rebuilt))} match; ceremony {manifest.ceremony}; "
        f"{len(manifest.contributions)} contribution(s))"
    )


def _check_binding(manifest: Manifest, args: argparse.Namespace) -> None:
    """verify-setup for a binding after v1: its rebuilt r1cs, wasm and vkey, and its zkey."""
    built = artefacts(args.binding)
    rebuilt = {
        "r1cs": Path(args.r1cs or built.r1cs),
        "wasm": Path(args.wasm or built.wasm),
        "zkey": Path(args.zkey or built.zkey),
        "vkey": Path(args.vkey or built.vkey),
    }
    log = Path(args.verify_log).read_text() if args.verify_log else None
    problems = check_manifest(manifest, rebuilt=rebuilt, verify_log=log, binding=args.binding)
    if problems:
        raise VerificationFailed(
            f"{args.binding} does not match build/manifest.json:\n  " + "\n  ".join(problems)
        )
    print(f"verify-setup: {args.binding} OK ({', '.join(sorted(rebuilt))} match)")


def _check_rendered_verifier(manifest: Manifest, vkey: Path, out: Path) -> list[str]:
    """Re-render the Solidity verifier from `vkey`; it must equal build/ and the manifest."""
    if not VERIFIER.exists():
        print("verify-setup: no build/BillingVerifier.sol; verifier check skipped")
        return []
    try:
        from vbill.chain.contracts import render_verifier  # optional: owned by the contracts module
    except ImportError as exc:
        print(f"verify-setup: verifier renderer unavailable ({exc}); verifier check skipped")
        return []
    render_verifier(vkey, out)
    rendered = sha256_file(out)
    problems = []
    if rendered != sha256_file(VERIFIER):
        problems.append("verifier: build/BillingVerifier.sol differs from a fresh rendering")
    recorded = (
        {manifest.artifacts["verifier"].sha256} if "verifier" in manifest.artifacts else set()
    )
    contracts = (manifest.model_extra or {}).get("contracts")
    if isinstance(contracts, dict) and "verifier_sol_sha256" in contracts:
        recorded.add(contracts["verifier_sol_sha256"])
    if any(h != rendered for h in recorded):
        problems.append("verifier: the manifest records a different BillingVerifier.sol")
    if not problems:
        print("verify-setup: re-rendered BillingVerifier.sol matches build/ and the manifest")
    return problems


def _cmd_get(args: argparse.Namespace) -> None:
    manifest = load_manifest()
    record = manifest.binding(args.binding) if args.binding else manifest
    if record is None:
        raise ToolError(f"{args.binding} is not recorded in {_rel(MANIFEST)}; run `make setup`")
    value: object = json.loads(record.model_dump_json())
    for part in args.key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise InputError("key", f"{args.key} is not in the manifest")
        value = value[part]
    print(value if isinstance(value, str | int) else json.dumps(value))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vbill.zk.setup", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check-ptau", help="check a phase-1 file against ptau/pinned.json")
    c.add_argument("ptau")
    c.set_defaults(func=_cmd_check_ptau)

    b = sub.add_parser("write-binding", help="record one binding in build/manifest.json")
    b.add_argument("--binding", required=True, help="binding version, e.g. bn128-poseidon8-v2")
    b.add_argument("--ptau")
    b.add_argument("--ptau-source", choices=["dev-beacon", "pinned"])
    b.add_argument("--from-manifest", action="store_true", help="reuse the record's ptau")
    b.add_argument("--verify-log", required=True, help="output of `snarkjs zkey verify`")
    b.add_argument("--beacon-hash", help="dev phase-1 beacon (dev-beacon only)")
    b.add_argument("--beacon-exp", type=int, help="dev phase-1 beacon iterations exponent")
    b.set_defaults(func=_cmd_write_binding)

    u = sub.add_parser(
        "reuse-keys", help="exit 0 if build/'s keys are the ones setup would make (else 1)"
    )
    u.add_argument("--binding", required=True)
    u.add_argument("--ptau", required=True)
    u.add_argument("--phase2-beacon", required=True)
    u.add_argument("--phase2-exp", type=int, required=True)
    u.set_defaults(func=_cmd_reuse_keys)

    r = sub.add_parser(
        "record", help="re-hash build/ artefacts (and the verifier) into the manifest"
    )
    r.set_defaults(func=_cmd_record)

    k = sub.add_parser("check", help="compare (rebuilt) artefacts with the manifest")
    k.add_argument("--binding", default=top_level().version, help="binding version to check")
    k.add_argument("--r1cs")
    k.add_argument("--wasm")
    k.add_argument("--zkey")
    k.add_argument("--vkey")
    k.add_argument("--verifier", help="re-rendered BillingVerifier.sol to compare")
    k.add_argument("--verify-log", help="output of `snarkjs zkey verify` on the final zkey")
    k.add_argument(
        "--render-verifier",
        metavar="OUT",
        help="if build/BillingVerifier.sol exists, re-render it from --vkey into OUT and compare",
    )
    k.set_defaults(func=_cmd_check)

    g = sub.add_parser("get", help="print one manifest value, e.g. ptau.path")
    g.add_argument("key")
    g.add_argument("--binding", help="read KEY in this binding's record (v1's is the top level)")
    g.set_defaults(func=_cmd_get)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except VbillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
