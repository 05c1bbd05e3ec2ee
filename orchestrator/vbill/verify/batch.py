"""Month-end close: verify many bundles, with one multi-pairing per chunk.

Everything but the pairing check runs per bundle in a process pool (public-signal
recomputation, signature, receipt, billing check); the Groth16 checks of a chunk are then
settled together by a random linear combination (`Prover.verify_batch`). When a chunk fails,
it is bisected until each bad proof is named, so one forged bundle cannot hide among valid
ones and cannot make valid ones look bad.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbill import jsonio
from vbill.errors import InputError, VbillError
from vbill.models import BindingVerdict, VerifyResult
from vbill.verify.trust import TrustSet
from vbill.verify.verify import unreadable_result, verify_bundle
from vbill.zk import groth16
from vbill.zk.prover import Prover


@dataclass(frozen=True)
class Pending:
    """A Groth16 check deferred to the batch: which key, which signals, which proof."""

    vkey_sha256: str
    signals: list[str]
    proof: dict[str, Any]


@dataclass(frozen=True)
class Unreadable:
    """A bundle that could not be read: one invalid bundle with this reason, never a crash."""

    reason: str


def iter_source(source: Path) -> Iterator[tuple[str, Any]]:
    """(name, parsed JSON or Unreadable) for every bundle in a directory of .json files or a
    .jsonl file."""
    if source.is_dir():
        for path in sorted(source.rglob("*.json")):
            yield str(path), _load(lambda path=path: jsonio.read_file(path))
    else:
        with source.open("rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    name = f"{source}:{lineno}"
                    yield name, _load(lambda line=line, name=name: jsonio.loads(line, name))


def _load(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except InputError as exc:
        return Unreadable(exc.message if "cannot read" in exc.message else f"cannot read: {exc}")


_TRUST: TrustSet | None = None


def _init(trust: TrustSet) -> None:
    global _TRUST
    _TRUST = trust


def _prepare(item: tuple[str, Any]) -> tuple[str, VerifyResult, Pending | None]:
    """All checks but the pairing; the pairing inputs come back as a Pending."""
    name, data = item
    pending: list[Pending] = []

    def defer(vkey: Mapping[str, Any], signals: Sequence[int], proof: Mapping[str, Any]) -> bool:
        groth16.parse_proof(proof, subgroup=False)  # the batch worker checks the subgroup
        sha = data["attestation"]["billing_proof"]["vkey_sha256"]
        pending.append(Pending(sha, [str(s) for s in signals], dict(proof)))
        return True

    assert _TRUST is not None
    if isinstance(data, Unreadable):
        return name, unreadable_result(data.reason), None
    result = verify_bundle(data, trust=_TRUST, check=defer)
    return name, result, pending[0] if pending else None


# (vkey, [(signals, proof), ...]) -> indices of the proofs that do not verify
BatchCheck = Callable[[Mapping[str, Any], list[tuple[list[str], dict[str, Any]]]], list[int]]


def worker_batch_check(prover: Prover) -> BatchCheck:
    """Batch check in a snarkjs worker (wasm pairing), bisecting a failed batch."""

    def bad(vkey: Mapping[str, Any], items: list[tuple[list[str], dict[str, Any]]]) -> list[int]:
        def search(idx: list[int]) -> list[int]:
            try:
                ok = prover.verify_batch([items[i] for i in idx], vkey)
            except VbillError:  # a malformed point fails the whole call: bisect to find it
                ok = False
            if ok:
                return []
            if len(idx) == 1:
                return idx
            mid = len(idx) // 2
            return search(idx[:mid]) + search(idx[mid:])

        return search(list(range(len(items)))) if items else []

    return bad


def native_batch_check(
    vkey: Mapping[str, Any], items: list[tuple[list[str], dict[str, Any]]]
) -> list[int]:
    """The native multi-pairing (build/native/vbill-verify); it bisects failures itself."""
    from vbill.verify.verify import native_verifier

    return native_verifier(vkey).verify_batch(items)


def _settle_chunk(
    chunk: list[tuple[str, VerifyResult, Pending | None]], trust: TrustSet, check: BatchCheck
) -> Iterator[tuple[str, VerifyResult]]:
    by_key: dict[str, list[int]] = {}
    for i, (_, _, pending) in enumerate(chunk):
        if pending is not None:
            by_key.setdefault(pending.vkey_sha256, []).append(i)
    bad: set[int] = set()
    pendings = [p for _, _, p in chunk]
    for sha, idx in by_key.items():
        vkey, _ = trust.vkey(sha)
        if vkey is None:  # cannot happen: verify only defers under a trusted key
            bad.update(idx)
            continue
        found = check(vkey, [(pendings[i].signals, pendings[i].proof) for i in idx])  # type: ignore[union-attr]
        bad.update(idx[j] for j in found)
    for i, (name, result, _) in enumerate(chunk):
        if i in bad:
            binding = result.incircuit_binding_verification
            result = result.model_copy(
                update={
                    "incircuit_binding_verification": BindingVerdict(
                        valid=False,
                        reason="Groth16 proof does not verify (found by batch bisection)",
                        binding_version=binding.binding_version,
                        commitment_digest=binding.commitment_digest,
                    ),
                    "valid": False,
                }
            )
        yield name, result


def verify_many(
    items: Iterable[tuple[str, Any]],
    *,
    trust: TrustSet,
    check: BatchCheck,
    workers: int | None = None,
    chunk_size: int = 512,
) -> Iterator[tuple[str, VerifyResult]]:
    """Verify bundles in order; yields (name, result) as each chunk is settled."""
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(trust,)) as pool:
        chunk: list[tuple[str, VerifyResult, Pending | None]] = []
        for prepared in pool.map(_prepare, items, chunksize=64):
            chunk.append(prepared)
            if len(chunk) >= chunk_size:
                yield from _settle_chunk(chunk, trust, check)
                chunk = []
        if chunk:
            yield from _settle_chunk(chunk, trust, check)
