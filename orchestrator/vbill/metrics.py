"""Prometheus metrics (`GET /metrics`, docs/operations.md): what this process counted, and
what every replica reads alike from the store at scrape time.

Counters and histograms live in this process's `REGISTRY` (events ingested by outcome, proofs
and their latency, settlements and gas, webhook attempts): each replica counts its own, and
Prometheus sums them across the scraped replicas. Backlogs, the log size and the webhook
queue's age come from the database through `StoreCollector` when scraped, so every replica
reports the same values. No label carries a tenant, an event or an endpoint id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "vbill_events_ingested",
    "Attest requests decided at ingestion, by outcome (created, same, conflict, invalid, limited)",
    ["outcome"],
    registry=REGISTRY,
)
PROOFS = Counter("vbill_proofs", "Groth16 proofs attached by this process", registry=REGISTRY)
PROOF_SECONDS = Histogram(
    "vbill_proof_seconds",
    "Time to prove and attach one bundle's proof",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=REGISTRY,
)
SETTLEMENTS = Counter(
    "vbill_settlements", "Charges settled or failed on chain, by outcome", ["outcome"],
    registry=REGISTRY,
)  # fmt: skip
GAS = Counter("vbill_settlement_gas_used", "Gas used by settlement transactions", registry=REGISTRY)
WEBHOOK_DELIVERIES = Counter(
    "vbill_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, failed: retried later, dead)",
    ["outcome"],
    registry=REGISTRY,
)

for outcome in ("created", "same", "conflict", "invalid", "limited"):
    EVENTS.labels(outcome)
for outcome in ("settled", "failed"):
    SETTLEMENTS.labels(outcome)
for outcome in ("delivered", "failed", "dead"):
    WEBHOOK_DELIVERIES.labels(outcome)


class StoreCollector(Collector):
    """Gauges read from the store at scrape time (the same on every replica)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from vbill.ledger.outbox import Outbox
        from vbill.ledger.store import now_ms

        now = now_ms()
        counts = self.store.counts()
        yield GaugeMetricFamily(
            "vbill_proving_backlog", "Bundles signed and logged, awaiting their proof",
            value=counts["proving"],
        )  # fmt: skip
        yield GaugeMetricFamily(
            "vbill_proving_oldest_age_seconds",
            "Age of the oldest bundle awaiting its proof (0 if none)",
            value=self.store.oldest_unproven_age_ms(now) / 1000,
        )
        yield GaugeMetricFamily(
            "vbill_settlement_backlog", "ETH charges awaiting settlement", value=counts["pending"]
        )
        yield GaugeMetricFamily(
            "vbill_log_size", "Leaves in the transparency log", value=counts["log_size"]
        )
        bundles = GaugeMetricFamily(
            "vbill_bundles", "Bundles by settlement status", labels=["status"]
        )
        for status in ("none", "pending", "settled", "failed"):
            bundles.add_metric([status], counts[status])
        yield bundles
        q = Outbox(self.store).stats(now)
        queue = GaugeMetricFamily(
            "vbill_webhook_queue", "Webhook outbox rows by status", labels=["status"]
        )
        for status in ("pending", "delivered", "dead"):
            queue.add_metric([status], q[status])
        yield queue
        yield GaugeMetricFamily(
            "vbill_webhook_queue_oldest_age_seconds",
            "Age of the oldest undelivered webhook event (0 if none)",
            value=q["oldest_pending_age_ms"] / 1000,
        )


def exposition(store_registry: CollectorRegistry) -> bytes:
    """The text exposition of this process's counters and the store's gauges."""
    return generate_latest(REGISTRY) + generate_latest(store_registry)


def store_registry(store: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry
