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

from profiles_dagster.errors import ProfilesError, did_you_mean

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

    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Column names and rows of a query."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
            return [d[0] for d in cursor.description or ()], [tuple(r) for r in cursor.fetchall()]
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

    def close(self) -> None:
        self.connection.close()

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
        self.run(exp.Drop(kind="TABLE", tables=[target.copy()], exists=True))

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

    def list_tables(self, schema: str | None = None, prefix: str = "") -> list[str]:
        """Tables and views in a schema whose names start with `prefix` (e.g. the materials of a run)."""
        tables = exp.table_("tables", db="information_schema")
        query = (
            exp.select("table_name")
            .from_(tables)
            .where(exp.column("table_schema").eq(exp.Literal.string(schema or self.schema)))
        )
        names = [str(r[0]) for r in self.query(self.render(query))]
        return sorted(n for n in names if n.startswith(prefix))

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
    # pb's siteconfig spelling -> field name, and pb keys this engine accepts but does not need
    pb_aliases: ClassVar[dict[str, str]] = {}
    pb_ignored: ClassVar[frozenset[str]] = frozenset()

    def open_session(self) -> Session:
        raise NotImplementedError

    @classmethod
    def from_connection(cls, connection: Any) -> Warehouse:
        """The resource for a pb siteconfig target (a `Connection`: its keys as pb writes them)."""
        fields = set(cls.model_fields) - {"output_schema"}
        key_root = f"connections.{connection.name}.outputs.{connection.target}"
        kwargs: dict[str, Any] = {}
        for key, value in connection.settings.items():
            name = cls.pb_aliases.get(key, key)
            if key == "schema" or name in cls.pb_ignored:
                continue
            if name not in fields:
                known = sorted(fields | set(cls.pb_aliases) | {"schema"})
                raise ProfilesError(
                    f"unknown key '{key}' for a {cls.kind} connection",
                    file=connection.source,
                    key=f"{key_root}.{key}",
                    hint=did_you_mean(key, known) or f"{cls.kind} keys: {', '.join(known)}",
                )
            kwargs[name] = value
        try:
            return cls(output_schema=connection.schema, **kwargs)
        except Exception as exc:  # pydantic's or Dagster's validation error
            raise ProfilesError(
                f"invalid {cls.kind} connection: {_short(exc)}", file=connection.source, key=key_root
            ) from exc

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        session = self.open_session()
        try:
            yield session
        finally:
            with contextlib.suppress(Exception):
                session.close()


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
