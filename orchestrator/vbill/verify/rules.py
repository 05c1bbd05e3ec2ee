"""What differs between bindings when a bundle is verified: the rules vbill.verify.verify applies.

Below vbill.verify.verify and each binding's rules (vbill.verify.metered), which both use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vbill.models import Attestation


@dataclass(frozen=True)
class Rules:
    """What differs between bindings: the record model, the public-signal recomputation
    (from a record and the attestation's salts) and the billing recomputation (from a
    record named by its request key)."""

    binding: str
    record: type[Any]
    signals_for: Callable[[Any, Attestation], Any]
    recompute: Callable[[str, Any], Recomputed]


@dataclass(frozen=True)
class Recomputed:
    """A record's charge and fingerprint recomputed by its binding's rules; `source` ends the
    reason of a wrong charge (what the charge was computed from), `problem` is any other
    defect the binding found, reported after the charge and before the fingerprint."""

    charge: int
    fingerprint: str
    source: str = ""
    problem: str | None = None
