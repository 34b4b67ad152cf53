"""Bulk pushes: chunk any iterable to an endpoint's limit and merge the per-item results (§1.4).

The server answers HTTP 200 whatever happens to single items, so what matters is each
item's `status`. A chunk is prepared (items checked locally, see models.py), sent, and
settled into one result per item, in the order the items were given, whatever happened:

- an item the client refused locally → `failed`, `error: "not sent: ..."`;
- a chunk the server refused as a whole (400), or that failed after its retries → every
  item of it `failed` with that error, recorded in the chunk's outcome; the next chunk is
  sent all the same;
- errors that would repeat for every chunk (401 bad key, 403, 404 wrong base URL) are
  raised: there is no point in sending the rest.

Everything here is I/O-free; the clients do the sending. (`prepared_chunks` may read
ahead in a thread, when asked to.)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

from pydantic import ValidationError

from abmhub.client.errors import (
    ClientError,
    Forbidden,
    NotFound,
    ProtocolError,
    Unauthorized,
)
from abmhub.client.models import (
    AccountIn,
    AccountResult,
    DealIn,
    DealResult,
    RequestModel,
    Result,
    SalesActivityIn,
    SalesActivityResult,
    SignalIn,
    SignalResult,
    Summary,
)

# Raised, not recorded: every later chunk would fail the same way.
ABORTING_ERRORS = (Unauthorized, Forbidden, NotFound)


@dataclass(frozen=True, slots=True)
class BulkEndpoint(Generic[Result]):
    """A bulk write endpoint: where it is, its body key, its per-request limit, its shapes."""

    path: str
    key: str
    limit: int
    item_model: type[RequestModel]
    result_model: type[Result]
    # Item fields copied into the result of an item that never got a server result.
    identity: tuple[str, ...]


ACCOUNTS = BulkEndpoint("accounts", "accounts", 100, AccountIn, AccountResult, ("domain", "externalId"))
DEALS = BulkEndpoint("deals", "deals", 100, DealIn, DealResult, ("externalDealId",))
SALES_ACTIVITIES = BulkEndpoint(
    "sales-activities", "activities", 50, SalesActivityIn, SalesActivityResult, ("externalActivityId",)
)
SIGNALS = BulkEndpoint("signals", "signals", 1000, SignalIn, SignalResult, ("externalSignalId", "domain"))


def chunk_size_for(endpoint: BulkEndpoint[Any], chunk_size: int | None) -> int:
    if chunk_size is None:
        return endpoint.limit
    if not 1 <= chunk_size <= endpoint.limit:
        raise ValueError(f"chunk_size for {endpoint.path} must be 1..{endpoint.limit}, not {chunk_size}")
    return chunk_size


def chunked(items: Iterable[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    """(index of the chunk's first item, the chunk); reads `items` lazily, one chunk at a time."""
    chunk: list[Any] = []
    start = 0
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield start, chunk
            start += size
            chunk = []
    if chunk:
        yield start, chunk


# --- outcomes --------------------------------------------------------------------------------------


@dataclass(slots=True)
class ChunkOutcome(Generic[Result]):
    """What became of one chunk: a result per item, in order; `error` when the request failed."""

    start: int
    results: list[Result]
    error: ClientError | None = None
    sent: int = 0

    @property
    def summary(self) -> Summary:
        summary = Summary()
        for result in self.results:
            summary.count(result.status)
        return summary


@dataclass(frozen=True, slots=True)
class ChunkFailure:
    """A chunk whose request failed: items `start` .. `start + size - 1`."""

    start: int
    size: int
    error: ClientError


@dataclass(slots=True)
class PushReport(Generic[Result]):
    """All results of a push, in the order the items were given, and their counts."""

    results: list[Result] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    failed_chunks: list[ChunkFailure] = field(default_factory=list)

    def add(self, outcome: ChunkOutcome[Result]) -> None:
        self.results.extend(outcome.results)
        for result in outcome.results:
            self.summary.count(result.status)
        if outcome.error is not None:
            self.failed_chunks.append(ChunkFailure(outcome.start, len(outcome.results), outcome.error))

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when no item failed (skipped items are fine)."""
        return self.summary.failed == 0


# --- preparing and settling one chunk -------------------------------------------------------------


@dataclass(slots=True)
class PreparedChunk(Generic[Result]):
    endpoint: BulkEndpoint[Result]
    start: int
    payloads: list[dict[str, Any]]
    # One slot per item: a local failure, or None where the server's result goes.
    slots: list[Result | None]
    identities: list[dict[str, Any]]

    def body(self, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {self.endpoint.key: self.payloads, **extra}


def _identity(endpoint: BulkEndpoint[Any], item: Any) -> dict[str, Any]:
    found = {}
    for name in endpoint.identity:
        value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
        if isinstance(value, str):
            found[name] = value
    return found


def refusal(exc: ValidationError) -> str:
    """A local validation failure as one line: `not sent: domain: Field required; ...`."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "not sent: " + "; ".join(parts)


def prepare(endpoint: BulkEndpoint[Result], start: int, items: Sequence[Any]) -> PreparedChunk[Result]:
    payloads: list[dict[str, Any]] = []
    slots: list[Result | None] = []
    identities: list[dict[str, Any]] = []
    for offset, item in enumerate(items):
        identity = _identity(endpoint, item)
        identities.append(identity)
        try:
            model = item if isinstance(item, endpoint.item_model) else endpoint.item_model.model_validate(item)
        except ValidationError as exc:
            slots.append(endpoint.result_model(index=start + offset, status="failed", error=refusal(exc), **identity))
            continue
        payloads.append(model.wire())
        slots.append(None)
    return PreparedChunk(endpoint, start, payloads, slots, identities)


def settle(prepared: PreparedChunk[Result], data: Any) -> ChunkOutcome[Result]:
    """Merge the server's results (for the items sent) with the local failures, in item order."""
    endpoint = prepared.endpoint
    served = data.get("results") if isinstance(data, dict) else None
    if not isinstance(served, list) or len(served) != len(prepared.payloads):
        got = f"{len(served)} results" if isinstance(served, list) else "no results list"
        return fail(prepared, ProtocolError(f"POST {endpoint.path}: {got} for {len(prepared.payloads)} items"))
    answers = iter(served)
    results: list[Result] = []
    for offset, slot in enumerate(prepared.slots):
        if slot is not None:
            results.append(slot)
            continue
        answer = next(answers)
        index = prepared.start + offset
        try:
            results.append(endpoint.result_model.model_validate({**answer, "index": index}))
        except (ValidationError, TypeError):
            results.append(
                endpoint.result_model(
                    index=index,
                    status="failed",
                    error=f"unreadable result: {answer!r}"[:300],
                    **prepared.identities[offset],
                )
            )
    return ChunkOutcome(prepared.start, results, None, len(prepared.payloads))


def fail(prepared: PreparedChunk[Result], error: ClientError) -> ChunkOutcome[Result]:
    """Every item of a chunk whose request failed is `failed` with the request's error."""
    endpoint = prepared.endpoint
    text = f"request failed: {error}"
    results = [
        slot
        if slot is not None
        else endpoint.result_model(
            index=prepared.start + offset, status="failed", error=text, **prepared.identities[offset]
        )
        for offset, slot in enumerate(prepared.slots)
    ]
    return ChunkOutcome(prepared.start, results, error, len(prepared.payloads))


def local_only(prepared: PreparedChunk[Result]) -> ChunkOutcome[Result]:
    """A chunk with nothing to send (every item refused locally)."""
    return ChunkOutcome(prepared.start, [slot for slot in prepared.slots if slot is not None], None, 0)


def prepared_chunks(
    endpoint: BulkEndpoint[Result], items: Iterable[Any], size: int, read_ahead: int = 0
) -> Iterator[PreparedChunk[Result]]:
    """The chunks of `items`, checked and ready to send.

    With `read_ahead` > 0 a background thread reads and checks up to that many chunks
    ahead, so that building items (parsing a file, validating) overlaps with the request
    in flight; memory stays bounded by those few chunks. The thread consumes `items`, so
    leave it at 0 for iterables bound to their thread (a sqlite3 cursor, for one).
    """
    chunks = (prepare(endpoint, start, chunk) for start, chunk in chunked(items, size))
    return _ahead(chunks, read_ahead) if read_ahead > 0 else chunks


_END = object()


def _ahead(source: Iterator[Any], depth: int) -> Iterator[Any]:
    ready: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(value: Any, error: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                ready.put((value, error), timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for value in source:
                if not hand_over(value):
                    return
        except BaseException as exc:
            hand_over(_END, exc)
            return
        hand_over(_END)

    thread = threading.Thread(target=produce, name="abmhub-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            value, error = ready.get()
            if value is _END:
                if error is not None:
                    raise error
                return
            yield value
    finally:
        stop.set()  # a consumer that stops early releases the producer within 0.1 s
