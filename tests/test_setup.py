"""Trusted-setup bookkeeping: pinned phase-1 hashes, the manifest, the auditor's re-check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from vbill import paths
from vbill.bindings import BINDING_VERSION
from vbill.errors import InputError, VerificationFailed
from vbill.zk.setup import (
    PINNED_PTAU,
    Contribution,
    build_manifest,
    ceremony_kind,
    check_manifest,
    check_pinned_ptau,
    load_manifest,
    parse_zkey_verify,
    r1cs_info,
    sha256_file,
)

REQUIRED_KEYS = {
    "binding_version",
    "ceremony",
    "constraints",
    "wires",
    "circuit_sources_sha256",
    "toolchain",
    "ptau",
    "contributions",
    "artifacts",
    "vkey_sha256",
    "public_signals",
}
BUILD_FILES = {
    "r1cs": paths.R1CS,
    "wasm": paths.WASM,
    "zkey": paths.ZKEY,
    "vkey": paths.VKEY,
}
# Published by iden3 (snarkjs README); pinned here too so an edit to pinned.json shows up.
HERMEZ_12 = (
    "ded2694169b7b08e898f736d5de95af87c3f1a64594013351b1a796dbee393bd"
    "825f88f9468c84505ddd11eb0b1465ac9b43b9064aa8ec97f2b73e04758b8a4a"
)


@pytest.fixture(scope="module")
def built() -> None:
    if not paths.MANIFEST.exists():
        pytest.skip("build/manifest.json missing: run `make setup`")


# --- pinned phase 1 ---


def test_rejects_a_ptau_with_the_wrong_hash(tmp_path: Path) -> None:
    fake = tmp_path / "powersOfTau28_hez_final_12.ptau"
    fake.write_bytes(b"ptau" + b"\0" * 1024)
    with pytest.raises(VerificationFailed, match="blake2b-512"):
        check_pinned_ptau(fake)


def test_rejects_a_ptau_under_an_unknown_name(tmp_path: Path) -> None:
    other = tmp_path / "pot12_final.ptau"
    other.write_bytes(b"ptau")
    with pytest.raises(InputError, match="not a pinned phase-1 file"):
        check_pinned_ptau(other)


def test_rejects_a_missing_ptau(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        check_pinned_ptau(tmp_path / "powersOfTau28_hez_final_12.ptau")


def test_check_ptau_command_exits_non_zero_naming_the_problem(tmp_path: Path) -> None:
    fake = tmp_path / "powersOfTau28_hez_final_13.ptau"
    fake.write_bytes(b"not the real file")
    proc = subprocess.run(
        [sys.executable, "-m", "vbill.zk.setup", "check-ptau", str(fake)],
        capture_output=True,
        text=True,
        cwd=paths.ROOT,
        check=False,
    )
    assert proc.returncode == VerificationFailed.exit_code
    assert "refusing" in proc.stderr and "powersOfTau28_hez_final_13.ptau" in proc.stderr


def test_pinned_list_covers_powers_8_to_28_with_published_hashes() -> None:
    files = json.loads(PINNED_PTAU.read_text())["files"]
    assert sorted(e["power"] for e in files.values()) == list(range(8, 29))
    assert all(re.fullmatch(r"[0-9a-f]{128}", e["blake2b_512"]) for e in files.values())
    assert files["powersOfTau28_hez_final_12.ptau"]["blake2b_512"] == HERMEZ_12


# --- ceremony kind and contribution parsing ---


def _c(kind: str) -> Contribution:
    return Contribution(index=1, name="x", kind=kind, hash="00")  # type: ignore[arg-type]


def test_beacons_alone_are_dev_insecure_even_on_the_hermez_ptau() -> None:
    assert ceremony_kind("pinned", [_c("beacon")]) == "dev-insecure"
    assert ceremony_kind("dev-beacon", [_c("beacon"), _c("random")]) == "dev-insecure"
    assert ceremony_kind("pinned", [_c("beacon"), _c("random")]) == "contributed"


def test_refuses_a_manifest_for_a_zkey_without_contributions(tmp_path: Path) -> None:
    log = "[INFO]  snarkJS: Circuit hash: \n\t\tabcdef01 23456789\n[INFO]  snarkJS: ZKey Ok!\n"
    with pytest.raises(VerificationFailed, match="no phase-2 contribution"):
        build_manifest(ptau_path=tmp_path / "x.ptau", ptau_source="dev-beacon", verify_log=log)


def test_refuses_a_manifest_when_zkey_verify_failed(tmp_path: Path) -> None:
    with pytest.raises(VerificationFailed, match="ZKey Ok"):
        build_manifest(
            ptau_path=tmp_path / "x.ptau", ptau_source="dev-beacon", verify_log="[ERROR] bad"
        )


def test_parses_the_contribution_chain_from_zkey_verify(built: None) -> None:
    report = parse_zkey_verify((paths.BUILD / "zkey-verify.log").read_text())
    manifest = load_manifest()
    assert report.ok
    assert report.contributions == manifest.contributions
    assert report.circuit_hash == manifest.circuit_hash and len(report.circuit_hash) == 128


# --- the manifest ---


@pytest.mark.slow
def test_manifest_has_the_required_keys_and_matches_build(built: None) -> None:
    raw = json.loads(paths.MANIFEST.read_text())
    assert set(raw) >= REQUIRED_KEYS
    manifest = load_manifest()
    assert manifest.binding_version == BINDING_VERSION
    assert manifest.public_signals == [
        "commitment",
        "charge",
        "tariff_key",
        "nullifier",
        "tenant_key",
    ]
    for kind, path in BUILD_FILES.items():
        assert manifest.artifacts[kind].sha256 == sha256_file(path), kind
        assert paths.ROOT / manifest.artifacts[kind].path == path
    assert manifest.vkey_sha256 == sha256_file(paths.VKEY)
    info = r1cs_info(paths.R1CS)
    assert (manifest.constraints, manifest.wires) == (info.constraints, info.wires)
    assert manifest.contributions, "a zkey without a contribution lets anyone forge proofs"
    assert check_manifest(manifest, rebuilt=BUILD_FILES) == []


@pytest.mark.slow
def test_dev_setup_says_it_is_insecure(built: None) -> None:
    manifest = load_manifest()
    if manifest.ptau.source == "dev-beacon":
        assert manifest.ceremony == "dev-insecure"
        assert manifest.ptau.beacon_hash and manifest.ptau.beacon_iterations_exp


@pytest.mark.slow
def test_check_names_a_tampered_artefact(built: None, tmp_path: Path) -> None:
    vkey = tmp_path / "vkey.json"
    shutil.copy(paths.VKEY, vkey)
    vkey.write_bytes(vkey.read_bytes().replace(b'"nPublic": 5', b'"nPublic": 6'))
    problems = check_manifest(load_manifest(), rebuilt={**BUILD_FILES, "vkey": vkey})
    assert len(problems) == 1 and problems[0].startswith("vkey:")


@pytest.mark.slow
def test_vkey_has_the_five_public_signals(built: None) -> None:
    assert json.loads(paths.VKEY.read_text())["nPublic"] == 5


@pytest.mark.slow
def test_verify_setup_reproduces_the_artefacts(built: None) -> None:
    """The auditor's path end to end: recompile, zkey verify, re-export, compare (~30 s)."""
    proc = subprocess.run(
        ["make", "--no-print-directory", "-s", "verify-setup"],
        capture_output=True,
        text=True,
        cwd=paths.ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify-setup: OK" in proc.stdout
