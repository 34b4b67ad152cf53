"""The scoring schedule of a server process: a daemon thread that runs the job every N seconds.

Every process runs the schedule; the run lock (scoring/service.py) lets exactly one of them
work at a time, so N processes behind a load balancer score once, not N times.
"""

from __future__ import annotations

import logging
import threading

from abmhub.db.engine import Database
from abmhub.scoring.service import ScoringBusy, run_scoring

log = logging.getLogger("abmhub.scoring")


class ScoringSchedule:
    def __init__(self, db: Database, interval_seconds: float) -> None:
        self.db = db
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="abmhub-scoring", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        # The first run comes one interval after start (`abmhub score` runs it on demand).
        while not self._stop.wait(self.interval):
            try:
                run_scoring(self.db)
            except ScoringBusy:
                log.info("scoring skipped: another process is running it")
            except Exception:
                log.exception("scoring run failed; it will be retried at the next interval")
