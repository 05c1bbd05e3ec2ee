"""The native C Groth16 prover against the references: snarkjs's CLI verifier and py_ecc.

Negative cases first: a witness that breaks a constraint must give a proof that fails both
verifiers, and malformed frames must give an error line from a process that keeps serving.
"""

from __future__ import annotations

import copy
import json
import os
import random
import struct
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support import needs_build
from support.circuit_tools import sections
from vbill import paths
from vbill.bundle.bundle import encode_request
from vbill.zk.field import R
from vbill.zk.groth16 import Groth16Error, verify_json
from vbill.zk.native_prover import (
    NativeProcess,
    NativeProver,
    NativeProverError,
    NativeVerifier,
    batch_verify,
)
from vbill.zk.prover import Proof, verify_cli
from vbill.zk.witness import circuit_input, public_signals, random_field_element

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vkey() -> dict[str, Any]:
    needs_build()
    return json.loads(paths.VKEY.read_text())


@pytest.fixture(scope="module")
def native() -> Iterator[NativeProver]:
    needs_build()
    with NativeProver(workers=2) as p:
        yield p


@pytest.fixture(scope="module")
def process() -> Iterator[NativeProcess]:
    needs_build()
    proc = NativeProcess(paths.ZKEY)
    yield proc
    proc.close()


def random_case(pilot: dict[str, Any], rng: random.Random) -> tuple[dict[str, str], list[str]]:
    """A random valid request -> (circuit input, the public signals Python computes for it)."""
    req = copy.deepcopy(pilot)
    req["meter_event"]["event_id"] = f"evt_native_{rng.randrange(10**9)}"
    req["meter_event"]["usage_units"] = rng.randrange(1, 10**7)
    tariff = req["tariff_snapshot"]
    tariff["unit_price_micros"] = rng.randrange(1, 10**6)
    tariff["rounding_mode"] = rng.choice(["floor", "ceil", "half_up"])
    tariff["min_charge_micros"] = rng.randrange(0, 10**5)
    tariff["max_charge_micros"] = rng.randrange(10**5, 10**12)
    enc = encode_request(req)
    salt, account_salt = random_field_element(), random_field_element()
    inp = circuit_input(enc.meter, enc.tariff, salt, account_salt)
    expected = public_signals(enc.meter, enc.tariff, salt, account_salt).as_decimal()
    return inp, expected


def wtns_values(wtns: bytes) -> tuple[int, int]:
    """(offset of the values section, number of values) of a .wtns file."""
    assert wtns[:4] == b"wtns"
    offset, size = sections(wtns, b"wtns")[2]
    return offset, size // 32


def set_value(wtns: bytes, index: int, value: int) -> bytes:
    offset, count = wtns_values(wtns)
    assert index < count
    out = bytearray(wtns)
    out[offset + 32 * index : offset + 32 * index + 32] = value.to_bytes(32, "little")
    return bytes(out)


def get_value(wtns: bytes, index: int) -> int:
    offset, _ = wtns_values(wtns)
    return int.from_bytes(wtns[offset + 32 * index : offset + 32 * index + 32], "little")


def both_verify(vkey: dict[str, Any], proof: Proof) -> tuple[bool, bool]:
    return (
        verify_cli(paths.VKEY, proof.public_signals, proof.proof),
        verify_json(vkey, proof.public_signals, proof.proof),
    )


# --- negative cases ---------------------------------------------------------------------


def test_corrupted_witness_gives_a_proof_neither_verifier_accepts(
    native: NativeProver, vkey: dict[str, Any], pilot_request: dict[str, Any]
) -> None:
    inp, _ = random_case(pilot_request, random.Random(7))
    wtns = native.wtns(inp)
    _, count = wtns_values(wtns)
    index = count - 1  # a private wire, so the public signals stay the ones the circuit made
    bad = set_value(wtns, index, (get_value(wtns, index) + 1) % R)
    proof = native.prove_wtns(bad)
    assert both_verify(vkey, proof) == (False, False)
    # the same witness uncorrupted verifies: the failure above is the corruption's doing
    assert both_verify(vkey, native.prove_wtns(wtns)) == (True, True)


