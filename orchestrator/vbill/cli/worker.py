"""`vbill worker`: a proving worker process (docs/cli.md, docs/operations.md).

It claims bundles still `proving` from the store (DATABASE_URL, else $VBILL_HOME's SQLite
file) with a lease, proves them and attaches the proofs. Any number run on any machine that
reaches the database; one killed mid-proof loses nothing: its lease runs out and another
worker proves the bundle.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

import click

from vbill import paths
from vbill.errors import ToolError
from vbill.ingest import LEASE_MS, ProvingWorker, close_provers, open_provers, worker_id
from vbill.ledger.store import open_store


@click.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Proofs in parallel (one prover process each).",
)
@click.option(
    "--lease",
    "lease_s",
    type=click.FloatRange(0.5),
    default=LEASE_MS / 1000,
    show_default=True,
    help="Seconds a claim lasts before another worker may take it over.",
)
@click.option("--drain", is_flag=True, help="Exit once nothing is left to prove.")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve this process's Prometheus metrics (proofs, proof latency) on "
    "127.0.0.1:PORT/metrics.",
)
def worker(workers: int, lease_s: float, drain: bool, metrics_port: int | None) -> None:
    """Prove signed, logged bundles that await their proof, until stopped (SIGTERM/SIGINT)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from vbill import metrics

        try:
            start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.REGISTRY)
        except OSError as exc:
            where = f"127.0.0.1:{metrics_port}"
            raise ToolError(f"cannot serve metrics on {where}: {exc.strerror}") from None

    store = open_store(os.environ.get("DATABASE_URL"), home=paths.vbill_home())
    provers = open_provers(workers)  # every binding set up here: its bundles are proved
    pool = [
        ProvingWorker(store, provers, lease_ms=int(lease_s * 1000), name=f"{worker_id()}:{i}")
        for i in range(workers)
    ]
    done = threading.Event()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if drain:
            threads = [threading.Thread(target=_drain, args=(w, done)) for w in pool]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            for w in pool:
                w.start()
            done.wait()
            for w in pool:
                w.stop()
    finally:
        close_provers(provers)
        store.close()
    click.echo(f"proved {sum(w.proved for w in pool)} bundles")


def _drain(w: ProvingWorker, done: threading.Event) -> None:
    while not done.is_set() and w.run_once():
        pass


COMMANDS = (worker,)
