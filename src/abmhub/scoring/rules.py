"""Dynamic segments: a rule compiled to SQL, and membership brought up to date (§2.12)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    and_,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from abmhub.db.tables import account_predictions, accounts, segment_members, segments

_COLUMNS = {
    "rtp_account_score": accounts.c.account_score,
    "rtp_journey_stage": accounts.c.journey_stage,
    "rtp_advertising_activity_score": accounts.c.advertising_score,
    "rtp_website_intent_score": accounts.c.website_score,
    "rtp_g2_intent_score": accounts.c.g2_score,
    "rtp_bombora_intent_score": accounts.c.bombora_score,
}
# The active model's prediction of the account (§10); its rows are the active model's only.
# An account without one (no active model yet, or an open or won deal: NULL) matches no
# condition on these fields, not even `ne`, as with a custom field it has no value for.
_PREDICTION_COLUMNS = {
    "probability": account_predictions.c.probability,
    "predictedBand": account_predictions.c.band,
}


def _prediction(field: str) -> Any:
    return select(_PREDICTION_COLUMNS[field]).where(account_predictions.c.account_id == accounts.c.id).scalar_subquery()


def reads_predictions(rule: dict[str, Any] | None) -> bool:
    """Whether a rule has a condition on the account's prediction."""
    conditions = [*((rule or {}).get("all") or []), *((rule or {}).get("any") or [])]
    return any(condition.get("field") in _PREDICTION_COLUMNS for condition in conditions)


def _custom_field(conn: Connection, key: str, numeric: bool) -> Any:
    if conn.dialect.name == "postgresql":
        text_value = type_coerce(accounts.c.custom_fields, JSONB)[key].astext
    elif '"' in key or "\\" in key:
        # A JSON path cannot quote such a key (labels may hold quotes): look it up among the keys.
        each = func.json_each(accounts.c.custom_fields).table_valued("key", "value")
        text_value = select(each.c.value).where(each.c.key == key).scalar_subquery()
    else:
        text_value = func.json_extract(accounts.c.custom_fields, f'$."{key}"')
    return cast(text_value, Float) if numeric else text_value


def _has_tag(conn: Connection, tag: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return type_coerce(accounts.c.tags, JSONB).contains([tag])
    each = func.json_each(accounts.c.tags).table_valued("value")
    return select(each.c.value).where(each.c.value == tag).exists()


def condition_sql(conn: Connection, condition: dict[str, Any]) -> Any:
    """One `{field, op, value}` condition as a SQL expression on `accounts`."""
    field, op, value = condition["field"], condition["op"], condition.get("value")
    if field == "tags":
        values = value if isinstance(value, list) else [value]
        matches = [_has_tag(conn, v) for v in values]
        found = and_(*matches) if op in ("contains", "eq") else or_(*matches)
        return ~found if op == "ne" else found
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if field.startswith("customFields."):
        column = _custom_field(conn, field.removeprefix("customFields."), numeric)
    elif field in _PREDICTION_COLUMNS:
        column = _prediction(field)
    else:
        column = _COLUMNS[field]
    match op:
        case "eq" | "contains":
            return column == value
        case "ne":
            return column != value
        case "gt":
            return column > value
        case "gte":
            return column >= value
        case "lt":
            return column < value
        case "lte":
            return column <= value
        case "in":
            return column.in_(value if isinstance(value, list) else [value])
    raise ValueError(f"unknown operator {op!r}")


def rule_sql(conn: Connection, rule: dict[str, Any] | None) -> Any:
    """Accounts pass `all` of the conditions and, when given, `any` of the others."""
    if not rule or not (rule.get("all") or rule.get("any")):
        return ~true()  # an empty rule selects nobody
    parts = [condition_sql(conn, c) for c in rule.get("all") or []]
    if rule.get("any"):
        parts.append(or_(*(condition_sql(conn, c) for c in rule["any"])))
    return and_(*parts)


def refresh_dynamic_segments(conn: Connection, workspace_id: int, now: int, *, since: int | None = None) -> int:
    """Bring every dynamic segment's members in line with its rule; returns membership changes.

    A rule reads the account's own row, and every change of that row moves its `change_us`;
    so with `since` (the previous refresh's stamp) only the accounts changed after it are
    re-evaluated — unless the segment itself changed (a new rule, a new status), which
    re-evaluates all of its accounts. A rule on the prediction also reads the account's
    `account_predictions` row, whose refresh is not a change of the account (no `change_us`):
    for such a rule the accounts predicted after `since` are re-evaluated too. A membership
    change is a change of the account (its `segmentIds`), for delta sync.
    """
    changes = 0
    dynamic = conn.execute(
        select(segments.c.id, segments.c.rule, segments.c.change_us).where(
            segments.c.workspace_id == workspace_id,
            segments.c.type == "dynamic",
            segments.c.status != "archived",  # an archived segment keeps its last members
        )
    ).all()
    for segment_pk, rule, segment_change_us in dynamic:
        scope = accounts.c.workspace_id == workspace_id
        if since is not None and segment_change_us <= since:
            changed = accounts.c.change_us > since
            if reads_predictions(rule):
                # Predicted again since: rescored by a scoring run (whatever clock it runs on), or
                # by the activation of a model (`refresh_all`, stamped now).
                activated = select(account_predictions.c.account_id).where(
                    account_predictions.c.workspace_id == workspace_id, account_predictions.c.as_of_us > since
                )
                changed = changed | (accounts.c.scored_us > since) | accounts.c.id.in_(activated)
            scope = scope & changed
        wanted = set(conn.execute(select(accounts.c.id).where(scope, rule_sql(conn, rule))).scalars())
        current = set(
            conn.execute(
                select(segment_members.c.account_id)
                .join(accounts, accounts.c.id == segment_members.c.account_id)
                .where(segment_members.c.segment_id == segment_pk, scope)
            ).scalars()
        )
        joining, leaving = sorted(wanted - current), sorted(current - wanted)
        if joining:
            conn.execute(
                insert(segment_members), [{"segment_id": segment_pk, "account_id": a, "added_us": now} for a in joining]
            )
        for start in range(0, len(leaving), 1000):
            conn.execute(
                delete(segment_members).where(
                    segment_members.c.segment_id == segment_pk,
                    segment_members.c.account_id.in_(leaving[start : start + 1000]),
                )
            )
        moved = joining + leaving
        for start in range(0, len(moved), 1000):
            conn.execute(update(accounts).where(accounts.c.id.in_(moved[start : start + 1000])).values(change_us=now))
        changes += len(moved)
    return changes
