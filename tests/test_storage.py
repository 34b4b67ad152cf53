"""Storage-level promises, checked in-process on both databases: one transaction per push,
a bounded number of statements however many items, database-enforced uniqueness, keys
stored only as hashes, migrations that several processes can run at once."""

from __future__ import annotations

import threading

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.db.engine import Database
from abmhub.db.migrate import alembic_config, upgrade
from abmhub.db.tables import accounts, api_keys
from abmhub.tenancy import service as tenancy
from tests.support.statements import StatementCounter


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="acme")


def items(n: int, prefix: str = "co") -> list[AccountItem]:
    return [AccountItem.model_validate({"domain": f"{prefix}-{i}.com", "name": f"Co {i}"}) for i in range(n)]


def test_a_push_of_100_accounts_is_one_transaction_with_batched_statements(database, workspace_id):
    counter = StatementCounter(database)
    outcome = accounts_service.push_accounts(database, workspace_id=workspace_id, items=items(100))
    assert outcome.summary == {"total": 100, "created": 100, "updated": 0, "failed": 0}
    assert counter.commits == 1, "the whole push commits once"
    created_100 = len(counter.statements)
    counter.statements.clear()
    accounts_service.push_accounts(database, workspace_id=workspace_id, items=items(10, prefix="small"))
    assert len(counter.statements) == created_100, "the statement count does not grow with the items"
    assert created_100 <= 12, f"statements are batched, not one per item: {counter.statements}"

    counter.statements.clear()
    outcome = accounts_service.push_accounts(database, workspace_id=workspace_id, items=items(100), upsert=True)
    assert outcome.summary["updated"] == 100
    assert len(counter.statements) <= 12, f"an upsert of 100 is batched too: {counter.statements}"


def test_listing_reads_a_page_in_a_constant_number_of_queries(database, workspace_id):
    accounts_service.push_accounts(database, workspace_id=workspace_id, items=items(300))
    counter = StatementCounter(database)
    from abmhub.paging import PageRequest

    page, _ = accounts_service.list_accounts(database, workspace_id=workspace_id, page=PageRequest(limit=300))
    assert len(page.items) == 300
    assert len(counter.statements) <= 6, f"no query per account: {counter.statements}"


def test_the_database_itself_refuses_a_second_account_with_the_same_domain(database, workspace_id):
    accounts_service.push_accounts(database, workspace_id=workspace_id, items=items(1))
    with pytest.raises(IntegrityError), database.write() as tx:
        tx.conn.execute(
            insert(accounts).values(
                workspace_id=workspace_id,
                rtp_aid="0" * 24,
                uuid="00000000-0000-0000-0000-000000000000",
                name="Dup",
                domain="co-0.com",
                tags=[],
                custom_fields={},
                created_us=0,
                change_us=0,
            )
        )


def test_keys_are_stored_only_as_hashes_and_a_new_key_revokes_the_old(database, workspace_id):
    first = tenancy.create_key(database, workspace="acme", user_email="Ops@Example.com")
    second = tenancy.create_key(database, workspace="acme", user_email="ops@example.com")
    assert len(first) == 64 and first.isalnum()
    with database.read() as conn:
        stored = [row.key_hash for row in conn.execute(select(api_keys.c.key_hash))]
        dump = " ".join(str(v) for row in conn.execute(select(api_keys)) for v in row)
        assert first not in dump and second not in dump, "a key never appears in clear in the database"
        assert len(stored) == 2
    assert tenancy.authenticate(database, first) is None, "creating a new key revokes the old one at once"
    caller = tenancy.authenticate(database, second)
    assert caller is not None and caller.workspace_name == "acme" and caller.user_email == "ops@example.com"


def test_migrations_are_idempotent_and_safe_from_several_processes(backend, new_database_url):
    url = new_database_url(backend)
    errors: list[BaseException] = []

    def migrate() -> None:
        db = Database(url)
        try:
            upgrade(db)
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    db = Database(url)
    upgrade(db)  # once more: nothing to do
    with db.read() as conn:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    db.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    db.dispose()


def _hold_write_lock(path, held: threading.Event, release: threading.Event) -> threading.Thread:
    """Another process's writer, as SQLite sees it: a connection of its own holding the write lock."""
    import sqlite3

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("CREATE TABLE IF NOT EXISTS elsewhere (x INTEGER)")
        held.set()
        release.wait(10)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10), "the other writer should have taken the lock"
    return thread


def test_a_sqlite_writer_waits_for_another_process_s_write_lock(tmp_path):
    path = tmp_path / "x.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    held, release = threading.Event(), threading.Event()
    other = _hold_write_lock(path, held, release)
    threading.Timer(0.05, release.set).start()
    with db.write() as tx:  # waits, polling, until the other writer commits
        assert release.is_set(), "the write transaction should have started only once the other one ended"
        assert tx.conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000, (
            "the busy timeout should be back in force for the statements of the transaction"
        )
        tx.conn.exec_driver_sql("INSERT INTO elsewhere VALUES (1)")
    other.join()
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM elsewhere").scalar() == 1
    db.dispose()


def test_a_sqlite_writer_gives_up_after_the_busy_timeout(tmp_path, monkeypatch):
    import sqlite3

    from abmhub.db import engine

    path = tmp_path / "x.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 50)
    held, release = threading.Event(), threading.Event()
    other = _hold_write_lock(path, held, release)
    try:
        with pytest.raises(Exception) as raised, db.write():
            pass
        cause = raised.value.__cause__ or raised.value
        assert isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause), (
            f"a writer still locked out after the busy timeout should fail with 'database is locked', got {cause!r}"
        )
    finally:
        release.set()
        other.join()
    with db.write() as tx:  # the connection that gave up is usable again
        assert tx.conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 50
    db.dispose()


def test_bootstrap_issues_a_first_key_only_on_an_empty_database(database):
    key = tenancy.bootstrap(database)
    assert key is not None and len(key) == 64
    assert tenancy.bootstrap(database) is None, "a second start prints no new key"
    assert tenancy.authenticate(database, key).workspace_name == "default"
