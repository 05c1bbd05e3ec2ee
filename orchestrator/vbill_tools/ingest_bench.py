"""Ingestion and proving throughput over HTTP (for BENCHMARKS.md).

    python -m vbill_tools.ingest_bench [--database-url postgresql://…] [--singles 2000]
        [--concurrency 64] [--batches 100:50,1000:5] [--proofs 40]
        [--replicas 2 --live-workers 2]

Starts `vbill serve --local-workers 0` as its own process (fresh VBILL_HOME, no chain:
USD-priced events) on a free loopback port, so ingestion is measured alone; then:
- single events (`Prefer: respond-async`) from `--concurrency` concurrent clients;
- batches (POST /api/vdi/billing/events) of each size, 4 requests in flight;
- proofs/s, measured first on an empty backlog: the time `vbill worker --drain` processes
  (1, then 2) take to prove `--proofs` fresh events each.
`--replicas N` (PostgreSQL) starts N API processes on the one database and spreads the
requests over them in turn; `--live-workers K` runs K `vbill worker` processes proving while
events are ingested, and at the end checks what a single process would show: every event
stored once, one gap-free log, the same head on every replica, nothing left to prove.
Reports events/s and p50/p99 latency per request, and the CPU the API processes and the load
generator spent per event (on a machine shared with other work, CPU per event is the figure
that does not depend on how busy the machine was). The load average is printed too.
`--py-spy FILE` profiles the (first) API process: py-spy's folded stacks of the threads holding
the GIL, for the whole run (py-spy must be installed beside this Python).
"""

from __future__ import annotations

import argparse
import asyncio
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
from vbill.chain.anvil import free_port

from vbill_tools.bench import cpu_seconds, sample_requests

SECRET = "bench-secret-0123456789abcdef"
AUTH = {"X-VDI-Attest-Secret": SECRET}
ASYNC = {**AUTH, "Prefer": "respond-async"}
ATTEST, EVENTS = "/api/vdi/billing/attest", "/api/vdi/billing/events"


def _requests(prefix: str, n: int) -> list[dict[str, Any]]:
    return sample_requests(n, prefix=prefix, tenants=10)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


