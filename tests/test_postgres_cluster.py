"""The throwaway PostgreSQL cluster helper (tests/support/postgres.py) works end to end."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

try:
    from support.postgres import (
        PostgresCluster,
        PostgresUnavailable,
        find_pg_bin,
        postgres_required,
    )
except ImportError:  # e.g. --import-mode=importlib: tests/ is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from support.postgres import (
        PostgresCluster,
        PostgresUnavailable,
        find_pg_bin,
        postgres_required,
    )

pytestmark = pytest.mark.postgres


def _pg_bin_or_skip() -> Path:
    try:
        return find_pg_bin()
    except PostgresUnavailable as exc:
        if postgres_required():
            pytest.fail(f"PostgreSQL is required (ABMHUB_REQUIRE_POSTGRES) but: {exc}")
        pytest.skip(f"PostgreSQL server binaries unavailable: {exc}")


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_cluster_lifecycle(tmp_path: Path, record_property) -> None:
    _pg_bin_or_skip()

    t0 = time.perf_counter()
    cluster = PostgresCluster()
    cluster.start()
    t_started = time.perf_counter()
    try:
        port = cluster.port
        data_dir = cluster.data_dir
        root_dir = cluster.root_dir
        assert data_dir is not None and data_dir.is_dir()
        assert _port_open(port)
        assert cluster.url() == f"postgresql+psycopg://abmhub@127.0.0.1:{port}/postgres"

        # A template database with a table in it ...
        tmpl_url = cluster.create_database("abmhub_tmpl")
        engine = create_engine(tmpl_url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE seeded (id int PRIMARY KEY, name text)"))
            conn.execute(text("INSERT INTO seeded VALUES (1, 'from-template')"))
        engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template idle

        # ... copied into a fresh database.
        url = cluster.create_database("abmhub_t1", template="abmhub_tmpl")
        assert url == f"postgresql+psycopg://abmhub@127.0.0.1:{port}/abmhub_t1"
        engine = create_engine(url)
        with engine.begin() as conn:
            version = conn.execute(text("select version()")).scalar_one()
            assert version.startswith("PostgreSQL ")
            assert conn.execute(text("select name from seeded")).scalar_one() == ("from-template")
            conn.execute(text("CREATE TABLE t (id serial PRIMARY KEY, v text)"))
            conn.execute(text("INSERT INTO t (v) VALUES ('a'), ('b')"))
            rows = conn.execute(text("SELECT v FROM t ORDER BY id")).scalars().all()
            assert rows == ["a", "b"]
            assert conn.execute(text("show fsync")).scalar_one() == "off"
            assert conn.execute(text("show max_connections")).scalar_one() == "200"

        # drop_database must terminate the still-open pooled connection itself.
        still_open = engine.connect()
        cluster.drop_database("abmhub_t1")
        still_open.invalidate()
        engine.dispose()
        cluster.drop_database("abmhub_t1")  # IF EXISTS: dropping again is fine
        cluster.drop_database("abmhub_tmpl")

        admin = create_engine(cluster.url())
        with admin.connect() as conn:
            names = set(conn.execute(text("select datname from pg_database")).scalars())
        admin.dispose()
        assert not {"abmhub_t1", "abmhub_tmpl"} & names
    finally:
        t_stop0 = time.perf_counter()
        cluster.stop()
        t_end = time.perf_counter()

    cluster.stop()  # idempotent
    assert not root_dir.exists()
    assert not data_dir.exists()
    assert not _port_open(port)
    with pytest.raises(RuntimeError):
        _ = cluster.port

    start_s, stop_s = t_started - t0, t_end - t_stop0
    record_property("pg_start_seconds", round(start_s, 3))
    record_property("pg_stop_seconds", round(stop_s, 3))
    print(f"\nPostgresCluster start {start_s:.2f}s, stop {stop_s:.2f}s")
    assert start_s + stop_s < 30, "cluster start+stop should take a few seconds"


def test_context_manager_cleans_up() -> None:
    _pg_bin_or_skip()
    with PostgresCluster() as cluster:
        port, root_dir = cluster.port, cluster.root_dir
        assert _port_open(port)
    assert not root_dir.exists()
    assert not _port_open(port)
