"""Deal storage on both databases: batched writes, stage history, association resolution."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.bulk import PushOutcome
from abmhub.db.engine import Database
from abmhub.deals import service
from abmhub.deals.schemas import DealItem, PipelineDefinition
from abmhub.errors import Conflict
from abmhub.paging import PageRequest
from abmhub.tenancy import service as tenancy


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="acme")


def deal(external_id: str, **fields: Any) -> DealItem:
    return DealItem.model_validate({"externalDealId": external_id, "name": f"Deal {external_id}", **fields})


def push(db: Database, workspace_id: int, *items: DealItem) -> PushOutcome:
    return service.push_deals(db, workspace_id=workspace_id, items=list(items))


def accounts(db: Database, workspace_id: int, *bodies: dict[str, Any]) -> dict[str, str]:
    outcome = accounts_service.push_accounts(
        db, workspace_id=workspace_id, items=[AccountItem.model_validate(b) for b in bodies]
    )
    return {r["domain"]: r["rtp_aid"] for r in outcome.results}


def stored(db: Database, workspace_id: int) -> dict[str, tuple[Any, service.DealExtras]]:
    page, extras = service.list_deals(db, workspace_id=workspace_id, page=PageRequest(limit=1000))
    return {row.external_deal_id: (row, extras) for row in page.items}


def test_a_deal_push_costs_the_same_statements_for_10_or_100_deals(database, workspace_id):
    statements: list[str] = []
    event.listen(database.engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0]))

    def count(prefix: str, n: int) -> int:
        statements.clear()
        items = [
            deal(f"{prefix}{i}", stageId="s1", pipelineId="p", associatedAccounts=[{"domain": f"co{i}.com"}])
            for i in range(n)
        ]
        assert push(database, workspace_id, *items).summary["upserted"] == n
        return len(statements)

    small, large = count("a", 10), count("b", 100)
    assert small == large, f"statements grow with the items ({small} for 10, {large} for 100): {statements}"
    assert large <= 15, statements


def test_stage_history_records_every_change_once_oldest_first(database, workspace_id):
    push(database, workspace_id, deal("d1", stageId="discovery", pipelineId="p"))
    push(database, workspace_id, deal("d1", stageId="discovery"))
    push(database, workspace_id, deal("d1", stageId="proposal", stageLabel="Proposal"))
    push(
        database,
        workspace_id,
        deal("d1", stageHistory=[{"stageId": "lead", "enteredAt": "2026-01-01T00:00:00Z"}]),
    )
    row, extras = stored(database, workspace_id)["d1"]
    assert [h.stage_id for h in extras.history[row.id]] == ["lead", "discovery", "proposal"]
    assert row.stage_id == "proposal" and row.pipeline_id == "p", "omitted keys keep their stored values"


def test_associations_resolve_by_domain_then_external_id_then_a_unique_name(database, workspace_id):
    aids = accounts(
        database,
        workspace_id,
        {"domain": "acme.com", "name": "Acme", "externalId": "crm-acme"},
        {"domain": "twin-a.com", "name": "Twin"},
        {"domain": "twin-b.com", "name": "Twin"},
    )
    push(
        database,
        workspace_id,
        deal(
            "d1",
            associatedAccounts=[
                {"domain": "https://www.ACME.com/x"},
                {"domain": "nomatch.com", "externalId": "crm-acme"},
                {"name": "Twin"},
                {"name": "Later Inc"},
            ],
        ),
    )
    row, extras = stored(database, workspace_id)["d1"]
    resolved = [a.rtp_aid for a in extras.associations[row.id]]
    assert resolved == [aids["acme.com"], aids["acme.com"], None, None], "an ambiguous name stays unresolved"
    before = row.change_us

    accounts(database, workspace_id, {"domain": "later.com", "name": "Later Inc"})
    row, extras = stored(database, workspace_id)["d1"]
    assert extras.associations[row.id][3].rtp_aid is not None, "resolved once a matching account appears"
    assert row.change_us > before, "the resolution is a change of the deal for delta sync"


def test_pipelines_are_all_or_nothing_and_stages_default_their_journey_stage(database, workspace_id):
    def pipeline(pipeline_id: str, *labels: str) -> PipelineDefinition:
        return PipelineDefinition.model_validate(
            {
                "pipelineId": pipeline_id,
                "pipelineLabel": pipeline_id.title(),
                "stages": [{"stageId": f"s{i}", "stageLabel": label} for i, label in enumerate(labels)],
            }
        )

    service.create_pipelines(
        database, workspace_id=workspace_id, definitions=[pipeline("sales", "Discovery", "Closed Won", "closed-lost")]
    )
    with pytest.raises(Conflict, match=r"Pipeline\(s\) already exist: sales"):
        service.create_pipelines(
            database, workspace_id=workspace_id, definitions=[pipeline("renewals", "Open"), pipeline("sales", "X")]
        )
    listed = service.list_pipelines(database, workspace_id=workspace_id)
    assert [p["pipelineId"] for p in listed] == ["sales"], "nothing of a refused request is created"
    assert [s["journeyStage"] for s in listed[0]["stages"]] == ["Opportunity", "Customer", None]


@pytest.mark.parametrize(
    ("label", "stage"),
    [
        ("Closed Won", "Customer"),
        ("closed-won", "Customer"),
        ("WON", "Customer"),
        ("Closed Lost", None),
        ("lost_deal", None),
        ("Wonderful", "Opportunity"),
        ("Demo", "Opportunity"),
    ],
)
def test_journey_stage_defaults_follow_the_words_won_and_lost(label, stage):
    assert service.journey_stage_for(label) == stage


def test_a_stage_pushed_without_its_label_takes_the_pipelines_label(database, workspace_id):
    service.create_pipelines(
        database,
        workspace_id=workspace_id,
        definitions=[
            PipelineDefinition.model_validate(
                {
                    "pipelineId": "p",
                    "pipelineLabel": "Sales",
                    "stages": [{"stageId": "s1", "stageLabel": "Discovery"}, {"stageId": "s2", "stageLabel": "Demo"}],
                }
            )
        ],
    )
    push(database, workspace_id, deal("d1", pipelineId="p", stageId="s1"))
    push(database, workspace_id, deal("d1", stageId="s2"))
    push(database, workspace_id, deal("d1", stageId="s9"))
    row, extras = stored(database, workspace_id)["d1"]
    assert [h.stage_label for h in extras.history[row.id]] == ["Discovery", "Demo", None]
    assert row.stage_label is None, "an unknown stage has no label rather than the previous stage's"


def test_a_backfill_that_ends_in_the_current_stage_does_not_record_it_twice(database, workspace_id):
    push(
        database,
        workspace_id,
        deal(
            "d3",
            stageId="s2",
            stageHistory=[
                {"stageId": "s1", "enteredAt": "2026-01-01T00:00:00Z"},
                {"stageId": "s2", "enteredAt": "2026-02-01T00:00:00Z"},
            ],
        ),
    )
    row, extras = stored(database, workspace_id)["d3"]
    assert [h.stage_id for h in extras.history[row.id]] == ["s1", "s2"]


def test_open_deals_are_counted_by_what_their_stage_means(database, workspace_id):
    service.create_pipelines(
        database,
        workspace_id=workspace_id,
        definitions=[
            PipelineDefinition.model_validate(
                {
                    "pipelineId": "p",
                    "pipelineLabel": "Sales",
                    "stages": [
                        {"stageId": "open", "stageLabel": "Discovery"},
                        {"stageId": "won", "stageLabel": "Signed", "journeyStage": "Customer"},
                        {"stageId": "gone", "stageLabel": "Closed Won", "journeyStage": "Opportunity"},
                    ],
                }
            )
        ],
    )
    push(
        database,
        workspace_id,
        *(deal(f"o{i}", pipelineId="p", stageId="open") for i in range(3)),
        deal("w", pipelineId="p", stageId="won"),
        deal("g", pipelineId="p", stageId="gone"),  # the definition wins over the label's words
        deal("u1", pipelineId="legacy", stageId="x", stageLabel="Closed Lost"),
        deal("u2", pipelineId="legacy", stageId="y", stageLabel="Proposal"),
        deal("u3", pipelineId="legacy", stageId="y", stageLabel="Proposal"),
        deal("n"),  # no stage: open
    )
    assert service.open_deal_count(database, workspace_id=workspace_id) == 3 + 1 + 2 + 1
