"""The bindings there are, found once: ask here for the binding of a version, a circuit, a
request, record or bundle, instead of comparing versions.

Built from circuits/circuits.json: each entry's key names the plug-in module of this package
that implements it (vbill.bindings.<key>, exposing `BINDING`), so a new binding is its entry
there, its module here and its tests. The first entry is the default binding: the one of a
request, record or bundle that names no tariff class of another (and of every bundle attested
by the first release).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import Any

from vbill.bindings import VERSIONS, declared
from vbill.bindings.base import Binding, EventBinding


@cache
def _registry() -> dict[str, Binding]:
    """circuits.json key -> its plug-in (without circuits.json: the bindings of VERSIONS);
    AssertionError if a module disagrees with its entry, ModuleNotFoundError if an entry has
    no module."""
    entries = declared() or {key: {"binding_version": v} for key, v in VERSIONS.items()}
    out: dict[str, Binding] = {}
    for key, entry in entries.items():
        binding = importlib.import_module(f"{__package__}.{key}").BINDING
        if not isinstance(binding, Binding) or binding.key != key:
            raise AssertionError(f"vbill.bindings.{key}.BINDING is not the binding of {key}")
        if binding.version != entry.get("binding_version"):
            raise AssertionError(
                f"circuits.json declares {key} as {entry.get('binding_version')}, "
                f"vbill.bindings as {binding.version}"
            )
        out[key] = binding
    return out


def bindings() -> tuple[Binding, ...]:
    """Every binding, in circuits.json order."""
    return tuple(_registry().values())


def binding(name: str) -> Binding:
    """The binding of a version (`bn128-poseidon8-v2`) or circuits.json key (`metered_binding`);
    KeyError for an unknown one."""
    for b in bindings():
        if name in (b.version, b.key):
            return b
    raise KeyError(name)


def event_bindings() -> tuple[EventBinding, ...]:
    """The bindings that attest events, the default first."""
    return tuple(b for b in bindings() if isinstance(b, EventBinding))


def default() -> EventBinding:
    return event_bindings()[0]


def event_binding(data: Any) -> EventBinding:
    """The binding of a request, record, bundle or encoded request (a model of its binding, or
    JSON whose `tariff_snapshot.tariff_class` it prices); the default binding for anything
    else (JSON that is no request at all is then rejected by its parser, naming the field)."""
    for b in event_bindings():
        if isinstance(data, b.request_model | b.record_model | b.bundle_model | b.encoded_model):
            return b
    tariff = data.get("tariff_snapshot") if isinstance(data, Mapping) else None
    tariff_class = tariff.get("tariff_class") if isinstance(tariff, Mapping) else None
    for b in event_bindings():
        if tariff_class == b.tariff_class:
            return b
    return default()
