"""Postgres over psycopg 3 (`pip install profiles-dagster[postgres]`), and what Redshift shares with it."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from profiles_dagster.errors import ProfilesError
from profiles_dagster.sql.dialects import POSTGRES
from profiles_dagster.warehouse.base import Session, WarehouseEngine, lazy_resource
from profiles_dagster.warehouse.grants import Grants, quoted_name

LARGE_WORK_MEM_BYTES = 256 * 2**20  # work_mem while the id stitcher runs
# parallel_tuple_cost of the id stitcher's scratch tables (CREATE UNLOGGED TABLE inside `large_work`; the
# default is 0.1). The planner prices each row a worker hands to the leader at this, and a regular expression
# or a SHA-1 at one operator (0.0025): the stitcher's scan of every input row (its observations' id filters,
# 1.37M rows at 100k people) stayed serial though workers compute it in a fraction of the time (3.7 s -> 2.5 s
# for that table on 2 busy cores). A scratch table's row order is no result (nodes are numbered in any order);
# the stitcher table itself, which later steps read, is written with the session's own costs.
LARGE_WORK_PARALLEL_TUPLE_COST = 0.01
# default_statistics_target of a run's ANALYZEs (the id stitcher's scratch tables): 10 samples 3,000 rows, the
# default 100 samples 30,000; the stitcher's plans came out the same (EXPLAIN) with the smaller sample, and
# its ANALYZEs are faster.
ANALYZE_STATISTICS_TARGET = 10
# A step's table of at least this many rows gets ANALYZEd in its CREATE's transaction: later steps join it
# (the stitcher's table against every input) and plan blind without statistics. A smaller one costs more to
# sample than a misestimate of it loses.
ANALYZE_MIN_ROWS = 10_000


_SCRATCH_TABLE = re.compile(r"\s*CREATE\s+UNLOGGED\s+TABLE\b", re.IGNORECASE)  # the id stitcher's scratch tables


class PostgresFamilySession(Session):
    """What Postgres and Redshift (another client, a Postgres-shaped catalog) share: the schema check in
    pg_namespace, a view swap as DROP + CREATE inside one transaction, ANALYZE after building a table."""

    def create_schema(self, schema: str) -> None:
        # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists
        found = self.query(
            f"SELECT count(*) FROM pg_namespace WHERE nspname = {exp.Literal.string(schema).sql(self.dialect)}"
        )
        if not int(found[0][0]):
            super().create_schema(schema)

    def point_views(self, views: Sequence[tuple[exp.Table, exp.Table]]) -> None:
        # CREATE OR REPLACE VIEW cannot drop or retype columns; DROP + CREATE can, atomically here.
        with self.transaction():
            for view, material in views:
                self.run(exp.Drop(kind="VIEW", tables=[view.copy()], exists=True))
                self.run(exp.Create(kind="VIEW", this=view.copy(), expression=exp.select("*").from_(material.copy())))

    def analyze(self, target: exp.Table) -> None:
        # CREATE TABLE AS leaves no statistics until autovacuum comes by: joins on the table get poor plans
        self.run(exp.Analyze(tables=[target.copy()]))


class PostgresSession(PostgresFamilySession):
    """Autocommit; DDL is transactional, so a step's table and its registry row commit together."""

    dialect = POSTGRES
    transactional_ddl = True

    def prepare(self) -> None:
        """Session settings of a run (reasons beside each). Synchronized scans let a sequential scan start
        where a concurrent one is; off, a table is read from its first page, so ROW_NUMBER() OVER () numbers an
        input's rows the same way every run (pb's input_row_id, and ours). ANALYZE samples less
        (`ANALYZE_STATISTICS_TARGET`)."""
        self.execute("SET synchronize_seqscans = off")
        self.execute(f"SET default_statistics_target = {ANALYZE_STATISTICS_TARGET}")
        # JIT compiles every statement whose estimated cost passes jit_above_cost, which a run's joins over a
        # few hundred thousand rows all do; a step is one pass over its rows, so compiling costs more than it
        # saves (the example's shape at 100k people: backend CPU 22.5-25.6 s before, 20.6-21.1 s with this
        # and the ANALYZE of step tables, `run_count`).
        self.execute("SET jit = off")
        # A step's table and its registry row commit together; waiting at each commit for the WAL of the whole
        # table to reach disk adds nothing a crash would keep: the server loses at most the last commits, whole
        # and in order (never a table without its row), and the next run computes those steps again.
        self.execute("SET synchronous_commit = off")

    _scratch_parallel_cost: float | None = None  # inside `large_work`: see LARGE_WORK_PARALLEL_TUPLE_COST

    def execute(self, sql: str) -> None:
        if self._scratch_parallel_cost is not None and _SCRATCH_TABLE.match(sql):
            self._execute(f"SET parallel_tuple_cost = {LARGE_WORK_PARALLEL_TUPLE_COST}")
            try:
                self._execute(sql)
            finally:
                self._execute(f"SET parallel_tuple_cost = {self._scratch_parallel_cost}")
            return
        self._execute(sql)

    def _execute(self, sql: str) -> None:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
            rowcount = cursor.rowcount  # CREATE TABLE AS reports its rows ("SELECT n")
            self.written = rowcount if isinstance(rowcount, int) and rowcount >= 0 else None
        finally:
            cursor.close()

    def run_count(self, node: exp.Expr) -> int | None:
        """A step's CREATE TABLE AS, then ANALYZE of a table big enough to matter (`ANALYZE_MIN_ROWS`)."""
        rows = super().run_count(node)
        if (
            rows is not None
            and rows >= ANALYZE_MIN_ROWS
            and isinstance(node, exp.Create)
            and str(node.args.get("kind") or "").upper() == "TABLE"
            and isinstance(node.this, exp.Table)
        ):
            self.analyze(node.this)
            self.written = rows
        return rows

    def columns(self, table: exp.Table) -> list[tuple[str, str]]:
        """From pg_catalog: a run asks after every step, and information_schema.columns is a view with privilege
        checks over the whole catalog, slow even on an almost empty database. format_type without a modifier
        names a type as information_schema's data_type does (an array as text[] where information_schema
        says ARRAY)."""
        attribute, relation, namespace = (
            exp.table_(name, db="pg_catalog") for name in ("pg_attribute", "pg_class", "pg_namespace")
        )
        query = (
            exp.select(
                exp.column("attname", "a"),
                exp.func("format_type", exp.column("atttypid", "a"), exp.null()),
            )
            .from_(attribute.as_("a"))
            .join(relation.as_("c"), on=exp.column("oid", "c").eq(exp.column("attrelid", "a")))
            .join(namespace.as_("n"), on=exp.column("oid", "n").eq(exp.column("relnamespace", "c")))
            .where(
                exp.and_(
                    exp.column("nspname", "n").eq(exp.Literal.string(table.db or self.schema)),
                    exp.column("relname", "c").eq(exp.Literal.string(table.name)),
                    exp.column("attnum", "a") > 0,
                    exp.not_(exp.column("attisdropped", "a")),
                )
            )
            .order_by(exp.column("attnum", "a"))
        )
        return [(str(n), str(t)) for n, t in self.query(self.render(query))]

    def load_rows(
        self, target: exp.Table, columns: Sequence[tuple[str, exp.DataType]], batches: Iterable[Sequence[Sequence]]
    ) -> int:
        # COPY FROM STDIN (psycopg adapts each value): many times faster than multi-row INSERTs
        from profiles_dagster.warehouse.files import column_list

        self.replace_with_empty_table(target, columns)
        count = 0
        with (
            self.connection.cursor() as cursor,
            cursor.copy(f"COPY {self.render(column_list(target, columns, self.dialect))} FROM STDIN") as copy,
        ):
            for batch in batches:
                for row in batch:
                    copy.write_row(row)
                count += len(batch)
        return count

    @contextlib.contextmanager
    def large_work(self) -> Iterator[None]:
        """The default work_mem (4MB) sends big hash joins and aggregations to disk: raised, never lowered; the
        scratch tables' parallel_tuple_cost lowered (`LARGE_WORK_PARALLEL_TUPLE_COST`), never raised. Both
        restored afterwards."""
        (memory, small, cost) = self.query(
            "SELECT current_setting('work_mem'), "
            f"pg_size_bytes(current_setting('work_mem')) < {LARGE_WORK_MEM_BYTES}, "
            "current_setting('parallel_tuple_cost')::float8"
        )[0]
        if small:
            self.execute(f"SET work_mem = '{LARGE_WORK_MEM_BYTES // 2**20}MB'")
        if float(cost) > LARGE_WORK_PARALLEL_TUPLE_COST:
            self._scratch_parallel_cost = float(cost)
        try:
            yield
        finally:
            self._scratch_parallel_cost = None
            if small:
                self.execute(f"SET work_mem = {exp.Literal.string(str(memory)).sql(self.dialect)}")

    def ensure_sha1(self) -> None:
        """Main ids need SHA-1: pgcrypto's digest() (a trusted extension: a database owner may create it)."""
        if self.query("SELECT count(*) FROM pg_proc WHERE proname = 'digest'")[0][0]:
            return
        try:
            self.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        except Exception as exc:
            raise ProfilesError(
                f"the id stitcher needs the pgcrypto extension for SHA-1 and it could not be created: {exc}",
                hint="ask an admin to run CREATE EXTENSION pgcrypto; in this database",
            ) from exc


