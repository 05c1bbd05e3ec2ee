"""Window statements: a billing window's chain of metered bundles, verified as one invoice line.

A statement holds when every bundle is valid (the three verdicts), all belong to one window
(tenant, billing_window_id, tariff_id), their `seq` run 1..n with no gap in the order given,
the first starts from the genesis state and each `prev_state_key` is the previous bundle's
`state_key`. Its total is the last state's cumulative charge, which must equal the sum of the
charges; per-dimension totals likewise. Anything else fails closed, and the first problem
names the first bad link (docs/protocol-v2.md §9).

The first bundle must start from the genesis state (seq 0, everything zero), and its
`prev_state_key` must be the genesis state key recomputed from the window's names and the
account salt. A closed window's statement carries its close record (vbill.billing.
close_record), which must hold and name exactly the last bundle's seq and state key and the
totals: a statement missing its last entries, or with entries past the close, fails.

A statement document (`statement_document`) is the bundles plus this summary, in one JSON
file a customer keeps with the invoice and re-verifies offline (`vbill statement FILE`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vbill.encode.encoding import hash_string
from vbill.encode.metered import GENESIS
from vbill.errors import printable
from vbill.models import VerifyResult
from vbill.verify.correction import is_correction_document as is_correction
from vbill.verify.correction import verify_correction
from vbill.verify.trust import TrustSet
from vbill.verify.verify import Groth16Check, unreadable_result, verify_bundle
from vbill.zk.field import parse_field_element
from vbill.zk.witness_metered import state_key

STATEMENT_VERSION = "vbill-statement-1"
SUMMARY_KEYS = (
    "tenant_id",
    "billing_window_id",
    "tariff_id",
    "currency",
    "events",
    "total_micros",
    "totals_by_dimension",
)


@dataclass(frozen=True)
class Problem:
    """One bad link or bad bundle: what kind, which bundle (its name and place), and why."""

    # bad_bundle, not_metered, other_window, genesis, gap, reorder, fork, total, summary,
    # close (a bad close record), truncated (ends before the close), past_close, correction
    kind: str
    at: str
    index: int | None
    message: str

    def __post_init__(self) -> None:  # names and values may echo hostile input
        object.__setattr__(self, "at", printable(self.at))
        object.__setattr__(self, "message", printable(self.message))

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at, "index": self.index, "message": self.message}


@dataclass(frozen=True)
class _Link:
    """The chain fields of one bundle, read from its (verified) JSON."""

    name: str
    index: int
    seq: int
    window: tuple[str, str, str]
    currency: str
    prev_key: str
    key: str
    charge: int  # a correction's is minus its credit
    usage: dict[str, int]  # a correction's are minus the units it takes back
    before: Any
    after: dict[str, Any]
    account_salt: Any
    commitment: str = ""
    event_id: str = ""
    correction: dict[str, Any] | None = None  # a correction: what the statement lists


@dataclass
class Statement:
    """The verdict on a window's chain and its totals (None while it does not hold)."""

    results: list[tuple[str, VerifyResult]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    tenant_id: str | None = None
    billing_window_id: str | None = None
    tariff_id: str | None = None
    currency: str | None = None
    events: int = 0
    charges_sum: int = 0
    last_total: int | None = None
    totals_by_dimension: dict[str, int] = field(default_factory=dict)
    close: Mapping[str, Any] | None = None  # the close record checked, if the window is closed
    corrections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.close is not None

    @property
    def valid(self) -> bool:
        return not self.problems and self.events > 0

    @property
    def total_micros(self) -> int | None:
        return self.last_total if self.valid else None

    def summary(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "tenant_id": self.tenant_id,
            "billing_window_id": self.billing_window_id,
            "tariff_id": self.tariff_id,
            "currency": self.currency,
            "events": self.events,
            "total_micros": self.total_micros,
            "sum_of_charges_micros": self.charges_sum,
            "totals_by_dimension": self.totals_by_dimension,
            "closed": self.closed,
            "corrections": self.corrections,
            "problems": [p.as_dict() for p in self.problems],
        }


def _chain_fields(
    name: str, index: int, event: Any, window: Any, attestation: Any
) -> dict[str, Any]:
    """The chain fields an event and a correction share: the window's key and states, read from
    the (original) event's meter and tariff, and the state keys of public signals 5 and 6."""
    meter, tariff = event["meter_event"], event["tariff_snapshot"]
    bp = attestation["billing_proof"]
    return {
        "name": name,
        "index": index,
        "seq": _whole(window["seq"]),
        "window": (meter["tenant_id"], meter["billing_window_id"], tariff["tariff_id"]),
        "currency": tariff["currency"],
        "prev_key": bp["public_signals"][5],
        "key": bp["public_signals"][6],
        "before": window["before"],
        "after": window["after"],
        "account_salt": bp["account_salt"],
    }


def _correction_link(name: str, index: int, doc: Any) -> _Link:
    """The chain fields of a correction document (docs/protocol-corrections.md): it moves the
    window back by its credit and units; signal 7 is the corrected event's commitment."""
    original, billing, cor = doc["original"], doc["billing"], doc["correction"]
    credit = _whole(billing["credit_micros"])
    return _Link(
        **_chain_fields(name, index, original, billing["window"], doc["attestation"]),
        charge=-credit,
        usage={k: -_whole(v) for k, v in cor["usage"].items()},
        commitment=doc["attestation"]["billing_proof"]["public_signals"][7],
        event_id=cor["corrects"],
        correction={
            "seq": _whole(billing["window"]["seq"]),
            "correction_id": cor["correction_id"],
            "corrects": cor["corrects"],
            "reason": cor["reason"],
            "credit_micros": credit,
            "usage": {k: _whole(v) for k, v in cor["usage"].items()},
        },
    )


def _link(name: str, index: int, bundle: Any) -> _Link | str:
    """The chain fields of a bundle or correction, or why it has none (not metered)."""
    try:
        if is_correction(bundle):
            return _correction_link(name, index, bundle)
        meter, billing = bundle["meter_event"], bundle["billing"]
        return _Link(
            **_chain_fields(name, index, bundle, billing["window"], bundle["attestation"]),
            charge=_whole(billing["expected_charge_micros"]),
            usage={k: _whole(v) for k, v in meter["usage"].items()},
            commitment=bundle["attestation"]["billing_proof"]["public_signals"][0],
            event_id=meter["event_id"],
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return "not a metered bundle (no billing.window, or no state keys)"


def _whole(value: Any) -> int:
    """An integer field as the wire writes it (a JSON integer or a decimal string); a float such
    as 1.5 or 1e400 (infinity) is refused rather than truncated or overflowed."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return int(value)


def _first_reason(result: VerifyResult) -> str:
    for label, verdict in (
        ("verification", result.verification),
        ("billing_check", result.billing_check),
        ("incircuit_binding_verification", result.incircuit_binding_verification),
    ):
        if not verdict.valid:
            return f"{label}: {verdict.reason}"
    return "invalid"


def verify_statement(
    items: Iterable[tuple[str, Any]],
    *,
    trust: TrustSet,
    check: Groth16Check | None = None,
    claimed: Mapping[str, Any] | None = None,
    close: Mapping[str, Any] | None = None,
) -> Statement:
    """Verify a window's bundles in the order given (seq 1..n); `claimed` is a statement
    document's summary, which must equal what the chain gives; `close` the window's close
    record, which must hold and end the chain exactly. Never raises."""
    st = Statement(close=close)
    links: list[_Link] = []
    for index, (name, bundle) in enumerate(items):
        if not isinstance(bundle, Mapping):
            result = unreadable_result("not a JSON object")
        elif is_correction(bundle):
            result = verify_correction(bundle, trust=trust, check=check)
        else:
            result = verify_bundle(bundle, trust=trust, check=check)
        st.results.append((name, result))
        if not result.valid:
            st.problems.append(
                Problem("bad_bundle", name, index, f"{name}: bad bundle: {_first_reason(result)}")
            )
        link = _link(name, index, bundle)
        if isinstance(link, str):
            st.problems.append(Problem("not_metered", name, index, f"{name}: {link}"))
            continue
        links.append(link)
    st.events = len(st.results) - sum(1 for link in links if link.correction is not None)
    if links:
        _check_genesis(st, links[0])  # first: the reason the totals below do not add up
        _check_chain(st, links)
    if close is not None:
        _check_close(st, links, close, trust)
    if claimed is not None:
        _check_claimed(st, claimed)
    st.problems.sort(key=lambda p: p.index if p.index is not None else 1 << 62)
    return st


def _check_chain(st: Statement, links: list[_Link]) -> None:
    first = links[0]
    st.tenant_id, st.billing_window_id, st.tariff_id = first.window
    st.currency = first.currency
    seqs = [link.seq for link in links]
    seen: dict[int, _Link] = {}
    previous: _Link | None = None
    for pos, link in enumerate(links):
        problem = _other_window(first, link) or _bad_link(previous, link, seen, seqs[pos + 1 :])
        if problem is not None:
            st.problems.append(problem)
        seen.setdefault(link.seq, link)
        previous = link
    _check_corrections(st, links)
    last = links[-1]
    st.charges_sum = sum(link.charge for link in links)
    try:
        st.last_total = int(last.after["charge"])
        st.totals_by_dimension = {k: int(v) for k, v in last.after["units"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        st.problems.append(Problem("total", last.name, last.index, f"{last.name}: no state after"))
        return
    if st.last_total != st.charges_sum:
        st.problems.append(
            Problem(
                "total",
                last.name,
                last.index,
                f"{last.name}: the last state's cumulative charge {st.last_total} is not the "
                f"sum of the charges {st.charges_sum}",
            )
        )
    for name, total in st.totals_by_dimension.items():
        used = sum(link.usage.get(name, 0) for link in links)
        if used != total:
            st.problems.append(
                Problem(
                    "total",
                    last.name,
                    last.index,
                    f"{last.name}: cumulative {name} {total} is not the sum of the events' {used}",
                )
            )


def genesis_key(tenant_id: str, window_id: str, tariff_id: str, account_salt: int) -> int:
    """The state key of a window's genesis state (docs/protocol-v2.md §4): where its chain
    starts."""
    return state_key(
        hash_string(tenant_id), hash_string(window_id), hash_string(tariff_id), GENESIS,
        account_salt,
    )  # fmt: skip


def _check_genesis(st: Statement, first: _Link) -> None:
    """The first bundle starts from the genesis state: seq 0, every value zero, and its
    prev_state_key the genesis key recomputed (not read from the bundle)."""
    if first.seq != 1:
        return  # reported as a gap before seq `first.seq`
    why = None
    b = first.before
    try:
        zero = (
            type(b["seq"]) is int
            and b["seq"] == 0
            and b["amount"] == "0"
            and b["charge"] == "0"
            and all(v == "0" for v in b["units"].values())
        )
    except (KeyError, TypeError, AttributeError):
        zero = False
    if not zero:
        why = "its state before is not the genesis state (seq 0, all zero)"
    else:
        try:
            salt = parse_field_element(first.account_salt, "billing_proof.account_salt")
            want = genesis_key(*first.window, salt)
        except (ValueError, TypeError):
            want = None
        if want is None or first.prev_key != str(want):
            why = "its prev_state_key is not the genesis state key of this window"
    if why is not None:
        st.problems.append(
            Problem(
                "genesis",
                first.name,
                first.index,
                f"{first.name}: the first bundle must start the window's chain: {why} "
                "(earlier entries are missing, or the chain was started elsewhere)",
            )
        )


def _check_close(
    st: Statement, links: list[_Link], close: Mapping[str, Any], trust: TrustSet
) -> None:
    """The close record holds, names this window, and ends the chain exactly."""
    from vbill.billing.close_record import record_problem

    def problem(kind: str, at: str, index: int | None, message: str) -> None:
        st.problems.append(Problem(kind, at, index, message))

    why = record_problem(close, trust)
    if why is not None:
        problem("close", "close", None, f"{why}")
        return
    if not links:
        if not st.results:  # an empty chain under a close: every entry is missing
            msg = f"the window was closed at seq {close['last_seq']} but this statement is empty"
            problem("truncated", "close", None, msg)
        return
    first, last = links[0], links[-1]
    names = ("tenant_id", "billing_window_id", "tariff_id")
    for name, ours in zip(names, first.window, strict=True):
        if close[name] != ours:
            msg = f"close.{name}: the close record is for {close[name]!r}, not {ours!r}"
            problem("close", f"close.{name}", None, msg)
            return
    seq, key = close["last_seq"], close["last_state_key"]
    if last.seq < seq:
        problem(
            "truncated",
            last.name,
            last.index,
            f"the window was closed at seq {seq} (state key {key[:16]}…) but this statement "
            f"ends at seq {last.seq} ({last.name}): its last {seq - last.seq} "
            f"entr{'y is' if seq - last.seq == 1 else 'ies are'} missing",
        )
        return  # its totals cannot be the close's either: one reason is enough
    if last.seq > seq:
        problem(
            "past_close",
            last.name,
            last.index,
            f"{last.name}: seq {last.seq} is past the close at seq {seq}: the window took no "
            "entries after its close",
        )
        return
    if str(last.key) != key:
        problem(
            "close",
            last.name,
            last.index,
            f"{last.name}: its state_key is not the close record's last_state_key: the chain "
            "does not end where the window was closed",
        )
    if st.last_total is not None and str(st.last_total) != close["total_micros"]:
        msg = f"close.total_micros: {close['total_micros']} but the chain gives {st.last_total}"
        problem("close", "close.total_micros", None, msg)
    totals = {k: str(v) for k, v in st.totals_by_dimension.items()}
    if st.totals_by_dimension and totals != dict(close["totals_by_dimension"]):
        msg = "close.totals_by_dimension: not the chain's units per dimension"
        problem("close", "close.totals_by_dimension", None, msg)


def _check_corrections(st: Statement, links: list[_Link]) -> None:
    """Each correction names an earlier event of this chain by its commitment, once."""
    events = {link.event_id: link for link in links if link.correction is None}
    corrected: set[str] = set()
    for link in links:
        if link.correction is None:
            continue
        st.corrections.append(link.correction)
        target = events.get(link.event_id)
        why = None
        if target is None or target.seq >= link.seq:
            why = f"corrects {link.event_id!r}, which is not an earlier event of this window"
        elif target.commitment != link.commitment:
            why = f"its corrected commitment is not {link.event_id!r}'s"
        elif link.event_id in corrected:
            why = f"a second correction of {link.event_id!r}"
        corrected.add(link.event_id)
        if why is not None:
            st.problems.append(Problem("correction", link.name, link.index, f"{link.name}: {why}"))


def _other_window(first: _Link, link: _Link) -> Problem | None:
    if link.window == first.window:
        return None
    names = ("tenant_id", "billing_window_id", "tariff_id")
    what = next(n for n, a, b in zip(names, link.window, first.window, strict=True) if a != b)
    theirs = dict(zip(names, link.window, strict=True))[what]
    ours = dict(zip(names, first.window, strict=True))[what]
    return Problem(
        "other_window",
        link.name,
        link.index,
        f"{link.name}: belongs to {what} {theirs!r}, not this statement's {ours!r}",
    )


def _bad_link(
    previous: _Link | None, link: _Link, seen: Mapping[int, _Link], later: list[int]
) -> Problem | None:
    """Why `link` does not continue `previous` (None: it does); `later` are the seqs after
    it: the one that belongs here coming later is a reorder, never coming is a gap."""
    at, want = link.name, (previous.seq + 1 if previous is not None else 1)

    def problem(kind: str, message: str) -> Problem:
        return Problem(kind, at, link.index, f"{at}: {message}")

    if link.seq in seen:
        return problem(
            "fork", f"a second bundle with seq {link.seq} (first: {seen[link.seq].name})"
        )
    if link.seq != want:
        if link.seq < want or want in later:
            return problem("reorder", f"seq {link.seq} where seq {want} belongs")
        return problem(
            "gap",
            f"seq {want}"
            + (f"..{link.seq - 1}" if link.seq - 1 > want else "")
            + f" missing before seq {link.seq}",
        )
    if previous is None:
        return None  # seq 1: _check_genesis checks it starts from the genesis state
    if link.prev_key != previous.key:
        return problem(
            "fork",
            f"seq {link.seq} does not continue seq {previous.seq} of {previous.name} "
            "(its prev_state_key is not that bundle's state_key)",
        )
    return None


def _check_claimed(st: Statement, claimed: Mapping[str, Any]) -> None:
    ours = st.summary()
    ours["total_micros"] = st.last_total
    keys = SUMMARY_KEYS + (("closed",) if "closed" in claimed or st.closed else ())
    # a window without corrections keeps the document it always had (no `corrections` key)
    keys += ("corrections",) if st.corrections or "corrections" in claimed else ()
    for key in keys:
        if claimed.get(key) != ours.get(key):
            st.problems.append(
                Problem(
                    "summary",
                    f"statement.{key}",
                    None,
                    f"statement.{key}: states {claimed.get(key)!r} but the bundles give "
                    f"{ours.get(key)!r}",
                )
            )


def statement_document(bundles: list[dict[str, Any]], st: Statement) -> dict[str, Any]:
    """The JSON document a customer keeps with the invoice: the summary and the bundles, and
    for a closed window its close record (`closed` says which)."""
    summary = st.summary()
    doc = {
        "statement_version": STATEMENT_VERSION,
        **{key: summary[key] for key in SUMMARY_KEYS},
        "closed": st.closed,
        **({"corrections": summary["corrections"]} if st.corrections else {}),
        "bundles": bundles,
    }
    if st.close is not None:
        doc["close"] = dict(st.close)
    return doc


def is_statement_document(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("statement_version") == STATEMENT_VERSION
