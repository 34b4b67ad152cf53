"""Delta sync (§1.5): remember each complete pass's `syncTimestamp`, send it back as `lastSync`.

A pass reads every page of a list (stopping on `hasNextPage: false` only). The stamp it
stores is the first page's: on abmhub every page of a pass carries the same one, and with a
server that does not, the earliest is the one that cannot skip a change. The stamp is saved
only when the pass has been read to its end — by you: it is saved when you ask for the
record after the last one — so an interrupted pass (an exception, a `break`, a crash)
leaves the previous stamp in place and the next run reads those changes again. Changes may
come twice; never zero times.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from abmhub.client.models import Page

Record = TypeVar("Record")


class SyncState(Protocol):
    """Where the last complete pass's `syncTimestamp` is kept."""

    def load(self) -> str | Awaitable[str | None] | None: ...

    def save(self, sync_timestamp: str) -> Awaitable[None] | None: ...


class StateFile:
    """A JSON file of sync stamps, one entry per `name`, so several lists can share a file:

        {"accounts": {"lastSync": "2026-04-30T10:00:00.000Z", "savedAt": "...", "records": 1234}}

    Written atomically (a temporary file renamed over the old one): a crash mid-write
    leaves the previous state, never a torn file.
    """

    def __init__(self, path: str | os.PathLike[str], name: str = "accounts") -> None:
        self.path = Path(path)
        self.name = name
        self.records: int | None = None

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        if not text.strip():
            return {}
        try:
            state = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"state file {self.path} is not JSON: {exc}") from None
        if not isinstance(state, dict):
            raise ValueError(f"state file {self.path} does not hold a JSON object")
        return state

    def load(self) -> str | None:
        entry = self._read().get(self.name)
        if isinstance(entry, dict):
            last_sync = entry.get("lastSync")
            if isinstance(last_sync, str):
                return last_sync
        return None

    def save(self, sync_timestamp: str) -> None:
        state = self._read()
        entry: dict[str, Any] = {
            "lastSync": sync_timestamp,
            "savedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if self.records is not None:
            entry["records"] = self.records
        state[self.name] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(state, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def __repr__(self) -> str:
        return f"StateFile({str(self.path)!r}, name={self.name!r})"


class CallbackState:
    """Keep the stamp wherever you like: `load()` returns it (None at first), `save(stamp)`
    stores it. Either may be a coroutine function when used with the async client."""

    def __init__(
        self,
        load: Callable[[], str | Awaitable[str | None] | None],
        save: Callable[[str], Awaitable[None] | None],
    ) -> None:
        self._load = load
        self._save = save

    def load(self) -> str | Awaitable[str | None] | None:
        return self._load()

    def save(self, sync_timestamp: str) -> Awaitable[None] | None:
        return self._save(sync_timestamp)


class MemoryState:
    """A stamp kept in memory (tests, or a long-running process that syncs on a timer)."""

    def __init__(self, last_sync: str | None = None) -> None:
        self.last_sync = last_sync

    def load(self) -> str | None:
        return self.last_sync

    def save(self, sync_timestamp: str) -> None:
        self.last_sync = sync_timestamp


def as_state(state: SyncState | str | os.PathLike[str], name: str) -> SyncState:
    if isinstance(state, str | os.PathLike):
        return StateFile(state, name)
    return state


class _PassFacts:
    """What a pass knows about itself; shared by the sync and async passes."""

    last_sync: str | None
    sync_timestamp: str | None
    records: int
    pages_read: int
    completed: bool

    def _reset(self) -> None:
        self.last_sync = None
        self.sync_timestamp = None
        self.records = 0
        self.pages_read = 0
        self.completed = False
        self._started = False

    def _begin(self) -> None:
        if self._started:
            raise RuntimeError("a delta-sync pass can be read once; start a new one for the next pass")
        self._started = True

    def _saw(self, page: Page[Any]) -> None:
        if self.pages_read == 0:
            self.sync_timestamp = page.sync_timestamp
        self.pages_read += 1
        self.records += len(page.items)

    def _note_count(self, state: SyncState) -> None:
        if isinstance(state, StateFile):
            state.records = self.records


class DeltaPass(_PassFacts, Generic[Record]):
    """One pass: iterate it for the records (or `pages()` for raw pages); the stamp is
    saved when the iteration completes. `last_sync` is the stamp the pass started from
    (None: a full pass), `sync_timestamp` the one it will save, `completed` whether it did."""

    def __init__(
        self,
        fetch: Callable[[str | None], Iterator[Page[dict[str, Any]]]],
        parse: Callable[[dict[str, Any]], Record],
        state: SyncState,
        *,
        full: bool = False,
    ) -> None:
        self._fetch = fetch
        self._parse = parse
        self.state = state
        self.full = full
        self._reset()

    def pages(self) -> Iterator[Page[dict[str, Any]]]:
        self._begin()
        loaded = None if self.full else self.state.load()
        if inspect.isawaitable(loaded):
            raise TypeError("this state's load() is a coroutine: use the async client")
        self.last_sync = loaded
        for page in self._fetch(self.last_sync):
            self._saw(page)
            yield page
        if self.sync_timestamp is not None:
            self._note_count(self.state)
            saved = self.state.save(self.sync_timestamp)
            if inspect.isawaitable(saved):
                raise TypeError("this state's save() is a coroutine: use the async client")
        self.completed = True

    def __iter__(self) -> Iterator[Record]:
        for page in self.pages():
            for raw in page.items:
                yield self._parse(raw)


class AsyncDeltaPass(_PassFacts, Generic[Record]):
    """The async pass: `async for record in pass_` (or `pass_.pages()`)."""

    def __init__(
        self,
        fetch: Callable[[str | None], AsyncIterator[Page[dict[str, Any]]]],
        parse: Callable[[dict[str, Any]], Record],
        state: SyncState,
        *,
        full: bool = False,
    ) -> None:
        self._fetch = fetch
        self._parse = parse
        self.state = state
        self.full = full
        self._reset()

    async def pages(self) -> AsyncIterator[Page[dict[str, Any]]]:
        self._begin()
        loaded = None if self.full else self.state.load()
        if inspect.isawaitable(loaded):
            loaded = await loaded
        self.last_sync = loaded
        async for page in self._fetch(self.last_sync):
            self._saw(page)
            yield page
        if self.sync_timestamp is not None:
            self._note_count(self.state)
            saved = self.state.save(self.sync_timestamp)
            if inspect.isawaitable(saved):
                await saved
        self.completed = True

    async def __aiter__(self) -> AsyncIterator[Record]:
        async for page in self.pages():
            for raw in page.items:
                yield self._parse(raw)
