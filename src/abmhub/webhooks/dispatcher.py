"""The delivery workers that `abmhub serve` runs beside the API (threads of its process).

Each worker polls for due deliveries (a cheap read, about twice a second), claims one
subscription at a time (`delivery.claim`), posts its due events in order and records each
result. The HTTP client is shared, so connections to a receiver are reused; every attempt
checks the target again (`sender.Sender`: no private addresses unless allowed, no
redirects, 10 s at most). Nothing here blocks a request of the API: the API only writes the
outbox, in its own transaction.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from abmhub.db.engine import Database
from abmhub.timefmt import now_us
from abmhub.webhooks import delivery
from abmhub.webhooks.events import body
from abmhub.webhooks.sender import Attempt, Sender
from abmhub.webhooks.signing import SIGNATURE_HEADER, signature

log = logging.getLogger(__name__)
# httpx logs every request at INFO with its URL, whose path may hold a token (Slack's do).
logging.getLogger("httpx").setLevel(logging.WARNING)

DEFAULT_WORKERS = 4
DEFAULT_RETRY_BASE_S = 10.0
POLL_S = 0.5
PURGE_EVERY_S = 3600.0
RECORD_EVERY = 10  # attempts whose results are stored in one transaction
RENEW_AFTER_S = 5.0


class Dispatcher:
    def __init__(
        self,
        db: Database,
        *,
        workers: int = DEFAULT_WORKERS,
        retry_base_s: float = DEFAULT_RETRY_BASE_S,
        allow_private: bool = False,
        timeout_s: float = 10.0,
        poll_s: float = POLL_S,
    ) -> None:
        self.db = db
        self.workers = workers
        self.retry_base_s = retry_base_s
        self.poll_s = poll_s
        self.sender = Sender(allow_private=allow_private, timeout=timeout_s)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._purged_at = 0.0
        self._purge_lock = threading.Lock()

    def start(self) -> None:
        for number in range(self.workers):
            thread = threading.Thread(target=self._run, name=f"abmhub-webhooks-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Finish the attempts in flight (each takes 10 s at most), then stop; what is left
        stays pending in the database for the next process."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.sender.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = self.work_once()
                self._purge_now_and_then()
            except Exception:  # a database hiccup must not end the worker
                log.exception("webhook delivery worker: unexpected error; retrying")
                worked = False
            if not worked:
                self._stopping.wait(self.poll_s * random.uniform(0.5, 1.5))

    def work_once(self) -> bool:
        """Deliver one claimed batch; False when there was nothing to do."""
        if not delivery.anything_due(self.db, now_us()):
            return False
        held = delivery.claim(self.db, now_us())
        if held is None:
            return False
        try:
            self._deliver(held)
        finally:
            delivery.release(self.db, held)
        return True

    def _deliver(self, held: delivery.Claim) -> None:
        """Attempt the batch in order, up to the first failure (the subscription then backs
        off: a receiver that is down gets one attempt per wait, and the workers go to the
        others). Results are stored every RECORD_EVERY attempts, at a failure, and before the
        next attempt once RENEW_AFTER_S passed since the lease was last renewed (an attempt
        takes 10 s at most: the lease never runs out under a live worker)."""
        outcomes: list[delivery.Outcome] = []
        renewed = time.monotonic()
        for due in held.due:
            if self._stopping.is_set():
                break
            if time.monotonic() - renewed > RENEW_AFTER_S:
                self._record(held, outcomes)
                outcomes, renewed = [], time.monotonic()
            attempt = self._attempt(held, due)
            outcomes.append(delivery.Outcome(due, attempt, now_us()))
            if not attempt.ok:
                break
            if len(outcomes) >= RECORD_EVERY:
                self._record(held, outcomes)
                outcomes, renewed = [], time.monotonic()
        if outcomes:
            self._record(held, outcomes)

    def _attempt(self, held: delivery.Claim, due: delivery.Due) -> Attempt:
        content = body(
            event_id=due.event_id,
            type=due.event_type,
            created_us=due.event_created_us,
            data=due.data,
            format=held.format,
        )
        headers = {
            "Content-Type": "application/json",
            "X-Abmhub-Event-Id": due.event_id,
            "X-Abmhub-Event-Type": due.event_type,
            "X-Abmhub-Delivery-Id": due.delivery_id,
            SIGNATURE_HEADER: signature(held.secret, content, int(time.time())),
        }
        return self.sender.post(held.url, content, headers)

    def _record(self, held: delivery.Claim, outcomes: list[delivery.Outcome]) -> None:
        statuses = delivery.record(self.db, held, outcomes, retry_base_s=self.retry_base_s)
        for outcome, status in zip(outcomes, statuses, strict=True):
            if not outcome.attempt.ok:
                # The webhook and delivery ids only: a URL may carry a token of the receiver's.
                log.info(
                    "webhook %s delivery %s: %s (%s)",
                    held.webhook_id,
                    outcome.due.delivery_id,
                    outcome.attempt.error or f"HTTP {outcome.attempt.status_code}",
                    status,
                )

    def _purge_now_and_then(self) -> None:
        if time.monotonic() - self._purged_at < PURGE_EVERY_S or not self._purge_lock.acquire(blocking=False):
            return
        try:
            self._purged_at = time.monotonic()
            delivery.purge(self.db, now_us())
        finally:
            self._purge_lock.release()
