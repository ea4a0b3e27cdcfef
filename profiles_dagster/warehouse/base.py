"""The engine adapter: a small base class; each warehouse overrides only what differs."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import sqlglot
from dagster import ConfigurableResource
from sqlglot import exp

from profiles_dagster.errors import ProfilesError

log = logging.getLogger("profiles_dagster.sql")


class Session:
    """One open connection, speaking one sqlglot dialect."""

    dialect: ClassVar[str] = ""

    def __init__(self, connection: Any, schema: str) -> None:
        self.connection = connection
        self.schema = schema

    # -- the primitives every engine provides --------------------------------------------------------

    def execute(self, sql: str) -> None:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    def query(self, sql: str) -> list[tuple]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def columns(self, table: exp.Table) -> list[tuple[str, str]]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(exp.select("*").from_(table).limit(0).sql(self.dialect))
            return [(d[0], str(d[1])) for d in cursor.description or ()]
        finally:
            cursor.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    # -- built on them ----------------------------------------------------------------------------------

    def render(self, node: exp.Expression) -> str:
        return node.sql(dialect=self.dialect)

    def run(self, node: exp.Expression) -> None:
        self.execute(self.render(node))

    def create_schema(self, schema: str) -> None:
        self.run(exp.Create(kind="SCHEMA", this=exp.Table(db=exp.to_identifier(schema, quoted=True)), exists=True))

    def create_table_as(self, target: exp.Table, query: exp.Query) -> None:
        self.run(exp.Create(kind="TABLE", this=target.copy(), expression=query))

    def drop_table(self, target: exp.Table) -> None:
        self.run(exp.Drop(kind="TABLE", this=target.copy(), exists=True))

    def table_exists(self, target: exp.Table) -> bool:
        tables = exp.table_("tables", db="information_schema")
        query = (
            exp.select(exp.func("count", exp.Star()))
            .from_(tables)
            .where(
                exp.and_(
                    exp.column("table_schema").eq(exp.Literal.string(target.db or self.schema)),
                    exp.column("table_name").eq(exp.Literal.string(target.name)),
                )
            )
        )
        return bool(self.query(self.render(query))[0][0])

    def row_count(self, target: exp.Table) -> int:
        return int(self.query(self.render(exp.select(exp.func("count", exp.Star())).from_(target.copy())))[0][0])

    def point_views(self, views: Sequence[tuple[exp.Table, exp.Table]]) -> None:
        """Repoint stable views at new materials, together: readers see one complete run."""
        with self.transaction():
            for view, material in views:
                self.run(
                    exp.Create(
                        kind="VIEW", this=view.copy(), replace=True, expression=exp.select("*").from_(material.copy())
                    )
                )


class Warehouse(ConfigurableResource):
    """A Dagster resource that opens `Session`s on one warehouse; the CLI uses it directly too."""

    output_schema: str = "profiles"

    kind: ClassVar[str] = ""

    def open_session(self) -> Session:
        raise NotImplementedError

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        session = self.open_session()
        try:
            yield session
        finally:
            with contextlib.suppress(Exception):
                session.connection.close()


def timed_execute(session: Session, sql: str, label: str) -> float:
    start = time.perf_counter()
    try:
        session.execute(sql)
    except Exception as exc:  # every engine raises its own error classes
        raise ProfilesError(f"{label} failed in the warehouse: {_short(exc)}") from exc
    elapsed = time.perf_counter() - start
    log.debug("%s: %.3fs", label, elapsed)
    return elapsed


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def parse_check(sql: str, dialect: str) -> None:
    sqlglot.parse(sql, read=dialect)
