"""Poseidon over BN254, bit for bit equal to circomlib's `Poseidon(n)` and circomlibjs.

Parameters are circomlib's: width t = n + 1, 8 full rounds, R_P partial rounds by width,
S-box x^5, state initialised to [0, inputs...], output state[0]. The round constants and
the Cauchy MDS matrix are derived here from the reference Grain LFSR generator
(hadeshash `generate_parameters_grain.sage 1 0 254 t 8 R_P r`), exactly as circomlib's were,
instead of being copied: tests pin the result to circomlibjs's constants file and to the
compiled circuit. The first matrix the generator draws is the one circomlib uses for every
width here, so the sage script's security re-draw loop never triggers and is not reproduced.
`poseidon` runs the sparse partial-round form (about 2.3× faster for 8 inputs); the textbook
`poseidon_reference` stays as its oracle.

When build/native/libvbill_poseidon.so exists (`make poseidon-lib`; orchestrator/native/
poseidon.c), `poseidon` runs the same sparse form in C through ctypes, with the constants and
the sparse plan derived here and handed over: there is one source of constants. The env var
`VBILL_POSEIDON` picks the backend: unset or `auto` (native if built), `python`, `native`
(fail if the library is missing).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from vbill import paths
from vbill.errors import ToolError
from vbill.zk.field import R

N_ROUNDS_F = 8
N_ROUNDS_P = (56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68)
"""Partial rounds for t = 2..17 (n = 1..16 inputs), as in circomlib and circomlibjs
(binding v2 hashes up to 16 inputs at once, docs/protocol-v2.md)."""

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


def poseidon(inputs: Sequence[int]) -> int:
    """circomlib `Poseidon(len(inputs))` of field elements; raises ValueError outside 0 ≤ x < r.

    Runs the sparse form of the permutation (see `_SparsePlan`), natively when the library is
    built (see the module docstring); `poseidon_reference` is the textbook form both are
    tested against.
    """
    t = _check_inputs(inputs)
    native = native_backend()
    if native is not None:
        return native.hash(t, inputs)
    return _sparse_plan(t).permute([0, *inputs])


def poseidon_repeated(inputs: Sequence[int]) -> int:
    """`poseidon` of inputs that recur from event to event (a tariff's hash, a tenant's and a
    tariff's salted keys, a window state's key): remembered, per backend, so that a batch or a
    busy tenant pays each once. For inputs that never recur, `poseidon`."""
    return _remembered(backend(), tuple(inputs))


@lru_cache(maxsize=4096)
def _remembered(backend_name: str, inputs: tuple[int, ...]) -> int:
    return poseidon(inputs)


def poseidon_python(inputs: Sequence[int]) -> int:
    """`poseidon` on the pure-Python path whatever the backend setting (for cross-checks)."""
    t = _check_inputs(inputs)
    return _sparse_plan(t).permute([0, *inputs])


def poseidon_reference(inputs: Sequence[int]) -> int:
    """The permutation exactly as specified: every round adds t constants and multiplies by M."""
    t = _check_inputs(inputs)
    p = params(t)
    first_partial, first_closing_full = p.rounds_f // 2, p.rounds_f // 2 + p.rounds_p
    state = [0, *inputs]
    for r in range(p.rounds_f + p.rounds_p):
        state = [(x + c) % R for x, c in zip(state, p.constants[r * t : (r + 1) * t], strict=True)]
        if first_partial <= r < first_closing_full:
            state[0] = pow(state[0], 5, R)
        else:
            state = [pow(x, 5, R) for x in state]
        state = [sum(m * x for m, x in zip(row, state, strict=True)) % R for row in p.mds]
    return state[0]


def _check_inputs(inputs: Sequence[int]) -> int:
    n = len(inputs)
    if not 1 <= n <= MAX_INPUTS:
        raise ValueError(f"Poseidon takes 1..{MAX_INPUTS} inputs, got {n}")
    for x in inputs:
        if type(x) is not int or not 0 <= x < R:
            raise ValueError(f"Poseidon input is not a field element: {x!r}")
    return n + 1


@dataclass(frozen=True)
class _SparsePlan:
    """The same permutation with partial rounds costing O(t) instead of O(t²) (Poseidon App. B).

    1. Constants: in a partial round only state[0] is non-linear, so the constants a round adds
       to state[1..] are pulled back through M⁻¹ into the round before, leaving one scalar per
       partial round before the S-box (`pre`) and one after it (`post`); the first partial
       round keeps a full vector (`entry`).
    2. Matrices: M = A·B with B = diag(1, M̂) and A sparse ([[m00, u], [m̂, I]]); B commutes
       with the round's S-box on state[0], so it moves into the round before (whose matrix
       becomes B·M, factored the same way) and finally into one dense (t−1)² step (`entry_b`).
    """

    mds: _Matrix
    first: _Matrix
    entry: tuple[int, ...]
    entry_b: _Matrix
    pre: tuple[int, ...]
    post: tuple[int, ...]
    sparse: tuple[tuple[int, tuple[int, ...], tuple[int, ...]], ...]
    last: _Matrix

    def permute(self, state: list[int]) -> int:
        for rc in self.first:
            state = self._full(state, rc)
        s0 = state[0]
        rest = [x + c for x, c in zip(state[1:], self.entry[1:], strict=True)]
        rest = [sum(b * x for b, x in zip(row, rest, strict=True)) % R for row in self.entry_b]
        for c, a, (m00, u, col) in zip(self.pre, self.post, self.sparse, strict=True):
            x = (s0 + c) % R
            x2 = x * x % R
            x = (x2 * x2 % R * x + a) % R
            s0 = (m00 * x + sum(ui * y for ui, y in zip(u, rest, strict=True))) % R
            rest = [(mc * x + y) % R for mc, y in zip(col, rest, strict=True)]
        state = [s0, *rest]
        for rc in self.last:
            state = self._full(state, rc)
        return state[0]

    def _full(self, state: list[int], rc: tuple[int, ...]) -> list[int]:
        boxed = []
        for x, c in zip(state, rc, strict=True):
            x = (x + c) % R
            x2 = x * x % R
            boxed.append(x2 * x2 % R * x % R)
        # Sum the unreduced products and reduce once per cell: fewer big divisions.
        return [sum(m * x for m, x in zip(row, boxed, strict=True)) % R for row in self.mds]


@cache
def _sparse_plan(t: int) -> _SparsePlan:
    p = params(t)
    half, n_p = p.rounds_f // 2, p.rounds_p
    rounds = [list(p.constants[r * t : (r + 1) * t]) for r in range(p.rounds_f + n_p)]
    mds = [list(row) for row in p.mds]
    partial = rounds[half : half + n_p]
    post = [0] * n_p
    mds_inv = _inverse(mds)
    for q in range(n_p - 1, 0, -1):
        d = _mat_vec(mds_inv, [0, *partial[q][1:]])
        partial[q - 1] = [partial[q - 1][0]] + [
            (x + y) % R for x, y in zip(partial[q - 1][1:], d[1:], strict=True)
        ]
        post[q - 1] = (post[q - 1] + d[0]) % R
        partial[q] = [partial[q][0]] + [0] * (t - 1)

    sparse: list[tuple[int, tuple[int, ...], tuple[int, ...]]] = []
    current = mds
    for _ in range(n_p):  # last partial round first
        hat = [row[1:] for row in current[1:]]
        hat_inv = _inverse(hat)
        u = tuple(
            sum(current[0][1 + k] * hat_inv[k][j] for k in range(t - 1)) % R for j in range(t - 1)
        )
        sparse.append((current[0][0], u, tuple(row[0] for row in current[1:])))
        b = [[1] + [0] * (t - 1)] + [[0, *row] for row in hat]
        current = _mat_mul(b, mds)
    sparse.reverse()
    return _SparsePlan(
        mds=p.mds,
        first=tuple(tuple(rc) for rc in rounds[:half]),
        entry=tuple(partial[0]),
        entry_b=tuple(tuple(row) for row in hat),
        pre=tuple(rc[0] for rc in partial),
        post=tuple(post),
        sparse=tuple(sparse),
        last=tuple(tuple(rc) for rc in rounds[half + n_p :]),
    )


def _mat_vec(a: list[list[int]], v: list[int]) -> list[int]:
    return [sum(x * y for x, y in zip(row, v, strict=True)) % R for row in a]


def _mat_mul(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    cols = list(zip(*b, strict=True))
    return [[sum(x * y for x, y in zip(row, col, strict=True)) % R for col in cols] for row in a]


def _inverse(a: list[list[int]]) -> list[list[int]]:
    """Gauss-Jordan inverse mod r (the Cauchy matrices and their minors are invertible)."""
    n = len(a)
    m = [list(row) + [int(i == j) for j in range(n)] for i, row in enumerate(a)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if m[r][col] % R)
        m[col], m[pivot] = m[pivot], m[col]
        inv = pow(m[col][col], -1, R)
        m[col] = [x * inv % R for x in m[col]]
        for r in range(n):
            if r != col and m[r][col]:
                f = m[r][col]
                m[r] = [(x - f * y) % R for x, y in zip(m[r], m[col], strict=True)]
    return [row[n:] for row in m]


# --- the native backend (orchestrator/native/poseidon.c through ctypes) ---

NATIVE_LIB = paths.BUILD / "native" / "libvbill_poseidon.so"
BACKEND_ENV = "VBILL_POSEIDON"
_WORD = 32
_E_INPUT = -5  # VBILL_POSEIDON_EINPUT in poseidon.c
_Bytes = ctypes.c_char_p


def _words(values: Sequence[int]) -> bytes:
    """The library's wire form: 32-byte little-endian words, concatenated."""
    return b"".join(x.to_bytes(_WORD, "little") for x in values)


