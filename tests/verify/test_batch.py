"""Batch verification (month-end close): one multi-pairing per chunk, bisection names the bad
bundle, and every verdict agrees with the per-bundle py_ecc reference."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from vbill import paths
from vbill.bundle.bundle import build_bundle, digest_of, with_receipt
from vbill.cli.main import main
from vbill.ledger.translog import MerkleTree, append_with_receipt
from vbill.verify.batch import iter_source, native_batch_check, verify_many, worker_batch_check
from vbill.verify.verify import native_available, py_ecc_check, verify_bundle
from vbill.zk import groth16
from vbill.zk.prover import Proof, Prover
from vbill_tools.bench import sample_requests


class SwappedProofProver:
    """Returns a real proof of *another* statement under the right public signals: the
    signature, log and billing checks all pass, and only the pairing check can catch it."""

    def __init__(self, inner: Prover, donor: dict[str, Any]) -> None:
        self.inner, self.donor = inner, donor

    def prove(self, circuit_input: dict[str, str]) -> Proof:
        honest = self.inner.prove(circuit_input)
        return Proof(proof=self.donor, public_signals=honest.public_signals)


@pytest.fixture(scope="module")
def batch_bundles(make_bundle, pilot_request, prover, attester, vkey_sha256) -> list[dict]:

    good = [make_bundle(r) for r in sample_requests(6, pilot_request)]
    donor = good[0]["attestation"]["billing_proof"]["proof"]
    forged_req = sample_requests(7, pilot_request)[6]
    forged = build_bundle(
        forged_req,
        attester=attester,
        account_salt=12345,
        prover=SwappedProofProver(prover, donor),  # type: ignore[arg-type]
        vkey_sha256=vkey_sha256,
    )
    receipt = append_with_receipt(MerkleTree(), digest_of(forged), attester.account, 0)
    forged_json = with_receipt(forged, receipt.to_dict()).model_dump(mode="json")
    bundles = [*good[:3], forged_json, *good[3:]]
    return bundles


@pytest.fixture(params=["native", "snarkjs-worker"])
def batch_check(request, prover):
    if request.param == "native":
        if not native_available():
            pytest.skip("native verifier not built (make native)")
        return native_batch_check
    return worker_batch_check(prover)


def test_forged_proof_hides_among_valid_ones_and_is_named(
    batch_bundles, trust, batch_check
) -> None:
    items = [(f"b{i}", b) for i, b in enumerate(batch_bundles)]
    results = dict(verify_many(items, trust=trust, check=batch_check, workers=2, chunk_size=64))
    assert [n for n, r in results.items() if not r.valid] == ["b3"]
    bad = results["b3"]
    assert bad.verification.valid and bad.billing_check.valid
    assert "batch" in (bad.incircuit_binding_verification.reason or "")


def test_batch_agrees_with_the_py_ecc_reference(batch_bundles, trust, batch_check) -> None:
    items = [(f"b{i}", b) for i, b in enumerate(batch_bundles)]
    batch = dict(verify_many(items, trust=trust, check=batch_check, workers=1))
    for name, bundle in items:
        ref = verify_bundle(bundle, trust=trust, check=py_ecc_check)
        assert batch[name].valid == ref.valid, name


def test_py_ecc_batch_equation_matches(batch_bundles) -> None:
    key = groth16.parse_vkey(json.loads(paths.VKEY.read_text()))
    parsed = [
        (
            [int(s) for s in b["attestation"]["billing_proof"]["public_signals"]],
            groth16.parse_proof(b["attestation"]["billing_proof"]["proof"]),
        )
        for b in batch_bundles[:3]
    ]
    rs = [random.getrandbits(128) + 1 for _ in parsed]
    assert groth16.verify_batch(key, parsed, rs)
    forged = batch_bundles[3]["attestation"]["billing_proof"]
    parsed.append(
        ([int(s) for s in forged["public_signals"]], groth16.parse_proof(forged["proof"]))
    )
    assert not groth16.verify_batch(key, parsed, [*rs, 99])


def test_cli_batch_over_jsonl(batch_bundles, attester, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VBILL_HOME", str(tmp_path / "home"))
    source = tmp_path / "month.jsonl"
    source.write_text("".join(json.dumps(b) + "\n" for b in batch_bundles) + "{broken\n")
    result = CliRunner().invoke(
        main,
        [
            "verify",
            "--json",
            "--batch",
            str(source),
            "--trust-attester",
            attester.address,
            "--vkey",
            str(paths.VKEY),
        ],
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["total"] == 8
    assert sorted(i["bundle"] for i in summary["invalid"]) == [f"{source}:4", f"{source}:8"]
    assert next(n for n, _ in iter_source(source)) == f"{source}:1"