class PostgresGrants(Grants):
    """Postgres' and Redshift's syntax: privileges on the schema and its tables, to a user."""

    def read(self, source: exp.Table, schema: str) -> tuple[str, ...]:
        return (
            f"GRANT USAGE ON SCHEMA {quoted_name([schema])} TO {self.principal};",
            f"GRANT SELECT ON {quoted_name([schema, source.name])} TO {self.principal};",
        )

    def write(self, schema: str, exists: bool) -> tuple[str, ...]:
        if not exists:  # the owner of the schema may do everything in it
            return (f"CREATE SCHEMA IF NOT EXISTS {quoted_name([schema])} AUTHORIZATION {self.principal};",)
        return (f"GRANT USAGE, CREATE ON SCHEMA {quoted_name([schema])} TO {self.principal};",)


class PostgresConfig(WarehouseEngine):
    """A Postgres database; siteconfig keys as pb writes them: host, port, dbname, user, password, sslmode."""

    host: str = "localhost"
    port: int = 5432
    dbname: str = Field(description="database")
    user: str
    password: str | None = None
    sslmode: str | None = Field(None, description="libpq sslmode, e.g. require, verify-full, disable")
    connect_timeout: int = 30

    kind: ClassVar[str] = "postgres"

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "connect_timeout": self.connect_timeout,
            "autocommit": True,
        }
        if self.password is not None:
            kwargs["password"] = self.password
        if self.sslmode:
            kwargs["sslmode"] = self.sslmode
        return kwargs

    def access_grants(self, session: Session) -> Grants:
        return PostgresGrants(str(self.user or "<user>"), self.dbname)

    def open_session(self) -> PostgresSession:
        import psycopg

        session = PostgresSession(psycopg.connect(**self.connect_kwargs()), self.output_schema)
        session.ensure_sha1()
        session.prepare()
        return session


class PostgresEngine(PostgresConfig, BaseModel):
    """Postgres without Dagster: what `profiles-dagster` runs on (Definitions get a `PostgresWarehouse`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


__getattr__ = lazy_resource(PostgresConfig, "PostgresWarehouse", __name__)  # the Dagster resource, on first use
