"""The events a subscription can ask for, what each carries, and how a delivery body reads.

An event's `data` is built once, when the change commits, and stored with it: a delivery made
a day later (after retries) still says what was true then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from abmhub.timefmt import format_us

ACCOUNT_CREATED = "account.created"
STAGE_CHANGED = "account.journey_stage_changed"
SCORE_CHANGED = "account.score_changed"
DEAL_STAGE_CHANGED = "deal.stage_changed"
ACTIVITY_CREATED = "activity.created"
PING = "ping"
EVENT_TYPES = (ACCOUNT_CREATED, STAGE_CHANGED, SCORE_CHANGED, DEAL_STAGE_CHANGED, ACTIVITY_CREATED, PING)


@dataclass(frozen=True, slots=True)
class Event:
    """One change to announce. `score_delta` (account.score_changed only) is |to - from|,
    which each subscription's `minScoreDelta` is held against."""

    type: str
    data: dict[str, Any]
    score_delta: int | None = None


def account_created(*, rtp_aid: str, uuid: str, domain: str, name: str, external_id: str | None) -> Event:
    return Event(
        ACCOUNT_CREATED, {"rtp_aid": rtp_aid, "id": uuid, "domain": domain, "name": name, "externalId": external_id}
    )


def stage_changed(*, rtp_aid: str, domain: str, name: str, from_stage: str, to_stage: str, score: int) -> Event:
    data = {"rtp_aid": rtp_aid, "domain": domain, "name": name, "from": from_stage, "to": to_stage}
    return Event(STAGE_CHANGED, {**data, "rtp_account_score": score})


def score_changed(*, rtp_aid: str, domain: str, name: str, from_score: int, to_score: int) -> Event:
    data = {"rtp_aid": rtp_aid, "domain": domain, "name": name, "from": from_score, "to": to_score}
    return Event(SCORE_CHANGED, data, score_delta=abs(to_score - from_score))


def deal_stage_changed(record: Mapping[str, Any], from_stage_id: str | None) -> Event:
    """`record`: the deal as GET /deals shows it (§6.18)."""
    return Event(DEAL_STAGE_CHANGED, {**record, "fromStageId": from_stage_id})


def activity_created(
    *, uuid: str, kind: str, occurred_us: int, subject: str | None, account: Mapping[str, Any] | None
) -> Event:
    """A call or email pushed on Surface R, or a manual activity logged on Surface V.
    `account`: `{rtp_aid, domain, name}` of the account it belongs to, if any."""
    data = {"id": uuid, "kind": kind, "occurredAt": format_us(occurred_us), "subject": subject}
    return Event(ACTIVITY_CREATED, {**data, "account": dict(account) if account is not None else None})


def ping(webhook_id: str) -> Event:
    return Event(PING, {"webhookId": webhook_id, "message": "A test event from abmhub: this webhook works."})


# --- what is sent ------------------------------------------------------------------------------


def body(*, event_id: str, type: str, created_us: int, data: Mapping[str, Any], format: str) -> bytes:
    """The delivery body: the event itself (`json`), or one line for a Slack incoming webhook."""
    if format == "slack":
        return orjson.dumps({"text": slack_line(type, data)})
    return orjson.dumps({"id": event_id, "type": type, "createdAt": format_us(created_us), "data": data})


def slack_line(type: str, data: Mapping[str, Any]) -> str:
    """One readable line: "Acme Corp (acme.com) moved Aware → Consideration, score 64".

    Every value that came from a user is escaped for Slack (`&`, `<`, `>`): an account named
    `<!channel>` is shown as written, never as a mention or a link.
    """
    match type:
        case "account.journey_stage_changed":
            if not data["from"]:
                return f"{_account(data)} entered {_e(data['to'])}, score {data['rtp_account_score']}"
            moved = f"{_e(data['from'])} → {_e(data['to'])}"
            return f"{_account(data)} moved {moved}, score {data['rtp_account_score']}"
        case "account.score_changed":
            change = data["to"] - data["from"]
            return f"{_account(data)} score {data['from']} → {data['to']} ({change:+d})"
        case "account.created":
            return f"New account: {_account(data)}"
        case "deal.stage_changed":
            deal = _e(data.get("name") or data.get("externalDealId") or "A deal")
            to = _e(data.get("stageLabel") or data.get("stageId") or "no stage")
            if data.get("fromStageId") is None:
                return f"Deal {deal} entered {to}"
            return f"Deal {deal} moved {_e(data['fromStageId'])} → {to}"
        case "activity.created":
            kind = {"call": "Call", "email": "Email", "manual": "Activity"}.get(data["kind"], "Activity")
            where = f" with {_account(data['account'])}" if data.get("account") else ""
            subject = f": {_e(data['subject'])}" if data.get("subject") else ""
            return f"{kind} logged{where}{subject}"
        case _:
            return _e(str(data.get("message") or f"abmhub event {type}"))


def _account(data: Mapping[str, Any]) -> str:
    return f"{_e(data['name'])} ({_e(data['domain'])})"


def _e(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
