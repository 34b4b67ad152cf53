"""A job run every N seconds on a daemon thread of the server process, until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("abmhub")


class Periodic:
    """Runs `job` every `interval` seconds (the first run one interval after `start`); an
    interval of 0 turns it off. A failing run is logged and the next one comes as usual."""

    def __init__(self, name: str, interval: float, job: Callable[[], object]) -> None:
        self.name = name
        self.interval = interval
        self.job = job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"abmhub-{name}", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.job()
            except Exception:
                log.exception("%s failed; it runs again in %s s", self.name, self.interval)
