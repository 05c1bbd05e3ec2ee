"""Trusted-setup bookkeeping: pinned phase-1 hashes, the manifest, the auditor's re-check."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from vbill import paths
from vbill.bindings import BINDING_V2, BINDING_VERSION, BindingArtefacts, artefacts
from vbill.errors import InputError, VerificationFailed
from vbill.zk.setup import (
    PINNED_PTAU,
    Contribution,
    build_manifest,
    ceremony_kind,
    check_manifest,
    check_pinned_ptau,
    keys_reusable,
    load_manifest,
    parse_zkey_verify,
    ptau_power,
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


# --- the Makefile: one rule set over circuits/circuits.json ---

CIRCUITS = json.loads((paths.CIRCUITS / "circuits.json").read_text())
PER_BINDING = ("compile", "info", "setup", "vkey", "contribute", "beacon", "verify-setup")


def make(*args: str, cwd: Path = paths.ROOT, env: dict[str, str] | None = None) -> str:
    """Run make; return stdout, failing the test with make's output if it exits non-zero."""
    proc = subprocess.run(
        ["make", "--no-print-directory", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_help_lists_every_binding_target() -> None:
    out = make("help")
    for target in (*PER_BINDING, "verifier", "ptau-dev"):
        assert re.search(rf"^  {target} ", out, re.MULTILINE), target
    for key, entry in CIRCUITS.items():
        for target in PER_BINDING:
            assert f"{target}-{key}" in out.split(), (key, target)
        assert f"build/{entry['vkey']}" in out
    assert "setup-v2" in out.split()


def test_dry_run_of_a_new_binding_needs_only_its_entry(tmp_path: Path) -> None:
    """A fourth entry in circuits.json (and its main file) gets every rule, with its own
    names, ptau power and stamp, and `BINDING=` selects it alone."""
    for name in ("Makefile", "package.json", "package-lock.json", "pyproject.toml"):
        (tmp_path / name).symlink_to(paths.ROOT / name)
    for name in ("orchestrator", "node_modules", ".venv"):
        (tmp_path / name).symlink_to(paths.ROOT / name)
    shutil.copytree(paths.CIRCUITS, tmp_path / "circuits")
    (tmp_path / "ptau").mkdir()
    (tmp_path / "ptau/powersOfTau28_hez_final_15.ptau").write_bytes(b"not run by make -n")
    (tmp_path / "build").mkdir()
    entry = {**CIRCUITS["billing_binding"], "file": "extra_binding", "vkey": "vkey-x.json"}
    entry |= {"binding_version": "bn128-poseidon8-x", "tag": "x", "ptau_power": 14}
    declared = {**CIRCUITS, "extra_binding": entry}
    (tmp_path / "circuits" / "circuits.json").write_text(json.dumps(declared))
    main = (paths.CIRCUITS / "main/billing_binding.circom").read_text()
    (tmp_path / "circuits/main/extra_binding.circom").write_text(main)

    out = make("-n", "setup-extra_binding", cwd=tmp_path)
    assert "circom2 circuits/main/extra_binding.circom" in out
    assert "groth16 setup build/extra_binding.r1cs build/ptau-dev/pot14_" in out
    assert "zkey verify build/extra_binding.r1cs build/ptau-dev/pot14_53239685_final.ptau" in out
    assert "> build/zkey-verify-x.log" in out and "build/vkey-x.json.tmp" in out
    assert re.search(r"touch -r build/vkey-x.json build/\.x-setup-[0-9a-f]{16}\n", out)
    assert "rm -f build/.x-setup-*" in out
    # the manifest's top level (the first entry) is recorded first
    v1, x = (
        out.index(f"write-binding --binding {v} ") for v in (BINDING_VERSION, "bn128-poseidon8-x")
    )
    assert v1 < x
    pinned = make(
        "-n", "setup-extra_binding", "PTAU_X=ptau/powersOfTau28_hez_final_15.ptau", cwd=tmp_path
    )
    assert "check-ptau ptau/powersOfTau28_hez_final_15.ptau" in pinned

    only = make("-n", "contribute", "BINDING=extra_binding", "NAME=x", cwd=tmp_path)
    assert "zkey contribute build/extra_binding.zkey" in only
    assert "billing_binding.zkey" not in only and "metered_binding.zkey" not in only
    proc = subprocess.run(
        ["make", "-n", "info", "BINDING=nope"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode != 0 and "extra_binding" in proc.stderr
    (tmp_path / "circuits/main/extra_binding.circom").unlink()
    proc = subprocess.run(["make", "-n", "help"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0 and "circuits/main/extra_binding.circom" in proc.stderr


@pytest.mark.slow
def test_the_cached_dev_ceremony_is_not_rebuilt(built: None) -> None:
    """`make setup` on a built tree only re-writes the manifest records: every stamp key
    still names the keys in build/ (a changed key would re-run the ceremony)."""
    before = {p.name: sha256_file(p) for p in paths.BUILD.glob("vkey*.json")}
    out = make("-n", "setup")
    assert "groth16 setup" not in out and "circom2" not in out, out
    assert out.count("write-binding --binding") == len(CIRCUITS)
    assert {p.name: sha256_file(p) for p in paths.BUILD.glob("vkey*.json")} == before


@pytest.mark.slow
def test_every_binding_shares_one_dev_phase1(built: None) -> None:
    """The dev ceremony runs one phase 1, at the largest power any binding needs, and each
    record says that file and the power its header holds (not the binding's own need)."""
    manifest = load_manifest()
    records = [manifest.binding(e["binding_version"]) for e in CIRCUITS.values()]
    dev = [r.ptau for r in records if r is not None and r.ptau.source == "dev-beacon"]
    if not dev:
        pytest.skip("build/ was set up from pinned phase-1 files")
    power = max(e["ptau_power"] for e in CIRCUITS.values())
    assert {(p.path, p.power, p.blake2b_512) for p in dev} == {
        (dev[0].path, power, dev[0].blake2b_512)
    }
    assert f"/pot{power}_" in dev[0].path and ptau_power(paths.ROOT / dev[0].path) == power


@pytest.mark.slow
def test_keys_are_kept_only_for_the_circuit_ptau_and_beacon_they_were_made_from(
    built: None, tmp_path: Path
) -> None:
    """What lets a new stamp key (sources moved, same r1cs) keep the keys instead of
    re-running the ceremony: each condition, broken alone, asks for new keys."""
    manifest = load_manifest()
    beacon = manifest.contributions[0].beacon_hash or ""
    v1, v2 = artefacts(BINDING_VERSION), artefacts(BINDING_V2)
    ptau = {b.version: paths.ROOT / manifest.binding(b.version).ptau.path for b in (v1, v2)}  # type: ignore[union-attr]

    def why_not(keys: BindingArtefacts, ptau_of: str, phase2: str = beacon) -> str | None:
        return keys_reusable(keys, ptau_path=ptau[ptau_of], phase2_beacon=phase2, phase2_exp=10)

    assert why_not(v1, v1.version) is None and why_not(v2, v2.version) is None
    other = tmp_path / "pot14_other_final.ptau"
    other.write_bytes(ptau[v1.version].read_bytes()[:-1] + b"\x00")
    ptau["other"] = other
    assert "another ptau" in str(why_not(v1, "other"))
    assert "phase-2 beacon" in str(why_not(v2, v2.version, phase2="00" * 32))
    assert "not the recorded r1cs" in str(
        why_not(dataclasses.replace(v1, r1cs=v2.r1cs), v1.version)
    )


def _scratch_tree(tmp: Path) -> None:
    """A checkout in `tmp` sharing this one's tools, with build/ linked file by file except what
    a contribution to binding v2 rewrites (copied). What circom reads is copied too: it runs
    sandboxed (WASI) and follows no link out of the tree."""
    for name in ("Makefile", "package.json", "package-lock.json", "pyproject.toml", "ptau"):
        (tmp / name).symlink_to(paths.ROOT / name)
    for name in ("orchestrator", "contracts", ".venv"):
        (tmp / name).symlink_to(paths.ROOT / name)
    shutil.copytree(paths.CIRCUITS, tmp / "circuits")
    shutil.copytree(
        paths.NODE_MODULES / "circomlib" / "circuits", tmp / "node_modules/circomlib/circuits"
    )
    (tmp / "node_modules/.bin").mkdir()
    for tool in ("circom2", "snarkjs"):
        (tmp / "node_modules/.bin" / tool).symlink_to(paths.node_bin(tool).resolve())
    (tmp / "node_modules/.installed").touch()
    (tmp / "build").mkdir()
    v2 = artefacts(BINDING_V2)
    copied = {paths.MANIFEST, v2.zkey, v2.vkey, paths.BUILD / "zkey-verify-v2.log"}
    for src in paths.BUILD.iterdir():
        dst = tmp / "build" / src.name
        if src in copied:
            shutil.copy(src, dst)
        else:
            dst.symlink_to(src)


@pytest.mark.slow
def test_binding_v2_runs_a_contribution_and_verify_setup_passes(
    built: None, tmp_path: Path
) -> None:
    """The production steps on v2 (`make contribute BINDING=metered_binding NAME=test`), then
    the auditor's re-run of every binding: recompile, zkey verify, re-export, compare (~60 s).
    In a scratch tree: build/'s keys are never touched."""
    v2 = artefacts(BINDING_V2)
    if not v2.zkey.exists():
        pytest.skip("build/ has no v2 key: run `make setup`")
    real = sha256_file(v2.vkey)
    _scratch_tree(tmp_path)
    env = {**os.environ, "VBILL_ROOT": str(tmp_path)}
    # -o: the scratch tree shares this .venv; make must never re-install it from there
    keep = ("-o", ".venv/.installed", "-o", "node_modules/.installed")
    out = make(*keep, "contribute", "BINDING=metered_binding", "NAME=test", cwd=tmp_path, env=env)
    assert "Contribution Hash" in out and "bn128-poseidon8-v2 recorded" in out
    record = load_manifest(tmp_path / "build/manifest.json").binding(BINDING_V2)
    assert record is not None
    assert [(c.name, c.kind) for c in record.contributions][-1] == ("test", "random")
    assert record.ceremony == "dev-insecure"  # a dev phase 1 stays insecure whatever follows
    assert record.vkey_sha256 == sha256_file(tmp_path / "build" / v2.vkey.name) != real

    # every binding; two at a time (each zkey verify is one single-threaded snarkjs), output
    # kept per binding
    out = make(*keep, "-s", "-j2", "--output-sync=target", "verify-setup", cwd=tmp_path, env=env)
    assert "verify-setup: OK" in out and f"verify-setup: {BINDING_V2} OK" in out
    for entry in CIRCUITS.values():
        assert f"({entry['binding_version']})" in out
    assert sha256_file(v2.vkey) == real


# --- make lint-circuits: circheck over each binding ---


def lint_circuits(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vbill_tools.lint_circuits", *args],
        capture_output=True,
        text=True,
        cwd=paths.ROOT,
        check=False,
    )


def test_circheck_findings_are_all_explained_and_a_new_one_fails(tmp_path: Path) -> None:
    """v1's circuit (seconds): every circheck finding has a reason in circuits/; drop one
    reason and the lint fails naming that finding and where it is."""
    ok = lint_circuits("billing_binding")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert re.search(r"billing_binding: [1-9]\d* finding\(s\), 0 not explained", ok.stdout)
    explained = json.loads((paths.CIRCUITS / "circheck-explained.json").read_text())
    dropped = (
        "type mismatch | clamp.circom | "
        "Signal 'lo' flows into 'LessThan' without being properly range-checked."
    )
    assert dropped in explained
    fewer = tmp_path / "explained.json"
    fewer.write_text(json.dumps({k: v for k, v in explained.items() if k != dropped}))
    bad = lint_circuits("billing_binding", "--explained", str(fewer))
    assert bad.returncode == 1
    assert f"clamp.circom:22:4: {dropped}" in bad.stdout and "1 not explained" in bad.stdout
