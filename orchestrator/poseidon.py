"""Poseidon over BN254, bit for bit equal to circomlib's `Poseidon(n)` and circomlibjs.

Parameters are circomlib's: width t = n + 1, 8 full rounds, R_P partial rounds by width,
S-box x^5, state initialised to [0, inputs...], output state[0]. The round constants and
the Cauchy MDS matrix are derived here from the reference Grain LFSR generator
(hadeshash `generate_parameters_grain.sage 1 0 254 t 8 R_P r`), exactly as circomlib's were,
instead of being copied: tests pin the result to circomlibjs's constants file and to the
compiled circuit. The first matrix the generator draws is the one circomlib uses for every
width here, so the sage script's security re-draw loop never triggers and is not reproduced.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

from .field import R

N_ROUNDS_F = 8
N_ROUNDS_P = (56, 57, 56, 60, 60, 63, 64, 63)
"""Partial rounds for t = 2..9 (n = 1..8 inputs), as in circomlib and circomlibjs."""

MAX_INPUTS = len(N_ROUNDS_P)
_FIELD_BITS = 254


@dataclass(frozen=True)
class PoseidonParams:
    """Round constants (flat, (R_F + R_P) × t, row-major by round) and MDS matrix M[i][j]."""

    t: int
    rounds_f: int
    rounds_p: int
    constants: tuple[int, ...]
    mds: tuple[tuple[int, ...], ...]


def _grain_bits(t: int, rounds_f: int, rounds_p: int) -> Iterator[int]:
    """The 80-bit Grain LFSR of the Poseidon paper, seeded with the instance parameters.

    Seed: field = 1 (prime), S-box = 0 (x^alpha), field size, t, R_F, R_P, then thirty ones.
    After 160 discarded clocks, output bits are filtered in pairs: a pair whose first bit
    is 1 emits its second bit, a pair whose first bit is 0 is dropped.
    """
    seed = f"01{0:04b}{_FIELD_BITS:012b}{t:012b}{rounds_f:010b}{rounds_p:010b}" + "1" * 30
    bits = [int(c) for c in seed]
    append = bits.append
    i = 0
    while True:
        pair = []
        for _ in range(2):
            b = bits[i + 62] ^ bits[i + 51] ^ bits[i + 38] ^ bits[i + 23] ^ bits[i + 13] ^ bits[i]
            append(b)
            i += 1
            pair.append(b)
        if i > 160 and pair[0]:  # the first 160 clocks only warm up the register
            yield pair[1]


def derive_params(t: int) -> PoseidonParams:
    """Derive circomlib's constants for width t from the Grain LFSR (about 0.1 s for t = 9)."""
    if not 2 <= t <= MAX_INPUTS + 1:
        raise ValueError(f"Poseidon width t must be in 2..{MAX_INPUTS + 1}, got {t}")
    rounds_f, rounds_p = N_ROUNDS_F, N_ROUNDS_P[t - 2]
    bits = _grain_bits(t, rounds_f, rounds_p)

    def field_bits() -> int:
        v = 0
        for _ in range(_FIELD_BITS):
            v = (v << 1) | next(bits)
        return v

    constants = []
    for _ in range((rounds_f + rounds_p) * t):
        v = field_bits()
        while v >= R:  # rejection sampling keeps round constants uniform below r
            v = field_bits()
        constants.append(v)

    while True:  # Cauchy matrix 1 / (x_i + y_j) from 2t distinct reduced draws
        draws = [field_bits() % R for _ in range(2 * t)]
        while len(set(draws)) != len(draws):
            draws = [field_bits() % R for _ in range(2 * t)]
        xs, ys = draws[:t], draws[t:]
        if all((x + y) % R for x in xs for y in ys):
            break
    mds = tuple(tuple(pow(x + y, -1, R) for y in ys) for x in xs)
    return PoseidonParams(t, rounds_f, rounds_p, tuple(constants), mds)


@cache
def params(t: int) -> PoseidonParams:
    """Parameters for width t, derived once per process on first use."""
    return derive_params(t)


_Matrix = tuple[tuple[int, ...], ...]


@cache
def _permutation_plan(t: int) -> tuple[_Matrix, _Matrix, int, int]:
    """Round constants split per round, the MDS rows, and where partial rounds start/stop."""
    p = params(t)
    rounds = p.rounds_f + p.rounds_p
    round_constants = tuple(tuple(p.constants[r * t : (r + 1) * t]) for r in range(rounds))
    return round_constants, p.mds, p.rounds_f // 2, p.rounds_f // 2 + p.rounds_p


def poseidon(inputs: Sequence[int]) -> int:
    """circomlib `Poseidon(len(inputs))` of field elements; raises ValueError outside 0 ≤ x < r."""
    n = len(inputs)
    if not 1 <= n <= MAX_INPUTS:
        raise ValueError(f"Poseidon takes 1..{MAX_INPUTS} inputs, got {n}")
    for x in inputs:
        if type(x) is not int or not 0 <= x < R:
            raise ValueError(f"Poseidon input is not a field element: {x!r}")
    t = n + 1
    round_constants, mds, first_partial, first_closing_full = _permutation_plan(t)
    state = [0, *inputs]
    for r, rc in enumerate(round_constants):
        if first_partial <= r < first_closing_full:
            # Partial round: only state[0] goes through the S-box; the rest is reduced below.
            s = (state[0] + rc[0]) % R
            s2 = s * s % R
            state = [s2 * s2 % R * s % R, *(x + c for x, c in zip(state[1:], rc[1:], strict=True))]
        else:
            full = []
            for x, c in zip(state, rc, strict=True):
                s = (x + c) % R
                s2 = s * s % R
                full.append(s2 * s2 % R * s % R)
            state = full
        # Sum the unreduced products and reduce once per cell: fewer big divisions.
        state = [sum(m * x for m, x in zip(row, state, strict=True)) % R for row in mds]
    return state[0]
