"""Attest throughput under concurrency, over a real socket (for BENCHMARKS.md).

    python -m vbill_tools.service_bench --events 30 --tenants 5 --workers 2
    python -m vbill_tools.service_bench --events 160 --tenants 8 --clients 8 [--metered]

Starts the service with uvicorn on a free loopback port in this process (fresh state
directory, no chain: USD-priced events), sends the attests from an httpx async client (all at
once, or from `--clients N` synchronous clients, each waiting for its answer before the next),
and reports throughput and latency percentiles. `--metered` sends AI inferences (binding v2),
one billing window per tenant: a window's events are proved in order, so tenants are what runs
in parallel. Proving dominates: expect about `workers / prove_time` bundles/s at best on an
idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from vbill.bundle.keys import Attester
from vbill.chain.anvil import free_port
from vbill.service.app import create_app
from vbill.service.settings import Settings

from vbill_tools.bench import sample_metered_requests, sample_requests, tree_cpu_seconds

SECRET = "bench-secret-0123456789abcdef"


async def _fire(url: str, reqs: list[dict[str, Any]], clients: int = 0) -> list[tuple[int, float]]:
    """POST every request; `clients` > 0 bounds how many are in flight (synchronous clients)."""
    gate = asyncio.Semaphore(clients or len(reqs) or 1)
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def one(r: dict[str, Any]) -> tuple[int, float]:
            async with gate:
                t = time.perf_counter()
                resp = await client.post(
                    "/api/vdi/billing/attest", json=r, headers={"X-VDI-Attest-Secret": SECRET}
                )
                return resp.status_code, time.perf_counter() - t

        return await asyncio.gather(*(one(r) for r in reqs))


def run(
    events: int, tenants: int, workers: int, clients: int = 0, metered: bool = False
) -> dict[str, Any]:
    def make(n: int, prefix: str, tenants: int) -> list[dict[str, Any]]:
        # no chain here: metered requests are priced in USD, like the pilot's
        if metered:
            return sample_metered_requests(n, prefix, tenants=tenants, currency="USD")
        return sample_requests(n, prefix=prefix, tenants=tenants)

    with tempfile.TemporaryDirectory(prefix="vbill-bench-") as tmp:
        home = Path(tmp)
        Attester.new(home / "attester.key")
        app = create_app(Settings(home=home, attest_secret=SECRET, prover_workers=workers))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        while not server.started:
            time.sleep(0.05)
        # warm the prover pool (node start + key load) so it is not counted
        asyncio.run(_fire(url, make(workers, prefix="warm_bench_e", tenants=workers)))
        reqs = make(events, prefix="bench_e", tenants=tenants)
        cpu0, start = tree_cpu_seconds(), time.perf_counter()
        results = asyncio.run(_fire(url, reqs, clients))
        elapsed = time.perf_counter() - start
        cpu = tree_cpu_seconds() - cpu0
        server.should_exit = True
        thread.join(30)
    lat = sorted(t for _, t in results)
    return {
        "binding": "v2 (metered)" if metered else "v1",
        "events": events,
        "tenants": tenants,
        "clients": clients or events,
        "prover_workers": workers,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "ok": sum(1 for s, _ in results if s == 200),
        "seconds": round(elapsed, 2),
        "bundles_per_s": round(events / elapsed, 2),
        # service, its prover and witness workers and the client, all in or under this process
        "cpu_ms_per_bundle": round(cpu * 1000 / events, 1),
        "latency_p50_s": round(statistics.median(lat), 2),
        "latency_p95_s": round(lat[max(0, int(0.95 * len(lat)) - 1)], 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=30)
    p.add_argument("--tenants", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clients", type=int, default=0, help="synchronous clients (0: all at once)")
    p.add_argument("--metered", action="store_true", help="AI inferences (binding v2)")
    a = p.parse_args()
    print(json.dumps(run(a.events, a.tenants, a.workers, a.clients, a.metered)))


if __name__ == "__main__":
    main()
