"""Ingestion decoupled from proving: sign and log an event in milliseconds, prove it later.

At ingestion an event is validated and encoded, checked for idempotency and limits, charged,
its public signals computed by the Python reference, signed under digest version 2 (which
covers the signals but not the proof, docs/protocol.md §7.1) and appended to the log, all
before any Groth16 work. Concurrent submissions share one transaction and one signed tree head
(`Committer`: group commit). A metered event (binding v2) takes its window's next seq in
that commit, its state keys among the signed signals. Proving workers (`ProvingWorker`,
`vbill worker`) claim bundles still `proving` with a lease, prove them and attach the proof;
a worker that dies holds its claim only until the lease runs out. `Ingestor.attest` is the
same path for one event proved at once (`vbill attest`, POST /attest without respond-async).

Each binding is proved by its own prover: `Provers` maps a binding version (named by
vbill.bindings.registry) to its `Proving`; a binding without one is not set up here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from vbill import metrics
from vbill.billing.periods import check_event_period
from vbill.bindings.registry import binding, default, event_binding, event_bindings
from vbill.bundle.attestation import canonical_json
from vbill.bundle.bundle import Encoded, prove_unproven, sign_unproven
from vbill.bundle.keys import Attester
from vbill.bundle.metered import MeteredEncoded, state_from_json
from vbill.bundle.usage import RateSource, with_snapshot
from vbill.encode.encoding import hash_string
from vbill.encode.metered import GENESIS, WindowState
from vbill.errors import InputError, ToolError, VbillError, printable
from vbill.ledger.store import (
    Charge,
    Conflict,
    Ingest,
    IngestWindow,
    LimitExceeded,
    Store,
    StoredBundle,
    TenantRaced,
    WindowHead,
    WindowKey,
)
from vbill.models import AttestRequest, MeteredAttestRequest
from vbill.poller import Poller
from vbill.zk.poseidon import poseidon
from vbill.zk.prover import ProofSource
from vbill.zk.witness import random_field_element

log = logging.getLogger("vbill.ingest")
MAX_BATCH = 1000
LEASE_MS = 60_000  # a proof takes well under a second; a minute covers a loaded machine


def new_account(tenant_id: str) -> tuple[int, int]:
    """A fresh account salt and its tenant key Poseidon(tenant_id, salt) (protocol.md §3.2)."""
    salt = random_field_element()
    return salt, poseidon([hash_string(tenant_id), salt])


def request_hash(request: AttestRequest | MeteredAttestRequest) -> str:
    """Identity of a payload for idempotency: SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical_json(request.model_dump(mode="json"))).hexdigest()


def signing_refused(refusal: str) -> ToolError:
    """The error for a key that must not sign (HTTP 503, exit 3), naming the way out."""
    return ToolError(
        f"{refusal}: refusing to sign with it; run `vbill keys rotate`, register the new "
        "key on chain if one is configured, and restart the service"
    )


@dataclass(frozen=True)
class Proving:
    """One binding's prover and the SHA-256 of its verification key (what bundles name)."""

    prover: ProofSource
    vkey_sha256: str


# binding version -> its Proving: the bindings set up here (vbill.bindings.registry names them)
Provers = Mapping[str, Proving]


def proving_of(provers: Provers, data: Any) -> Proving:
    """The Proving of the binding of a request or bundle; that binding's `not_set_up()`
    ToolError when it has none here."""
    binding = event_binding(data)
    proving = provers.get(binding.version)
    if proving is None:
        raise binding.not_set_up()
    return proving


def open_provers(
    workers: int | None = None, versions: Iterable[str] | None = None
) -> dict[str, Proving]:
    """A prover of `workers` processes for each binding of `versions` (ToolError naming the
    missing file of one not set up); by default the default binding's (required likewise)
    and every other event binding's set up here (the events of one that is not are refused
    with its `not_set_up()` error)."""
    from vbill import paths
    from vbill.verify.trust import file_sha256
    from vbill.zk.native_prover import open_prover

    if versions is None:
        wanted = [b for b in event_bindings() if b is default() or b.artefacts.built()]
    else:
        wanted = [binding(v) for v in dict.fromkeys(versions)]
    out: dict[str, Proving] = {}
    try:
        for b in wanted:
            vkey = file_sha256(paths.require(b.artefacts.vkey))
            out[b.version] = Proving(open_prover(workers, binding=b.version), vkey)
    except BaseException:
        close_provers(out)
        raise
    return out


