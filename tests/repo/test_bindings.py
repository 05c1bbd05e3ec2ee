"""The binding registry (vbill.bindings): built from circuits/circuits.json, one plug-in module
per entry, and the only place that tells bindings apart."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import vbill
from vbill import bindings as declared_bindings
from vbill import paths
from vbill.bindings import registry
from vbill.bindings.base import Binding, OnChain
from vbill.models import AttestRequest, MeteredAttestRequest, example

PACKAGE = Path(vbill.__file__).parent
CIRCUITS = json.loads((paths.CIRCUITS / "circuits.json").read_text())


def test_the_registry_is_circuits_json_with_a_module_per_entry() -> None:
    found = registry.bindings()
    assert [b.key for b in found] == list(CIRCUITS)
    for b in found:
        entry = CIRCUITS[b.key]
        assert (PACKAGE / "bindings" / f"{b.key}.py").is_file()
        assert b.version == entry["binding_version"] and b.artefacts.circuit == b.key
        assert b.artefacts.vkey == paths.BUILD / entry["vkey"]
        assert registry.binding(b.version) is b and registry.binding(b.key) is b
    assert len({b.on_chain.binding_id for b in found}) == len(found)
    classes = [b.tariff_class for b in registry.event_bindings()]
    assert len(set(classes)) == len(classes)
    assert registry.default().key == next(iter(CIRCUITS))  # the first release's binding
    with pytest.raises(KeyError):
        registry.binding("bn128-poseidon8-v9")


def test_every_binding_module_is_in_circuits_json() -> None:
    infrastructure = {"__init__", "base", "registry"}
    modules = {p.stem for p in (PACKAGE / "bindings").glob("*.py")} - infrastructure
    assert modules == set(CIRCUITS)


def test_requests_records_and_bundles_find_their_binding(pilot_request: dict) -> None:
    metered = example(MeteredAttestRequest)
    assert registry.event_binding(pilot_request).key == "billing_binding"
    assert registry.event_binding(AttestRequest.model_validate(pilot_request)).windowed is False
    assert registry.event_binding(metered).key == "metered_binding"
    assert registry.event_binding(MeteredAttestRequest.model_validate(metered)).windowed is True
    # anything that names no other tariff class is the default's (its parser then refuses it)
    for other in (None, 7, {}, {"tariff_snapshot": "x"}, {"tariff_snapshot": {"tariff_class": 1}}):
        assert registry.event_binding(other) is registry.default()


def test_a_new_binding_is_its_module_and_its_circuits_json_entry(tmp_path, monkeypatch) -> None:
    module = types.ModuleType("vbill.bindings.toy_binding")
    toy = Binding("toy_binding", OnChain(9, "ToyVerifier", "IToyVerifier", "settleToy"))
    module.BINDING = toy  # type: ignore[attr-defined]
    entry = {**CIRCUITS["correction_binding"], "binding_version": "bn128-toy", "vkey": "t.json"}
    (tmp_path / "circuits.json").write_text(json.dumps({**CIRCUITS, "toy_binding": entry}))
    monkeypatch.setattr(paths, "CIRCUITS", tmp_path)
    registry._registry.cache_clear()
    try:
        with pytest.raises(ModuleNotFoundError, match="toy_binding"):
            registry.bindings()  # an entry without its module
        monkeypatch.setitem(sys.modules, "vbill.bindings.toy_binding", module)
        assert registry.binding("bn128-toy") is toy and registry.bindings()[-1] is toy
        assert toy.artefacts.vkey == paths.BUILD / "t.json"
        # every caller that asks for a version's paths finds it (setup, provers, trust)
        assert declared_bindings.artefacts("bn128-toy") == toy.artefacts
        assert toy.artefacts in declared_bindings.all_artefacts()
        assert not toy.artefacts.top_level
        assert registry.event_bindings() == registry.event_bindings()[:2]  # attests nothing
    finally:
        registry._registry.cache_clear()


def test_only_the_binding_package_tells_bindings_apart() -> None:
    """`is_metered` and the BINDING_V1/V2/V2C constants (the old ways to branch on a binding)
    occur in vbill only inside vbill.bindings; the JS verifier page reads circuits.json."""
    out = subprocess.run(
        [
            "git",
            "grep",
            "-n",
            r"is_metered\|BINDING_V[0-9]",
            "--",
            "orchestrator/vbill",
            ":!orchestrator/vbill/bindings",
        ],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1 and out.stdout == "", out.stdout  # 1: no match
    named = {declared_bindings.BINDING_V1, declared_bindings.BINDING_V2}
    assert named < set(declared_bindings.BINDINGS)  # the pattern still names them