class NativePoseidon:
    """The C permutation for every width, initialised per width on first use (thread-safe)."""

    def __init__(self, lib_path: os.PathLike[str] | str) -> None:
        lib = ctypes.CDLL(os.fspath(lib_path))
        lib.vbill_poseidon_init.argtypes = [ctypes.c_int, _Bytes, ctypes.c_size_t, _Bytes]
        lib.vbill_poseidon_init_sparse.argtypes = [ctypes.c_int, *[_Bytes] * 5]
        for fn in (lib.vbill_poseidon_hash, lib.vbill_poseidon_hash_plain):
            fn.argtypes = [ctypes.c_int, _Bytes, ctypes.c_char_p]
        for fn in (
            lib.vbill_poseidon_init,
            lib.vbill_poseidon_init_sparse,
            lib.vbill_poseidon_hash,
            lib.vbill_poseidon_hash_plain,
        ):
            fn.restype = ctypes.c_int
        self._lib = lib
        self._ready: set[int] = set()
        self._lock = threading.Lock()

    def hash(self, t: int, inputs: Sequence[int], *, plain: bool = False) -> int:
        """Poseidon(t − 1) of already checked inputs; `plain` runs the textbook C form.

        The library re-checks every input < r: ValueError if one is not.
        """
        if t not in self._ready:
            self._init(t)
        out = ctypes.create_string_buffer(_WORD)
        fn = self._lib.vbill_poseidon_hash_plain if plain else self._lib.vbill_poseidon_hash
        rc = fn(t, _words(inputs), out)
        if rc == _E_INPUT:
            raise ValueError(f"Poseidon input is not a field element: {list(inputs)!r}")
        if rc != 0:
            raise ToolError(f"{NATIVE_LIB.name}: vbill_poseidon_hash(t={t}) failed ({rc})")
        return int.from_bytes(out.raw, "little")

    def _init(self, t: int) -> None:
        with self._lock:
            if t in self._ready:
                return
            if not 2 <= t <= MAX_INPUTS + 1:
                raise ValueError(f"Poseidon width t must be in 2..{MAX_INPUTS + 1}, got {t}")
            p, plan = params(t), _sparse_plan(t)
            rc = self._lib.vbill_poseidon_init(
                t, _words(p.constants), len(p.constants), _words([x for r in p.mds for x in r])
            )
            if rc == 0:
                rc = self._lib.vbill_poseidon_init_sparse(
                    t,
                    _words(plan.entry),
                    _words([x for row in plan.entry_b for x in row]),
                    _words(plan.pre),
                    _words(plan.post),
                    _words([x for m00, u, col in plan.sparse for x in (m00, *u, *col)]),
                )
            if rc != 0:
                raise ToolError(f"{NATIVE_LIB.name}: init of width {t} failed ({rc})")
            self._ready.add(t)


@cache
def _load_native() -> NativePoseidon | None:
    if not NATIVE_LIB.exists():
        return None
    try:
        return NativePoseidon(NATIVE_LIB)
    except (OSError, AttributeError) as e:  # a broken or stale build: say so, never hide it
        raise ToolError(
            f"cannot load {NATIVE_LIB}: {e}; run `make poseidon-lib` or set {BACKEND_ENV}=python"
        ) from e


def native_backend() -> NativePoseidon | None:
    """The native Poseidon, or None on the pure-Python path (per `VBILL_POSEIDON`)."""
    choice = os.environ.get(BACKEND_ENV, "auto")
    if choice == "python":
        return None
    if choice not in ("auto", "native", ""):
        raise ToolError(f"{BACKEND_ENV} must be auto, python or native, got {choice!r}")
    native = _load_native()
    if native is None and choice == "native":
        raise ToolError(
            f"{BACKEND_ENV}=native but {NATIVE_LIB} is missing; run `make poseidon-lib`"
        )
    return native


def backend() -> str:
    """Which path `poseidon` takes now: "native" or "python"."""
    return "python" if native_backend() is None else "native"
