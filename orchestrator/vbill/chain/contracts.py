"""Render the Groth16 verifiers from the verification keys and compile the contracts with solcjs.

Each binding has its own verifier, generated from one template (jinja2,
contracts/templates/BillingVerifier.sol.j2) with the binding as a parameter, so that it is a pure
function of that binding's vkey: an auditor re-renders it and gets the same bytes. v1's contract
keeps its first name, BillingVerifier (and so its rendered bytes); v2's is BillingVerifierV2.
Compilation uses the pinned npm `solc` through a small node script, so no compiler is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from vbill import jsonio, paths
from vbill.bindings import artefacts
from vbill.bindings.base import Binding
from vbill.bindings.registry import bindings, default
from vbill.errors import InputError, ToolError
from vbill.zk.groth16 import Groth16Error, parse_vkey

TEMPLATE = paths.CONTRACTS / "templates" / "BillingVerifier.sol.j2"
# Where the rendered verifiers and the compiled artefacts go (every deploy rebuilds them):
# build/ by default; VBILL_CONTRACTS_BUILD moves them (and their manifest record) elsewhere, so
# a test run never rewrites build/ under another process reading it.
CONTRACTS_BUILD = Path(os.environ.get("VBILL_CONTRACTS_BUILD") or paths.BUILD)
VERIFIER_SOL = CONTRACTS_BUILD / "BillingVerifier.sol"
CONTRACTS_OUT = CONTRACTS_BUILD / "contracts"
CONTRACTS_MANIFEST = (
    paths.MANIFEST if CONTRACTS_BUILD == paths.BUILD else CONTRACTS_BUILD / "manifest.json"
)
SOURCES = (
    "IBillingVerifier.sol",
    "IBillingSettlement.sol",
    "BillingSettlementBase.sol",
    "BillingSettlement.sol",
)
SETTLEMENT = "BillingSettlement"
# Cancun: supported by Horizen L3 (OP stack) and anvil; transient storage for the reentrancy lock.
EVM_VERSION = "cancun"
OPTIMIZER_RUNS = 10_000


@cache
def _circuits() -> dict[str, Any]:
    declared: dict[str, Any] = json.loads((paths.CIRCUITS / "circuits.json").read_text())
    return declared


@dataclass(frozen=True)
class VerifierSpec:
    """One binding's verifier: its contract and interface names, its on-chain binding id
    (BillingSettlement's constant for it), the settlement's entry points for its charges, and its
    circuit as circuits/circuits.json declares it."""

    binding: str
    binding_id: int
    contract: str
    interface: str
    sol: Path
    settle_fn: str
    batch_fn: str
    anchor_fn: str
    state_keys: bool = False  # its charges chain window states (signals 5 and 6)

    @property
    def circuit(self) -> dict[str, Any]:
        return dict(_circuits()[artefacts(self.binding).circuit])

    @property
    def signal_names(self) -> tuple[str, ...]:
        return tuple(self.circuit["pubs"])

    @property
    def n_public(self) -> int:
        return len(self.signal_names)

    @property
    def vkey(self) -> Path:
        return artefacts(self.binding).vkey


def _verifier(binding: Binding) -> VerifierSpec:
    c = binding.on_chain
    sol = CONTRACTS_BUILD / f"{c.contract}.sol"
    return VerifierSpec(
        binding.version,
        c.binding_id,
        c.contract,
        c.interface,
        sol,
        c.settle_fn,
        c.batch_fn,
        c.anchor_fn,
        c.state_keys,
    )


# Every binding's verifier, as its plug-in declares it (vbill.bindings.<circuit>.on_chain).
VERIFIERS: dict[str, VerifierSpec] = {b.version: _verifier(b) for b in bindings()}
# The settlement's first binding (required by every deployment): the default binding.
FIRST = default().version
# Compiled artefacts, verifiers first (build/contracts/<Name>.json).
NAMES = (*(v.contract for v in VERIFIERS.values()), SETTLEMENT)
# Kept for callers that ask the v1 arity.
N_PUBLIC = VERIFIERS[FIRST].n_public


def verifier_spec(binding: str) -> VerifierSpec:
    """The verifier of a binding version; InputError for one the contracts do not know."""
    try:
        return VERIFIERS[binding]
    except KeyError:
        raise InputError("binding_version", f"no on-chain verifier for {binding!r}") from None


@dataclass(frozen=True)
class Compiled:
    """One compiled contract; hex strings without 0x."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    immutable_ranges: tuple[tuple[int, int], ...]  # (byte offset, length) in deployed code

    def deployed_sha256(self) -> str:
        return sha256_hex(self.deployed_bytecode)


def sha256_hex(hex_code: str) -> str:
    """SHA-256 of the bytes a hex string encodes."""
    return hashlib.sha256(bytes.fromhex(hex_code.removeprefix("0x"))).hexdigest()


def load_vkey(vkey_path: Path = paths.VKEY, binding: str = FIRST) -> dict[str, Any]:
    """The key, checked to parse and to have the binding's number of public signals."""
    paths.require(vkey_path)
    spec = verifier_spec(binding)
    vkey = jsonio.read_file(vkey_path, str(vkey_path))  # bounded: --vkey names any file
    try:
        parse_vkey(vkey)  # fail closed on a malformed key before it reaches Solidity
    except Groth16Error as exc:
        raise InputError(str(vkey_path), f"not a usable verification key: {exc}") from exc
    if int(vkey["nPublic"]) != spec.n_public:
        raise InputError(
            str(vkey_path),
            f"nPublic is {vkey['nPublic']}, the {binding} contracts need {spec.n_public}",
        )
    return vkey


def render_verifier(
    vkey_path: Path = paths.VKEY, out: Path | None = None, binding: str = FIRST
) -> Path:
    """Write the binding's verifier for `vkey_path` to `out` (default: its file in the contracts
    build); the output is a pure function of the key and the binding."""
    spec = verifier_spec(binding)
    out = out or spec.sol
    vkey = load_vkey(vkey_path, binding)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    source = env.get_template(TEMPLATE.name).render(
        vkey_path=vkey_path.name,
        vkey_sha256=hashlib.sha256(vkey_path.read_bytes()).hexdigest(),
        binding_version=binding,
        circuit_template=spec.circuit["template"],
        contract_name=spec.contract,
        interface_name=spec.interface,
        signal_names=spec.signal_names,
        n_public=int(vkey["nPublic"]),
        alpha=vkey["vk_alpha_1"],
        beta=vkey["vk_beta_2"],
        gamma=vkey["vk_gamma_2"],
        delta=vkey["vk_delta_2"],
        ic=vkey["IC"],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(source)
    return out


def standard_json(
    verifier_sol: Path = VERIFIER_SOL, extra_verifiers: Mapping[str, Path] | None = None
) -> dict[str, Any]:
    """The solc standard-JSON input: the rendered verifier(s) and the settlement sources.

    `verifier_sol` is v1's; `extra_verifiers` maps later bindings to their rendered files."""
    sources = {
        f"contracts/{name}": {"content": (paths.CONTRACTS / name).read_text()} for name in SOURCES
    }
    rendered = {FIRST: verifier_sol, **(extra_verifiers or {})}
    for binding, sol in rendered.items():
        sources[f"contracts/{verifier_spec(binding).contract}.sol"] = {
            "content": paths.require(sol).read_text()
        }
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "outputSelection": {
                "*": {
                    "*": [
                        "abi",
                        "evm.bytecode.object",
                        "evm.deployedBytecode.object",
                        "evm.deployedBytecode.immutableReferences",
                    ]
                }
            },
        },
    }


