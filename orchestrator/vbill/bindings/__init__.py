"""Binding versions: each names one circuit, its encoding and its public signals (docs/protocol.md).

A binding version is part of every bundle and of the commitment's domain tag; changing any of
them is a new binding version, and bundles of an earlier one keep verifying under its own key.
Each binding has its own circuit, keys and verification key (`artefacts`).

This module only declares them (it imports nothing of a binding's behaviour, so the encoders,
witnesses and verifiers of one binding may name their own version here). What each binding
does is a plug-in module named by its circuits/circuits.json key (vbill.bindings.billing_binding,
…), implementing vbill.bindings.base; callers ask vbill.bindings.registry for the binding of a
request, bundle or version, and never compare versions themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vbill import paths

BINDING_V1 = "bn128-poseidon8-v1"
# The binding of usage_linear requests, and of every bundle attested by the first release.
BINDING_VERSION = BINDING_V1
# The binding of metered requests: dimensions × graduated tiers, a proven window state
# (docs/protocol-v2.md).
BINDING_V2 = "bn128-poseidon8-v2"
# The binding of corrections of metered events: a credit priced backwards from the window's
# state, the original's commitment opened (docs/protocol-corrections.md).
BINDING_V2C = "bn128-poseidon8-v2c"
BINDINGS = (BINDING_V1, BINDING_V2, BINDING_V2C)
# The versions of the bindings this release knows, by circuits/circuits.json key (its circuit's
# name); the registry checks them against circuits.json's `binding_version`. A binding missing
# here takes its version from its circuits.json entry.
VERSIONS = {
    paths.CIRCUIT_NAME: BINDING_V1,
    "metered_binding": BINDING_V2,
    "correction_binding": BINDING_V2C,
}


def declared() -> dict[str, dict[str, object]]:
    """circuits/circuits.json: every binding's circuit entry, in file order; {} where it is not
    shipped (an installed package knows the bindings of VERSIONS only)."""
    path = paths.CIRCUITS / "circuits.json"
    if not path.exists():
        return {}
    entries: dict[str, dict[str, object]] = json.loads(path.read_text())
    return entries


def version_of(circuit: str) -> str:
    """The binding version of a circuits/circuits.json key (the modules of one binding name
    their own version this way); KeyError for an unknown one."""
    if circuit in VERSIONS:
        return VERSIONS[circuit]
    return str(declared()[circuit]["binding_version"])


@dataclass(frozen=True)
class BindingArtefacts:
    """Where one binding's circuit and keys live; `circuit` is its circuits/circuits.json key."""

    version: str
    circuit: str
    r1cs: Path
    wasm: Path
    sym: Path
    zkey: Path
    vkey: Path
    # its setup is recorded at build/manifest.json's top level, where the first release's
    # readers look (its vkey trusted by that record); every other binding's under `bindings`
    top_level: bool = False

    def built(self) -> bool:
        """True when its proving key, witness generator and verification key exist here."""
        return self.zkey.exists() and self.wasm.exists() and self.vkey.exists()


def _artefacts(
    version: str, circuit: str, vkey: Path, *, top_level: bool = False
) -> BindingArtefacts:
    return BindingArtefacts(
        version=version,
        circuit=circuit,
        r1cs=paths.BUILD / f"{circuit}.r1cs",
        wasm=paths.BUILD / f"{circuit}_js" / f"{circuit}.wasm",
        sym=paths.BUILD / f"{circuit}.sym",
        zkey=paths.BUILD / f"{circuit}.zkey",
        vkey=vkey,
        top_level=top_level,
    )


ARTEFACTS = {
    BINDING_V1: _artefacts(BINDING_V1, paths.CIRCUIT_NAME, paths.VKEY, top_level=True),
    BINDING_V2: _artefacts(BINDING_V2, "metered_binding", paths.BUILD / "vkey-v2.json"),
    BINDING_V2C: _artefacts(BINDING_V2C, "correction_binding", paths.BUILD / "vkey-v2c.json"),
}


def _declared_artefacts() -> list[BindingArtefacts]:
    """The artefacts of the circuits.json entries ARTEFACTS does not list (a binding added by
    its module and entry alone): by the entry's key and `vkey`."""
    return [
        _artefacts(str(entry["binding_version"]), key, paths.BUILD / str(entry["vkey"]))
        for key, entry in declared().items()
        if entry.get("binding_version") not in ARTEFACTS
    ]


def all_artefacts() -> list[BindingArtefacts]:
    """Every binding's artefacts: ARTEFACTS' and those of the other circuits.json entries."""
    return [*ARTEFACTS.values(), *_declared_artefacts()]


def artefacts(version: str) -> BindingArtefacts:
    """The artefact paths of a binding version; KeyError for an unknown one."""
    if version in ARTEFACTS:
        return ARTEFACTS[version]
    for art in _declared_artefacts():
        if art.version == version:
            return art
    raise KeyError(version)


def top_level() -> BindingArtefacts:
    """The binding build/manifest.json records at its top level (vbill.zk.setup)."""
    (top,) = (a for a in ARTEFACTS.values() if a.top_level)
    return top
