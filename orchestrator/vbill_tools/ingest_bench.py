"""Ingestion and proving throughput over HTTP (for BENCHMARKS.md).

    python -m vbill_tools.ingest_bench [--database-url postgresql://…] [--singles 2000]
        [--concurrency 64] [--batches 100:50,1000:5] [--proofs 40]

Starts `vbill serve --local-workers 0` as its own process (fresh VBILL_HOME, no chain:
USD-priced events) on a free loopback port, so ingestion is measured alone; then:
- single events (`Prefer: respond-async`) from `--concurrency` concurrent clients;
- batches (POST /api/vdi/billing/events) of each size, 4 requests in flight;
- proofs/s: the time `vbill worker --drain` processes (1, then 2) take to prove `--proofs`
  fresh events each.
Reports events/s and p50/p99 latency per request. The load generator runs on the same
machine and competes for its cores; the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from vbill_tools.demo import PILOT

SECRET = "bench-secret-0123456789abcdef"
AUTH = {"X-VDI-Attest-Secret": SECRET}


def _free_port() -> int:
    from vbill.chain.anvil import free_port

    return free_port()


def _requests(prefix: str, n: int, tenants: int = 10) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        r = copy.deepcopy(PILOT)
        r["meter_event"].update(
            tenant_id=f"bench_t{i % tenants}", event_id=f"{prefix}_{i}", usage_units=1000 + i
        )
        out.append(r)
    return out


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


async def _drive(
    url: str, bodies: list[Any], path: str, headers: dict[str, str], concurrency: int
) -> tuple[float, list[float], dict[int, int]]:
    """Send every body with `concurrency` requests in flight; (seconds, latencies, codes)."""
    queue = list(reversed(bodies))
    lat: list[float] = []
    codes: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def loop() -> None:
            while queue:
                body = queue.pop()
                t = time.perf_counter()
                r = await client.post(path, json=body, headers=headers)
                lat.append(time.perf_counter() - t)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return time.perf_counter() - t0, lat, codes


def _serve(home: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "vbill.cli.main", "serve", "--port", str(port),
           "--workers", "1", "--local-workers", "0"]  # fmt: skip
    log = open(home / "serve.log", "wb")  # noqa: SIM115 (the child's)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _unproven(url: str) -> int:
    status = httpx.get(f"{url}/api/vdi/status", timeout=60).json()
    return int(status["counts"].get("proving", 0))


def run(args: argparse.Namespace) -> dict[str, Any]:
    from vbill.bundle.keys import Attester

    out: dict[str, Any] = {"backend": "postgresql" if args.database_url else "sqlite"}
    with tempfile.TemporaryDirectory(prefix="vbill-ingest-bench-") as tmp:
        home = Path(args.home or tmp)  # --home: keep the state and logs to look at
        home.mkdir(parents=True, exist_ok=True)
        Attester.new(home / "attester.key")
        env = {**os.environ, "VBILL_HOME": str(home), "VDI_ATTEST_SECRET": SECRET}
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = _serve(home, port, env)
        try:
            for _ in range(1200):
                try:
                    if httpx.get(f"{url}/health", timeout=5).status_code in (200, 503):
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            asyncio.run(  # warm-up: Poseidon constants, tenants, connections
                _drive(url, _requests("warm", 50), "/api/vdi/billing/attest",
                       {**AUTH, "Prefer": "respond-async"}, 8)
            )  # fmt: skip
            secs, lat, codes = asyncio.run(
                _drive(url, _requests("single", args.singles), "/api/vdi/billing/attest",
                       {**AUTH, "Prefer": "respond-async"}, args.concurrency)
            )  # fmt: skip
            out["single"] = {
                "events": args.singles, "concurrency": args.concurrency, "codes": codes,
                "events_per_s": round(args.singles / secs), "p50_ms": round(_pct(lat, 0.5), 1),
                "p99_ms": round(_pct(lat, 0.99), 1),
            }  # fmt: skip
            for spec in args.batches.split(","):
                size, count = (int(x) for x in spec.split(":"))
                bodies = [{"events": _requests(f"b{size}_{j}", size)} for j in range(count)]
                secs, lat, codes = asyncio.run(
                    _drive(url, bodies, "/api/vdi/billing/events", AUTH, 4)
                )
                out[f"batch_{size}"] = {
                    "events": size * count, "requests": count, "in_flight": 4, "codes": codes,
                    "events_per_s": round(size * count / secs),
                    "p50_ms": round(_pct(lat, 0.5), 1), "p99_ms": round(_pct(lat, 0.99), 1),
                }  # fmt: skip
            # the backlog so far is not what we time: prove it first with 2 workers
            _prove(home, env, 2)
            for workers in (1, 2):
                reqs = _requests(f"p{workers}", args.proofs)
                asyncio.run(_drive(url, [{"events": reqs}], "/api/vdi/billing/events", AUTH, 1))
                backlog = _unproven(url)
                assert backlog == args.proofs, f"{backlog} unproven, expected {args.proofs}"
                t = time.perf_counter()
                _prove(home, env, workers)
                secs = time.perf_counter() - t
                left = _unproven(url)
                out[f"proofs_{workers}_workers"] = {
                    "proofs": args.proofs - left, "seconds": round(secs, 1),
                    "proofs_per_s": round((args.proofs - left) / secs, 2),
                }  # fmt: skip
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
    out["loadavg"] = os.getloadavg()
    return out


def _prove(home: Path, env: dict[str, str], workers: int) -> None:
    """Run `workers` separate `vbill worker --drain` processes to completion (their start-up,
    prover launch included, is part of the time: it is what a new worker costs)."""
    cmd = [sys.executable, "-m", "vbill.cli.main", "worker", "--drain"]
    log = open(home / "worker.log", "ab")  # noqa: SIM115 (the children's)
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        for _ in range(workers)
    ]
    for p in procs:
        p.wait()
    log.close()
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed: {(home / 'worker.log').read_text()[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--home", default=None, help="keep state and logs here (default: temp)")
    ap.add_argument("--singles", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--batches", default="100:50,1000:5")
    ap.add_argument("--proofs", type=int, default=40)
    print(json.dumps(run(ap.parse_args()), indent=2))


if __name__ == "__main__":
    main()
