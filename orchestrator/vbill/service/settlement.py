"""Background settlement: deposits in, attested ETH charges out, tree heads anchored.

One thread, so one nonce sequence. Each tick:
1. deposits: `Deposited` logs since the last scanned block are recorded; those with
   `confirmations` blocks are credited after re-reading their transaction (a reorged-out
   deposit is dropped, never credited); a tenant whose key appears on chain is marked bound;
2. settlement: pending ETH bundles, in log order, in batches, one per binding (each binding
   has its own verifier and settleBatch entry point; the groups go one after the other, each
   simulated after the one before it is mined). A nullifier already used on chain (a batch
   mined before a crash or restart) is marked settled from its `ChargeSettled` event.
   The batch is simulated exactly as it will be sent (eth_call of the same settleBatch); if the
   chain refuses it, the charges are taken in order and each is kept only if the batch of
   those kept so far plus it still passes, so one tenant's refused charge (e.g. two charges
   under a daily limit that fits one) holds back only itself: proof or signal errors fail it
   for good (its reservation is released), balance / limit / tariff refusals keep it pending
   with the reason, for a later tick;
3. accounts: each bound tenant's on-chain account (balances, withdrawals, limits) is read into
   the store, so attest refuses what the chain would refuse;
4. anchoring: the latest tree head, when the log has grown, at most every `anchor_interval`,
   whatever happened to settlement in this tick.
Any chain error leaves everything pending and backs off; nothing is lost or double-charged,
because the contract rejects a used nullifier and the store settles a bundle once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vbill import chain as chainmod
from vbill import metrics
from vbill.chain.records import wei_to_eth
from vbill.ledger.store import WEI_PER_MICRO, ChainAccount, Store, StoredBundle

log = logging.getLogger("vbill.settlement")

PERMANENT = {
    "BillingSettlement__InvalidProof",
    "BillingSettlement__SignalOutOfField",
    "BillingSettlement__InvalidTenantKey",
}
SERVICE_WIDE = {"BillingSettlement__NotAttester", "BillingSettlement__AttesterRevoked"}
SCAN_KEY = "deposit_scan_block"
ANCHOR_KEY = "anchored_tree_size"
MAX_LOG_RANGE = 5000


@dataclass
class WorkerStatus:
    running: bool = False
    ticks: int = 0
    settled: int = 0
    failed: int = 0
    last_tick_ms: int | None = None
    last_error: str | None = None
    consecutive_errors: int = 0
    chain_block: int | None = None
    chain_reachable: bool | None = None  # None until the first tick has tried
    attester_status: str | None = None  # our key on chain: "none", "active" or "revoked"
    anchored_size: int | None = None
    last_batch: list[str] = field(default_factory=list)


class SettlementWorker:
    """Runs `tick()` every `interval` seconds in a daemon thread until `stop()`."""

    def __init__(
        self,
        store: Store,
        connect: Any,
        *,
        interval: float = 2.0,
        batch: int = 8,
        confirmations: int = 12,
        anchor_interval: float = 60.0,
        start_block: int | None = None,
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        self.store = store
        self._connect = connect  # () -> chain.Chain; called lazily and again after errors
        self.interval = interval
        self.batch = batch
        self.confirmations = confirmations
        self.anchor_interval = anchor_interval
        self.start_block = start_block  # None: the block of deployments/<network>.json
        self._redact = redact  # error text is shown in /status and logs: no RPC credentials
        self.status = WorkerStatus()
        self._chain: chainmod.Chain | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_anchor = float("-inf")
        self._lock = threading.Lock()

    # --- lifecycle ---

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vbill-settlement", daemon=True)
        self.status.running = True
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.status.running = False

    def wake(self) -> None:
        """Run a tick soon (after an attest of an ETH bundle)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            backoff = min(2 ** min(self.status.consecutive_errors, 5), 30)
            self._wake.wait(self.interval * backoff)
            self._wake.clear()

    def open_account(self, tenant_key: int, controller: str) -> chainmod.TxResult:
        """Open the tenant's on-chain account (onboarding), between ticks: one signer, one
        nonce sequence."""
        with self._lock:
            try:
                return self._get_chain().open_account(tenant_key, controller)
            except Exception:
                self._chain = None
                raise

    # --- one round ---

    def tick(self) -> None:
        """One round; each phase fails on its own, so a refused settlement never stops the
        deposit scan, the account sync or the anchoring of tree heads."""
        with self._lock:
            errors: list[str] = []
            try:
                chain = self._get_chain()
                head = chain.w3.eth.block_number
                self.status.chain_block = head
                self.status.chain_reachable = True
                phases: list[Callable[[], None]] = [
                    lambda: self.read_attester_status(chain),
                    lambda: self.scan_deposits(chain, head),
                    lambda: self.settle_pending(chain),
                    lambda: self.settle_corrections(chain),
                    lambda: self.sync_accounts(chain),
                    lambda: self.anchor(chain),
                ]
                for phase in phases:
                    try:
                        phase()
                    except Exception as exc:  # RPC errors, reverts: retry later, lose nothing
                        errors.append(self._describe(exc))
            except Exception as exc:  # chain down: retry later, lose nothing
                self.status.chain_reachable = False
                errors.append(self._describe(exc))
            if errors:
                self._chain = None
                self.status.consecutive_errors += 1
                self.status.last_error = "; ".join(errors)[:500]
                log.warning("settlement tick failed: %s", self.status.last_error)
            else:
                self.status.consecutive_errors = 0
                self.status.last_error = None
            self.status.ticks += 1
            self.status.last_tick_ms = time.time_ns() // 1_000_000

    def read_attester_status(self, chain: chainmod.Chain) -> None:
        """Our key's standing on chain: the operator may revoke it there (attest then stops)."""
        code = chain.settlement.functions.attesterStatus(chain.address).call()
        self.status.attester_status = ("none", "active", "revoked")[code]

    def _describe(self, exc: Exception) -> str:
        return self._redact(f"{type(exc).__name__}: {exc}")[:500]

    def _get_chain(self) -> chainmod.Chain:
        if self._chain is None:
            self._chain = self._connect()
        return self._chain

    # --- deposits ---

    def scan_deposits(self, chain: chainmod.Chain, head: int) -> None:
        settlement = chain.settlement
        start = int(self.store.get_meta(SCAN_KEY) or self._first_block(chain))
        event = settlement.events.Deposited()
        while start <= head:
            end = min(head, start + MAX_LOG_RANGE - 1)
            logs = chain.w3.eth.get_logs(
                {
                    "address": settlement.address,
                    "fromBlock": start,
                    "toBlock": end,
                    "topics": [event.topic],
                }
            )
            for raw in logs:
                ev = event.process_log(raw)
                tenant = self.store.tenant_by_key(ev["args"]["tenantKey"])
                if tenant is None:
                    continue  # not one of ours
                tx = ev["transactionHash"].to_0x_hex()
                self.store.record_deposit(
                    tx, ev["logIndex"], tenant.tenant_id, ev["args"]["amount"], ev["blockNumber"]
                )
                if tenant.onchain_status != "bound":
                    self.store.set_onchain(tenant.tenant_id, "bound", tx)
            self.store.set_meta(SCAN_KEY, str(end + 1))
            start = end + 1
        for dep in self.store.uncredited_deposits(head - self.confirmations + 1):
            rcpt = chain.w3.eth.get_transaction_receipt(dep["tx_hash"])
            if rcpt is None or rcpt["status"] != 1 or rcpt["blockNumber"] != dep["block_number"]:
                self.store.drop_deposit(dep["tx_hash"], dep["log_index"])
                continue
            self.store.credit_deposit(dep["tx_hash"], dep["log_index"])

    # --- settlement ---

    def settle_pending(self, chain: chainmod.Chain) -> None:
        pending = self.store.pending_settlements(self.batch)
        if not pending:
            return
        fns = chain.settlement.functions
        candidates: list[tuple[StoredBundle, chainmod.Settlement]] = []
        for sb in pending:
            try:
                s = chainmod.settlement_from_bundle(sb.bundle)
            except Exception as exc:
                self.store.mark_failed(sb.tenant_id, sb.event_id, f"not settleable: {exc}")
                self.status.failed += 1
                metrics.SETTLEMENTS.labels("failed").inc()
                continue
            if fns.isNullifierUsed(s.nullifier).call():
                self._recover(chain, sb, s)
                continue
            candidates.append((sb, s))
        for group in self._by_binding(candidates):
            self._settle_group(chain, group)

    def settle_corrections(self, chain: chainmod.Chain) -> None:
        """Settle proven corrections of settled ETH charges (docs/protocol-corrections.md):
        each after its original (an unsettled original settles first, in its window's order),
        one transaction each; a refusal the chain will keep (a bad proof, a spent nullifier)
        fails it, others (the payee's earnings) wait."""
        for cor in self.store.pending_corrections(self.batch):
            original = self.store.find(cor.tenant_id, cor.corrects)
            if original is None or original.settlement_status != "settled":
                continue
            try:
                s = chainmod.settlement_from_bundle(cor.doc, "correction")
            except Exception as exc:
                self.store.mark_correction_failed(cor.tenant_id, cor.correction_id, str(exc))
                continue
            revert = chain.call_revert(chain._settle_fn(s))
            if revert is not None:
                if revert.name in SERVICE_WIDE:
                    raise revert
                if revert.name in PERMANENT or revert.name == "BillingSettlement__NullifierUsed":
                    self.store.mark_correction_failed(
                        cor.tenant_id, cor.correction_id, f"chain refuses it: {revert}"
                    )
                continue
            tx = chain.settle(s)
            block = chain.w3.eth.get_block(tx.block_number)
            self.store.mark_correction_settled(
                cor.tenant_id,
                cor.correction_id,
                {
                    "credit_eth": wei_to_eth(cor.credit_micros * WEI_PER_MICRO),
                    "transaction_hash": tx.transaction_hash,
                    "block_number": tx.block_number,
                    "gas_used": tx.gas_used,
                    "timestamp": block["timestamp"],
                },
            )

    @staticmethod
    def _by_binding(
        candidates: list[tuple[StoredBundle, chainmod.Settlement]],
    ) -> list[list[tuple[StoredBundle, chainmod.Settlement]]]:
        """The candidates per binding, in log order of each binding's first charge: a
        settleBatch goes through one binding's verifier, so v1 and v2 never share one."""
        groups: dict[str, list[tuple[StoredBundle, chainmod.Settlement]]] = {}
        for item in candidates:
            groups.setdefault(item[1].binding, []).append(item)
        return list(groups.values())

    def _settle_group(
        self, chain: chainmod.Chain, group: list[tuple[StoredBundle, chainmod.Settlement]]
    ) -> None:
        """Simulate one binding's charges together, then send them as one settleBatch per
        tenant: a tenant who front-runs the batch with its own transaction (revokeTariff,
        setLimits, requestWithdrawal with a higher tip) can revert only its own charges,
        never another tenant's (those are mined in their own transaction). A tenant's batch
        that reverts is held back with the chain's reason and raised after the others went
        out (the tick counts it), so nothing is lost and the rest is not delayed."""
        ready = self._settleable(chain, group)
        if not ready:
            return
        self.status.last_batch = [sb.event_id for sb, _ in ready]
        refused: Exception | None = None
        for batch in self._by_tenant(ready):
            try:
                results = chain.settle_batch([s for _, s in batch])
            except Exception as exc:
                self.store.note_settle_error(
                    [(sb.tenant_id, sb.event_id) for sb, _ in batch],
                    f"{type(exc).__name__}: {exc}",
                )
                refused = refused or exc
                continue
            metrics.GAS.inc(sum(r.gas_used for r in results))
            tx = results[-1].transaction_hash
            for sb, _ in batch:
                self._attach(chain, sb, tx)
        if refused is not None:
            raise refused

    @staticmethod
    def _by_tenant(
        ready: list[tuple[StoredBundle, chainmod.Settlement]],
    ) -> list[list[tuple[StoredBundle, chainmod.Settlement]]]:
        """One batch per tenant account, in order of each tenant's first charge."""
        batches: dict[int, list[tuple[StoredBundle, chainmod.Settlement]]] = {}
        for item in ready:
            batches.setdefault(item[1].tenant_key, []).append(item)
        return list(batches.values())

    def _settleable(
        self, chain: chainmod.Chain, candidates: list[tuple[StoredBundle, chainmod.Settlement]]
    ) -> list[tuple[StoredBundle, chainmod.Settlement]]:
        """The candidates the chain accepts together, simulating exactly the call to be sent.

        One eth_call when the whole batch passes; otherwise the charges in order, each kept
        only if the batch kept so far plus it passes (so a daily limit or a balance is seen
        cumulatively, as the contract applies them), and each refused one is held back with
        the chain's reason."""

        def refusal(batch: list[tuple[StoredBundle, chainmod.Settlement]]) -> Any:
            return chain.call_revert(chain.eth_batch_fn([s for _, s in batch]))

        if refusal(candidates) is None:
            return candidates
        kept: list[tuple[StoredBundle, chainmod.Settlement]] = []
        for item in candidates:
            revert = refusal([*kept, item])
            if revert is None:
                kept.append(item)
            else:
                self._hold_back(item[0], revert)
        return kept

    def _hold_back(self, sb: StoredBundle, revert: chainmod.ChainRevert) -> None:
        key = (sb.tenant_id, sb.event_id)
        if revert.name in SERVICE_WIDE:
            raise revert
        if revert.name in PERMANENT or revert.name == "BillingSettlement__InvalidBatchProof":
            # the batch without it passed: its proof is the bad one
            self.store.mark_failed(*key, f"chain refuses it: {revert}")
            self.status.failed += 1
            metrics.SETTLEMENTS.labels("failed").inc()
        else:  # balance, limits, tariff acceptance: may change; keep pending, say why
            self.store.note_settle_error([key], f"chain refuses it for now: {revert}")

    # --- accounts ---

    def sync_accounts(self, chain: chainmod.Chain) -> None:
        """Read every bound tenant's on-chain account into the store: withdrawals and limits
        set by the tenant's controller happen on chain only."""
        head = chain.w3.eth.block_number  # after this tick's settlement, not before it
        for tenant in self.store.tenants():
            if tenant.onchain_status != "bound":
                continue
            a = chain.account_of(tenant.tenant_key, head)
            self.store.set_chain_account(
                tenant.tenant_id,
                ChainAccount(
                    available_wei=a.available,
                    reserved_wei=a.reserved,
                    per_request_wei=a.per_request_limit,
                    daily_wei=a.daily_limit,
                    spent_today_wei=a.spent_today,
                    spent_day=a.spent_day,
                    block_number=head,
                ),
            )

    def _attach(self, chain: chainmod.Chain, sb: StoredBundle, tx_hash: str) -> None:
        usage = chain.receipt(tx_hash, sb.bundle).as_json()
        usage.pop("charges", None)
        if self.store.mark_settled(sb.tenant_id, sb.event_id, usage):
            self.status.settled += 1
            metrics.SETTLEMENTS.labels("settled").inc()

    def _recover(self, chain: chainmod.Chain, sb: StoredBundle, s: chainmod.Settlement) -> None:
        """The nullifier is spent on chain: find the settling transaction and record it."""
        settlement = chain.settlement
        event = settlement.events.ChargeSettled()
        logs = chain.w3.eth.get_logs(
            {
                "address": settlement.address,
                "fromBlock": self._first_block(chain),
                "toBlock": "latest",
                "topics": [event.topic, None, "0x" + s.nullifier.to_bytes(32, "big").hex()],
            }
        )
        if not logs:
            self.store.mark_failed(
                sb.tenant_id, sb.event_id, "nullifier already used on chain without a settlement"
            )
            self.status.failed += 1
            metrics.SETTLEMENTS.labels("failed").inc()
            return
        self._attach(chain, sb, logs[0]["transactionHash"].to_0x_hex())

    # --- anchoring ---

    def anchor(self, chain: chainmod.Chain) -> None:
        if time.monotonic() - self._last_anchor < self.anchor_interval:
            return
        head = self.store.head()
        anchored = int(self.store.get_meta(ANCHOR_KEY) or 0)
        if head.tree_size <= anchored:
            return
        root = bytes.fromhex(head.root_hash.removeprefix("0x"))
        result = chain.anchor_tree_head(root, head.tree_size)
        self.store.mark_anchored(head.tree_size, result.transaction_hash)
        self.store.set_meta(ANCHOR_KEY, str(head.tree_size))
        self.status.anchored_size = head.tree_size
        self._last_anchor = time.monotonic()

    def _first_block(self, chain: chainmod.Chain) -> int:
        if self.start_block is not None:
            return self.start_block
        try:
            return int(chain.load_deployment().get("block_number", 0))
        except Exception:
            return 0
