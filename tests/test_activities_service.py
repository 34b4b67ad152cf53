"""Sales activities in-process, on both databases (API.md §2.11, §6.28, §6.33, §6.34): push
outcomes, contact upserts, linking to accounts, batched statements, and the read shape."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem, CrmAccountItem
from abmhub.activities import service
from abmhub.activities.links import link_activities
from abmhub.activities.router import activity_record
from abmhub.activities.schemas import ActivityItem, PushActivitiesRequest
from abmhub.db.engine import Database
from abmhub.db.tables import activities, activity_contacts, contacts
from abmhub.paging import PageRequest
from abmhub.tenancy import service as tenancy
from abmhub.web.validation import validation_issues
from tests.support.statements import StatementCounter

SKIPPED = "Only call and email activity types are supported"


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="acme")


def activity_body(external_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "externalActivityId": external_id,
        "activityType": "call",
        "occurredAt": "2026-04-22T10:30:00Z",
        "domain": "acme.com",
        "ownerEmail": "jane@yourcompany.com",
        "contacts": [{"email": "john@acme.com"}],
        **fields,
    }


def activity(external_id: str, **fields: Any) -> ActivityItem:
    return ActivityItem.model_validate(activity_body(external_id, **fields))


def push(db: Database, workspace_id: int, *items: ActivityItem) -> service.PushOutcome:
    return service.push_activities(db, workspace_id=workspace_id, items=list(items))


def statuses(outcome: service.PushOutcome) -> list[str]:
    return [r["status"] for r in outcome.results]


def records(db: Database, workspace_id: int, **kwargs: Any) -> list[dict[str, Any]]:
    page = service.list_activities(db, workspace_id=workspace_id, page=PageRequest(limit=1000), **kwargs)
    return [activity_record(view) for view in page.items]


def record(db: Database, workspace_id: int, external_id: str) -> dict[str, Any]:
    found = [r for r in records(db, workspace_id) if r["externalActivityId"] == external_id]
    assert len(found) == 1, found
    return found[0]


def push_accounts(db: Database, workspace_id: int, *domains: str) -> dict[str, str]:
    outcome = accounts_service.push_accounts(
        db,
        workspace_id=workspace_id,
        items=[AccountItem.model_validate({"domain": d, "name": d}) for d in domains],
    )
    return {r["domain"]: r["rtp_aid"] for r in outcome.results}


def count(db: Database, table: Any) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


# --- outcomes ----------------------------------------------------------------------------


def test_results_follow_request_order_with_the_vendor_texts(database, workspace_id):
    push(database, workspace_id, activity("act-002"))
    outcome = push(
        database,
        workspace_id,
        activity("act-001"),
        activity("act-002"),
        activity("act-003", activityType="meeting"),
        activity("act-004", domain="not a domain"),
        activity("act-005", activityType="email", subject="Follow up"),
    )
    assert outcome.results == [
        {"externalActivityId": "act-001", "status": "created"},
        {
            "externalActivityId": "act-002",
            "status": "failed",
            "error": "Activity with externalActivityId 'act-002' already exists.",
        },
        {"externalActivityId": "act-003", "status": "skipped", "reason": SKIPPED},
        {"externalActivityId": "act-004", "status": "failed", "error": "Invalid domain 'not a domain'"},
        {"externalActivityId": "act-005", "status": "created"},
    ]
    assert outcome.summary == {"total": 5, "created": 2, "failed": 2, "skipped": 1}
    assert sorted(r["externalActivityId"] for r in records(database, workspace_id)) == [
        "act-001",
        "act-002",
        "act-005",
    ]


def test_an_id_repeated_in_one_request_fails_from_its_second_use(database, workspace_id):
    outcome = push(database, workspace_id, activity("a"), activity("a", activityType="email"), activity("b"))
    assert statuses(outcome) == ["created", "failed", "created"]
    assert outcome.results[1]["error"] == "Activity with externalActivityId 'a' already exists."
    assert record(database, workspace_id, "a")["activityType"] == "call", "the first item wins"


def test_skipped_and_failed_items_store_nothing_so_their_id_stays_free(database, workspace_id):
    outcome = push(
        database,
        workspace_id,
        activity("x", activityType="meeting", contacts=[{"email": "skipped@acme.com"}]),
        activity("y", domain="bad domain", contacts=[{"email": "failed@acme.com"}]),
        activity("x"),
        activity("y"),
    )
    assert statuses(outcome) == ["skipped", "failed", "created", "created"]
    with database.read() as conn:
        emails = set(conn.execute(select(contacts.c.email)).scalars())
    assert emails == {"john@acme.com"}, "contacts of skipped or failed items are not upserted"


def test_the_type_check_comes_first_and_is_exact(database, workspace_id):
    push(database, workspace_id, activity("known"))
    outcome = push(
        database,
        workspace_id,
        activity("known", activityType="task"),
        activity("bad", activityType="Call", domain="bad domain"),
    )
    assert statuses(outcome) == ["skipped", "skipped"]


def test_ids_are_per_workspace(database, workspace_id):
    other = tenancy.create_workspace(database, name="globex")
    push(database, workspace_id, activity("same"))
    assert statuses(push(database, other, activity("same"))) == ["created"]
    assert [r["externalActivityId"] for r in records(database, other)] == ["same"]


def test_values_longer_than_their_column_are_a_request_shape_error():
    """Length limits are validation (class-validator's maxLength): the whole request is a 400."""
    with pytest.raises(ValidationError) as caught:
        PushActivitiesRequest.model_validate(
            {"activities": [activity_body("x" * 501, contacts=[{"email": "a" * 320 + "@acme.com"}])]}
        )
    issues = {i["path"]: i["constraints"] for i in validation_issues(caught.value)}
    assert issues["activities.0.externalActivityId"] == {
        "maxLength": "externalActivityId must be shorter than or equal to 500 characters"
    }
    assert issues["activities.0.contacts.0.email"] == {
        "maxLength": "email must be shorter than or equal to 320 characters"
    }


# --- contacts ----------------------------------------------------------------------------


def test_contacts_are_upserted_by_lowercased_email_given_fields_overwrite_absent_keep(database, workspace_id):
    push(
        database,
        workspace_id,
        activity(
            "first",
            contacts=[{"email": "John@Acme.com", "name": "John", "title": "VP", "phone": "+1 415", "seniority": "VP"}],
        ),
    )
    push(
        database,
        workspace_id,
        activity("second", contacts=[{"email": "JOHN@acme.com", "title": "CTO", "seniority": None}]),
    )
    assert count(database, contacts) == 1
    for external_id in ("first", "second"):  # both activities show the contact as it is now (§6.34)
        (person,) = record(database, workspace_id, external_id)["contacts"]
        assert person["email"] == "john@acme.com"
        assert (person["name"], person["title"], person["phone"], person["seniority"]) == (
            "John",
            "CTO",
            "+1 415",
            None,
        )


def test_a_contact_mentioned_twice_in_one_request_gets_the_fields_in_request_order(database, workspace_id):
    push(
        database,
        workspace_id,
        activity("a", contacts=[{"email": "john@acme.com", "title": "VP"}, {"email": "mary@acme.com"}]),
        activity(
            "b",
            contacts=[
                {"email": "mary@acme.com", "name": "Mary"},
                {"email": "john@acme.com", "title": "CTO"},
                {"email": "JOHN@ACME.COM", "department": "Eng"},
            ],
        ),
    )
    assert count(database, contacts) == 2
    b = record(database, workspace_id, "b")
    assert [p["email"] for p in b["contacts"]] == ["mary@acme.com", "john@acme.com"], "linked once, in order"
    john = b["contacts"][1]
    assert (john["title"], john["department"]) == ("CTO", "Eng")
    assert [p["email"] for p in record(database, workspace_id, "a")["contacts"]] == ["john@acme.com", "mary@acme.com"]


def test_an_unchanged_contact_is_not_rewritten(database, workspace_id):
    push(database, workspace_id, activity("a", contacts=[{"email": "john@acme.com", "title": "VP"}]))
    with database.read() as conn:
        before = conn.execute(select(contacts.c.change_us)).scalar_one()
    push(database, workspace_id, activity("b", contacts=[{"email": "john@acme.com", "title": "VP"}]))
    push(database, workspace_id, activity("c", contacts=[{"email": "john@acme.com"}]))
    with database.read() as conn:
        assert conn.execute(select(contacts.c.change_us)).scalar_one() == before
    push(database, workspace_id, activity("d", contacts=[{"email": "john@acme.com", "title": "CTO"}]))
    with database.read() as conn:
        assert conn.execute(select(contacts.c.change_us)).scalar_one() > before


# --- linking -----------------------------------------------------------------------------


def test_an_activity_links_to_the_account_with_its_normalised_domain(database, workspace_id):
    aids = push_accounts(database, workspace_id, "acme.com")
    push(
        database,
        workspace_id,
        activity("linked", domain="https://www.ACME.com/pricing"),
        activity("waiting", domain="globex.com"),
    )
    linked = record(database, workspace_id, "linked")
    assert (linked["domain"], linked["rtp_aid"]) == ("acme.com", aids["acme.com"])
    assert record(database, workspace_id, "waiting")["rtp_aid"] is None


def test_waiting_activities_are_linked_when_their_account_is_pushed(database, workspace_id):
    other = tenancy.create_workspace(database, name="globex-ws")
    push(database, workspace_id, activity("a", domain="globex.com"), activity("b", domain="globex.com"))
    push(database, workspace_id, activity("c", domain="initech.com"))
    push(database, other, activity("a", domain="globex.com"))
    before = record(database, workspace_id, "a")["updatedAt"]
    aids = push_accounts(database, workspace_id, "globex.com")  # links in the same transaction

    assert record(database, workspace_id, "a")["rtp_aid"] == aids["globex.com"]
    assert record(database, workspace_id, "b")["rtp_aid"] == aids["globex.com"]
    assert record(database, workspace_id, "a")["updatedAt"] > before, "linking is a change for delta sync"
    assert record(database, workspace_id, "c")["rtp_aid"] is None
    assert record(database, other, "a")["rtp_aid"] is None, "another workspace's activities stay as they are"

    with database.write(workspace_id) as tx:
        assert link_activities(tx.conn, workspace_id, ["globex.com"], tx.now_us) == 0, "nothing left to link"
        assert link_activities(tx.conn, workspace_id, [], tx.now_us) == 0


def test_activities_follow_an_account_that_moved_to_another_domain(database, workspace_id):
    accounts_service.push_accounts(
        database,
        workspace_id=workspace_id,
        items=[CrmAccountItem.model_validate({"domain": "old.com", "name": "Co", "externalId": "crm-1"})],
        keyed_by_external_id=True,
    )
    push(database, workspace_id, activity("old", domain="old.com"), activity("new", domain="new.com"))
    rtp_aid = record(database, workspace_id, "old")["rtp_aid"]
    assert rtp_aid is not None
    accounts_service.push_accounts(
        database,
        workspace_id=workspace_id,
        items=[CrmAccountItem.model_validate({"domain": "new.com", "name": "Co", "externalId": "crm-1"})],
        keyed_by_external_id=True,
    )  # the /crm push moves crm-1 from old.com to new.com and re-links both domains
    with database.write(workspace_id) as tx:
        assert link_activities(tx.conn, workspace_id, ["old.com", "new.com"], tx.now_us) == 0, "already done"
    assert record(database, workspace_id, "new")["rtp_aid"] == rtp_aid
    assert record(database, workspace_id, "old")["rtp_aid"] is None, "no account has old.com any more"


# --- statements --------------------------------------------------------------------------


def test_a_push_of_50_activities_is_one_transaction_with_batched_statements(database, workspace_id):
    push_accounts(database, workspace_id, "co-0.com", "co-1.com")
    push(database, workspace_id, activity("old-0", contacts=[{"email": "shared@acme.com", "title": "VP"}]))
    items = [
        activity(
            f"act-{i}",
            activityType="email" if i % 2 else "call",
            domain=f"co-{i % 5}.com",
            contacts=[{"email": "shared@acme.com", "title": "CTO"}, {"email": f"p{i}@acme.com", "name": f"P {i}"}],
        )
        for i in range(48)
    ] + [activity("old-0"), activity("meeting", activityType="meeting")]
    counter = StatementCounter(database)
    outcome = push(database, workspace_id, *items)
    assert outcome.summary == {"total": 50, "created": 48, "failed": 1, "skipped": 1}
    assert counter.commits == 1, "the whole push commits once"
    # 12 whatever the number of items: the clock, 4 lookups, one write per table (+ the ids of
    # the new contacts and activities, read back by UUID), marking the accounts.
    assert len(counter.statements) <= 12, f"statements are batched, not one per item: {counter.statements}"
    assert count(database, activity_contacts) == 1 + 48 * 2
    assert count(database, contacts) == 1 + 48

    counter.statements.clear()
    page = service.list_activities(database, workspace_id=workspace_id, page=PageRequest(limit=1000))
    assert len(page.items) == 49
    assert len(counter.statements) <= 4, f"a page is a constant number of queries: {counter.statements}"
    assert all(len(view.contacts) in (1, 2) for view in page.items)


# --- reads -------------------------------------------------------------------------------


def test_the_record_shape(database, workspace_id):
    aids = push_accounts(database, workspace_id, "acme.com")
    push(
        database,
        workspace_id,
        activity(
            "call-001",
            occurredAt="2026-04-22T12:30:00.1234+02:00",
            accountName="Acme Corp",
            ownerName="Jane Smith",
            ownerId="rep-123",
            callTitle="Discovery call",
            durationMinutes=30,
            outcome="Connected",
            direction="outbound",
            **{"from": {"name": "Jane Smith", "email": "jane@yourcompany.com"}},
            contacts=[
                {
                    "email": "john@acme.com",
                    "externalContactId": "contact-456",
                    "name": "John Doe",
                    "title": "VP of Engineering",
                    "department": "Engineering",
                    "seniority": "VP",
                    "phone": "+1 415 555 0101",
                    "linkedinUrl": "https://linkedin.com/in/johndoe",
                }
            ],
        ),
        activity("email-001", activityType="email", subject="Follow up", openCount=3, clickCount=1.5),
    )
    call = record(database, workspace_id, "call-001")
    with database.read() as conn:
        uuids = dict(conn.execute(select(activities.c.external_activity_id, activities.c.uuid)).all())
        contact_uuid = conn.execute(select(contacts.c.uuid)).scalar_one()
    assert call == {
        "id": uuids["call-001"],
        "externalActivityId": "call-001",
        "activityType": "call",
        "occurredAt": "2026-04-22T10:30:00.123Z",
        "domain": "acme.com",
        "rtp_aid": aids["acme.com"],
        "accountName": "Acme Corp",
        "subject": None,
        "ownerEmail": "jane@yourcompany.com",
        "ownerName": "Jane Smith",
        "ownerId": "rep-123",
        "from": {"name": "Jane Smith", "email": "jane@yourcompany.com"},
        "callTitle": "Discovery call",
        "durationMinutes": 30,
        "outcome": "Connected",
        "direction": "outbound",
        "openCount": None,
        "clickCount": None,
        "contacts": [
            {
                "id": contact_uuid,
                "email": "john@acme.com",
                "externalContactId": "contact-456",
                "name": "John Doe",
                "title": "VP of Engineering",
                "department": "Engineering",
                "seniority": "VP",
                "phone": "+1 415 555 0101",
                "linkedinUrl": "https://linkedin.com/in/johndoe",
            }
        ],
        "createdAt": call["createdAt"],
        "updatedAt": call["createdAt"],
    }
    assert type(call["durationMinutes"]) is int, "whole numbers come back as integers"
    email = record(database, workspace_id, "email-001")
    assert (email["activityType"], email["subject"], email["from"]) == ("email", "Follow up", None)
    assert (email["openCount"], email["clickCount"], email["durationMinutes"]) == (3, 1.5, None)
    assert type(email["openCount"]) is int


def test_pages_are_keyset_by_push_order_and_share_one_sync_stamp(database, workspace_id):
    push(database, workspace_id, *(activity(f"a{i}", domain="acme.com" if i % 2 else "globex.com") for i in range(5)))
    first = service.list_activities(database, workspace_id=workspace_id, page=PageRequest(limit=2))
    assert [v.row.external_activity_id for v in first.items] == ["a0", "a1"] and first.has_next
    seen = [v.row.external_activity_id for v in first.items]
    page = first
    while page.has_next:
        page = service.list_activities(
            database,
            workspace_id=workspace_id,
            page=PageRequest(limit=2, after=page.last_key, sync_us=first.sync_us),
        )
        assert page.sync_us == first.sync_us
        seen += [v.row.external_activity_id for v in page.items]
    assert seen == ["a0", "a1", "a2", "a3", "a4"]
    assert [r["externalActivityId"] for r in records(database, workspace_id, domain="acme.com")] == ["a1", "a3"]


def test_last_sync_redelivers_activities_whose_contacts_changed(database, workspace_id):
    push(
        database,
        workspace_id,
        activity("a", contacts=[{"email": "john@acme.com"}]),
        activity("b", contacts=[{"email": "mary@acme.com"}]),
    )
    sync_us = service.list_activities(database, workspace_id=workspace_id, page=PageRequest()).sync_us

    def changed_since() -> list[str]:
        page = service.list_activities(database, workspace_id=workspace_id, page=PageRequest(changed_after_us=sync_us))
        return [v.row.external_activity_id for v in page.items]

    assert changed_since() == []
    push(database, workspace_id, activity("c", contacts=[{"email": "john@acme.com", "title": "CTO"}]))
    assert changed_since() == ["a", "c"], "a shows john as he is now, so it changed too"
    a = record(database, workspace_id, "a")
    assert a["updatedAt"] > a["createdAt"]
    assert record(database, workspace_id, "b")["updatedAt"] == record(database, workspace_id, "b")["createdAt"]
