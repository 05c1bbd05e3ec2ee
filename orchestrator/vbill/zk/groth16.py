"""Groth16 verification over BN254 with py_ecc: the slow, obviously-correct reference.

Parsing is strict and fails closed: every coordinate must be a canonical decimal < p, every
point on its curve (and G2 points in the prime-order subgroup), every public signal < r and the
signal count must match the key. Anything else is `Groth16Error`, which callers turn into
`valid: false` with the reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from py_ecc.optimized_bn128 import (
    FQ,
    FQ2,
    FQ12,
    add,
    b,
    b2,
    curve_order,
    field_modulus,
    final_exponentiate,
    is_inf,
    is_on_curve,
    multiply,
    neg,
    pairing,
)

P = field_modulus
R = curve_order

G1Point = tuple[FQ, FQ, FQ]
G2Point = tuple[FQ2, FQ2, FQ2]


class Groth16Error(ValueError):
    """Malformed proof, key or signals; the message says which part."""


def _int(value: Any, bound: int, what: str) -> int:
    if not isinstance(value, str) or not value.isdigit() or (len(value) > 1 and value[0] == "0"):
        raise Groth16Error(f"{what}: not a canonical decimal string")
    x = int(value)
    if x >= bound:
        raise Groth16Error(f"{what}: not below the field modulus")
    return x


def _g1(coords: Any, what: str) -> G1Point:
    if not isinstance(coords, Sequence) or len(coords) != 3:
        raise Groth16Error(f"{what}: expected [x, y, z]")
    x, y, z = (_int(c, P, f"{what}[{i}]") for i, c in enumerate(coords))
    if z != 1:
        raise Groth16Error(f"{what}: expected affine form with z = 1")
    point = (FQ(x), FQ(y), FQ(1))
    if not is_on_curve(point, b):
        raise Groth16Error(f"{what}: not on the curve")
    return point


def _g2(coords: Any, what: str, subgroup: bool = True) -> G2Point:
    if not isinstance(coords, Sequence) or len(coords) != 3:
        raise Groth16Error(f"{what}: expected [[x0, x1], [y0, y1], [z0, z1]]")
    parts = []
    for i, pair in enumerate(coords):
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            raise Groth16Error(f"{what}[{i}]: expected a pair")
        parts.append([_int(c, P, f"{what}[{i}][{j}]") for j, c in enumerate(pair)])
    if parts[2] != [1, 0]:
        raise Groth16Error(f"{what}: expected affine form with z = [1, 0]")
    point = (FQ2(parts[0]), FQ2(parts[1]), FQ2([1, 0]))
    if not is_on_curve(point, b2):
        raise Groth16Error(f"{what}: not on the twist")
    if subgroup and not is_inf(multiply(point, R)):
        raise Groth16Error(f"{what}: not in the prime-order subgroup")
    return point


@dataclass(frozen=True)
class VerifyingKey:
    alpha: G1Point
    beta: G2Point
    gamma: G2Point
    delta: G2Point
    ic: tuple[G1Point, ...]

    @property
    def n_public(self) -> int:
        return len(self.ic) - 1


@dataclass(frozen=True)
class ProofPoints:
    a: G1Point
    b: G2Point
    c: G1Point


def vkey_sha256(vkey: Mapping[str, Any]) -> str:
    """Hash of a verification key: SHA-256 of its sorted compact JSON (what bundles pin)."""
    data = json.dumps(vkey, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


def parse_vkey(vkey: Mapping[str, Any]) -> VerifyingKey:
    """Strict parse of a snarkjs verification key (any JSON value may arrive here: --vkey)."""
    if not isinstance(vkey, Mapping):
        raise Groth16Error("vkey: not an object")
    if vkey.get("protocol") != "groth16" or vkey.get("curve") != "bn128":
        raise Groth16Error("vkey: not a groth16 bn128 key")
    ic, n_public = vkey.get("IC"), vkey.get("nPublic")
    if not isinstance(n_public, int) or isinstance(n_public, bool):
        raise Groth16Error("vkey: nPublic is not an integer")
    if not isinstance(ic, list) or len(ic) != n_public + 1:
        raise Groth16Error("vkey: IC length does not match nPublic")
    return VerifyingKey(
        alpha=_g1(vkey.get("vk_alpha_1"), "vkey.vk_alpha_1"),
        beta=_g2(vkey.get("vk_beta_2"), "vkey.vk_beta_2"),
        gamma=_g2(vkey.get("vk_gamma_2"), "vkey.vk_gamma_2"),
        delta=_g2(vkey.get("vk_delta_2"), "vkey.vk_delta_2"),
        ic=tuple(_g1(p, f"vkey.IC[{i}]") for i, p in enumerate(ic)),
    )


def parse_proof(proof: Mapping[str, Any], *, subgroup: bool = True) -> ProofPoints:
    """Strict parse; `subgroup=False` leaves the (slow in Python) G2 subgroup check of pi_b to
    a caller that does it natively."""
    if not isinstance(proof, Mapping):
        raise Groth16Error("proof: not an object")
    if proof.get("protocol", "groth16") != "groth16" or proof.get("curve", "bn128") != "bn128":
        raise Groth16Error("proof: not a groth16 bn128 proof")
    return ProofPoints(
        a=_g1(proof.get("pi_a"), "proof.pi_a"),
        b=_g2(proof.get("pi_b"), "proof.pi_b", subgroup),
        c=_g1(proof.get("pi_c"), "proof.pi_c"),
    )


def parse_signals(signals: Any, n_public: int) -> list[int]:
    if not isinstance(signals, list) or len(signals) != n_public:
        raise Groth16Error(f"public_signals: expected a list of {n_public}")
    return [_int(s, R, f"public_signals[{i}]") for i, s in enumerate(signals)]


def verify(vkey: VerifyingKey, signals: Sequence[int], proof: ProofPoints) -> bool:
    """e(A, B) = e(alpha, beta) · e(vk_x, gamma) · e(C, delta), checked as one product."""
    vk_x = vkey.ic[0]
    for s, point in zip(signals, vkey.ic[1:], strict=True):
        vk_x = add(vk_x, multiply(point, s))
    lhs = pairing(proof.b, neg(proof.a), final_exponentiate=False)
    rhs = (
        pairing(vkey.beta, vkey.alpha, final_exponentiate=False)
        * pairing(vkey.gamma, vk_x, final_exponentiate=False)
        * pairing(vkey.delta, proof.c, final_exponentiate=False)
    )
    return final_exponentiate(lhs * rhs) == FQ12.one()


def verify_json(vkey: Mapping[str, Any], signals: Any, proof: Mapping[str, Any]) -> bool:
    """Parse and verify snarkjs JSON; raises Groth16Error on malformed input."""
    key = parse_vkey(vkey)
    return verify(key, parse_signals(signals, key.n_public), parse_proof(proof))


def verify_batch(
    vkey: VerifyingKey, items: Sequence[tuple[Sequence[int], ProofPoints]], rs: Sequence[int]
) -> bool:
    """Reference batch check with a random linear combination (one final exponentiation):

    Π e(−r_i·A_i, B_i) · e(Σr_i·α, β) · e(Σ r_i·vk_x_i, γ) · e(Σ r_i·C_i, δ) = 1.

    A batch with any invalid proof passes with probability ≤ N/|r_i range| when the r_i are
    secret and uniform, which is why callers draw them after the proofs are fixed.
    """
    if len(items) != len(rs) or not items:
        raise Groth16Error("batch: need one scalar per proof, and at least one proof")
    acc = FQ12.one()
    r_sum = sum(rs) % R
    sums = [0] * vkey.n_public
    c_agg = None
    for (signals, proof), r in zip(items, rs, strict=True):
        for j, s in enumerate(signals):
            sums[j] = (sums[j] + r * s) % R
        acc *= pairing(proof.b, neg(multiply(proof.a, r)), final_exponentiate=False)
        rc = multiply(proof.c, r)
        c_agg = rc if c_agg is None else add(c_agg, rc)
    vk_x = multiply(vkey.ic[0], r_sum)
    for s, point in zip(sums, vkey.ic[1:], strict=True):
        vk_x = add(vk_x, multiply(point, s))
    acc *= pairing(vkey.beta, multiply(vkey.alpha, r_sum), final_exponentiate=False)
    acc *= pairing(vkey.gamma, vk_x, final_exponentiate=False)
    acc *= pairing(vkey.delta, c_agg, final_exponentiate=False)
    return final_exponentiate(acc) == FQ12.one()