def open_if_built(key: str, workers: int | None = None) -> Proving | None:
    """The Proving of the binding `key` (a circuits.json key), or None when its keys are not
    built here (a binding some requests never need, such as the corrections')."""
    b = binding(key)
    if not b.artefacts.built():
        return None
    return open_provers(workers, [b.version])[b.version]


def close_provers(provers: Provers) -> None:
    for proving in provers.values():
        proving.prover.close()


def state_before(enc: MeteredEncoded, head: WindowHead | None) -> WindowState:
    """The window state an event is charged from: its window's head (None: genesis)."""
    if head is None:
        return GENESIS
    return state_from_json(head.state, enc.tariff.names, "window.before")


@dataclass(frozen=True)
class Outcome:
    """What became of one event: `created`, `same` (already logged with this payload),
    `conflict`, `invalid` or `limited`; `error` says why for the last three."""

    event_id: str | None
    status: str
    stored: StoredBundle | None = None
    error: VbillError | None = None

    def result(self) -> StoredBundle:
        """The event's bundle, or its refusal raised (InputError, Conflict, LimitExceeded)."""
        if self.error is not None:
            raise self.error
        assert self.stored is not None
        return self.stored

    def to_json(self) -> dict[str, Any]:
        # an event id or message may echo hostile input (a lone surrogate): escaped, so the
        # answer of a batch whose good events are already committed always encodes
        event_id = None if self.event_id is None else printable(self.event_id)
        out: dict[str, Any] = {"event_id": event_id, "status": self.status}
        if self.error is not None:
            out["error"] = (
                {"field": printable(self.error.field), "message": printable(self.error.message)}
                if isinstance(self.error, InputError)
                else printable(str(self.error))
            )
        return out


def refuse_if_retired(store: Store, attester: Attester) -> None:
    refusal = store.signing_refusal(attester.address)
    if refusal is not None:
        raise signing_refused(refusal)


