"""A background loop that polls for work: `run_once()` until `stop()`, waiting `idle` seconds
whenever a round found nothing, and a second after an error (the store unreachable for a
moment), which is logged and retried. Proving workers and the webhook dispatcher are these."""

from __future__ import annotations

import logging
import threading


class Poller:
    what = "poller"  # names the loop in its error lines

    def __init__(self, name: str, idle: float, log: logging.Logger) -> None:
        self.name, self.idle, self._log = name, idle, log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One round; how much work it found (0: wait `idle` before the next)."""
        raise NotImplementedError

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once() == 0:
                    self._stop.wait(self.idle)
            except Exception as exc:  # the store unreachable for a moment: retry
                self._log.error("%s %s: %s", self.what, self.name, exc)
                self._stop.wait(1.0)

    def start(self, thread_name: str | None = None) -> None:
        self._thread = threading.Thread(target=self.run, name=thread_name or self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
