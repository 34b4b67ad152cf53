"""Counting the SQL statements and commits a piece of work costs (no per-row statements)."""

from __future__ import annotations

from sqlalchemy import event

from abmhub.db.engine import Database


class StatementCounter:
    """Records the first words of every statement and the number of commits on an engine."""

    def __init__(self, database: Database) -> None:
        self.statements: list[str] = []
        self.commits = 0
        event.listen(database.engine, "before_cursor_execute", self._on_execute)
        event.listen(database.engine, "commit", self._on_commit)

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(" ".join(statement.split()[:3]).upper())

    def _on_commit(self, conn) -> None:
        self.commits += 1
