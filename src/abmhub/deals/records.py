"""A deal as the API shows it (§6.18): GET /deals and the `deal.stage_changed` webhook event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from abmhub.timefmt import format_us
from abmhub.web.responses import plain_number


@dataclass(frozen=True, slots=True)
class DealExtras:
    """What a deal record needs besides its row, by deal id."""

    associations: dict[int, list[Any]]
    history: dict[int, list[Any]]


def _time(us: int | None) -> str | None:
    return format_us(us) if us is not None else None


def deal_record(row: Any, extras: DealExtras) -> dict[str, Any]:
    """A deal as GET /deals returns it (§6.18)."""
    return {
        "id": row.uuid,
        "externalDealId": row.external_deal_id,
        "name": row.name,
        "amount": plain_number(row.amount),
        "dealCurrencyCode": row.currency,
        "stageId": row.stage_id,
        "stageLabel": row.stage_label,
        "pipelineId": row.pipeline_id,
        "pipelineLabel": row.pipeline_label,
        "startDate": _time(row.start_us),
        "closedDate": _time(row.closed_us),
        "ownerName": row.owner_name,
        "ownerEmail": row.owner_email,
        "ownerId": row.owner_id,
        "associatedAccounts": [
            {
                "externalId": a.external_id,
                "domain": a.domain if a.domain is not None else a.given_domain,
                "name": a.name,
                "rtp_aid": a.rtp_aid,
            }
            for a in extras.associations.get(row.id, [])
        ],
        "stageHistory": [
            {
                "stageId": h.stage_id,
                "stageLabel": h.stage_label,
                "pipelineId": h.pipeline_id,
                "enteredAt": format_us(h.entered_us),
            }
            for h in extras.history.get(row.id, [])
        ],
        "createdAt": format_us(row.created_us),
        "updatedAt": format_us(row.change_us),
    }
