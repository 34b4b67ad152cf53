"""The scoring schedule of a server process: a daemon thread that runs the job every N seconds.

Every process runs the schedule; the run lock (scoring/service.py) lets exactly one of them
work at a time, so N processes behind a load balancer score once, not N times.
"""

from __future__ import annotations

import logging

from abmhub.db.engine import Database
from abmhub.periodic import Periodic
from abmhub.scoring.service import ScoringBusy, run_scoring

log = logging.getLogger("abmhub.scoring")


class ScoringSchedule(Periodic):
    """`run_scoring` every `interval_seconds` (0: off); the first run one interval after start
    (`abmhub score` runs it on demand). A failed run leaves its accounts marked for the next."""

    def __init__(self, db: Database, interval_seconds: float) -> None:
        super().__init__("scoring", interval_seconds, self._run)
        self.db = db

    def _run(self) -> None:
        try:
            run_scoring(self.db)
        except ScoringBusy:
            log.info("scoring skipped: another process is running it")