def run_solc(std_input: dict[str, Any]) -> dict[str, Any]:
    """Compile with node_modules/solc; raises ToolError with solc's messages on any error."""
    script = paths.JS / "solc_compile.js"
    try:
        proc = subprocess.run(
            [paths.node(), str(script), str(paths.NODE_MODULES)],
            input=json.dumps(std_input),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError("solcjs timed out after 300 s") from exc
    if proc.returncode != 0:
        raise ToolError(f"solcjs failed: {proc.stderr.strip()[-2000:]}")
    output = json.loads(proc.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ToolError("solc: " + "\n".join(e.get("formattedMessage", str(e)) for e in errors))
    return output


def compile_contracts(
    verifier_sol: Path = VERIFIER_SOL,
    out_dir: Path = CONTRACTS_OUT,
    extra_verifiers: Mapping[str, Path] | None = None,
) -> dict[str, Compiled]:
    """Compile, write build/contracts/<Name>.json and record hashes in the manifest."""
    extra = dict(extra_verifiers or {})
    output = run_solc(standard_json(verifier_sol, extra))
    names = [verifier_spec(b).contract for b in (FIRST, *extra)] + [SETTLEMENT]
    compiled: dict[str, Compiled] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        entry = output["contracts"][f"contracts/{name}.sol"][name]
        deployed = entry["evm"]["deployedBytecode"]
        ranges = tuple(
            sorted(
                (int(r["start"]), int(r["length"]))
                for refs in deployed.get("immutableReferences", {}).values()
                for r in refs
            )
        )
        c = Compiled(
            name, entry["abi"], entry["evm"]["bytecode"]["object"], deployed["object"], ranges
        )
        compiled[name] = c
        artefact = {
            "contractName": name,
            "abi": c.abi,
            "bytecode": "0x" + c.bytecode,
            "deployedBytecode": "0x" + c.deployed_bytecode,
            "immutableRanges": [list(r) for r in c.immutable_ranges],
            "compiler": {
                "solc": output["solcVersion"],
                "evmVersion": EVM_VERSION,
                "optimizerRuns": OPTIMIZER_RUNS,
            },
        }
        (out_dir / f"{name}.json").write_text(json.dumps(artefact, indent=2) + "\n")
    _record_manifest(compiled, output["solcVersion"], {FIRST: verifier_sol, **extra})
    return compiled


def _record_manifest(
    compiled: dict[str, Compiled], solc_version: str, verifier_sols: Mapping[str, Path]
) -> None:
    """Merge a "contracts" entry into the manifest (build/manifest.json), leaving every other
    key alone. v1's rendered verifier stays `verifier_sol_sha256` (what verify-setup checks);
    every binding's is under `verifiers[binding].sol_sha256`."""
    manifest: dict[str, Any] = {}
    if CONTRACTS_MANIFEST.exists():
        manifest = json.loads(CONTRACTS_MANIFEST.read_text())
    manifest["contracts"] = {
        "solc": solc_version,
        "evm_version": EVM_VERSION,
        "optimizer_runs": OPTIMIZER_RUNS,
        "verifier_sol_sha256": sha256_file(verifier_sols[FIRST]),
        "verifiers": {
            binding: {"contract": verifier_spec(binding).contract, "sol_sha256": sha256_file(sol)}
            for binding, sol in verifier_sols.items()
        },
        **{
            c.name: {
                "bytecode_sha256": sha256_hex(c.bytecode),
                "deployed_bytecode_sha256": c.deployed_sha256(),
                "abi_sha256": hashlib.sha256(
                    json.dumps(c.abi, sort_keys=True, separators=(",", ":")).encode()
                ).hexdigest(),
            }
            for c in compiled.values()
        },
    }
    CONTRACTS_MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    tmp = CONTRACTS_MANIFEST.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(CONTRACTS_MANIFEST)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_compiled(name: str, out_dir: Path = CONTRACTS_OUT) -> Compiled:
    """Read a compiled artefact back; ToolError naming `make verifier` if it is missing."""
    path = paths.require(out_dir / f"{name}.json", "run `make verifier` or `vbill deploy`")
    data = json.loads(path.read_text())
    return Compiled(
        name,
        data["abi"],
        data["bytecode"].removeprefix("0x"),
        data["deployedBytecode"].removeprefix("0x"),
        tuple((int(a), int(b)) for a, b in data.get("immutableRanges", [])),
    )


def default_vkeys(v1: Path = paths.VKEY) -> dict[str, Path]:
    """v1's key, and each later binding's whose setup has been built (`make setup-v2`)."""
    keys = {FIRST: v1}
    for binding, spec in VERIFIERS.items():
        if binding != FIRST and spec.vkey.exists():
            keys[binding] = spec.vkey
    return keys


def build(
    vkey_path: Path = paths.VKEY, vkeys: Mapping[str, Path] | None = None
) -> dict[str, Compiled]:
    """Render every binding's verifier from its key and compile everything (what `make
    verifier` runs). `vkeys` maps binding → key (v1's defaults to `vkey_path`); by default
    v1 and every later binding whose key exists."""
    keys = default_vkeys(vkey_path) if vkeys is None else dict(vkeys)
    if FIRST not in keys:
        raise InputError("vkeys", f"{FIRST} is required (the settlement's first binding)")
    v1 = render_verifier(keys[FIRST], binding=FIRST)
    extra = {b: render_verifier(k, binding=b) for b, k in keys.items() if b != FIRST}
    return compile_contracts(v1, extra_verifiers=extra)


if __name__ == "__main__":  # `python -m vbill.chain.contracts [VKEY]`
    import sys

    built = build(Path(sys.argv[1]) if len(sys.argv) > 1 else paths.VKEY)
    for c in built.values():
        size = len(c.deployed_bytecode) // 2
        print(f"{c.name}: {size} bytes runtime, sha256 {c.deployed_sha256()}")
