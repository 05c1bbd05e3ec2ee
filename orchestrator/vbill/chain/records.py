"""What crosses to the chain and back: settlement calldata from bundles, balances, receipts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_utils import keccak

from vbill import jsonio
from vbill.chain.contracts import FIRST, VERIFIERS, verifier_spec
from vbill.chain.networks import WEI_PER_ETH
from vbill.errors import InputError


@dataclass(frozen=True)
class AccountState:
    """IBillingSettlement.Account, field for field (wei; days are block.timestamp // 1 day)."""

    available: int
    spent_today: int
    spent_day: int
    controller: str
    reserved: int
    per_request_limit: int
    daily_limit: int
    unlock_at: int


@dataclass(frozen=True)
class Balance:
    available: int
    reserved: int
    total: int

    def as_json(self) -> dict[str, Any]:
        return {
            "available_wei": str(self.available),
            "reserved_wei": str(self.reserved),
            "total_wei": str(self.total),
            "total_eth": wei_to_eth(self.total),
        }


@dataclass(frozen=True)
class TxResult:
    transaction_hash: str
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class Charge:
    """A ChargeSettled event; for a v2 charge, with its WindowAdvanced state keys."""

    tenant_key: int
    nullifier: int
    commitment: int
    charge: int
    wei: int
    prev_state_key: int | None = None
    state_key: int | None = None


@dataclass(frozen=True)
class UsageReceipt:
    """What `vbill receipt` re-derives from the chain (docs/protocol.md §5.3)."""

    cost_eth: str
    transaction_hash: str
    block_number: int
    gas_used: int
    timestamp: int
    charges: tuple[Charge, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return _receipt_json(self, "charges")


def _receipt_json(receipt: Any, entries: str) -> dict[str, Any]:
    """A receipt as JSON: its events' fields as decimal strings, absent state keys left out."""
    out = asdict(receipt)
    out[entries] = [
        {k: str(v) for k, v in asdict(e).items() if v is not None}
        for e in getattr(receipt, entries)
    ]
    return out


@dataclass(frozen=True)
class Credit:
    """A ChargeCorrected event (docs/protocol-corrections.md §10) with its WindowAdvanced state
    keys: the correction's nullifier, the corrected charge's, and the credit in micros and wei."""

    tenant_key: int
    nullifier: int
    corrects_nullifier: int
    commitment: int
    credit: int
    wei: int
    prev_state_key: int | None = None
    state_key: int | None = None


@dataclass(frozen=True)
class CorrectionReceipt:
    """What `vbill receipt` re-derives from a settleCorrection transaction: the credit moved back
    to the tenant, where and when (the settlement worker stores the same fields)."""

    credit_eth: str
    transaction_hash: str
    block_number: int
    gas_used: int
    timestamp: int
    corrections: tuple[Credit, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return _receipt_json(self, "corrections")


@dataclass(frozen=True)
class Settlement:
    """A proof and its public signals (five for v1, seven for v2), in the contract's calldata
    shape; `binding` picks the verifier and the settlement's entry points."""

    a: tuple[int, int]
    b: tuple[tuple[int, int], tuple[int, int]]
    c: tuple[int, int]
    signals: tuple[int, ...]
    currency: str = "ETH"
    binding: str = FIRST

    @property
    def nullifier(self) -> int:
        return self.signals[3]

    @property
    def commitment(self) -> int:
        return self.signals[0]

    @property
    def tenant_key(self) -> int:
        return self.signals[4]

    @property
    def state_keys(self) -> tuple[int, int] | None:
        """(prev_state_key, state_key) of a v2 charge; None for v1."""
        spec = VERIFIERS.get(self.binding)
        return (self.signals[5], self.signals[6]) if spec and spec.state_keys else None

    def proof_arg(self) -> tuple[Any, ...]:
        return (list(self.a), [list(self.b[0]), list(self.b[1])], list(self.c))


def wei_to_eth(wei: int) -> str:
    return format(Decimal(wei) / Decimal(WEI_PER_ETH), "f")


def parse_uint(value: Any, where: str, bound: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputError(where, "expected a decimal integer")
    try:
        x = int(value)
    except ValueError:
        raise InputError(where, "expected a decimal integer") from None
    if x < 0 or (bound is not None and x >= bound):
        raise InputError(where, "out of range")
    return x


def batch_scalars(items: Sequence[Settlement]) -> list[int]:
    """The Fiat–Shamir scalars BillingVerifier.verifyBatch derives, for cross-checking it
    against the py_ecc reference: seed = keccak256(every proof word in calldata order, then
    every signal word), r_0 = 1 and r_i = (keccak256(seed ‖ i) mod 2^128) + 1."""
    words: list[int] = []
    for s in items:
        words += [*s.a, *s.b[0], *s.b[1], *s.c]
    for s in items:
        words += list(s.signals)
    seed = keccak(b"".join(w.to_bytes(32, "big") for w in words))
    return [1] + [
        (int.from_bytes(keccak(seed + i.to_bytes(32, "big")), "big") & (2**128 - 1)) + 1
        for i in range(1, len(items))
    ]


def settlement_from_snarkjs(
    proof: Mapping[str, Any], signals: Sequence[Any], binding: str = FIRST
) -> Settlement:
    """snarkjs JSON → calldata; G2 coordinates swap to the EVM's (im, re) order.

    Coordinates are passed as given (even ≥ p): the on-chain verifier must be the one to reject.
    The binding fixes the number of signals (InputError for another count or binding).
    """
    n_public = verifier_spec(binding).n_public
    try:
        pa, pb, pc = proof["pi_a"], proof["pi_b"], proof["pi_c"]
        a = (parse_uint(pa[0], "proof.pi_a[0]"), parse_uint(pa[1], "proof.pi_a[1]"))
        b = (
            (parse_uint(pb[0][1], "proof.pi_b[0][1]"), parse_uint(pb[0][0], "proof.pi_b[0][0]")),
            (parse_uint(pb[1][1], "proof.pi_b[1][1]"), parse_uint(pb[1][0], "proof.pi_b[1][0]")),
        )
        c = (parse_uint(pc[0], "proof.pi_c[0]"), parse_uint(pc[1], "proof.pi_c[1]"))
    except (KeyError, IndexError, TypeError) as exc:
        raise InputError("proof", f"not a snarkjs Groth16 proof ({exc})") from None
    if len(signals) != n_public:
        raise InputError("public_signals", f"{binding} has {n_public}, got {len(signals)}")
    sig = tuple(parse_uint(s, f"public_signals[{i}]", 2**256) for i, s in enumerate(signals))
    return Settlement(a, b, c, sig, binding=binding)


def settlement_from_bundle(bundle: Mapping[str, Any], where: str = "bundle") -> Settlement:
    """The proof, signals, binding and tariff currency of a billing bundle (docs/protocol.md
    §5; binding v2: docs/protocol-v2.md §5)."""
    try:
        bp = bundle["attestation"]["billing_proof"]
        proof, signals, binding = bp["proof"], bp["public_signals"], bp["binding_version"]
    except (KeyError, TypeError):
        raise InputError(
            f"{where}.attestation.billing_proof", "missing proof, signals or binding_version"
        ) from None
    # a correction document (binding v2c) states its tariff under `original`
    tariff = bundle.get("tariff_snapshot") or bundle.get("original", {}).get("tariff_snapshot", {})
    currency = str(tariff.get("currency", "")) if isinstance(tariff, Mapping) else ""
    s = settlement_from_snarkjs(proof, signals, str(binding))
    return Settlement(s.a, s.b, s.c, s.signals, currency, s.binding)


def read_bundle(path: Path) -> dict[str, Any]:
    """A bundle file, parsed as untrusted JSON (bounded size, nesting and integers)."""
    data = jsonio.read_file(Path(path))
    if not isinstance(data, dict):
        raise InputError(str(path), "bundle is not a JSON object")
    return data


# ---------------------------------------------------------------------------------- chain
