"""Activities as Surface V shows them: the ActivityObjectRecord (contract §4.2, §6.27).

Times are written as the vendor's Pydantic service writes them (`2023-11-07T05:31:56Z`); a
call's or email's metadata keeps Surface R's format, as GET /sales-activities shows it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from abmhub.activities.router import activity_record as surface_r_record
from abmhub.activities.service import ActivityView
from abmhub.activities.timeline import MANUAL_KIND, TimelineEntry
from abmhub.timefmt import format_us_seconds

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Keys of the Surface R record that describe the record rather than the pushed activity.
_RECORD_KEYS = ("id", "activityType", "createdAt", "updatedAt")


def to_us(moment: datetime) -> int:
    """A request's datetime in µs since the epoch; one without an offset is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _typed(value: Any, value_type: str) -> dict[str, Any]:
    return {"value": value, "value_type": value_type}


def display_name(row: Any) -> str:
    """What a timeline shows as the activity's name (§6.27)."""
    if row.kind == MANUAL_KIND:
        return cast(str, row.subject)  # required when a manual activity is logged
    if row.kind == "call":
        return _given(row.call_title) or _given(row.subject) or "Call"
    return _given(row.subject) or "Email"


def _given(text: str | None) -> str | None:
    return text if text is not None and text.strip() else None


def pushed_fields(entry: TimelineEntry) -> dict[str, Any]:
    """A call's or email's metadata: its fields exactly as GET /api/v1/sales-activities shows
    them (one history, the same values on both surfaces), led by `kind`."""
    shown = surface_r_record(ActivityView(row=entry.row, contacts=entry.contacts, updated_us=entry.updated_us))
    return {"kind": entry.row.kind, **{k: v for k, v in shown.items() if k not in _RECORD_KEYS}}


def activity_object_record(entry: TimelineEntry) -> dict[str, Any]:
    row = entry.row
    manual = row.kind == MANUAL_KIND
    owner = None
    if row.owner_user_uuid is not None:
        owner = {"related_record_id": row.owner_user_uuid, "related_record_type": "user"}
    return {
        "id": row.uuid,
        "created_at": format_us_seconds(row.created_us),
        "updated_at": format_us_seconds(entry.updated_us),
        "attributes": {
            "type": _typed("MANUAL_ACTIVITY" if manual else row.kind.upper(), "enum"),
            "sub_type": _typed(row.category if manual else None, "enum"),
            "status": _typed("COMPLETED", "enum"),
            "priority": _typed(None, "enum"),
            "display_name": _typed(display_name(row), "string"),
            "owner_user_id": _typed(owner, "record_reference"),
            "ended_at": _typed(format_us_seconds(row.occurred_us), "timestamp"),
            "badge_status": _typed(None, "string"),
            "location": _typed(None, "string"),
        },
        "record_type": "activity",
        # Manual activities are lean cards (the vendor's words): no metadata.
        "metadata": None if manual else pushed_fields(entry),
    }
