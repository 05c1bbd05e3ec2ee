"""A metered bundle's usage object and its USD rate snapshot (docs/protocol-v2.md §12).

`usage` says what one event used and cost: units per dimension, their total, `cost_eth` (ETH
tariffs) and, when the operator configured a rate source, `cost_usd = cost_eth × rate` from a
rate snapshot `{rate, source, time}` that the attester signs at ingestion, bound to the
bundle's digest (`attestation.usd_rate`). Informational: never part of the proof or of the
signed digest, so old bundles and bundles without it verify as before; but an edited rate,
source, time or cost fails verification with a plain reason.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from eth_account.messages import _hash_eip191_message, encode_typed_data

from vbill.bundle.attestation import recover_signer
from vbill.bundle.keys import Attester
from vbill.errors import ToolError

log = logging.getLogger("vbill.usage")

MICROS_PER_ETH = 10**6
_RATE = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{0,7}[1-9])?")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
DOMAIN = {"name": "vbill", "version": "usd-rate-1"}
TYPES = {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
    "UsdRate": [
        {"name": "bundleDigest", "type": "bytes32"},
        {"name": "rate", "type": "string"},
        {"name": "source", "type": "string"},
        {"name": "time", "type": "string"},
    ],
}


@dataclass(frozen=True)
class RateSnapshot:
    """USD per ETH as the operator's source gave it: a canonical decimal string (> 0, ≤ 8
    decimals), the source's name and the time the rate is as of (RFC 3339 UTC, ms)."""

    rate: str
    source: str
    time: str

    def __post_init__(self) -> None:
        problem = snapshot_shape_problem(self.rate, self.source, self.time)
        if problem:
            raise ValueError(problem)


def snapshot_shape_problem(rate: Any, source: Any, time: Any) -> str | None:
    if not (isinstance(rate, str) and _RATE.fullmatch(rate) and Decimal(rate) > 0):
        return 'rate: must be a decimal string > 0 with at most 8 decimals, e.g. "3150.25"'
    if not (isinstance(source, str) and 0 < len(source) <= 200):
        return "source: must be a name of 1 to 200 characters"
    if not (isinstance(time, str) and _TIME.fullmatch(time)):
        return "time: must be RFC 3339 UTC with milliseconds, e.g. 2026-05-29T12:00:00.000Z"
    return None