@dataclass
class Ingestor:
    """Prepares events (validate, charge, sign) and logs them through the group committer
    (`group_commit=False`: one caller, such as `vbill attest`, whose batches the store commits
    in the caller's thread). A metered event (binding v2) is charged and signed from its
    window's head as this batch will leave it; the store assigns its seq at commit and
    re-signs it if the head moved."""

    store: Store
    attester: Attester
    provers: Provers  # what it signs names their keys; `attest` proves with them
    usd_rate: RateSource | None = None  # signs a rate snapshot into metered ETH bundles
    group_commit: bool = True
    committer: Committer | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.group_commit:
            self.committer = Committer(self.store)

    def close(self) -> None:
        if self.committer is not None:
            self.committer.close()

    def _commit(self, items: list[Ingest]) -> list[tuple[StoredBundle, bool] | VbillError]:
        if self.committer is None:
            return self.store.ingest_many(items)
        return self.committer.submit(items)

    def ingest(self, requests: list[Any], *, claim: str | None = None) -> list[Outcome]:
        """Decide each request on its own, in order. `claim`: the caller proves the created
        bundles itself (they are leased to it at once, so no worker proves them twice)."""
        refuse_if_retired(self.store, self.attester)
        outcomes: list[Outcome | None] = [None] * len(requests)
        todo = list(range(len(requests)))
        for _ in range(2):  # a second round only for tenants created concurrently meanwhile
            salts: dict[str, tuple[int, tuple[int, int] | None]] = {}
            heads: dict[WindowKey, WindowHead | None] = {}
            items: list[tuple[int, Ingest]] = []
            for i in todo:
                prepared = self._prepare(requests[i], salts, heads, claim)
                if isinstance(prepared, Outcome):
                    outcomes[i] = prepared
                else:
                    items.append((i, prepared))
            results = self._commit([item for _, item in items]) if items else []
            todo = []
            for (i, item), result in zip(items, results, strict=True):
                if isinstance(result, TenantRaced):
                    todo.append(i)
                else:
                    outcomes[i] = _outcome(item.event_id, result)
            if not todo:
                break
        for i in todo:
            outcomes[i] = Outcome(None, "conflict", error=TenantRaced("tenant raced twice"))
        done = [o for o in outcomes if o is not None]
        for o in done:
            metrics.EVENTS.labels(o.status).inc()
        return done

    def attest(self, request: Any, *, prove: bool = True) -> Outcome:
        """Ingest one event, raising its refusal; with `prove`, its bundle is leased to this
        caller and proved here at once with its binding's prover, as a worker would (so no
        worker proves it twice), and a replay's still unproven bundle is proved too."""
        outcome = self.ingest([request], claim=worker_id() if prove else None)[0]
        stored = outcome.result()
        if prove and not stored.proven:
            stored = prove_and_attach(self.store, self.provers, stored)
            outcome = Outcome(outcome.event_id, outcome.status, stored=stored)
        return outcome

    def _prepare(
        self,
        request: Any,
        salts: dict[str, tuple[int, tuple[int, int] | None]],
        heads: dict[WindowKey, WindowHead | None],
        claim: str | None,
    ) -> Ingest | Outcome:
        event_id = _event_id(request)
        if not isinstance(request, Mapping):
            return Outcome(event_id, "invalid", error=InputError("event", "expected an object"))
        binding = event_binding(request)
        vkey = proving_of(self.provers, request).vkey_sha256
        enc: Encoded | MeteredEncoded
        try:
            enc = binding.encode(request)
            check_event_period(enc.request.meter_event.model_dump(mode="json"))
        except InputError as exc:
            return Outcome(event_id, "invalid", error=exc)
        meter = enc.request.meter_event
        rhash = request_hash(enc.request)
        existing = self.store.find(meter.tenant_id, meter.event_id)
        if existing is not None:  # a replay: no signature spent on it
            same = existing.request_hash == rhash
            if same:
                return Outcome(meter.event_id, "same", stored=existing)
            return Outcome(meter.event_id, "conflict", error=_conflict(existing))
        if meter.tenant_id not in salts:
            tenant = self.store.tenant(meter.tenant_id)
            if tenant is not None:
                salts[meter.tenant_id] = (tenant.account_salt, None)
            else:
                new = new_account(meter.tenant_id)
                salts[meter.tenant_id] = (new[0], new)
        salt, new_tenant = salts[meter.tenant_id]
        lease = (claim, LEASE_MS) if claim else None
        if binding.windowed:
            key = enc.window_key
            if key not in heads:
                heads[key] = self.store.window_head(key)
            try:
                item = self._metered(enc, vkey, heads[key], salt, new_tenant, rhash, lease)
            except InputError as exc:  # the window would overflow
                return Outcome(meter.event_id, "invalid", error=exc)
            w = item.bundle["billing"]["window"]  # the next event of this window follows it
            heads[key] = WindowHead(w["seq"], meter.event_id, w["after"])
            return item
        bundle = sign_unproven(enc, attester=self.attester, account_salt=salt, vkey_sha256=vkey)
        return Ingest(
            tenant_id=meter.tenant_id,
            event_id=meter.event_id,
            request_hash=rhash,
            charge=Charge(enc.request.tariff_snapshot.currency, enc.charge),
            bundle=bundle,
            new_tenant=new_tenant,
            claim=lease,
        )

    def _metered(
        self,
        enc: MeteredEncoded,
        vkey: str,
        head: WindowHead | None,
        salt: int,
        new_tenant: tuple[int, int] | None,
        rhash: str,
        lease: tuple[str, int] | None,
    ) -> Ingest:
        """A metered event charged and signed from `head`; the store calls `rebuild` with the
        actual head if another event took this seq first."""
        bundle = sign_unproven(
            enc,
            attester=self.attester,
            account_salt=salt,
            vkey_sha256=vkey,
            before=state_before(enc, head),
        )
        snap = self.usd_rate.snapshot() if self.usd_rate else None
        if snap is not None and enc.request.tariff_snapshot.currency == "ETH":
            bundle = with_snapshot(bundle, snap, self.attester)  # for usage.cost_usd
        meter = enc.request.meter_event
        return Ingest(
            tenant_id=meter.tenant_id,
            event_id=meter.event_id,
            request_hash=rhash,
            charge=Charge(
                enc.request.tariff_snapshot.currency, bundle["billing"]["expected_charge_micros"]
            ),
            bundle=bundle,
            new_tenant=new_tenant,
            claim=lease,
            window=IngestWindow(
                enc.window_key,
                head.seq if head else 0,
                lambda moved: self._metered(enc, vkey, moved, salt, new_tenant, rhash, lease),
            ),
        )


