"""The dashboard's pages. Each view reads its request, calls services, renders a template.

Every route depends on `refuse_cross_site` (state changes only from the dashboard's own
pages) and, but for signing in, on `signed_in` (a live session, scoped to its workspace).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from copy import deepcopy
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from abmhub.accounts import service as accounts_service
from abmhub.activities import service as activities_service
from abmhub.activities.timeline import TimelineQuery, timeline
from abmhub.custom_fields import service as custom_fields_service
from abmhub.db.engine import Database
from abmhub.deals import service as deals_service
from abmhub.deals.schemas import JOURNEY_STAGES
from abmhub.history import service as history_service
from abmhub.insights import service as insights
from abmhub.paging import PageRequest
from abmhub.predictions import views as predictions
from abmhub.scoring.explain import explain_account
from abmhub.scoring.model import US_PER_DAY, day_of
from abmhub.segments import service as segments_service
from abmhub.tenancy import service as tenancy
from abmhub.tenancy.service import KeyHolder
from abmhub.timefmt import format_day, now_us
from abmhub.ui import charts, export
from abmhub.ui.account_list import PAGE_SIZE, AccountListQuery
from abmhub.ui.auth import close_session, open_session, refuse_cross_site, safe_next, signed_in
from abmhub.ui.errors import SIGN_IN_PATH, UI_PREFIX, BadRequest
from abmhub.ui.pages import is_fragment_request, page
from abmhub.ui.rule_form import FIELD_LABELS, GROUPS, OPERATOR_LABELS, STATUSES, RuleForm
from abmhub.web.cursors import Cursor, InvalidCursor, decode_cursor, encode_cursor
from abmhub.web.dependencies import database
from abmhub.website import visits as website_visits

ACCOUNTS_PATH = f"{UI_PREFIX}/accounts"
EXPORT_PATH = f"{UI_PREFIX}/accounts.csv"
SEGMENTS_PATH = f"{UI_PREFIX}/segments"
TIMELINE_PAGE = 20
_UUID = re.compile(r"[0-9a-fA-F-]{36}")
PREVIEW_SIZE = 10
TREND_DAYS = 30
MAX_KEY_LENGTH = 256  # keys are 64 characters; anything much longer is not one
MAX_FORM_BYTES = 256 * 1024
MAX_FORM_FIELDS = 2 * 3 * 50 + 10  # two groups of up to 50 conditions, three fields each, and a few more


async def form_values(request: Request) -> FormData:
    """The posted form (read here, asynchronously, so that the views can stay synchronous).

    Browsers send a form's length up front; anything longer than the dashboard's forms can
    be is refused before it is read.
    """
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        raise BadRequest("The form is too large, or its length was not given.")
    return await request.form(max_fields=MAX_FORM_FIELDS)


def build_router() -> APIRouter:
    router = APIRouter(prefix=UI_PREFIX, include_in_schema=False, dependencies=[Depends(refuse_cross_site)])

    # --- signing in and out ------------------------------------------------------------------

    @router.get("/sign-in")
    def sign_in_page(request: Request, next: str | None = None) -> Response:
        return page(request, "sign_in.html", {"next": safe_next(next), "error": None})

    @router.post("/sign-in")
    def sign_in(request: Request, form: FormData = Depends(form_values), db: Database = Depends(database)) -> Response:
        key = str(form.get("api_key") or "").strip()
        target = safe_next(str(form.get("next") or ""))
        holder = tenancy.key_holder(db, key) if key and len(key) <= MAX_KEY_LENGTH else None
        if holder is None:
            error = "That key is not valid. Check it, or ask for a new one (abmhub keys create)."
            return page(request, "sign_in.html", {"next": target, "error": error}, status=400)
        response = RedirectResponse(target, status_code=303)
        open_session(response, request, holder)
        return response

    @router.post("/sign-out")
    def sign_out(request: Request) -> Response:
        response = RedirectResponse(SIGN_IN_PATH, status_code=303)
        close_session(response, request)
        return response

    # --- overview ------------------------------------------------------------------------------

    @router.get("")
    def overview(request: Request, user: KeyHolder = Depends(signed_in), db: Database = Depends(database)) -> Response:
        workspace_id = user.caller.workspace_id
        counts = history_service.stage_counts(db, workspace_id=workspace_id)
        context = {
            "section": "overview",
            "counts": counts,
            "open_deals": deals_service.open_deal_count(db, workspace_id=workspace_id),
            "funnels": [("wide", charts.funnel(counts.by_stage)), ("compact", charts.compact_funnel(counts.by_stage))],
            **_movement(db, workspace_id, counts.by_stage),
            "likely": predictions.likely_to_open(db, workspace_id=workspace_id, limit=LIKELY_LIST),
        }
        return page(request, "overview.html", context, user=user)

    # --- accounts ------------------------------------------------------------------------------

    @router.get("/accounts")
    def accounts(request: Request, user: KeyHolder = Depends(signed_in), db: Database = Depends(database)) -> Response:
        query = AccountListQuery.from_params(request.query_params)
        context = {
            "section": "accounts",
            "query": query,
            "path": ACCOUNTS_PATH,
            "export_link": query.export_link(EXPORT_PATH),
            **_account_list(db, user, query),
        }
        if is_fragment_request(request):
            return page(request, "accounts_results.html", context, user=user)
        context["segments"] = segments_service.list_all(db, workspace_id=user.caller.workspace_id)
        return page(request, "accounts.html", context, user=user)

    @router.get("/accounts.csv")
    def accounts_csv(
        request: Request, user: KeyHolder = Depends(signed_in), db: Database = Depends(database)
    ) -> Response:
        query = AccountListQuery.from_params(request.query_params)
        rows = accounts_service.each_account(
            db, workspace_id=user.caller.workspace_id, filters=query.account_filter(), order=query.order()
        )
        return StreamingResponse(
            export.accounts_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="accounts.csv"'},
        )

    @router.get("/accounts/{rtp_aid}")
    def account(
        request: Request, rtp_aid: str, user: KeyHolder = Depends(signed_in), db: Database = Depends(database)
    ) -> Response:
        workspace_id = user.caller.workspace_id
        row = accounts_service.get_account(db, workspace_id=workspace_id, rtp_aid=rtp_aid)
        after = _timeline_position(request.query_params.get("activities_after"))
        context = {
            "section": "accounts",
            "account": row,
            "explanation": explain_account(db, workspace_id=workspace_id, rtp_aid=row.rtp_aid),
            "timeline": _timeline(db, workspace_id, row, after),
            "older_only": after is not None,
            "deals": deals_service.deals_of_account(db, workspace_id=workspace_id, account_id=row.id),
            "segments": segments_service.segments_of_account(db, workspace_id=workspace_id, account_id=row.id),
            "contacts": activities_service.engaged_contacts(db, workspace_id=workspace_id, account_id=row.id),
            "visits": website_visits.visits_of_account(db, workspace_id=workspace_id, domain=row.domain),
            "score_chart": _score_chart(db, workspace_id, row.rtp_aid),
            "prediction": predictions.account_prediction(db, workspace_id=workspace_id, rtp_aid=row.rtp_aid),
        }
        return page(request, "account.html", context, user=user)

    @router.get("/accounts/{rtp_aid}/timeline")
    def account_timeline(
        request: Request, rtp_aid: str, user: KeyHolder = Depends(signed_in), db: Database = Depends(database)
    ) -> Response:
        """The next entries of an account's timeline, for its "Load more" button."""
        workspace_id = user.caller.workspace_id
        row = accounts_service.get_account(db, workspace_id=workspace_id, rtp_aid=rtp_aid)
        after = _timeline_position(request.query_params.get("after"))
        context = {"account": row, "timeline": _timeline(db, workspace_id, row, after)}
        return page(request, "timeline_entries.html", context, user=user)

    # --- segments ------------------------------------------------------------------------------

    @router.get("/segments")
    def segments(request: Request, user: KeyHolder = Depends(signed_in), db: Database = Depends(database)) -> Response:
        found = segments_service.list_all(db, workspace_id=user.caller.workspace_id)
        return page(request, "segments.html", {"section": "segments", "segments": found}, user=user)

    @router.get("/segments/new")
    def new_segment(
        request: Request, user: KeyHolder = Depends(signed_in), db: Database = Depends(database)
    ) -> Response:
        form = _editor_form(request, db, user, RuleForm.blank)
        return _editor(request, db, user, form, segment=None)

    @router.post("/segments")
    def create_segment(
        request: Request,
        form_data: FormData = Depends(form_values),
        user: KeyHolder = Depends(signed_in),
        db: Database = Depends(database),
    ) -> Response:
        form = RuleForm.from_values(form_data)
        rule = form.check(custom_fields=_custom_rule_fields(db, user))
        if rule is None:
            return _editor(request, db, user, form, segment=None, status=400)
        created = segments_service.create_segment(
            db, workspace_id=user.caller.workspace_id, name=form.name, type="dynamic", status=form.status, rule=rule
        )
        return RedirectResponse(f"{SEGMENTS_PATH}/{created.segment_id}?saved=1", status_code=303)

    @router.get("/segments/preview")
    def preview_segment(
        request: Request, user: KeyHolder = Depends(signed_in), db: Database = Depends(database)
    ) -> Response:
        """The live count and first matches of the rule being edited (the editor's htmx fragment)."""
        form = RuleForm.from_values(request.query_params)
        context = {**_rule_preview(db, user, form), "labels": FIELD_LABELS}
        return page(request, "rule_preview.html", context, user=user)

    @router.get("/segments/{segment_id}")
    def segment(
        request: Request, segment_id: str, user: KeyHolder = Depends(signed_in), db: Database = Depends(database)
    ) -> Response:
        workspace_id = user.caller.workspace_id
        found = segments_service.get_segment(db, workspace_id=workspace_id, segment_id=segment_id)
        # The member list is the accounts list filtered by this segment, with its sort and paging.
        query = replace(AccountListQuery.from_params(request.query_params), segment="")
        path = f"{SEGMENTS_PATH}/{found.segment_id}"
        context: dict[str, Any] = {
            "section": "segments",
            "segment": found,
            "query": query,
            "path": path,
            "export_link": replace(query, segment=found.segment_id).export_link(EXPORT_PATH),
            "saved": request.query_params.get("saved") == "1",
            "labels": FIELD_LABELS,
            "operators": OPERATOR_LABELS,
            **_account_list(db, user, query, segment_id=found.segment_id),
        }
        if is_fragment_request(request):
            return page(request, "accounts_results.html", context, user=user)
        context["matching_now"] = _matching_now(db, workspace_id, found)
        return page(request, "segment.html", context, user=user)

    @router.get("/segments/{segment_id}/edit")
    def edit_segment(
        request: Request, segment_id: str, user: KeyHolder = Depends(signed_in), db: Database = Depends(database)
    ) -> Response:
        found = _dynamic_segment(db, user, segment_id)
        form = _editor_form(request, db, user, lambda: RuleForm.from_segment(found.name, found.status, found.rule))
        return _editor(request, db, user, form, segment=found)

    @router.post("/segments/{segment_id}")
    def update_segment(
        request: Request,
        segment_id: str,
        form_data: FormData = Depends(form_values),
        user: KeyHolder = Depends(signed_in),
        db: Database = Depends(database),
    ) -> Response:
        found = _dynamic_segment(db, user, segment_id)
        form = RuleForm.from_values(form_data)
        rule = form.check(custom_fields=_custom_rule_fields(db, user))
        if rule is None:
            return _editor(request, db, user, form, segment=found, status=400)
        segments_service.update_segment(
            db,
            workspace_id=user.caller.workspace_id,
            segment_id=found.segment_id,
            changes={"name": form.name, "status": form.status, "rule": rule},
        )
        return RedirectResponse(f"{SEGMENTS_PATH}/{found.segment_id}?saved=1", status_code=303)

    return router


