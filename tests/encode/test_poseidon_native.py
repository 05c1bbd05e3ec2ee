"""The native Poseidon (orchestrator/native/poseidon.c) equals the pure-Python one bit for bit.

The library is built here with `make poseidon-lib` (a no-op when up to date), so these tests
never skip: `VBILL_POSEIDON` picks the path, and both are compared on the same vectors.
"""

from __future__ import annotations

import ctypes
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.circuit_tools import node_json
from vbill import paths
from vbill.errors import ToolError
from vbill.zk import poseidon as P
from vbill.zk.field import R
from vbill.zk.poseidon import MAX_INPUTS, poseidon, poseidon_python, poseidon_reference
from vbill.zk.witness import public_signals

E_WIDTH, E_COUNT, E_CONST, E_UNINIT, E_INPUT = -1, -2, -3, -4, -5  # poseidon.c return codes


@pytest.fixture(scope="module")
def native() -> Iterator[P.NativePoseidon]:
    done = subprocess.run(
        ["make", "--no-print-directory", "poseidon-lib"],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    P._load_native.cache_clear()  # pick up a library built after the first lookup
    assert P._load_native() is not None
    # The refused and re-initialised widths exercised here run on a private copy of the
    # library (its own tables), never on the one the session's v1 and v2 hashing uses.
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "libvbill_poseidon_copy.so"
        shutil.copyfile(P.NATIVE_LIB, copy)
        yield P.NativePoseidon(copy)


@pytest.fixture
def force(monkeypatch: pytest.MonkeyPatch) -> Any:
    def set_backend(name: str) -> None:
        monkeypatch.setenv(P.BACKEND_ENV, name)

    return set_backend


@pytest.fixture(scope="module")
def lib(native: P.NativePoseidon) -> ctypes.CDLL:
    """The same loaded library, called directly (below the Python input checks)."""
    return native._lib


def words(values: list[int]) -> bytes:
    return b"".join(x.to_bytes(32, "little") for x in values)


# --- refusals first ---


@pytest.mark.parametrize("bad", [[R], [R + 1], [2**256 - 1], [5, R], [0] * 7 + [R]])
def test_library_refuses_inputs_not_below_r(native: P.NativePoseidon, bad: list[int]) -> None:
    """Below the Python checks, the C code itself rejects every input ≥ r, plain and sparse."""
    t = len(bad) + 1
    for plain in (False, True):
        with pytest.raises(ValueError):
            native.hash(t, bad, plain=plain)


@pytest.mark.parametrize(
    "bad", [[R], [-1], [1, R + 1], [True], [1.0], [], list(range(MAX_INPUTS + 1))]
)
def test_both_paths_refuse_the_same_inputs_with_the_same_error(
    native: P.NativePoseidon, force: Any, bad: list[Any]
) -> None:
    messages = []
    for backend in ("native", "python"):
        force(backend)
        with pytest.raises(ValueError) as caught:
            poseidon(bad)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


def test_init_refuses_bad_width_count_and_constants(lib: ctypes.CDLL) -> None:
    p = P.params(3)
    consts, mds = words(list(p.constants)), words([x for row in p.mds for x in row])
    n = len(p.constants)
    assert lib.vbill_poseidon_init(1, consts, n, mds) == E_WIDTH
    assert lib.vbill_poseidon_init(18, consts, n, mds) == E_WIDTH
    assert lib.vbill_poseidon_init(3, consts, n - 1, mds) == E_COUNT
    assert lib.vbill_poseidon_init(3, consts, 8 * 3, mds) == E_COUNT  # no partial round
    bad_const = words([*p.constants[:-1], R])
    bad_mds = words([*[x for row in p.mds for x in row][:-1], R])
    assert lib.vbill_poseidon_init(3, bad_const, n, mds) == E_CONST
    assert lib.vbill_poseidon_init(3, consts, n, bad_mds) == E_CONST


def test_failed_init_keeps_the_width_working(native: P.NativePoseidon, lib: ctypes.CDLL) -> None:
    v = [1, 2]
    assert native.hash(3, v) == poseidon_python(v)
    p = P.params(3)
    bad = words([*p.constants[:-1], R])
    assert lib.vbill_poseidon_init(3, bad, len(p.constants), words([0] * 9)) == E_CONST
    assert native.hash(3, v) == native.hash(3, v, plain=True) == poseidon_python(v)


def test_hash_of_a_width_never_initialised_is_refused(lib: ctypes.CDLL, tmp_path: Path) -> None:
    # A private copy of the library: in this process every width a binding uses (v2's t = 17
    # included) may already be initialised by earlier tests through the shared handle.
    fresh = tmp_path / "libfresh.so"
    shutil.copyfile(lib._name, fresh)
    lib = ctypes.CDLL(str(fresh))
    out = ctypes.create_string_buffer(32)
    assert lib.vbill_poseidon_hash(17, words([0] * 16), out) == E_UNINIT
    assert lib.vbill_poseidon_hash(0, words([0]), out) == E_WIDTH


def test_backend_setting_is_checked(
    native: P.NativePoseidon, force: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    force("fast")
    with pytest.raises(ToolError, match="VBILL_POSEIDON"):
        poseidon([1])
    force("native")
    monkeypatch.setattr(P, "NATIVE_LIB", paths.BUILD / "native" / "no-such-lib.so")
    P._load_native.cache_clear()
    try:
        with pytest.raises(ToolError, match="poseidon-lib"):
            poseidon([1])
        force("auto")  # auto falls back to Python when the library is absent
        assert P.backend() == "python"
        assert poseidon([1, 2]) == poseidon_python([1, 2])
    finally:
        monkeypatch.undo()
        P._load_native.cache_clear()
    assert P.backend() == "native"


# --- equality ---


def test_native_is_the_default_when_built(native: P.NativePoseidon, force: Any) -> None:
    force("auto")
    assert P.backend() == "native"
    force("python")
    assert P.backend() == "python"


def random_vectors(rng: random.Random, n: int, count: int) -> list[list[int]]:
    edges = [0, 1, R - 1, R - 2]
    vectors = [[e] * n for e in edges] + [[rng.choice(edges) for _ in range(n)] for _ in range(8)]
    while len(vectors) < count:
        vectors.append(
            [rng.choice([rng.randrange(R), rng.randrange(2**64), *edges]) for _ in range(n)]
        )
    return vectors


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_native_equals_python_on_random_and_edge_vectors(
    native: P.NativePoseidon, force: Any, n: int
) -> None:
    """500 vectors per width (2,000 in all): native sparse and plain C both equal Python."""
    force("native")
    vectors = random_vectors(random.Random(1000 + n), n, 500)
    mismatches = [
        v
        for v in vectors
        if not (poseidon(v) == native.hash(n + 1, v, plain=True) == poseidon_python(v))
    ]
    assert not mismatches, mismatches[:3]


def test_every_width_equals_the_textbook_form(native: P.NativePoseidon) -> None:
    rng = random.Random(5)
    for n in range(1, MAX_INPUTS + 1):
        for v in random_vectors(rng, n, 16):
            assert native.hash(n + 1, v) == native.hash(n + 1, v, plain=True), v
            assert native.hash(n + 1, v) == poseidon_reference(v), v


def test_native_equals_circomlibjs(native: P.NativePoseidon, force: Any) -> None:
    """Independent of Python: circomlibjs (wasm and reference) on the native path's outputs."""
    force("native")
    rng = random.Random(777)
    vectors = [v for n in range(1, MAX_INPUTS + 1) for v in random_vectors(rng, n, 14)]
    outputs = node_json("poseidon_vectors.mjs", [[str(x) for x in v] for v in vectors])
    mismatches = [
        (v, out)
        for v, out in zip(vectors, outputs, strict=True)
        if not (str(poseidon(v)) == out["wasm"] == out["reference"])
    ]
    assert not mismatches, mismatches[:3]


def test_public_signals_are_the_same_on_both_paths(native: P.NativePoseidon, force: Any) -> None:
    from support.circuit_tools import random_fields

    rng = random.Random(31)
    cases = [random_fields(rng) for _ in range(40)]
    force("native")
    fast = [public_signals(*c) for c in cases]
    force("python")
    assert fast == [public_signals(*c) for c in cases]


def test_concurrent_first_use_initialises_each_width_once() -> None:
    """Threads racing on a fresh backend all get correct hashes (init is locked per width)."""
    from concurrent.futures import ThreadPoolExecutor

    fresh = P.NativePoseidon(P.NATIVE_LIB)
    vectors = [[i, i + 1, i + 2] for i in range(64)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda v: fresh.hash(4, v), vectors))
    assert got == [poseidon_python(v) for v in vectors]


def textbook(constants: list[int], mds: list[list[int]], inputs: list[int]) -> int:
    """The plain permutation for any width and constants (R_F = 8), straight from the spec."""
    t = len(inputs) + 1
    rounds = len(constants) // t
    state = [0, *inputs]
    for r in range(rounds):
        state = [(x + c) % R for x, c in zip(state, constants[r * t : (r + 1) * t], strict=True)]
        full = r < 4 or r >= rounds - 4
        state = [pow(x, 5, R) if full or i == 0 else x for i, x in enumerate(state)]
        state = [sum(m * x for m, x in zip(row, state, strict=True)) % R for row in mds]
    return state[0]


@pytest.mark.parametrize("t", [10, 17])
def test_unreduced_dot_products_at_their_bound(lib: ctypes.CDLL, t: int) -> None:
    """Every MDS entry r − 1 in Montgomery form (the largest a limb vector can be), widths the
    module never uses (so its own tables stay intact), checked against the textbook in Python.

    With 17 maximal products the unreduced sum exceeds r·2^256 (up to three subtractions of it
    before the Montgomery reduction); skipping them overflows 256 bits and shows up here.
    """
    mont_max = (R - 1) * pow(2**256, -1, R) % R
    rng = random.Random(t)
    rounds_p = 3
    constants = [
        rng.choice([mont_max, R - 1, 0, rng.randrange(R)]) for _ in range((8 + rounds_p) * t)
    ]
    mds = [[mont_max] * t for _ in range(t)]
    assert (
        lib.vbill_poseidon_init(t, words(constants), len(constants), words([mont_max] * (t * t)))
        == 0
    )
    out = ctypes.create_string_buffer(32)
    for inputs in (
        [mont_max] * (t - 1),
        [R - 1] * (t - 1),
        [rng.randrange(R) for _ in range(t - 1)],
    ):
        assert lib.vbill_poseidon_hash(t, words(inputs), out) == 0
        assert int.from_bytes(out.raw, "little") == textbook(constants, mds, inputs)