def _event_id(request: Any) -> str | None:
    meter = request.get("meter_event") if isinstance(request, Mapping) else None
    event_id = meter.get("event_id") if isinstance(meter, Mapping) else None
    return event_id if isinstance(event_id, str) else None


def _conflict(existing: StoredBundle) -> Conflict:
    return Conflict(
        f"event_id {existing.event_id!r} of tenant {existing.tenant_id!r} is already "
        "attested with a different payload"
    )


def _outcome(event_id: str, result: tuple[StoredBundle, bool] | VbillError) -> Outcome:
    if isinstance(result, Conflict):
        return Outcome(event_id, "conflict", error=result)
    if isinstance(result, LimitExceeded):
        return Outcome(event_id, "limited", error=result)
    if isinstance(result, InputError):  # a metered event's window overflows from its head
        return Outcome(event_id, "invalid", error=result)
    if isinstance(result, VbillError):
        return Outcome(event_id, "conflict", error=result)
    stored, created = result
    return Outcome(event_id, "created" if created else "same", stored=stored)


class Committer:
    """Group commit: whatever was submitted while the previous transaction ran goes into the
    next one (up to MAX_BATCH events), under one signed tree head."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: list[tuple[list[Ingest], Future[list[Any]]]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="vbill-committer", daemon=True)
        self._thread.start()

    def submit(self, items: list[Ingest]) -> list[tuple[StoredBundle, bool] | VbillError]:
        future: Future[list[Any]] = Future()
        with self._cond:
            if self._closed:
                raise ToolError("the ingestion committer is shut down")
            self._queue.append((items, future))
            self._cond.notify()
        return future.result()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    self._store.db.close()  # this thread's connection: the WAL checkpoints
                    return
                batch: list[tuple[list[Ingest], Future[list[Any]]]] = []
                size = 0
                while self._queue and (not batch or size + len(self._queue[0][0]) <= MAX_BATCH):
                    entry = self._queue.pop(0)
                    batch.append(entry)
                    size += len(entry[0])
            try:
                results = self._store.ingest_many([i for items, _ in batch for i in items])
            except BaseException as exc:  # nothing of this batch was stored
                for _, future in batch:
                    future.set_exception(exc)
                continue
            at = 0
            for items, future in batch:
                future.set_result(results[at : at + len(items)])
                at += len(items)


def prove_and_attach(store: Store, provers: Provers, stored: StoredBundle) -> StoredBundle:
    """Prove one `proving` bundle with its binding's prover and attach its proof; the stored
    bundle, proven (ToolError if its binding is not set up here)."""
    prover = proving_of(provers, stored.bundle).prover
    started = time.perf_counter()
    proof = prove_unproven(stored.bundle, prover)
    if store.attach_proof(stored.tenant_id, stored.event_id, proof):
        metrics.PROOFS.inc()
        metrics.PROOF_SECONDS.observe(time.perf_counter() - started)
    found = store.find(stored.tenant_id, stored.event_id)
    assert found is not None
    return found


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class ProvingWorker(Poller):
    """Claims `proving` bundles with a lease, proves them, attaches the proofs; stops when
    `stop()` is called. Runs in a thread (`vbill serve`'s local workers) or as the body of
    `vbill worker`, with the provers of the bindings set up there (metered bundles prove from
    the window state they carry, in any order); without a windowed binding's, its bundles are
    left to workers that have one."""

    what = "proving worker"

    def __init__(
        self,
        store: Store,
        provers: Provers,
        *,
        lease_ms: int = LEASE_MS,
        idle: float = 0.2,
        name: str | None = None,
    ) -> None:
        super().__init__(name or worker_id(), idle, log)
        self.store, self.provers = store, provers
        # it claims bundles in a window only if it proves every windowed binding
        self.windowed = all(b.version in provers for b in event_bindings() if b.windowed)
        self.lease_ms = lease_ms
        self.proved = 0

    def run_once(self) -> int:
        """Prove what one claim returns; how many proofs were attached."""
        done = 0
        claims = self.store.claim_unproven(self.name, self.lease_ms, limit=1, metered=self.windowed)
        for stored in claims:
            try:
                prove_and_attach(self.store, self.provers, stored)
            except ToolError as exc:  # an environment fault: the lease lets another retry
                log.error("proving %s/%s failed: %s", stored.tenant_id, stored.event_id, exc)
                continue
            done += 1
        self.proved += done
        return done

    def start(self, thread_name: str | None = None) -> None:
        super().start(thread_name or f"prove:{self.name}")