class _Conn:
    """One keep-alive HTTP/1.1 connection speaking just what the bench needs (POST a JSON
    body, read a Content-Length response): httpx's async client costs more CPU per request
    than the service it measures, on the same cores."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
            + body
        )
        status = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in status.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status.split(b" ", 2)[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _drive(
    urls: list[str], bodies: list[Any], path: str, headers: dict[str, str], concurrency: int
) -> tuple[float, list[float], dict[int, int]]:
    """Send every body with `concurrency` requests in flight (one connection each), the
    connections spread over `urls` in turn; (seconds, latencies, status codes)."""
    queue = [json.dumps(b).encode() for b in reversed(bodies)]
    lat: list[float] = []
    codes: dict[int, int] = {}
    conns = [_Conn(urls[i % len(urls)]) for i in range(concurrency)]

    async def loop(conn: _Conn) -> None:
        while queue:
            body = queue.pop()
            t = time.perf_counter()
            code = await conn.post(path, body, headers)
            lat.append(time.perf_counter() - t)
            codes[code] = codes.get(code, 0) + 1

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(loop(c) for c in conns))
    finally:
        for c in conns:
            c.close()
    return time.perf_counter() - t0, lat, codes


def _phase(
    servers: list[subprocess.Popen[bytes]],
    urls: list[str],
    bodies: list[Any],
    path: str,
    headers: dict[str, str],
    concurrency: int,
    events: int,
) -> dict[str, Any]:
    """One measured load: events/s, latency per request, CPU per event (API, client)."""
    cpu0, client0 = sum(cpu_seconds(s.pid) for s in servers), time.process_time()
    secs, lat, codes = asyncio.run(_drive(urls, bodies, path, headers, concurrency))
    cpu = sum(cpu_seconds(s.pid) for s in servers) - cpu0
    return {
        "events": events, "requests": len(bodies), "in_flight": concurrency, "codes": codes,
        "events_per_s": round(events / secs), "p50_ms": round(_pct(lat, 0.5), 1),
        "p99_ms": round(_pct(lat, 0.99), 1),
        "api_cpu_ms_per_event": round(cpu * 1000 / events, 2),
        "client_cpu_ms_per_event": round((time.process_time() - client0) * 1000 / events, 2),
    }  # fmt: skip


def _serve(
    home: Path, port: int, env: dict[str, str], n: int, py_spy: str | None = None
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "vbill.cli.main", "serve", "--port", str(port),
           "--workers", "1", "--local-workers", "0"]  # fmt: skip
    if py_spy:  # the stacks of threads holding the GIL, folded (one line per stack: count)
        spy = str(Path(sys.executable).with_name("py-spy"))
        cmd = [spy, "record", "--nonblocking", "--gil", "-r", "1000", "--format", "raw",
               "-o", py_spy, "--", *cmd]  # fmt: skip
    log = open(home / f"serve{n}.log", "wb")  # noqa: SIM115 (the child's)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _status(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/api/vdi/status", timeout=60).json()


def _unproven(url: str) -> int:
    return int(_status(url)["counts"].get("proving", 0))


def _wait_healthy(url: str) -> None:
    for _ in range(1200):
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code in (200, 503):
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} never answered /health")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from vbill.bundle.keys import Attester

    if args.replicas > 1 and not args.database_url:
        raise SystemExit("--replicas > 1 needs --database-url postgresql://… (one shared store)")
    out: dict[str, Any] = {
        "backend": "postgresql" if args.database_url else "sqlite",
        "replicas": args.replicas, "live_workers": args.live_workers,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="vbill-ingest-bench-") as tmp:
        home = Path(args.home or tmp)  # --home: keep the state and logs to look at
        home.mkdir(parents=True, exist_ok=True)
        Attester.new(home / "attester.key")
        env = {**os.environ, "VBILL_HOME": str(home), "VDI_ATTEST_SECRET": SECRET}
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        ports = [free_port() for _ in range(args.replicas)]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        servers = [_serve(home, p, env, i, args.py_spy if i == 0 else None)
                   for i, p in enumerate(ports)]  # fmt: skip
        live: list[subprocess.Popen[bytes]] = []
        try:
            for url in urls:
                _wait_healthy(url)
            for workers in (1, 2) if args.proofs else ():  # first, on an empty backlog
                reqs = _requests(f"p{workers}", args.proofs)
                asyncio.run(_drive(urls, [{"events": reqs}], EVENTS, AUTH, 1))
                backlog = _unproven(urls[0])
                assert backlog == args.proofs, f"{backlog} unproven, expected {args.proofs}"
                t = time.perf_counter()
                _prove(home, env, workers)
                secs = time.perf_counter() - t
                left = _unproven(urls[0])
                out[f"proofs_{workers}_workers"] = {
                    "proofs": args.proofs - left, "seconds": round(secs, 1),
                    "proofs_per_s": round((args.proofs - left) / secs, 2),
                }  # fmt: skip
            asyncio.run(_drive(urls, _requests("warm", 50), ATTEST, ASYNC, 8))  # warm-up
            live = [_worker(home, env) for _ in range(args.live_workers)]
            sent = 50 + 2 * args.proofs
            reqs = _requests("single", args.singles)
            out["single"] = _phase(servers, urls, reqs, ATTEST, ASYNC, args.concurrency,
                                   args.singles)  # fmt: skip
            sent += args.singles
            for spec in args.batches.split(",") if args.batches else ():
                size, count = (int(x) for x in spec.split(":"))
                bodies = [{"events": _requests(f"b{size}_{j}", size)} for j in range(count)]
                out[f"batch_{size}"] = _phase(servers, urls, bodies, EVENTS, AUTH, 4, size * count)
                sent += size * count
            if live:
                out["same_as_one_process"] = _settle(urls, live, sent)
        finally:
            for p in [*live, *servers]:
                if p.poll() is None:  # under py-spy, stop its child: py-spy then writes
                    for pid in _children(p.pid) if args.py_spy and p is servers[0] else [p.pid]:
                        os.kill(pid, signal.SIGTERM)
            for p in [*live, *servers]:
                p.wait(timeout=120)
    out["loadavg"] = os.getloadavg()
    return out


def _worker(home: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "vbill.cli.main", "worker", *args]
    log = open(home / "worker.log", "ab")  # noqa: SIM115 (the child's)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)


def _settle(urls: list[str], live: list[subprocess.Popen[bytes]], sent: int) -> dict[str, Any]:
    """Wait for the live workers to prove everything, then check what one process shows:
    each event once, one gap-free log, one head on every replica."""
    t = time.perf_counter()
    while (left := _unproven(urls[0])) and all(p.poll() is None for p in live):
        time.sleep(1)
    statuses = [_status(u) for u in urls]
    counts = statuses[0]["counts"]
    heads = {json.dumps(s["tree_head"], sort_keys=True) for s in statuses}
    return {
        "events_sent": sent, "bundles": counts["bundles"], "log_size": counts["log_size"],
        "one_head_on_every_replica": len(heads) == 1, "unproven": left,
        "proving_tail_s": round(time.perf_counter() - t, 1),
        "ok": counts["bundles"] == counts["log_size"] == sent and len(heads) == 1 and not left,
    }  # fmt: skip


def _prove(home: Path, env: dict[str, str], workers: int) -> None:
    """Run `workers` separate `vbill worker --drain` processes to completion (their start-up,
    prover launch included, is part of the time: it is what a new worker costs)."""
    procs = [_worker(home, env, "--drain") for _ in range(workers)]
    for p in procs:
        p.wait()
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed: {(home / 'worker.log').read_text()[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--home", default=None, help="keep state and logs here (default: temp)")
    ap.add_argument("--singles", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--batches", default="100:50,1000:5", help="size:count,… ('' for none)")
    ap.add_argument("--proofs", type=int, default=40, help="0: do not measure proofs/s")
    ap.add_argument("--replicas", type=int, default=1, help="API processes (PostgreSQL)")
    ap.add_argument("--live-workers", type=int, default=0, help="workers proving meanwhile")
    ap.add_argument("--py-spy", default=None, help="profile the (first) API process to this "
                    "file: py-spy's folded stacks of the whole run (its CPU figures then "
                    "count py-spy, not the API process)")  # fmt: skip
    print(json.dumps(run(ap.parse_args()), indent=2))


if __name__ == "__main__":
    main()
