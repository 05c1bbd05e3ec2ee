"""The jinja2-rendered verifier against the references (issue 5 item 1).

For each case, four judges must agree: our rendered BillingVerifier, the verifier snarkjs
exports itself (`zkey export solidityverifier`), `snarkjs groth16 verify`, and the py_ecc
reference (orchestrator.groth16). Cases: a valid proof, tampered proofs, a signal ≥ r,
coordinates ≥ p and points off the curve.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_build
from eth_account import Account

from orchestrator import chain as ch
from orchestrator import contracts, paths
from orchestrator.errors import InputError
from orchestrator.groth16 import Groth16Error, verify_json
from orchestrator.prover import verify_cli

pytestmark = pytest.mark.chain

P = 21888242871839275222246405745257275088696311157297823662689037894645226208583
R = ch.R


def test_render_rejects_a_key_with_the_wrong_number_of_signals(tmp_path: Path) -> None:
    needs_build()
    vkey = json.loads(paths.VKEY.read_text())
    vkey["nPublic"] = 4
    vkey["IC"] = vkey["IC"][:5]
    bad = tmp_path / "vkey.json"
    bad.write_text(json.dumps(vkey))
    with pytest.raises(InputError, match="nPublic"):
        contracts.render_verifier(bad, tmp_path / "V.sol")


def test_render_is_a_pure_function_of_the_key(tmp_path: Path) -> None:
    needs_build()
    one = contracts.render_verifier(paths.VKEY, tmp_path / "a.sol").read_bytes()
    two = contracts.render_verifier(paths.VKEY, tmp_path / "b.sol").read_bytes()
    assert one == two
    vkey = json.loads(paths.VKEY.read_text())
    for point in vkey["IC"]:
        assert point[0].encode() in one and point[1].encode() in one


@pytest.fixture(scope="session")
def verifiers(anvil, deployment, tmp_path_factory) -> dict[str, Any]:
    """Ours (from the deployment) and snarkjs's own exported verifier, both on anvil."""
    out = tmp_path_factory.mktemp("snarkjs_verifier") / "Groth16Verifier.sol"
    subprocess.run(
        [
            str(paths.node_bin("snarkjs")),
            "zkey",
            "export",
            "solidityverifier",
            str(paths.ZKEY),
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    std = contracts.standard_json()
    std["sources"] = {"Groth16Verifier.sol": {"content": out.read_text()}}
    compiled = contracts.run_solc(std)["contracts"]["Groth16Verifier.sol"]["Groth16Verifier"]
    c = ch.connect("local", anvil.url, account=Account.from_key(ch.ANVIL_KEYS[0]))
    factory = c.w3.eth.contract(abi=compiled["abi"], bytecode=compiled["evm"]["bytecode"]["object"])
    result = c.transact(factory.constructor())
    snark_addr = c.w3.eth.get_transaction_receipt(result.transaction_hash)["contractAddress"]  # type: ignore[arg-type]
    ours = c.contract("BillingVerifier", deployment["contracts"]["BillingVerifier"]["address"])
    theirs = c.w3.eth.contract(address=snark_addr, abi=compiled["abi"])
    return {"ours": ours, "snarkjs_sol": theirs, "w3": c.w3}


def _calldata(proof: dict[str, Any], signals: list[str]) -> tuple[Any, ...]:
    s = ch.settlement_from_snarkjs(proof, signals)
    return (*s.proof_arg(), list(s.signals))


def _on_chain(contract: Any, proof: dict[str, Any], signals: list[str]) -> bool:
    return bool(contract.functions.verifyProof(*_calldata(proof, signals)).call())


def _py_ecc(proof: dict[str, Any], signals: list[str]) -> bool:
    try:
        return verify_json(json.loads(paths.VKEY.read_text()), signals, proof)
    except Groth16Error:
        return False


def _cases(
    proof: dict[str, Any], signals: list[str]
) -> dict[str, tuple[dict[str, Any], list[str]]]:
    def edit(fn) -> tuple[dict[str, Any], list[str]]:
        p, s = copy.deepcopy(proof), list(signals)
        fn(p, s)
        return p, s

    def setp(path: tuple[Any, ...], value: int):
        def f(p: dict[str, Any], s: list[str]) -> None:
            node = p
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = str(value)

        return f

    ax, ay = int(proof["pi_a"][0]), int(proof["pi_a"][1])
    return {
        "valid": (proof, signals),
        "tampered signal": edit(lambda p, s: s.__setitem__(1, str(int(s[1]) + 1))),
        "signal + r (aliases the same field element)": edit(
            lambda p, s: s.__setitem__(3, str(int(s[3]) + R))
        ),
        "proof A negated (on curve, wrong)": edit(setp(("pi_a", 1), P - ay)),
        "proof A and C swapped": edit(
            lambda p, s: (
                p.__setitem__("pi_a", proof["pi_c"]),
                p.__setitem__("pi_c", proof["pi_a"]),
            )
        ),
        "A.x + p": edit(setp(("pi_a", 0), ax + P)),
        "A.y + p": edit(setp(("pi_a", 1), ay + P)),
        "A off the curve": edit(setp(("pi_a", 1), (ay + 1) % P)),
        "B off the twist": edit(setp(("pi_b", 0, 0), (int(proof["pi_b"][0][0]) + 1) % P)),
        "C off the curve": edit(setp(("pi_c", 0), (int(proof["pi_c"][0]) + 1) % P)),
    }


def test_rendered_verifier_agrees_with_snarkjs_and_py_ecc(verifiers, pilot_bundle) -> None:
    bp = pilot_bundle["attestation"]["billing_proof"]
    verdicts = {}
    for name, (proof, signals) in _cases(bp["proof"], bp["public_signals"]).items():
        verdicts[name] = {
            "ours": _on_chain(verifiers["ours"], proof, signals),
            "snarkjs_sol": _on_chain(verifiers["snarkjs_sol"], proof, signals),
            "snarkjs_cli": verify_cli(paths.VKEY, signals, proof),
            "py_ecc": _py_ecc(proof, signals),
        }
    # Known difference, pinned so a snarkjs upgrade that changes it is noticed: the snarkjs CLI
    # reduces coordinates mod p, so it accepts A.x + p / A.y + p. Every on-chain judge and the
    # py_ecc reference reject them, and so must anything that treats proofs as canonical.
    cli_lenient = {"A.x + p", "A.y + p"}
    for name, v in verdicts.items():
        want = name == "valid"
        assert {v["ours"], v["snarkjs_sol"], v["py_ecc"]} == {want}, (name, v)
        assert v["snarkjs_cli"] == (want or name in cli_lenient), (name, v)


def test_verifier_out_of_gas_returns_false_rather_than_reverting(verifiers, pilot_bundle) -> None:
    """Why settle must `require` the result: starved of gas, the verifier says false."""
    bp = pilot_bundle["attestation"]["billing_proof"]
    fn = verifiers["ours"].functions.verifyProof(*_calldata(bp["proof"], bp["public_signals"]))
    assert fn.call({"gas": 1_000_000}) is True
    assert fn.call({"gas": 150_000}) is False  # the 4-pair pairing alone costs 181,000
    # Even eth_estimateGas is fooled: it finds the least gas that does not revert, and the
    # verifier never reverts, so the estimate is a gas limit at which the proof "fails".
    assert fn.call({"gas": fn.estimate_gas()}) is False