# --- what several views share ------------------------------------------------------------------


OVERVIEW_LIST = 8  # rows of each of the overview's lists
LIKELY_LIST = 10  # rows of "Likely to open an opportunity"
CHART_DAYS = 90


def _movement(db: Database, workspace_id: int, now: dict[str, int]) -> dict[str, Any]:
    """The overview's history: the funnel against 7 and 30 days ago, who moved stage this week,
    who surges, and who waits for a touch."""
    today = day_of(now_us())
    week = PageRequest(limit=OVERVIEW_LIST)
    since = now_us() - 7 * US_PER_DAY

    def moved(direction: str) -> Any:
        filters = history_service.StageChangeFilter(since_us=since, direction=direction)
        return history_service.list_stage_changes(db, workspace_id=workspace_id, filters=filters, page=week)

    then = {days: history_service.funnel_on(db, workspace_id=workspace_id, day=today - days) for days in (7, 30)}
    return {
        "funnel_changes": [
            {
                "stage": stage,
                "now": now.get(stage, 0),
                **{
                    f"then_{days}": (counts.get(stage, 0) if counts is not None else None)
                    for days, counts in then.items()
                },
            }
            for stage in JOURNEY_STAGES
        ],
        "progressed": moved("progressed"),
        "regressed": moved("regressed"),
        "surging": insights.surging_accounts_now(db, workspace_id=workspace_id, limit=OVERVIEW_LIST),
        "untouched": insights.untouched_high_scores(db, workspace_id=workspace_id, limit=OVERVIEW_LIST),
        "quiet_deals": insights.quiet_open_deals(db, workspace_id=workspace_id, limit=OVERVIEW_LIST),
        "visiting": website_visits.most_visiting(db, workspace_id=workspace_id, limit=OVERVIEW_LIST),
    }


