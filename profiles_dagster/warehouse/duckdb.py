"""The embedded default: a DuckDB file, no server."""

from __future__ import annotations

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
        return DuckDBSession(duckdb.connect(self.database), self.output_schema)