def rfc3339_ms(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def snapshot_digest(bundle_digest: str, rate: str, source: str, time: str) -> bytes:
    """EIP-712 digest of a rate snapshot bound to one bundle (domain usd-rate-1)."""
    message = {
        "bundleDigest": bytes.fromhex(bundle_digest.removeprefix("0x")),
        "rate": rate,
        "source": source,
        "time": time,
    }
    full = {"types": TYPES, "primaryType": "UsdRate", "domain": DOMAIN, "message": message}
    return _hash_eip191_message(encode_typed_data(full_message=full))


def with_snapshot(bundle: dict[str, Any], snap: RateSnapshot, attester: Attester) -> dict[str, Any]:
    """The signed bundle with `attestation.usd_rate`: the snapshot, signed by the attester
    over the bundle's digest (so it belongs to this bundle and no other)."""
    att = bundle["attestation"]
    digest = snapshot_digest(att["bundle_digest"], snap.rate, snap.source, snap.time)
    signed = {
        "rate": snap.rate,
        "source": snap.source,
        "time": snap.time,
        "signature": attester.sign_hash(digest),
    }
    return {**bundle, "attestation": {**att, "usd_rate": signed}}


def snapshot_problem(attestation: Mapping[str, Any]) -> str | None:
    """Why the attestation's rate snapshot does not hold (None: it holds, or there is none):
    its shape, and its signature by `attestation.attester` over `attestation.bundle_digest`."""
    snap = attestation.get("usd_rate")
    if snap is None:
        return None
    if not isinstance(snap, Mapping):
        return "attestation.usd_rate: expected an object"
    shape = snapshot_shape_problem(snap.get("rate"), snap.get("source"), snap.get("time"))
    if shape:
        return f"attestation.usd_rate.{shape}"
    digest = snapshot_digest(
        str(attestation.get("bundle_digest")), snap["rate"], snap["source"], snap["time"]
    )
    try:
        signer = recover_signer(digest, str(snap.get("signature")))
    except ValueError as exc:
        return f"attestation.usd_rate.signature: {exc}"
    if signer.lower() != str(attestation.get("attester")).lower():
        return (
            "attestation.usd_rate: its signature is not the attester's over this bundle "
            "(the rate, source or time was edited, or the snapshot belongs to another bundle)"
        )
    return None


def cost_usd(charge_micros: int, rate: str) -> str:
    """cost_eth × rate, exactly (at most 14 decimals), trailing zeros dropped."""
    with localcontext() as ctx:
        ctx.prec = 60
        value = Decimal(charge_micros) * Decimal(rate) / MICROS_PER_ETH
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def cost_eth(charge_micros: int) -> str:
    """A charge in micro-ETH as decimal ETH (as the settlement receipt writes it)."""
    from vbill.chain.records import wei_to_eth
    from vbill.ledger.store import WEI_PER_MICRO

    return wei_to_eth(charge_micros * WEI_PER_MICRO)


def usage_of(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """What one metered event used and cost: its units per dimension, their total, for an
    ETH tariff `cost_eth` (the charge) and, with a signed rate snapshot, `cost_usd`."""
    units = {k: int(v) for k, v in bundle["meter_event"]["usage"].items()}
    out: dict[str, Any] = {"units": units, "total_units": sum(units.values())}
    if bundle["tariff_snapshot"].get("currency") == "ETH":
        micros = int(bundle["billing"]["expected_charge_micros"])
        out["cost_eth"] = cost_eth(micros)
        snap = (bundle.get("attestation") or {}).get("usd_rate")
        if isinstance(snap, Mapping) and isinstance(snap.get("rate"), str):
            out["cost_usd"] = cost_usd(micros, snap["rate"])
    return out


CORRECTED_BY_KEYS = ("correction_id", "credit_micros")


def corrected_by_problem(corrected_by: Any) -> str | None:
    """`usage.corrected_by` names the event's correction (docs/protocol-corrections.md): no
    signature of the bundle covers it (the correction is a signed document of its own, fetched
    and verified by its id), so only its shape is checked here."""
    if corrected_by == {}:
        return None  # not stated
    if not isinstance(corrected_by, Mapping) or set(corrected_by) != set(CORRECTED_BY_KEYS):
        return f"usage.corrected_by: expected an object with exactly {list(CORRECTED_BY_KEYS)}"
    cid, credit = corrected_by["correction_id"], corrected_by["credit_micros"]
    if not isinstance(cid, str) or not cid:
        return "usage.corrected_by.correction_id: expected a non-empty string"
    if isinstance(credit, bool) or not isinstance(credit, int) or not 0 <= credit < 2**64:
        return "usage.corrected_by.credit_micros: expected an integer in [0, 2^64)"
    return None


def usage_problem(usage: Any, bundle: Mapping[str, Any]) -> str | None:
    """Why a stated usage object is not what the record and its rate snapshot give (None: it
    is, or none is stated), naming the first member that differs."""
    if usage is None:
        return None
    if not isinstance(usage, Mapping):
        return "usage: expected an object"
    if not isinstance(bundle.get("meter_event", {}).get("usage"), Mapping):
        return "usage: only a metered bundle carries a usage object"
    expected = usage_of(bundle)
    why = corrected_by_problem(usage.get("corrected_by", {}))
    if why is not None:
        return why
    for key in sorted((set(usage) | set(expected)) - {"corrected_by"}):
        stated, derived = usage.get(key), expected.get(key)
        if stated == derived:
            continue
        if key == "cost_usd" and derived is None:
            return "usage.cost_usd: stated, but the bundle has no signed rate snapshot"
        if key == "cost_usd":
            rate = bundle["attestation"]["usd_rate"]["rate"]
            return (
                f"usage.cost_usd: {stated!r} but cost_eth × rate = {expected['cost_eth']} × "
                f"{rate} = {derived!r}"
            )
        return f"usage.{key}: {stated!r} but the record gives {derived!r}"
    return None


class RateSource:
    """The operator's USD rate (service.json `usd_rate`): a fixed rate, or a file the operator
    updates (`{"rate": "3150.25", "time"?: "…"}`, re-read when it changes). No network: the
    operator's own tooling writes the file. A file that stops parsing keeps the last good
    snapshot (its own time says how old it is) and is logged."""

    def __init__(self, source: str, *, fixed: RateSnapshot | None = None, file: Path | None = None):
        self.source, self._fixed, self._file = source, fixed, file
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._last: RateSnapshot | None = None
        if file is not None:
            self.snapshot(strict=True)

    @classmethod
    def from_config(cls, config: Any, home: Path) -> RateSource | None:
        """`{"rate": "3150.25", "source": "…", "time"?: "…"}` or `{"file": PATH, "source":
        "…"}` (a relative PATH is under $VBILL_HOME); ToolError naming what is wrong."""
        if config is None:
            return None
        where = "service.json usd_rate"
        if not isinstance(config, Mapping) or not ({"rate", "file"} & set(config)):
            raise ToolError(f'{where}: expected {{"rate": …, "source": …}} or {{"file": …}}')
        extra = set(config) - {"rate", "file", "source", "time"}
        if extra or ("rate" in config and "file" in config):
            raise ToolError(f"{where}: give rate or file, plus source (and time for a rate)")
        source = config.get("source")
        if "file" in config:
            if "time" in config:
                raise ToolError(f"{where}: a file's rate carries its own time")
            path = Path(str(config["file"]))
            src = source if isinstance(source, str) else f"file:{path.name}"
            return cls(src, file=path if path.is_absolute() else home / path)
        time = config.get("time") or rfc3339_ms(dt.datetime.now(dt.UTC))
        try:
            return cls(str(source), fixed=RateSnapshot(config["rate"], source, time))
        except ValueError as exc:
            raise ToolError(f"{where}.{exc}") from None

    def snapshot(self, *, strict: bool = False) -> RateSnapshot | None:
        """The current snapshot (None if a file never gave a good one)."""
        if self._fixed is not None:
            return self._fixed
        assert self._file is not None
        with self._lock:
            try:
                st = os.stat(self._file)
                if self._seen != (st.st_mtime_ns, st.st_size):
                    doc = json.loads(self._file.read_text())
                    mtime = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
                    time = doc.get("time") or rfc3339_ms(mtime)
                    self._last = RateSnapshot(doc.get("rate"), self.source, time)
                    self._seen = (st.st_mtime_ns, st.st_size)
            except (OSError, ValueError, AttributeError) as exc:
                if strict:
                    raise ToolError(f"usd_rate file {self._file}: {exc}") from None
                log.error("usd_rate file %s: %s (keeping the last good rate)", self._file, exc)
            return self._last