def _score_chart(db: Database, workspace_id: int, rtp_aid: str) -> charts.ScoreChart | None:
    found = history_service.account_history(db, workspace_id=workspace_id, rtp_aid=rtp_aid, days=CHART_DAYS)
    return charts.score_chart(
        [(format_day(d.day), d.account_score, d.journey_stage) for d in found.daily],
        [(format_day(day_of(c.at_us)), c.from_stage, c.to_stage) for c in found.stage_changes],
    )


def _account_list(
    db: Database, user: KeyHolder, query: AccountListQuery, *, segment_id: str | None = None
) -> dict[str, Any]:
    """One page of a filtered, sorted account list, its size, and each row's score trend
    (`segment_id`: a segment's members, whatever the query says)."""
    workspace_id = user.caller.workspace_id
    filters = query.account_filter()
    if segment_id is not None:
        filters = replace(filters, segment_id=segment_id)
    found = accounts_service.browse_accounts(
        db,
        workspace_id=workspace_id,
        filters=filters,
        order=query.order(),
        after=query.after_key(),
        before=query.before_key(),
        limit=PAGE_SIZE,
    )
    trends = history_service.score_trends(
        db, workspace_id=workspace_id, account_ids=[row.id for row in found.rows], days=TREND_DAYS
    )
    return {
        "page": found,
        **_list_total(db, workspace_id, filters),
        "sparklines": {account_id: charts.sparkline(values) for account_id, values in trends.items()},
    }


