"""Render the Groth16 verifier from the verification key and compile the contracts with solcjs.

The verifier is generated (jinja2, contracts/templates/BillingVerifier.sol.j2) so that it is a
pure function of build/vkey.json: an auditor re-renders it and gets the same bytes. Compilation
uses the pinned npm `solc` through a small node script, so no compiler is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from vbill import paths
from vbill.bindings import BINDING_VERSION
from vbill.errors import InputError, ToolError
from vbill.zk.groth16 import Groth16Error, parse_vkey

N_PUBLIC = 5
TEMPLATE = paths.CONTRACTS / "templates" / "BillingVerifier.sol.j2"
# Where the rendered verifier and the compiled artefacts go (every deploy rebuilds them):
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
NAMES = ("BillingVerifier", "BillingSettlement")
# Cancun: supported by Horizen L3 (OP stack) and anvil; transient storage for the reentrancy lock.
EVM_VERSION = "cancun"
OPTIMIZER_RUNS = 10_000


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


def load_vkey(vkey_path: Path = paths.VKEY) -> dict[str, Any]:
    paths.require(vkey_path)
    try:
        vkey = json.loads(vkey_path.read_text())
        parse_vkey(vkey)  # fail closed on a malformed key before it reaches Solidity
    except (json.JSONDecodeError, Groth16Error) as exc:
        raise InputError(str(vkey_path), f"not a usable verification key: {exc}") from exc
    if int(vkey["nPublic"]) != N_PUBLIC:
        raise InputError(str(vkey_path), f"nPublic is {vkey['nPublic']}, the contracts need 5")
    return vkey


def render_verifier(vkey_path: Path = paths.VKEY, out: Path = VERIFIER_SOL) -> Path:
    """Write the verifier for `vkey_path` to `out`; the output is a pure function of the key."""
    vkey = load_vkey(vkey_path)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    source = env.get_template(TEMPLATE.name).render(
        vkey_path=vkey_path.name,
        vkey_sha256=hashlib.sha256(vkey_path.read_bytes()).hexdigest(),
        binding_version=BINDING_VERSION,
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


def standard_json(verifier_sol: Path = VERIFIER_SOL) -> dict[str, Any]:
    """The solc standard-JSON input: the rendered verifier and the settlement sources."""
    sources = {
        f"contracts/{name}": {"content": (paths.CONTRACTS / name).read_text()} for name in SOURCES
    }
    sources["contracts/BillingVerifier.sol"] = {"content": paths.require(verifier_sol).read_text()}
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
    verifier_sol: Path = VERIFIER_SOL, out_dir: Path = CONTRACTS_OUT
) -> dict[str, Compiled]:
    """Compile, write build/contracts/<Name>.json and record hashes in the manifest."""
    output = run_solc(standard_json(verifier_sol))
    compiled: dict[str, Compiled] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
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
    _record_manifest(compiled, output["solcVersion"], verifier_sol)
    return compiled


def _record_manifest(compiled: dict[str, Compiled], solc_version: str, verifier_sol: Path) -> None:
    """Merge a "contracts" entry into the manifest (build/manifest.json), leaving every other
    key alone."""
    manifest: dict[str, Any] = {}
    if CONTRACTS_MANIFEST.exists():
        manifest = json.loads(CONTRACTS_MANIFEST.read_text())
    manifest["contracts"] = {
        "solc": solc_version,
        "evm_version": EVM_VERSION,
        "optimizer_runs": OPTIMIZER_RUNS,
        "verifier_sol_sha256": hashlib.sha256(verifier_sol.read_bytes()).hexdigest(),
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


def build(vkey_path: Path = paths.VKEY) -> dict[str, Compiled]:
    """Render the verifier from the key and compile everything (what `make verifier` runs)."""
    return compile_contracts(render_verifier(vkey_path))


if __name__ == "__main__":  # `python -m vbill.chain.contracts [VKEY]`
    import sys

    built = build(Path(sys.argv[1]) if len(sys.argv) > 1 else paths.VKEY)
    for c in built.values():
        size = len(c.deployed_bytecode) // 2
        print(f"{c.name}: {size} bytes runtime, sha256 {c.deployed_sha256()}")
