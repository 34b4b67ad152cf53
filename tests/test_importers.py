"""The CSV importers (API.md §3.1, docs/importers.md): each vendor's export, line-numbered
row failures, idempotent re-imports, constant-memory streaming in batches, and the
`abmhub import` command."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import select, update
from typer.testing import CliRunner

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.db.engine import Database
from abmhub.db.migrate import upgrade
from abmhub.db.tables import accounts, signals
from abmhub.signals import importers
from abmhub.signals.cli import import_signals
from abmhub.signals.importers import (
    EXPORT_FORMATS,
    HeaderError,
    import_file,
    parse_export_date,
)
from abmhub.signals.schemas import SignalItem
from abmhub.tenancy import service as tenancy
from abmhub.timefmt import parse_iso8601

DATA = Path(__file__).parent / "data"
SAMPLES = {
    "bombora": DATA / "bombora_company_surge.csv",
    "g2": DATA / "g2_buyer_intent.csv",
    "linkedin": DATA / "linkedin_company_engagement.csv",
    "website": DATA / "website_visits.csv",
}


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="acme")


def run(db: Database, workspace_id: int, source: str, path: Path, **kwargs: Any) -> importers.ImportReport:
    return import_file(db, workspace_id=workspace_id, export=EXPORT_FORMATS[source], path=path, **kwargs)


def stored(db: Database, workspace_id: int) -> list[Any]:
    with db.read() as conn:
        return conn.execute(select(signals).where(signals.c.workspace_id == workspace_id).order_by(signals.c.id)).all()


def failures(report: importers.ImportReport) -> list[tuple[int, str]]:
    return [(failure.line, failure.reason) for failure in report.failures]


# --- each vendor's export ----------------------------------------------------------------


def test_bombora_company_surge(database, workspace_id):
    report = run(database, workspace_id, "bombora", SAMPLES["bombora"])
    assert (report.rows, report.created, report.skipped, report.rows_failed) == (6, 3, 0, 3)
    assert failures(report) == [
        (5, "missing Domain (company 'Initech')"),
        (6, "Composite Score must be between 0 and 100, got '150'"),
        (7, "bad date 'last week' in Week Of (expected ISO 8601, MM/DD/YYYY or YYYY/MM/DD, optionally with a time)"),
    ]
    rows = stored(database, workspace_id)
    assert [(r.source, r.type, r.domain, r.topic, r.score) for r in rows] == [
        ("bombora", "surge", "acme.com", "Account Based Marketing", 72),
        ("bombora", "surge", "acme.com", "Intent Data", 61),
        ("bombora", "surge", "globex.com", "Account Based Marketing", 88),
    ]
    # `Metro Composite Score` is not mistaken for the composite score; 04/27/2026 is month first.
    assert {r.occurred_us for r in rows} == {parse_iso8601("2026-04-27")}
    assert all(r.external_signal_id.startswith("bombora:20570:") for r in rows)


def test_g2_buyer_intent(database, workspace_id):
    report = run(database, workspace_id, "g2", SAMPLES["g2"])
    assert (report.rows, report.created, report.rows_failed) == (7, 5, 2)
    assert failures(report) == [
        (7, "Invalid domain 'not a domain' (company 'Soylent')"),
        (
            8,
            (
                "unknown G2 activity 'Sponsored Content' in Intent Signal "
                "(expected a profile, comparison, pricing or category activity)"
            ),
        ),
    ]
    rows = stored(database, workspace_id)
    assert [(r.domain, r.type) for r in rows] == [
        ("acme.com", "profile_view"),
        ("acme.com", "comparison"),
        ("acme.com", "pricing_view"),
        ("globex.com", "category_view"),
        ("globex.com", "comparison"),  # "Alternatives"
    ]
    assert rows[2].occurred_us == parse_iso8601("2026-04-30T14:05:00Z")


def test_linkedin_company_engagement(database, workspace_id):
    report = run(database, workspace_id, "linkedin", SAMPLES["linkedin"])
    # Three preamble lines and the header come first: the first company is on line 5.
    assert (report.rows, report.created, report.rows_failed, report.rows_without_signals) == (6, 5, 2, 2)
    assert failures(report) == [
        (9, "missing Company Website (company 'Hooli')"),
        (10, "Paid Impressions must be a whole number of at least 0, got '12.5'"),
    ]
    rows = stored(database, workspace_id)
    assert [(r.source, r.domain, r.type, r.count) for r in rows] == [
        ("linkedin_ads", "acme.com", "impression", 1234),  # "1,234"
        ("linkedin_ads", "acme.com", "click", 12),
        ("linkedin_ads", "acme.com", "engagement", 30),
        ("linkedin_ads", "globex.com", "impression", 250),  # 0 clicks: no click signal
        ("linkedin_ads", "globex.com", "engagement", 3),
    ]
    assert {r.occurred_us for r in rows} == {parse_iso8601("2026-04-01")}


def test_website_visits(database, workspace_id):
    report = run(database, workspace_id, "website", SAMPLES["website"])
    assert (report.rows, report.created, report.rows_failed) == (6, 4, 2)
    assert failures(report) == [
        (6, "bad date 'yesterday' in Timestamp (expected ISO 8601, MM/DD/YYYY or YYYY/MM/DD, optionally with a time)"),
        (7, "missing Company Domain"),
    ]
    rows = stored(database, workspace_id)
    assert [(r.type, r.domain, r.url) for r in rows] == [
        ("page_view", "acme.com", "https://abmhub.example/pricing"),
        ("page_view", "acme.com", "https://abmhub.example/docs"),
        ("page_view", "acme.com", "https://abmhub.example/docs"),  # same page and time, another visit id
        ("page_view", "globex.com", "https://abmhub.example/"),
    ]
    assert rows[3].occurred_us == parse_iso8601("2026-04-30T11:15:00Z")  # 04/30/2026 11:15 AM


@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_importing_a_file_again_skips_everything(database, workspace_id, source):
    first = run(database, workspace_id, source, SAMPLES[source])
    again = run(database, workspace_id, source, SAMPLES[source])
    assert again.created == 0
    assert again.skipped == first.created
    assert failures(again) == failures(first)
    assert len(stored(database, workspace_id)) == first.created


def test_imported_signals_obey_the_intake_rules(database, workspace_id):
    """What an importer builds is valid as a pushed item too (the same SignalItem rules)."""
    for source, path in SAMPLES.items():
        run(database, workspace_id, source, path)
    for row in stored(database, workspace_id):
        document = {"source": row.source, "type": row.type, "domain": row.domain, "occurredAt": "2026-04-30"}
        document.update({k: v for k, v in {"url": row.url, "topic": row.topic, "score": row.score}.items() if v})
        if row.source == "linkedin_ads":
            document["count"] = row.count
        SignalItem.model_validate(document)


def test_an_import_marks_the_accounts_it_concerns_for_rescoring(database, workspace_id):
    items = [AccountItem.model_validate({"domain": d, "name": d}) for d in ("acme.com", "initech.com")]
    accounts_service.push_accounts(database, workspace_id=workspace_id, items=items)
    with database.write() as tx:
        tx.conn.execute(update(accounts).values(score_dirty=False))
    run(database, workspace_id, "g2", SAMPLES["g2"])
    with database.read() as conn:
        dirty = conn.execute(select(accounts.c.domain).where(accounts.c.score_dirty.is_(True))).scalars().all()
    assert dirty == ["acme.com"]


# --- headers, dialects, values -----------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_column_names_match_without_case_spaces_or_punctuation(database, workspace_id, tmp_path):
    path = write(
        tmp_path, "\ufeff  COMPANY_DOMAIN ,visited-at,PAGE  URL\nacme.com,2026-04-30 10:00:00,https://a.example/\n"
    )
    report = run(database, workspace_id, "website", path)
    assert (report.created, report.rows_failed) == (1, 0)


def test_semicolon_and_tab_separated_files(database, workspace_id, tmp_path):
    semicolons = write(tmp_path, "Domain;Topic;Score;Date\nacme.com;CRM;70;2026-04-27\n", "a.csv")
    tabs = write(tmp_path, "Domain\tTopic\tScore\tDate\nglobex.com\tCRM\t70\t2026-04-27\n", "b.csv")
    assert run(database, workspace_id, "bombora", semicolons).created == 1
    assert run(database, workspace_id, "bombora", tabs).created == 1


def test_a_file_without_the_required_columns_is_refused_naming_them(database, workspace_id, tmp_path):
    path = write(tmp_path, "Company Name,Domain,Composite Score\nAcme,acme.com,70\n")
    with pytest.raises(HeaderError) as caught:
        run(database, workspace_id, "bombora", path)
    message = str(caught.value)
    assert "Topic Name / Topic / Intent Topic" in message
    assert "Date / Week / Week Of" in message
    assert "Found: Company Name, Domain, Composite Score" in message
    assert stored(database, workspace_id) == []


def test_an_empty_file_is_refused(database, workspace_id, tmp_path):
    with pytest.raises(HeaderError, match="is empty"):
        run(database, workspace_id, "website", write(tmp_path, ""))


def test_identical_rows_without_a_visit_id_are_one_signal(database, workspace_id, tmp_path):
    path = write(tmp_path, "Domain,URL,Timestamp\n" + "acme.com,https://a.example/,2026-04-30 10:00:00\n" * 2)
    report = run(database, workspace_id, "website", path)
    assert (report.rows, report.created, report.skipped) == (2, 1, 1)


def test_only_the_first_50_failures_are_kept_but_all_are_counted(database, workspace_id, tmp_path):
    path = write(tmp_path, "Domain,Timestamp\n" + "acme.com,soon\n" * 120 + "acme.com,2026-04-30\n")
    report = run(database, workspace_id, "website", path)
    assert (report.rows, report.rows_failed, report.created) == (121, 120, 1)
    assert len(report.failures) == 50
    assert [f.line for f in report.failures[:3]] == [2, 3, 4]


def test_a_quoted_field_spanning_lines_keeps_line_numbers_right(database, workspace_id, tmp_path):
    path = write(tmp_path, 'Domain,URL,Timestamp\nacme.com,"https://a.example/\nb",2026-04-30\n,x,2026-04-30\n')
    report = run(database, workspace_id, "website", path)
    assert failures(report) == [(4, "missing Domain")]


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-04-30", "2026-04-30T00:00:00Z"),
        ("2026-04-30 10:00:00", "2026-04-30T10:00:00Z"),
        ("2026-04-30T10:00:00.123+02:00", "2026-04-30T08:00:00.123Z"),
        ("04/30/2026", "2026-04-30T00:00:00Z"),
        ("4/3/2026", "2026-04-03T00:00:00Z"),
        ("04/30/2026 10:05", "2026-04-30T10:05:00Z"),
        ("04/30/2026 12:05:09 AM", "2026-04-30T00:05:09Z"),
        ("04/30/2026 1:05 pm", "2026-04-30T13:05:00Z"),
        ("2026/04/30", "2026-04-30T00:00:00Z"),
        ("2026-04-30 10:00:00 UTC", "2026-04-30T10:00:00Z"),
    ],
)
def test_export_dates(text, iso):
    assert parse_export_date(text) == parse_iso8601(iso)


@pytest.mark.parametrize(
    "text", ["30/04/2026", "2026-02-30", "04/30/26", "13:00 04/30/2026", "04/30/2026 13:00 PM", ""]
)
def test_bad_export_dates(text):
    with pytest.raises(ValueError):
        parse_export_date(text)


@pytest.mark.parametrize(
    ("activity", "signal_type"),
    [
        ("Viewed Profile", "profile_view"),
        ("Product Profile", "profile_view"),
        ("Read Reviews", "profile_view"),
        ("Compared", "comparison"),
        ("Comparison", "comparison"),
        ("Alternatives", "comparison"),
        ("Competitors", "comparison"),
        ("Viewed Pricing", "pricing_view"),
        ("pricing_view", "pricing_view"),
        ("Category", "category_view"),
        ("Viewed Category", "category_view"),
        ("Sponsored Content", None),
    ],
)
def test_g2_activities(activity, signal_type):
    assert importers.g2_signal_type(activity) == signal_type


# --- streaming and batches ---------------------------------------------------------------


def website_csv(path: Path, rows: int) -> Path:
    """`rows` page views in date order, as an export would list them."""
    with path.open("w", encoding="utf-8") as out:
        out.write("Timestamp,Company Domain,Page URL\n")
        for i in range(rows):
            day = 1 + i * 28 // rows
            out.write(f"2026-04-{day:02d}T{i % 24:02d}:{i % 60:02d}:{i // 60 % 60:02d}Z,co-{i % 5000}.com,/p/{i}\n")
    return path


def test_signals_go_in_batches_of_1000_one_transaction_each(database, workspace_id, tmp_path, monkeypatch):
    sizes: list[int] = []
    push = importers.push_signals

    def counting(db, *, workspace_id, items):
        sizes.append(len(items))
        return push(db, workspace_id=workspace_id, items=items)

    monkeypatch.setattr(importers, "push_signals", counting)
    report = run(database, workspace_id, "website", website_csv(tmp_path / "visits.csv", 2500))
    assert sizes == [1000, 1000, 500]
    assert (report.batches, report.created) == (3, 2500)


def test_a_row_s_signals_stay_in_one_batch(database, workspace_id, tmp_path, monkeypatch):
    sizes: list[int] = []
    push = importers.push_signals
    monkeypatch.setattr(importers, "push_signals", lambda db, **kw: sizes.append(len(kw["items"])) or push(db, **kw))
    lines = "".join(f"co-{i}.com,5,2,1,2026-04-01\n" for i in range(10))
    path = write(tmp_path, "Company Website,Impressions,Clicks,Engagements,Date\n" + lines)
    report = run(database, workspace_id, "linkedin", path, batch_size=10)
    assert sizes == [9, 9, 9, 3]
    assert report.created == 30


def test_an_interrupted_import_resumes_by_running_it_again(database, workspace_id, tmp_path, monkeypatch):
    path = website_csv(tmp_path / "visits.csv", 2500)
    push = importers.push_signals
    calls: list[int] = []

    def failing_second_batch(db, **kwargs):
        calls.append(len(kwargs["items"]))
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return push(db, **kwargs)

    monkeypatch.setattr(importers, "push_signals", failing_second_batch)
    with pytest.raises(importers.ImportInterrupted, match="the database went away") as caught:
        run(database, workspace_id, "website", path)
    assert (caught.value.report.created, caught.value.report.batches) == (1000, 1)
    assert len(stored(database, workspace_id)) == 1000, "the failed batch left nothing behind"

    monkeypatch.setattr(importers, "push_signals", push)
    report = run(database, workspace_id, "website", path)
    assert (report.created, report.skipped) == (1500, 1000)
    assert len(stored(database, workspace_id)) == 2500


def test_a_200k_row_file_streams_in_constant_memory(new_database_url, tmp_path):
    """The streaming promise, on SQLite only: it is about the importer, not the database."""
    db = Database(new_database_url("sqlite"))
    upgrade(db)
    workspace_id = tenancy.create_workspace(db, name="big")
    path = website_csv(tmp_path / "visits.csv", 200_000)
    seen: list[int] = []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    report = run(db, workspace_id, "website", path, progress=seen.append)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    db.dispose()
    assert (report.rows, report.created, report.rows_failed, report.batches) == (200_000, 200_000, 0, 200)
    assert seen == sorted(seen) and seen[-1] == path.stat().st_size == report.bytes_read
    # The file is 10 MiB and its signals would take far more as objects; one batch does not.
    assert grown_mib < 40, f"peak RSS grew by {grown_mib:.0f} MiB"
    print(f"\n200k-row website import on SQLite: {report.elapsed:.1f} s, {report.rows_per_second:,.0f} rows/s")


# --- the command -------------------------------------------------------------------------


@pytest.fixture
def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command("import")(import_signals)
    app.command("noop")(lambda: None)  # a second command, so `import` is a subcommand as in abmhub
    return app


def invoke(app: typer.Typer, *args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_the_command_imports_and_prints_a_summary(cli_app, database, workspace_id):
    result = invoke(cli_app, "import", "g2", str(SAMPLES["g2"]), "--workspace", "acme", "--database-url", database.url)
    assert result.exit_code == 0, result.output
    assert "rows read" in result.stdout and "signals created" in result.stdout
    assert "Rows not imported" in result.stdout and "Sponsored Content" in result.stdout
    assert len(stored(database, workspace_id)) == 5
    again = invoke(cli_app, "import", "g2", str(SAMPLES["g2"]), "--workspace", "acme", "--database-url", database.url)
    assert again.exit_code == 0
    assert "signals skipped (already imported)" in again.stdout
    assert len(stored(database, workspace_id)) == 5


@pytest.mark.parametrize(
    ("args", "code", "mention"),
    [
        (("import", "hubspot", "FILE", "--workspace", "acme"), 2, "hubspot"),
        (("import", "website", "/nonexistent/visits.csv", "--workspace", "acme"), 2, "does not exist"),
        (("import", "website", "FILE", "--workspace", "nobody"), 1, "workspace 'nobody' not found"),
        (("import", "bombora", "FILE", "--workspace", "acme"), 1, "Topic Name / Topic / Intent Topic"),
    ],
)
def test_the_command_refuses_what_it_cannot_import(cli_app, database, workspace_id, args, code, mention):
    args = tuple(str(SAMPLES["website"]) if a == "FILE" else a for a in args)
    result = invoke(cli_app, *args, "--database-url", database.url)
    assert result.exit_code == code, result.output
    assert mention in " ".join(result.output.split()), result.output
    assert stored(database, workspace_id) == []


def _import_command_registered() -> bool:
    from abmhub.cli import app

    return any(command.name == "import" for command in app.registered_commands)


@pytest.mark.skipif(not _import_command_registered(), reason="`abmhub import` is not registered in abmhub/cli.py yet")
def test_abmhub_import_end_to_end(database, workspace_id):
    def abmhub(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "abmhub", *args, "--database-url", database.url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = abmhub("import", "website", str(SAMPLES["website"]), "--workspace", "acme")
    assert done.returncode == 0, done.stderr
    assert "signals created" in done.stdout
    assert len(stored(database, workspace_id)) == 4
    refused = abmhub("import", "website", str(SAMPLES["website"]), "--workspace", "nobody")
    assert refused.returncode != 0
    assert "workspace 'nobody' not found" in refused.stderr
    assert "Traceback" not in refused.stderr
