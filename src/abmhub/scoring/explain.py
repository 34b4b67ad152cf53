"""Why an account scores what it does (GET /accounts/:rtp_aid/score, contract §3.5, §6.23)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from abmhub.accounts.service import AccountNotFound, InvalidAccountId
from abmhub.db.engine import Database
from abmhub.db.tables import accounts, activities, scoring_runs, signals, workspaces
from abmhub.ids import is_object_id
from abmhub.scoring import engine
from abmhub.scoring.model import day_of, deal_score, saturate, signal_points
from abmhub.scoring.settings import SCORE_COLUMNS, SOURCES, settings_from
from abmhub.timefmt import format_us, now_us

TOP_SIGNALS = 5


def explain_account(
    db: Database, *, workspace_id: int, rtp_aid: str, clock: Callable[[], int] = now_us
) -> dict[str, Any]:
    """The stored scores with each component's share, and the signals that weigh most today."""
    if not is_object_id(rtp_aid):
        raise InvalidAccountId(rtp_aid)
    today = day_of(clock())
    with db.read() as conn:
        account = conn.execute(
            select(accounts).where(accounts.c.workspace_id == workspace_id, accounts.c.rtp_aid == rtp_aid)
        ).first()
        if account is None:
            raise AccountNotFound(rtp_aid)
        overrides = conn.execute(
            select(workspaces.c.scoring_settings).where(workspaces.c.id == workspace_id)
        ).scalar_one()
        settings = settings_from(overrides)
        last_run = conn.execute(
            select(scoring_runs.c.last_run_us).where(scoring_runs.c.workspace_id == workspace_id)
        ).scalar_one_or_none()
        inputs = engine.inputs_for(conn, workspace_id, {account.domain: account.id}, settings, today)[account.id]
        counts: dict[str, int] = dict(
            conn.execute(
                select(signals.c.source, func.count())
                .where(signals.c.workspace_id == workspace_id, signals.c.domain == account.domain)
                .group_by(signals.c.source)
            ).all()
        )
        activity_count = conn.execute(
            select(func.count()).select_from(activities).where(activities.c.account_id == account.id)
        ).scalar_one()
        deal_count = sum(1 for row in engine.deal_rows(conn, [account.id]) if engine.deal_journey(row) is not None)
        recent = conn.execute(
            select(
                signals.c.source,
                signals.c.type,
                signals.c.occurred_us,
                signals.c.occurred_day,
                signals.c.weight,
                signals.c.count,
                signals.c.score,
            )
            .where(signals.c.workspace_id == workspace_id, signals.c.domain == account.domain)
            .order_by(signals.c.occurred_us.desc())
            .limit(2000)
        ).all()
    weighed = []
    for row in recent:
        model = settings.sources.get(row.source)
        if model is None:
            continue
        worth = signal_points(
            model,
            row.type,
            weight=row.weight,
            count=row._mapping["count"],
            score=row.score,
            age_days=today - row.occurred_day,
        )
        if worth > 0:
            weighed.append((worth, row))
    weighed.sort(key=lambda pair: (-pair[0], -pair[1].occurred_us))
    sources = []
    for source in SOURCES:
        score = getattr(account, SCORE_COLUMNS[source])
        weight = settings.weights.get(source, 0.0)
        sources.append(
            {
                "source": source,
                "score": score,
                "weight": weight,
                "contribution": round(weight * score, 2),
                "signals": int(counts.get(source, 0)),
            }
        )
    engagement = saturate(inputs.engagement_points, settings.engagement.saturation)
    deals = deal_score(settings, won=inputs.has_won_deal, open_=inputs.has_open_deal)
    computed = last_run if not account.score_dirty else account.scored_us
    return {
        "rtp_aid": account.rtp_aid,
        "rtp_account_score": account.account_score,
        "rtp_journey_stage": account.journey_stage,
        "sources": sources,
        "engagement": {
            "score": engagement,
            "weight": settings.weights.get("engagement", 0.0),
            "contribution": round(settings.weights.get("engagement", 0.0) * engagement, 2),
            "activities": int(activity_count),
            "deals": deal_count,
        },
        # Extension: the deal component of the overall score (won / open deals; lost count nothing).
        "deals": {
            "score": deals,
            "weight": settings.weights.get("deals", 0.0),
            "contribution": round(settings.weights.get("deals", 0.0) * deals, 2),
            "won": inputs.has_won_deal,
            "open": inputs.has_open_deal,
        },
        "topSignals": [
            {
                "source": row.source,
                "type": row.type,
                "occurredAt": format_us(row.occurred_us),
                "weight": round(worth, 3),
            }
            for worth, row in weighed[:TOP_SIGNALS]
        ],
        "computedAt": format_us(computed) if computed is not None else None,
    }