COUNT_CAP = 10_000  # a filtered list counts this far; past it the page says "10,000+"


def _list_total(db: Database, workspace_id: int, filters: accounts_service.AccountFilter) -> dict[str, Any]:
    """How many accounts the list holds (`total`), exactly from the funnel for the whole list or
    one stage (no scan), else counted up to COUNT_CAP; `more` when the count stopped there."""
    if filters == accounts_service.AccountFilter(journey_stage=filters.journey_stage):
        counts = history_service.stage_counts(db, workspace_id=workspace_id)
        total = counts.total if filters.journey_stage is None else counts.by_stage.get(filters.journey_stage, 0)
        return {"total": total, "more": False}
    total = accounts_service.count_accounts(db, workspace_id=workspace_id, filters=filters, at_most=COUNT_CAP)
    return {"total": min(total, COUNT_CAP), "more": total > COUNT_CAP}


def _matching_now(db: Database, workspace_id: int, segment: segments_service.Segment) -> int | None:
    """How many accounts a dynamic segment's rule selects now (None: not dynamic, or not evaluable)."""
    if segment.type != "dynamic" or not segment.rule:
        return None
    try:
        return segments_service.preview_rule(db, workspace_id=workspace_id, rule=segment.rule, limit=0).count
    except segments_service.RuleNotEvaluable:
        return None


