"""The dashboard's parts on their own: pure functions, the session signer, the shared secret."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from starlette.requests import Request

from abmhub.db.engine import Database
from abmhub.segments.schemas import RULE_FIELDS, RULE_OPERATORS
from abmhub.tenancy import secrets as server_secrets
from abmhub.tenancy.service import Caller, KeyHolder
from abmhub.ui import charts, export
from abmhub.ui.account_list import AccountListQuery
from abmhub.ui.auth import SessionSigner, is_same_origin, safe_next
from abmhub.ui.pages import environment
from abmhub.ui.rule_form import FIELD_LABELS, OPERATOR_LABELS, RuleForm
from abmhub.web.cursors import Cursor, encode_cursor


def request(method: str = "POST", host: str = "127.0.0.1:8000", scheme: str = "http", **headers: str) -> Request:
    raw = [(b"host", host.encode())] + [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": method, "scheme": scheme, "path": "/ui/sign-in", "headers": raw})


# --- cross-site requests and where sign-in leads ---------------------------------------------------


@pytest.mark.parametrize(
    "headers,same",
    [
        ({"sec_fetch_site": "same-origin"}, True),
        ({"sec_fetch_site": "none"}, True),
        ({"sec_fetch_site": "same-site"}, False),
        ({"sec_fetch_site": "cross-site"}, False),
        ({"sec_fetch_site": "cross-site", "origin": "http://127.0.0.1:8000"}, False),  # the browser's word wins
        ({"origin": "http://127.0.0.1:8000"}, True),
        ({"origin": "HTTP://127.0.0.1:8000"}, True),
        ({"origin": "http://127.0.0.1:8001"}, False),
        ({"origin": "https://127.0.0.1:8000"}, False),
        ({"origin": "http://evil.example"}, False),
        ({"origin": "null"}, False),
        ({"origin": "http://127.0.0.1:8000.evil.example"}, False),
        ({}, False),
    ],
)
def test_same_origin_check(headers: dict[str, str], same: bool) -> None:
    assert is_same_origin(request(**headers)) is same


def test_same_origin_check_knows_default_ports() -> None:
    assert is_same_origin(request(host="dash.example.com", scheme="https", origin="https://dash.example.com:443"))
    assert is_same_origin(request(host="dash.example.com:80", origin="http://dash.example.com"))
    assert not is_same_origin(request(host="dash.example.com", origin="http://dash.example.com:8080"))


@pytest.mark.parametrize(
    "value,expected",
    [
        ("/ui/accounts?stage=Aware&q=x", "/ui/accounts?stage=Aware&q=x"),
        ("/ui", "/ui"),
        (None, "/ui"),
        ("", "/ui"),
        ("https://evil.example/ui", "/ui"),
        ("//evil.example/ui", "/ui"),
        ("/\\evil.example", "/ui"),
        ("/ui/../api/v1/accounts", "/ui"),
        ("/uievil", "/ui"),
        ("/api/v1/accounts", "/ui"),
        ("javascript:alert(1)", "/ui"),
        ("/ui/\naccounts", "/ui"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


# --- sessions ------------------------------------------------------------------------------------

HOLDER = KeyHolder(
    key_id=7,
    key_hash="ab" * 32,
    caller=Caller(workspace_id=1, workspace_name="w", user_id=1, user_uuid="u", user_email="e@example.com"),
)


def test_a_session_names_the_key_by_id_and_hash_prefix_only() -> None:
    signer = SessionSigner("s" * 32)
    token = signer.issue(HOLDER)
    claim = signer.read(token)
    assert claim is not None and claim.key_id == 7 and claim.key_hash_prefix == "ab" * 8
    assert HOLDER.key_hash not in token


def test_a_session_signed_with_another_secret_or_altered_is_refused() -> None:
    token = SessionSigner("one-secret").issue(HOLDER)
    assert SessionSigner("another-secret").read(token) is None
    signer = SessionSigner("one-secret")
    middle = len(token) // 3
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    assert signer.read(altered) is None
    assert signer.read("") is None and signer.read("x.y.z") is None


def test_an_expired_session_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = SessionSigner("secret")
    token = signer.issue(HOLDER)
    import time as clock

    later = clock.time() + 13 * 60 * 60
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    assert signer.read(token) is None


def test_the_stored_secret_is_made_once_however_many_processes_ask(database: Database) -> None:
    """Racing processes (here: threads with their own engines) all end up with one secret."""
    results: list[str] = []
    barrier = threading.Barrier(4)

    def ask() -> None:
        own = Database(database.url)
        try:
            barrier.wait()
            results.append(server_secrets.get_or_create_secret(own, name="race-test"))
        finally:
            own.dispose()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1 and len(results[0]) >= 40
    assert server_secrets.get_or_create_secret(database, name="race-test") == results[0]
    assert server_secrets.get_or_create_secret(database, name="other") != results[0]


# --- the account list's URL state ----------------------------------------------------------------


def test_account_list_query_reads_its_state_from_the_url() -> None:
    query = AccountListQuery.from_params(QueryParams("q=Acme&stage=Aware&min=10&max=90&segment=abc&tag=vip&sort=name"))
    found = query.account_filter()
    assert (found.search, found.journey_stage, found.min_score, found.max_score) == ("Acme", "Aware", 10, 90)
    assert (found.segment_id, found.tag) == ("abc", "vip")
    assert query.order().by == "name" and not query.order().descending
    assert query.errors == {}
    unscored = AccountListQuery.from_params(QueryParams("stage=unscored"))
    assert unscored.account_filter().journey_stage == ""


def test_account_list_query_leaves_out_what_makes_no_sense() -> None:
    query = AccountListQuery.from_params(QueryParams("stage=Bogus&min=x&max=101&sort=nonsense"))
    assert set(query.errors) == {"stage", "min", "max"}
    found = query.account_filter()
    assert found.journey_stage is None and found.min_score is None and found.max_score is None
    assert query.sort == "-score"
    crossed = AccountListQuery.from_params(QueryParams("min=80&max=20"))
    assert "max" in crossed.errors and crossed.account_filter().min_score == 80


def test_account_list_links_keep_the_view_and_reset_the_position() -> None:
    after = encode_cursor(Cursor((55, "a" * 24), None))
    query = AccountListQuery.from_params(QueryParams(f"q=a b&stage=Aware&after={after}"))
    assert query.after_key() == (55, "a" * 24)
    assert query.sort_link("/ui/accounts", "name") == "/ui/accounts?q=a+b&stage=Aware&sort=name"
    assert query.sort_link("/ui/accounts", "score") == "/ui/accounts?q=a+b&stage=Aware&sort=score"
    assert query.export_link("/ui/accounts.csv") == "/ui/accounts.csv?q=a+b&stage=Aware"
    assert query.sort_state("score") == "descending" and query.sort_state("name") == "none"
    # A position of another sort (a name where a score belongs) means the first page.
    by_name = AccountListQuery.from_params(QueryParams(f"sort=name&after={after}"))
    assert by_name.after_key() is None
    assert AccountListQuery.from_params(QueryParams("after=garbage")).after_key() is None


# --- the rule editor ---------------------------------------------------------------------------


def test_rule_editor_labels_every_field_and_operator_of_the_api() -> None:
    assert set(FIELD_LABELS) == set(RULE_FIELDS)
    assert set(OPERATOR_LABELS) == set(RULE_OPERATORS)


def form_values(**fields: Any) -> QueryParams:
    pairs = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name.replace("_", "-"), item))
    return QueryParams(pairs)


def test_rule_form_types_values_and_round_trips_a_stored_rule() -> None:
    form = RuleForm.from_values(
        form_values(
            name="Hot",
            status="active",
            all_field=["rtp_account_score", "tags", "customFields.ARR_C", ""],
            all_op=["gte", "contains", "gt", "gte"],
            all_value=["60", "enterprise", "1.5", ""],
            any_field=["rtp_journey_stage"],
            any_op=["in"],
            any_value=["Aware, Customer"],
        )
    )
    rule = form.check(custom_fields={"customFields.ARR_C": True})
    assert rule == {
        "all": [
            {"field": "rtp_account_score", "op": "gte", "value": 60},
            {"field": "tags", "op": "contains", "value": "enterprise"},
            {"field": "customFields.ARR_C", "op": "gt", "value": 1.5},
        ],
        "any": [{"field": "rtp_journey_stage", "op": "in", "value": ["Aware", "Customer"]}],
    }
    again = RuleForm.from_segment("Hot", "active", rule)
    assert again.check(custom_fields={"customFields.ARR_C": True}) == rule


def test_rule_form_notes_each_problem_on_its_row() -> None:
    form = RuleForm.from_values(
        form_values(
            name="",
            status="gone",
            all_field=["rtp_account_score", "rtp_journey_stage", "nope", "rtp_g2_intent_score", "customFields.X_C"],
            all_op=["gte", "eq", "eq", "in", "eq"],
            all_value=["high", "Later", "x", "", "1"],
        )
    )
    assert form.check() is None
    rows = form.conditions["all"]
    assert "not a number" in rows[0].errors["value"]
    assert "journey stage" in rows[1].errors["value"]
    assert "field" in rows[2].errors
    assert "value" in rows[3].errors
    assert "no such custom field" in rows[4].errors["field"]
    assert "name" in form.errors and "status" in form.errors
    # The preview needs no name, but the conditions must still make sense.
    assert form.check(for_saving=False) is None and "name" not in form.errors


@given(st.text(max_size=30))
def test_rule_form_never_lets_a_nul_through(text: str) -> None:
    form = RuleForm.from_values(form_values(name=text, all_field="tags", all_op="contains", all_value=text + "\x00"))
    assert "\x00" not in form.name and all("\x00" not in row.value for row in form.conditions["all"])


# --- charts and exports ------------------------------------------------------------------------


def test_funnel_bars_are_in_stage_order_and_scaled_to_the_largest() -> None:
    drawn = charts.funnel({"Aware": 200, "Customer": 1, "": 5})
    assert [bar.stage for bar in drawn.bars] == ["Unaware", "Aware", "Consideration", "Opportunity", "Customer"]
    widths = {bar.stage: bar.width for bar in drawn.bars}
    assert widths["Aware"] == drawn.bar_area and widths["Unaware"] == 0 and widths["Customer"] >= 3
    assert round(sum(bar.share for bar in drawn.bars)) == 100
    assert charts.funnel({}).bars[0].width == 0


def test_sparkline_points_follow_the_scores_on_a_fixed_scale() -> None:
    assert charts.sparkline([]) is None and charts.sparkline([40]) is None
    line = charts.sparkline([0, 50, 100], width=100, height=20)
    assert line is not None
    assert line.points == "2.0,18.0 50.0,10.0 98.0,2.0"
    assert (line.first, line.last) == (0, 100)


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(text: str) -> None:
    assert export.neutralise(text) == "'" + text


@pytest.mark.parametrize("text", ["Acme", "a=b", "", "'quoted", "<script>"])
def test_plain_csv_cells_stay_as_they_are(text: str) -> None:
    assert export.neutralise(text) == text


def test_hostile_names_are_text_in_svg_titles() -> None:
    macros = environment.get_template("macros.html").module
    line = charts.sparkline([1, 2, 3])
    svg = str(macros.sparkline(line, "<script>alert(1)</script></title><b>x</b>"))  # type: ignore[attr-defined]
    assert "<script>" not in svg and "<b>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;/title&gt;" in svg


@pytest.mark.parametrize(
    "key",
    [(2**70, "a" * 24), (-1, "a" * 24), (10, "not-an-id"), (10, "a" * 23 + "\x00")],
)
def test_a_crafted_score_position_means_the_first_page(key: tuple[Any, str]) -> None:
    cursor = encode_cursor(Cursor(key, None))
    assert AccountListQuery.from_params(QueryParams({"after": cursor})).after_key() is None


def test_a_crafted_name_position_means_the_first_page() -> None:
    cursor = encode_cursor(Cursor(("acme\x00", "a" * 24), None))
    assert AccountListQuery.from_params(QueryParams({"sort": "name", "after": cursor})).after_key() is None


def test_list_totals_are_exact_from_the_funnel_and_capped_when_counted(database, monkeypatch):
    from abmhub.accounts import service as accounts_service
    from abmhub.accounts.schemas import AccountItem
    from abmhub.scoring.service import run_scoring
    from abmhub.tenancy import service as tenancy
    from abmhub.ui import router

    workspace_id = tenancy.create_workspace(database, name="totals")
    items = [AccountItem.model_validate({"domain": f"t{i}.com", "name": f"T {i}"}) for i in range(5)]
    accounts_service.push_accounts(database, workspace_id=workspace_id, items=items)
    run_scoring(database)
    monkeypatch.setattr(router, "COUNT_CAP", 3)
    whole = router._list_total(database, workspace_id, accounts_service.AccountFilter())
    assert whole == {"total": 5, "more": False}, "the whole list's total is exact, past the cap"
    searched = router._list_total(database, workspace_id, accounts_service.AccountFilter(search="t"))
    assert searched == {"total": 3, "more": True}, "a counted list stops at the cap and says so"
