"""The run lock gives up with a clear error when its row cannot be written or read back, instead of looping.

Real engines refuse the writes: a DuckDB lock table whose CHECK constraint rejects every UPDATE that names a
holder, and a Postgres lock table whose row-level security hides the row this connection inserts.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlglot import exp

from profiles_dagster.errors import BusyError, ProfilesError
from profiles_dagster.lock import RunLock, ensure_registry
from profiles_dagster.sql import registry
from profiles_dagster.warehouse.duckdb import DuckDBWarehouse
from profiles_dagster.warehouse.postgres import PostgresWarehouse


def _lock_columns() -> str:
    return ", ".join(f"{c} {exp.DataType(this=t).sql('duckdb')}" for c, t in registry.COLUMNS[registry.LOCK])


def test_an_update_that_always_fails_stops_with_an_error_naming_the_table(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(database=str(tmp_path / "wh.duckdb"))
    with warehouse.session() as session:
        ensure_registry(session, "profiles")
        session.execute(f"DROP TABLE profiles.{registry.LOCK}")
        session.execute(f"CREATE TABLE profiles.{registry.LOCK} ({_lock_columns()}, CHECK (run_id IS NULL))")
        session.execute(f"INSERT INTO profiles.{registry.LOCK} (name) VALUES ('{registry.LOCK_NAME}')")
        started = time.monotonic()
        with pytest.raises(ProfilesError) as caught:
            RunLock(session, "profiles", "p", wait_seconds=0).acquire()
        elapsed = time.monotonic() - started
    assert not isinstance(caught.value, BusyError)  # not "another run holds it": nobody does
    text = str(caught.value)
    assert f"cannot take the run lock in profiles.{registry.LOCK}" in text
    assert "100 attempts failed" in text and "CHECK constraint" in text, text
    assert "UPDATE" in (caught.value.hint or "")
    assert elapsed < 20, elapsed


def test_the_time_bound_holds_when_each_attempt_is_slow(tmp_path: Path) -> None:
    """Few attempts fit in `race_seconds` past the wait when each is slow; the bound is time, not only count."""
    warehouse = DuckDBWarehouse(database=str(tmp_path / "wh.duckdb"))
    with warehouse.session() as session:
        ensure_registry(session, "profiles")
        session.execute(f"DROP TABLE profiles.{registry.LOCK}")
        session.execute(f"CREATE TABLE profiles.{registry.LOCK} ({_lock_columns()}, CHECK (run_id IS NULL))")
        session.execute(f"INSERT INTO profiles.{registry.LOCK} (name) VALUES ('{registry.LOCK_NAME}')")
        lock = RunLock(session, "profiles", "p", wait_seconds=0.2, race_attempts=10**6, race_seconds=0.5)
        started = time.monotonic()
        with pytest.raises(ProfilesError, match="attempts failed"):
            lock.acquire()
        assert time.monotonic() - started < 5


def test_a_lock_row_that_stays_invisible_stops_with_an_error(postgres_standin) -> None:
    """Row-level security lets this connection insert the lock row but never see it: the insert is bounded."""
    server = postgres_standin
    server.create_database("lock_rls")
    with server.connect("lock_rls") as admin:
        admin.execute("DROP ROLE IF EXISTS profiles_rls")
        admin.execute("CREATE ROLE profiles_rls LOGIN PASSWORD 'rls-pass'")
        admin.execute("GRANT ALL ON DATABASE lock_rls TO profiles_rls")
        admin.execute("GRANT ALL ON SCHEMA public TO profiles_rls")
    warehouse = PostgresWarehouse(
        host=server.host, port=server.port, dbname="lock_rls", user="profiles_rls", password="rls-pass"
    )
    with warehouse.session() as session:
        ensure_registry(session, "profiles")
        session.execute(f"ALTER TABLE profiles.{registry.LOCK} ENABLE ROW LEVEL SECURITY")
        session.execute(f"ALTER TABLE profiles.{registry.LOCK} FORCE ROW LEVEL SECURITY")
        session.execute(f"CREATE POLICY hide ON profiles.{registry.LOCK} FOR SELECT USING (false)")
        session.execute(f"CREATE POLICY write ON profiles.{registry.LOCK} FOR INSERT WITH CHECK (true)")
        started = time.monotonic()
        with pytest.raises(ProfilesError) as caught:
            RunLock(session, "profiles", "p", wait_seconds=0).acquire()
        assert time.monotonic() - started < 30
        assert "its row is not there" in str(caught.value)
        rows = int(server.connect("lock_rls").execute(f"SELECT count(*) FROM profiles.{registry.LOCK}").fetchone()[0])
        assert rows == 101  # the one from the registry's creation + one per attempt: bounded