def _timeline(db: Database, workspace_id: int, row: Any, after: tuple[int, str] | None) -> dict[str, Any]:
    found = timeline(
        db,
        workspace_id=workspace_id,
        query=TimelineQuery(account_uuid=row.uuid, after=after, limit=TIMELINE_PAGE),
    )
    more = encode_cursor(Cursor(found.next_key, None)) if found.next_key is not None else None
    return {"entries": found.entries, "more": more}


def _timeline_position(text: str | None) -> tuple[int, str] | None:
    """Where a timeline page starts; a cursor that is not one of ours means the newest entries."""
    if not text:
        return None
    try:
        cursor = decode_cursor(text, arity=2)
    except InvalidCursor:
        return None
    occurred_us, uuid = cursor.after
    # Only what a real position holds reaches the query (SQLite cannot bind a larger integer,
    # PostgreSQL cannot compare text with NUL in it).
    if type(occurred_us) is not int or not 0 <= occurred_us < 2**63 or type(uuid) is not str:
        return None
    if _UUID.fullmatch(uuid) is None:
        return None
    return occurred_us, uuid


def _custom_rule_fields(db: Database, user: KeyHolder) -> dict[str, bool]:
    """The rule fields of the workspace's custom fields, and whether each compares as a number."""
    fields = custom_fields_service.list_fields(db, workspace_id=user.caller.workspace_id)
    return {f"customFields.{field.key}": field.label_type == "number" for field in fields}


def _dynamic_segment(db: Database, user: KeyHolder, segment_id: str) -> segments_service.Segment:
    found = segments_service.get_segment(db, workspace_id=user.caller.workspace_id, segment_id=segment_id)
    if found.type != "dynamic":
        raise BadRequest("Only a dynamic segment has a rule to edit; a static segment's members are pushed to it.")
    return found


def _editor_form(request: Request, db: Database, user: KeyHolder, saved: Callable[[], RuleForm]) -> RuleForm:
    """The editor's form: as sent back by its own add, remove and preview buttons (GET, its
    problems marked), else `saved()`."""
    params = request.query_params
    if "name" not in params:
        return saved()
    form = RuleForm.from_values(params)
    form.check(custom_fields=_custom_rule_fields(db, user), for_saving=False)
    if params.get("add"):
        form.add_row(params["add"])
    if params.get("remove"):
        form.remove_row(params["remove"])
    return form


def _rule_preview(db: Database, user: KeyHolder, form: RuleForm) -> dict[str, Any]:
    """The preview of the rule being edited, judged on a copy (the form keeps its own problems)."""
    draft = deepcopy(form)
    rule = draft.check(custom_fields=_custom_rule_fields(db, user), for_saving=False)
    preview = problem = None
    if rule is not None:
        try:
            preview = segments_service.preview_rule(
                db, workspace_id=user.caller.workspace_id, rule=rule, limit=PREVIEW_SIZE
            )
        except segments_service.RuleNotEvaluable as exc:
            problem = exc.message
    return {"draft": draft, "preview": preview, "problem": problem}


def _editor(
    request: Request,
    db: Database,
    user: KeyHolder,
    form: RuleForm,
    *,
    segment: segments_service.Segment | None,
    status: int = 200,
) -> Response:
    custom = custom_fields_service.list_fields(db, workspace_id=user.caller.workspace_id)
    fields = dict(FIELD_LABELS) | {f"customFields.{field.key}": f"{field.label} (custom field)" for field in custom}
    context = {
        **_rule_preview(db, user, form),
        "section": "segments",
        "form": form,
        "segment": segment,
        "fields": fields,
        "labels": fields,
        "operators": OPERATOR_LABELS,
        "groups": GROUPS,
        "statuses": STATUSES,
        "action": f"{SEGMENTS_PATH}/{segment.segment_id}" if segment else SEGMENTS_PATH,
        "editor_path": f"{SEGMENTS_PATH}/{segment.segment_id}/edit" if segment else f"{SEGMENTS_PATH}/new",
    }
    return page(request, "segment_editor.html", context, status=status, user=user)
