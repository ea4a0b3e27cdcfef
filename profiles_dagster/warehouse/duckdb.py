"""The embedded default: a DuckDB file, no server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from profiles_dagster.warehouse.base import Session, Warehouse


class DuckDBSession(Session):
    dialect = "duckdb"

    def execute(self, sql: str) -> None:
        # fetch everything: DuckDB keeps a partly fetched result open and refuses the next statement
        self.connection.execute(sql).fetchall()

    def query(self, sql: str) -> list[tuple]:
        return self.connection.execute(sql).fetchall()

    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        result = self.connection.execute(sql)
        return [d[0] for d in result.description or ()], result.fetchall()

    def columns(self, table) -> list[tuple[str, str]]:
        rows = self.connection.execute(f"DESCRIBE {table.sql('duckdb')}").fetchall()
        return [(r[0], str(r[1])) for r in rows]


class DuckDBWarehouse(Warehouse):
    """`database` is a file path; DuckDB allows one writer per file, so runs go in-process."""

    database: str

    kind: ClassVar[str] = "duckdb"

    def open_session(self) -> DuckDBSession:
        import duckdb

        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = duckdb.connect(self.database)
        except duckdb.Error as exc:  # the file is locked, not a database, or from a newer DuckDB
            raise _busy(self.database, exc) from None
        # timestamps with a time zone become UTC wall time, on every machine (as --end_time is read)
        connection.execute("SET TimeZone = 'UTC'")
        return DuckDBSession(connection, self.output_schema)


_TOKEN = re.compile(r"((?:token|password|secret)=)[^&\s'\"]+", re.IGNORECASE)


def _busy(database: str, exc: Exception) -> Exception:  # a ProfilesError
    """DuckDB lets one process open a file for writing; name the one holding it (DuckDB says which)."""
    from profiles_dagster.errors import BusyError, ProfilesError

    text = _TOKEN.sub(r"\1***", str(exc))
    database = _TOKEN.sub(r"\1***", database)  # MotherDuck paths carry a token
    if "could not set lock" not in text.lower():
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return ProfilesError(f"cannot open the DuckDB file {database}: {first}")
    holder = re.search(r"held in (.*?) \(PID (\d+)\)", text)
    who = f"process {holder.group(2)} ({holder.group(1)})" if holder else "another process"
    return BusyError(
        f"the DuckDB file {database} is in use by {who}; DuckDB lets one process at a time open a file for writing",
        hint="wait for that run (or program) to finish, or set run_lock.wait_seconds in profiles_dagster.yaml to wait",
    )
