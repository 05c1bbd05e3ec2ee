"""Print the BN254 pairing constants that orchestrator/native/pairing.h hard-codes.

Run `python orchestrator/native/gen_constants.py`; tests/zk/test_native_prover.py checks that
every line printed here appears verbatim in pairing.h. Values are Montgomery form (R = 2^256)
unless marked plain.
"""

from __future__ import annotations

P = 21888242871839275222246405745257275088696311157297823662689037894645226208583
R_ORDER = 21888242871839275222246405745257275088548364400416034343698204186575808495617
X = 4965661367192848881  # BN parameter
XI = (9, 1)  # 9 + u, the sextic non-residue


def _limbs(x: int) -> str:
    return "{{" + ", ".join(f"0x{(x >> (64 * i)) & (2**64 - 1):016x}ULL" for i in range(4)) + "}}"


def _mont(x: int) -> str:
    return _limbs(x * 2**256 % P)


def _mul2(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def _pow2(a: tuple[int, int], e: int) -> tuple[int, int]:
    out = (1, 0)
    while e:
        if e & 1:
            out = _mul2(out, a)
        a = _mul2(a, a)
        e >>= 1
    return out


def _fe2(v: tuple[int, int]) -> str:
    return f"{{{_mont(v[0])}, {_mont(v[1])}}}"


def lines() -> list[str]:
    out = []
    for name, e in (
        ("FROB_X1", (P - 1) // 3),
        ("FROB_Y1", (P - 1) // 2),
        ("FROB_X2", (P * P - 1) // 3),
        ("FROB_Y2", (P * P - 1) // 2),
    ):
        out.append(f"static const fe2 {name} = {_fe2(_pow2(XI, e))};")
    loop = bin(6 * X + 2)[2:]
    out.append(f'static const char ATE_LOOP_BITS[] = "{loop}"; /* 6x + 2, x = {X} */')
    for k in (1, 2, 3):
        assert (P**k - 1) % 6 == 0
        vals = ", ".join(_fe2(_pow2(XI, i * (P**k - 1) // 6)) for i in range(6))
        out.append(f"static const fe2 FROB{k}[6] = {{{vals}}};")
    hard = (P**4 - P**2 + 1) // R_ORDER
    assert (P**4 - P**2 + 1) % R_ORDER == 0
    digits = []
    for _ in range(4):
        digits.append(hard % P)
        hard //= P
    assert hard == 0
    out.append("static const fe HARD_DIGITS[4] = {" + ", ".join(map(_limbs, digits)) + "};")
    return out


if __name__ == "__main__":
    print("\n".join(lines()))