def test_corrupted_public_signal_fails_verification(
    native: NativeProver, vkey: dict[str, Any], pilot_request: dict[str, Any]
) -> None:
    inp, expected = random_case(pilot_request, random.Random(8))
    wtns = native.wtns(inp)
    bad = set_value(wtns, 2, (get_value(wtns, 2) + 1) % R)  # the charge
    proof = native.prove_wtns(bad)
    assert proof.public_signals[1] != expected[1]
    assert not verify_json(vkey, proof.public_signals, proof.proof)


def malformed_frames(wtns: bytes) -> dict[str, bytes]:
    _, count = wtns_values(wtns)
    header_at = sections(wtns, b"wtns")[1][0]  # n8, prime, count
    wrong_count = bytearray(wtns)
    struct.pack_into("<I", wrong_count, header_at + 36, count - 1)
    wrong_prime = bytearray(wtns)
    wrong_prime[header_at + 4] ^= 1
    one_not_one = set_value(wtns, 0, 2)
    return {
        "empty": b"",
        "garbage": b"definitely not a witness file",
        "bad magic": b"wtnx" + wtns[4:],
        "truncated": wtns[: len(wtns) // 2],
        "witness count": bytes(wrong_count),
        "field prime": bytes(wrong_prime),
        "value >= r": set_value(wtns, count - 1, R),
        "value 2^256-1": set_value(wtns, 3, 2**256 - 1),
        "w[0] != 1": one_not_one,
        "extra section overruns": wtns[:-1],
    }


def test_malformed_frames_give_error_lines_and_the_process_keeps_serving(
    native: NativeProver,
    process: NativeProcess,
    vkey: dict[str, Any],
    pilot_request: dict[str, Any],
) -> None:
    inp, expected = random_case(pilot_request, random.Random(9))
    wtns = native.wtns(inp)
    for name, frame in malformed_frames(wtns).items():
        out = process.send_frame(frame)
        assert set(out) == {"error"}, name
        assert out["error"], name
        assert process.alive, name
    proof, _ = process.prove_wtns(wtns)
    assert proof.public_signals == expected
    assert verify_json(vkey, proof.public_signals, proof.proof)


def test_rejected_witness_raises_naming_the_problem(
    native: NativeProver, pilot_request: dict[str, Any]
) -> None:
    inp, _ = random_case(pilot_request, random.Random(10))
    wtns = native.wtns(inp)
    with pytest.raises(NativeProverError, match="not a field element"):
        native.prove_wtns(set_value(wtns, 5, R + 5))
    with pytest.raises(NativeProverError, match="witness length"):
        native.prove_wtns(malformed_frames(wtns)["witness count"])


def test_oversized_frame_length_is_an_error_line_then_exit() -> None:
    needs_build()
    proc = NativeProcess(paths.ZKEY)
    try:
        assert proc._proc.stdin is not None
        proc._proc.stdin.write(struct.pack("<I", 0xFFFFFFFF))
        proc._proc.stdin.flush()
        assert "error" in proc._read()
        assert proc._proc.wait(timeout=10) == 1
    finally:
        proc.close()


def test_bad_proving_key_fails_at_start(tmp_path: Any) -> None:
    needs_build()
    key = paths.ZKEY.read_bytes()
    cases = {
        "missing.zkey": None,
        "truncated.zkey": key[: len(key) // 3],
        "not_a_zkey.zkey": b"r1cs" + key[4:],
    }
    # alpha1's x coordinate changed: the point leaves the curve
    corrupt = bytearray(key)
    corrupt[sections(key, b"zkey")[2][0] + 84] ^= 0x01
    cases["off_curve.zkey"] = bytes(corrupt)
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(NativeProverError):
            NativeProcess(path)


# --- agreement with snarkjs and py_ecc --------------------------------------------------


def test_native_proofs_verify_with_snarkjs_cli_and_py_ecc(
    native: NativeProver, vkey: dict[str, Any], pilot_request: dict[str, Any]
) -> None:
    rng = random.Random(2026)
    for _ in range(3):
        inp, expected = random_case(pilot_request, rng)
        proof = native.prove(inp)
        assert proof.public_signals == expected
        assert proof.proof["protocol"] == "groth16" and proof.proof["curve"] == "bn128"
        assert proof.proof["pi_a"][2] == "1" and proof.proof["pi_b"][2] == ["1", "0"]
        assert both_verify(vkey, proof) == (True, True)


def test_proofs_are_randomised_and_all_verify(
    native: NativeProver, vkey: dict[str, Any], pilot_request: dict[str, Any]
) -> None:
    inp, expected = random_case(pilot_request, random.Random(11))
    first, second = native.prove(inp), native.prove(inp)
    assert first.public_signals == second.public_signals == expected
    assert first.proof["pi_a"] != second.proof["pi_a"]
    assert first.proof["pi_c"] != second.proof["pi_c"]
    assert verify_json(vkey, second.public_signals, second.proof)


def test_concurrent_callers_each_get_their_own_valid_proof(
    native: NativeProver, vkey: dict[str, Any], pilot_request: dict[str, Any]
) -> None:
    rng = random.Random(12)
    cases = [random_case(pilot_request, rng) for _ in range(8)]
    with ThreadPoolExecutor(4) as ex:
        proofs = list(ex.map(lambda c: native.prove(c[0]), cases))
    for (_, expected), proof in zip(cases, proofs, strict=True):
        assert proof.public_signals == expected
    # two verified by py_ecc, all by snarkjs (py_ecc takes ~1 s each)
    assert all(verify_cli(paths.VKEY, p.public_signals, p.proof) for p in proofs)
    assert all(verify_json(vkey, p.public_signals, p.proof) for p in proofs[:2])


@pytest.mark.parametrize("portable", ["0", "1"])
def test_one_shot_mode_proves_a_wtns_file(
    native: NativeProver,
    vkey: dict[str, Any],
    pilot_request: dict[str, Any],
    tmp_path: Any,
    portable: str,
) -> None:
    """Both field multiplications give valid proofs: mulx/adcx/adox where the CPU has them
    (VBILL_NATIVE_PORTABLE=0) and the portable mulq one (=1), which every CPU runs."""
    inp, expected = random_case(pilot_request, random.Random(13))
    path = tmp_path / "w.wtns"
    path.write_bytes(native.wtns(inp))
    done = subprocess.run(
        [str(paths.BUILD / "native" / "vbill-prover"), str(paths.ZKEY), str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "VBILL_NATIVE_PORTABLE": portable},
    )
    out = json.loads(done.stdout)
    assert out["public_signals"] == expected
    assert verify_json(vkey, out["public_signals"], out["proof"])


# --- native batch verification (agrees with py_ecc; names the bad proofs) ----------------

P_FIELD = 21888242871839275222246405745257275088696311157297823662689037894645226208583


def py_ecc_ok(vkey: dict[str, Any], signals: list[str], proof: dict[str, Any]) -> bool:
    try:
        return verify_json(vkey, signals, proof)
    except Groth16Error:
        return False


@pytest.fixture(scope="module")
def valid_items(
    native: NativeProver, pilot_request: dict[str, Any]
) -> list[tuple[list[str], dict[str, Any]]]:
    rng = random.Random(99)
    proofs = [native.prove(random_case(pilot_request, rng)[0]) for _ in range(4)]
    return [(p.public_signals, p.proof) for p in proofs]


def tampered(items: list[tuple[list[str], dict[str, Any]]]) -> list[tuple[list[str], Any]]:
    (s0, p0), (s1, p1) = items[0], items[1]
    neg_a = dict(p0, pi_a=[p0["pi_a"][0], str(P_FIELD - int(p0["pi_a"][1])), "1"])
    off_curve_b = dict(p0, pi_b=[[p0["pi_b"][0][0], p0["pi_b"][0][1]], ["1", "2"], ["1", "0"]])
    return [
        ([s0[0], str(int(s0[1]) + 1), *s0[2:]], p0),  # charge changed
        (s1, p0),  # another proof's signals
        (s0, neg_a),  # pi_a negated: on the curve, wrong
        (s0, dict(p0, pi_c=p1["pi_c"])),  # pi_c from another proof
        (s0, off_curve_b),  # refused by the parser
        (s0, dict(p0, pi_a=[str(int(p0["pi_a"][0]) + P_FIELD), p0["pi_a"][1], "1"])),
        (s0[:-1], p0),  # too few signals
    ]


def test_batch_verify_names_each_invalid_proof_as_py_ecc_judges_it(
    vkey: dict[str, Any], valid_items: list[tuple[list[str], dict[str, Any]]]
) -> None:
    bad_items = tampered(valid_items)
    items = [valid_items[0], *bad_items, valid_items[1]]
    expected = [i for i, (s, p) in enumerate(items) if not py_ecc_ok(vkey, s, p)]
    assert expected == list(range(1, len(bad_items) + 1))  # the reference rejects each one
    assert batch_verify(vkey, items) == expected


def test_batch_verify_finds_one_bad_proof_hidden_among_valid_ones(
    vkey: dict[str, Any], valid_items: list[tuple[list[str], dict[str, Any]]]
) -> None:
    items = [valid_items[i % len(valid_items)] for i in range(40)]
    assert batch_verify(vkey, items) == []
    for hide_at in (0, 23, 39):
        batch = list(items)
        batch[hide_at] = tampered(valid_items)[3]
        assert batch_verify(vkey, batch) == [hide_at]
    batch = list(items)
    batch[5], batch[6], batch[31] = (tampered(valid_items)[k] for k in (0, 2, 1))
    assert batch_verify(vkey, batch) == [5, 6, 31]


def test_batch_verify_accepts_what_py_ecc_accepts(
    vkey: dict[str, Any], valid_items: list[tuple[list[str], dict[str, Any]]]
) -> None:
    assert all(py_ecc_ok(vkey, s, p) for s, p in valid_items)
    assert batch_verify(vkey, valid_items) == []
    assert batch_verify(vkey, valid_items[:1]) == []
    assert batch_verify(vkey, []) == []


def twist_point_outside_g2() -> list[list[str]]:
    """A point on the twist y^2 = x^3 + 3/(9+u) whose order is not r (cofactor part)."""
    from py_ecc.optimized_bn128 import FQ2, b2, curve_order, is_inf, multiply

    def fq2_sqrt(a: FQ2) -> FQ2 | None:
        a0, a1 = (int(c) for c in a.coeffs)
        norm = (a0 * a0 + a1 * a1) % P_FIELD
        n = pow(norm, (P_FIELD + 1) // 4, P_FIELD)
        if n * n % P_FIELD != norm:
            return None
        for half in ((a0 + n) * pow(2, -1, P_FIELD), (a0 - n) * pow(2, -1, P_FIELD)):
            x0 = pow(half % P_FIELD, (P_FIELD + 1) // 4, P_FIELD)
            if x0 * x0 % P_FIELD == half % P_FIELD and x0:
                cand = FQ2([x0, a1 * pow(2 * x0, -1, P_FIELD) % P_FIELD])
                if cand * cand == a:
                    return cand
        return None

    for x0 in range(1, 100):
        x = FQ2([x0, 1])
        y = fq2_sqrt(x**3 + b2)
        if y is None:
            continue
        point = (x, y, FQ2.one())
        if not is_inf(multiply(point, curve_order)):
            return [[str(int(c)) for c in x.coeffs], [str(int(c)) for c in y.coeffs], ["1", "0"]]
    raise AssertionError("no twist point found")


def test_batch_verify_refuses_pi_b_outside_the_subgroup(
    vkey: dict[str, Any], valid_items: list[tuple[list[str], dict[str, Any]]]
) -> None:
    signals, proof = valid_items[0]
    forged = dict(proof, pi_b=twist_point_outside_g2())
    assert not py_ecc_ok(vkey, signals, forged)  # the reference refuses it while parsing
    with pytest.raises(Groth16Error, match="subgroup"):
        verify_json(vkey, signals, forged)
    assert batch_verify(vkey, [valid_items[1], (signals, forged)]) == [1]


def test_long_lived_verifier_answers_many_batches_and_single_proofs(
    vkey: dict[str, Any], valid_items: list[tuple[list[str], dict[str, Any]]]
) -> None:
    bad = tampered(valid_items)[0]
    with NativeVerifier(vkey) as verifier:
        assert not verifier.verify(*bad)
        assert all(verifier.verify(s, p) for s, p in valid_items)
        assert verifier.verify_batch([*valid_items, bad, *valid_items]) == [len(valid_items)]
        assert verifier.verify_batch([]) == []
        assert verifier.verify_batch(valid_items) == []


def test_verifier_refuses_a_malformed_key(vkey: dict[str, Any]) -> None:
    off_curve = dict(vkey, vk_alpha_1=[vkey["vk_alpha_1"][0], "5", "1"])
    with pytest.raises(Groth16Error):
        NativeVerifier(off_curve)


def test_verifier_binary_refuses_keys_and_input_it_cannot_trust(vkey: dict[str, Any]) -> None:
    exe = str(paths.BUILD / "native" / "vbill-verify")

    def key_words(key: dict[str, Any]) -> list[str]:
        words = list(key["vk_alpha_1"][:2])
        for name in ("vk_beta_2", "vk_gamma_2", "vk_delta_2"):
            words += [c for pair in key[name][:2] for c in pair]
        return [*words, str(len(key["IC"])), *(c for p in key["IC"] for c in p[:2])]

    good = key_words(vkey)
    cases = {
        "alpha off the curve": [good[0], "5", *good[2:]],
        "coordinate >= p": [str(int(good[0]) + P_FIELD), *good[1:]],
        "garbage": ["12", "x"],
        "no IC count": good[:14],
    }
    for name, words in cases.items():
        done = subprocess.run(
            [exe], input=" ".join([*words, "0"]), capture_output=True, text=True, check=False
        )
        assert done.returncode == 2, name
        assert "error" in json.loads(done.stdout), name
    done = subprocess.run(
        [exe], input=" ".join([*good, "0"]), capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == {"valid": True, "n": 0, "bad": []}


# --- the hard-coded constants of the C sources ------------------------------------------

NATIVE = paths.ROOT / "orchestrator" / "native"


def test_pairing_constants_are_what_the_generator_derives() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_constants", NATIVE / "gen_constants.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    header = (NATIVE / "pairing.h").read_text()
    missing = [line[:60] for line in gen.lines() if line not in header]
    assert missing == []


def test_field_constants_are_the_bn254_moduli_in_montgomery_form() -> None:
    import re

    text = (NATIVE / "fields.h").read_text()
    for name, modulus in (("fp", P_FIELD), ("fr", R)):
        call = re.search(rf"FIELD_DEFINE\({name},([^)]*)\)", text)
        assert call is not None, name
        words = [int(w, 16) for w in re.findall(r"0x([0-9a-f]+)ULL", call.group(1))]
        p = sum(w << (64 * i) for i, w in enumerate(words[0:4]))
        inv = words[4]
        one = sum(w << (64 * i) for i, w in enumerate(words[5:9]))
        rr = sum(w << (64 * i) for i, w in enumerate(words[9:13]))
        assert p == modulus, name
        assert (p * inv) % 2**64 == 2**64 - 1, name  # inv = -p^-1 mod 2^64
        assert one == 2**256 % p, name
        assert rr == 2**512 % p, name
