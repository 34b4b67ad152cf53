"""The accounts list's state, all of it in the URL query (so a view can be bookmarked and shared).

`?q=acme&stage=Aware&min=40&max=90&segment=<id>&tag=enterprise&sort=-score&after=<cursor>`:
search, filters, sort (a leading `-` is descending) and the keyset position, each parsed
leniently: a value that makes no sense is reported next to its field and left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from abmhub.accounts.service import AccountFilter, AccountOrder, AccountSlice
from abmhub.deals.schemas import JOURNEY_STAGES
from abmhub.ids import is_object_id
from abmhub.web.cursors import Cursor, InvalidCursor, decode_cursor, encode_cursor

PAGE_SIZE = 50
# The stage filter's value for accounts the scoring job has not reached yet (stored as "").
UNSCORED = "unscored"
SORTS = {"-score": AccountOrder("score", True), "score": AccountOrder("score", False)} | {
    "-change": AccountOrder("change", True),
    "change": AccountOrder("change", False),
    "name": AccountOrder("name", False),
    "-name": AccountOrder("name", True),
}
DEFAULT_SORT = "-score"
_KEY_TYPES = {"score": int, "change": int, "name": str}
_MAX_SCORE_KEY = 2**31 - 1
_PARAMS = ("q", "stage", "min", "max", "segment", "tag", "sort", "after", "before")


def _score(text: str) -> int | None:
    value = text.strip()
    return int(value) if value.isdigit() and int(value) <= 100 else None


@dataclass(frozen=True, slots=True)
class AccountListQuery:
    q: str = ""
    stage: str = ""
    min: str = ""
    max: str = ""
    segment: str = ""
    tag: str = ""
    sort: str = DEFAULT_SORT
    after: str = ""
    before: str = ""
    # Per parameter, why its value was left out.
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> AccountListQuery:
        values = {name: params.get(name, "").strip() for name in _PARAMS}
        errors: dict[str, str] = {}
        if values["stage"] and values["stage"] != UNSCORED and values["stage"] not in JOURNEY_STAGES:
            errors["stage"] = "Choose a journey stage from the list."
        for bound in ("min", "max"):
            if values[bound] and _score(values[bound]) is None:
                errors[bound] = "Enter a whole number from 0 to 100."
        low, high = _score(values["min"]), _score(values["max"])
        if low is not None and high is not None and high < low:
            errors["max"] = "The maximum is below the minimum."
        if values["sort"] not in SORTS:
            values["sort"] = DEFAULT_SORT
        return cls(**values, errors=errors)

    # --- what the service gets ---------------------------------------------------------------

    def account_filter(self) -> AccountFilter:
        stage: str | None = None
        if self.stage and "stage" not in self.errors:
            stage = "" if self.stage == UNSCORED else self.stage
        return AccountFilter(
            search=self.q or None,
            journey_stage=stage,
            min_score=_score(self.min) if "min" not in self.errors else None,
            max_score=_score(self.max) if "max" not in self.errors else None,
            segment_id=self.segment or None,
            tag=self.tag or None,
        )

    def order(self) -> AccountOrder:
        return SORTS[self.sort]

    def after_key(self) -> tuple[Any, str] | None:
        return self._key(self.after)

    def before_key(self) -> tuple[Any, str] | None:
        return None if self.after else self._key(self.before)

    def _key(self, text: str) -> tuple[Any, str] | None:
        """A page position from its cursor; one that does not fit this sort means the first page."""
        if not text:
            return None
        try:
            cursor = decode_cursor(text, arity=2)
        except InvalidCursor:
            return None
        value, rtp_aid = cursor.after
        if type(value) is not _KEY_TYPES[self.order().by] or type(rtp_aid) is not str or not is_object_id(rtp_aid):
            return None
        # Only what a real position holds reaches a query: a score within a column's range (SQLite
        # cannot even bind a larger integer), a name without NUL (PostgreSQL cannot compare it).
        if isinstance(value, int) and not 0 <= value <= _MAX_SCORE_KEY:
            return None
        if isinstance(value, str) and "\x00" in value:
            return None
        return value, rtp_aid

    @property
    def is_filtered(self) -> bool:
        return bool(self.q or self.stage or self.min or self.max or self.segment or self.tag)

    # --- links -------------------------------------------------------------------------------

    def query_string(self, **changes: str) -> str:
        """This view's query with `changes`; empty values and the default sort are left out."""
        state = replace(self, **changes)  # type: ignore[arg-type]
        pairs = [(name, getattr(state, name)) for name in _PARAMS]
        return urlencode([(name, value) for name, value in pairs if value and (name, value) != ("sort", DEFAULT_SORT)])

    def link(self, path: str, **changes: str) -> str:
        query = self.query_string(**changes)
        return f"{path}?{query}" if query else path

    def first_page(self, path: str) -> str:
        return self.link(path, after="", before="")

    def next_page(self, path: str, page: AccountSlice) -> str | None:
        if not page.has_next or page.last_key is None:
            return None
        return self.link(path, after=encode_cursor(Cursor(page.last_key, None)), before="")

    def previous_page(self, path: str, page: AccountSlice) -> str | None:
        if not page.has_previous or page.first_key is None:
            return None
        return self.link(path, before=encode_cursor(Cursor(page.first_key, None)), after="")

    def sort_link(self, path: str, by: str) -> str:
        """Sort by `by`; on the column already sorted, the other direction. Back to the first page."""
        current = self.order()
        if current.by == by:
            sort = by if current.descending else f"-{by}"
        elif by in ("score", "change"):
            sort = f"-{by}"  # scores and changes read best first...
        else:
            sort = by  # ...names from A to Z
        return self.link(path, sort=sort, after="", before="")

    def sort_state(self, by: str) -> str:
        """`aria-sort` of a column header: ascending, descending or none."""
        current = self.order()
        if current.by != by:
            return "none"
        return "descending" if current.descending else "ascending"

    def export_link(self, path: str) -> str:
        """The CSV of this view: the same filters and sort, every page."""
        return self.link(path, after="", before="")
