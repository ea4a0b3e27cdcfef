"""The engine adapter: a small base class; each warehouse overrides only what differs."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import sqlglot
from sqlglot import exp

from profiles_dagster.errors import ProfilesError, did_you_mean, summary
from profiles_dagster.project.siteconfig import is_secret, redact
from profiles_dagster.warehouse.grants import Grants

log = logging.getLogger("profiles_dagster.sql")


class Session:
    """One open connection, speaking one sqlglot dialect."""

    dialect: ClassVar[str] = ""
    # whether CREATE TABLE AS joins an open transaction (and rolls back with it): a step's table and its
    # registry row then commit together, one commit instead of two
    transactional_ddl: ClassVar[bool] = False
    # whether processes on other machines reach this warehouse (its run lock needs heartbeats then)
    shared: ClassVar[bool] = True
    written: int | None = None  # rows the last statement wrote, where the engine reports them (see run_count)

    def __init__(self, connection: Any, schema: str) -> None:
        self.connection = connection
        self.schema = schema
        # statements whose text for this engine is already written (validate checks each step's SQL before
        # running it): by the node's id, with the node, so a recompiled step's new tree is written afresh
        self.written_as: dict[int, tuple[exp.Expr, str]] = {}

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

    def reads_in_place(self, location: str) -> bool:
        """Whether SQL here reads a `csv:` file or `s3:` object (CSV) in place (DuckDB's read_csv); where not,
        a run loads it into a table first (`warehouse/files.py`)."""
        return False

    def database_part_meaning(self) -> str:
        """What the database part of a 3-part table name names here, told when an input's table is missing."""
        return "the database part names a database of the connection"

    def read_in_place_hint(self) -> str:
        """What would let this engine read an `s3:` object in place, told when the client-side download cannot
        run (no boto3); '' where SQL never reads files in place."""
        return ""

    def column_type(self, dtype: exp.DataType) -> exp.DataType:
        """The type a loaded column of this (DuckDB) type gets here: the same one, where the engine agrees."""
        return dtype

    def load_csv(self, target: exp.Table, path: Path) -> int:
        """Create `target` from a local CSV file, with the column types DuckDB's read_csv infers (read
        client-side by an in-process DuckDB), the rows written through `load_rows`; the row count."""
        from profiles_dagster.warehouse.files import read_csv

        columns, batches = read_csv(path)
        return self.load_rows(target, columns, batches)

    def load_rows(
        self, target: exp.Table, columns: Sequence[tuple[str, exp.DataType]], batches: Iterable[Sequence[Sequence]]
    ) -> int:
        """Replace `target` with a table of these columns (DuckDB types, written in this dialect) holding the
        rows, one multi-row INSERT per batch; the row count."""
        from profiles_dagster.warehouse.files import insert_statements

        self.replace_with_empty_table(target, columns)
        count = 0
        for insert, rows in insert_statements(target, columns, batches, self.dialect):
            self.run(insert)
            count += rows
        return count

    def replace_with_empty_table(self, target: exp.Table, columns: Sequence[tuple[str, exp.DataType]]) -> None:
        """Drop `target` and create it empty, its columns' DuckDB types written in this dialect: where every
        engine's `load_rows` starts, whatever way it then writes the rows."""
        from profiles_dagster.warehouse.files import create_statement

        self.drop_table(target)
        self.run(create_statement(target, [(c, self.column_type(t)) for c, t in columns], self.dialect))

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

    def render(self, node: exp.Expr) -> str:
        known = self.written_as.get(id(node))
        if known is not None and known[0] is node:
            return known[1]
        return node.sql(dialect=self.dialect)

    def run(self, node: exp.Expr) -> None:
        self.execute(self.render(node))

    def run_count(self, node: exp.Expr) -> int | None:
        """Run a statement; the rows it wrote where the engine says (CREATE TABLE AS), else None: saves a
        count(*) over a table just written. Engines that know it set `written` in `execute`."""
        self.written = None
        self.run(node)
        return self.written

    def create_schema(self, schema: str) -> None:
        self.run(exp.Create(kind="SCHEMA", this=exp.Table(db=exp.to_identifier(schema, quoted=True)), exists=True))

    def create_table_as(self, target: exp.Table, query: exp.Query) -> None:
        self.run(exp.Create(kind="TABLE", this=target.copy(), expression=query))

    def drop_table(self, target: exp.Table) -> None:
        self.run(exp.Drop(kind="TABLE", tables=[target.copy()], exists=True))

    def analyze(self, target: exp.Table) -> None:
        """Planner statistics for a table just built (the id stitcher's scratch tables); a no-op where the
        engine keeps them itself. Postgres and Redshift override it."""

    @contextlib.contextmanager
    def large_work(self) -> Iterator[None]:
        """Around a run of big joins and aggregations (the id stitcher): engines with a per-session memory
        setting raise it here (Postgres: work_mem) and restore it after."""
        yield

    # -- validate's preparation in a scratch schema (run/prepare_scratch.py); engines override what differs --

    # whether a query bills what it reads even when it returns no row (BigQuery: LIMIT does not cut the scan);
    # there validate binds such queries with `probe` instead of running them
    reads_billed: ClassVar[bool] = False

    def probe(self, sql: str) -> None:
        """Bind a query without running it: EXPLAIN here."""
        self.query(f"EXPLAIN {sql}")

    def create_empty(self, create: exp.Create) -> str | None:
        """The SQL that makes a CREATE TABLE ... AS <query>'s table empty, the query still bound (LIMIT 0 on the
        outer query); None where the hook made the table itself."""
        return _limit_zero(create).sql(self.dialect)

    def insert_empty(self, insert: exp.Insert) -> str | None:
        """The SQL of an INSERT ... <query> that inserts no row, the query still bound; None where the hook
        bound it itself."""
        return _limit_zero(insert).sql(self.dialect)

    def create_scratch_schema(self, schema: str) -> None:
        """Create validate's scratch schema (engines that can make what is in it expire on its own override)."""
        self.create_schema(schema)

    def drop_schema(self, schema: str) -> None:
        """Drop a schema and everything in it (validate's scratch schema)."""
        target = exp.Table(db=exp.to_identifier(schema, quoted=True))
        self.run(exp.Drop(kind="SCHEMA", tables=[target], exists=True, cascade=True))

    def _in_schema(self, schema: str | None = None) -> exp.Expression:
        """The rows of a schema in an information_schema view (engines that fold names override it)."""
        return exp.column("table_schema").eq(exp.Literal.string(schema or self.schema))

    def _where(self, table: exp.Table) -> exp.Expression:
        """The rows of `table` in an information_schema view (engines that fold names override it)."""
        return exp.and_(
            self._in_schema(table.db or self.schema),
            exp.column("table_name").eq(exp.Literal.string(table.name)),
        )

    def _information_schema(self, view: str, table: exp.Table) -> exp.Table:
        """The information_schema view that lists `table` (engines with one per database override it)."""
        return exp.table_(view, db="information_schema")

    def table_exists(self, target: exp.Table) -> bool:
        query = (
            exp.select(exp.func("count", exp.Star()))
            .from_(self._information_schema("tables", target))
            .where(self._where(target))
        )
        return bool(self.query(self.render(query))[0][0])

    def information_schema_columns(self, table: exp.Table) -> list[tuple[str, str]]:
        """(name, data_type) of a table's columns in order, where information_schema has them."""
        query = (
            exp.select("column_name", "data_type")
            .from_(self._information_schema("columns", table))
            .where(self._where(table))
            .order_by("ordinal_position")
        )
        return [(str(n), str(t)) for n, t in self.query(self.render(query))]

    def row_count(self, target: exp.Table) -> int:
        return int(self.query(self.render(exp.select(exp.func("count", exp.Star())).from_(target.copy())))[0][0])

    def list_tables(self, schema: str | None = None, prefix: str = "") -> list[str]:
        """Tables and views in a schema whose names start with `prefix` (e.g. the materials of a run)."""
        return sorted(n for n in self.list_objects(schema) if n.startswith(prefix))

    def list_objects(self, schema: str | None = None) -> dict[str, str]:
        """Every table and view in a schema, spelled as the engine lists it: name -> TABLE | VIEW."""
        query = (
            exp.select("table_name", "table_type")
            .from_(exp.table_("tables", db="information_schema"))
            .where(self._in_schema(schema))
        )
        return {str(n): ("VIEW" if "VIEW" in str(t).upper() else "TABLE") for n, t in self.query(self.render(query))}

    def view_definitions(self, schema: str | None = None) -> dict[str, str]:
        """View name -> its SQL, where the engine reports it; {} where it does not (the registry's view
        pointers still protect what the stable views read)."""
        query = (
            exp.select("table_name", "view_definition")
            .from_(exp.table_("views", db="information_schema"))
            .where(self._in_schema(schema))
        )
        try:
            return {str(n): str(d or "") for n, d in self.query(self.render(query))}
        except Exception:  # no information_schema.views here
            log.debug("view definitions not available in %s", self.dialect, exc_info=True)
            return {}

    def point_views(self, views: Sequence[tuple[exp.Table, exp.Table]]) -> None:
        """Repoint stable views at new materials, together: readers see one complete run."""
        with self.transaction():
            for view, material in views:
                self.run(
                    exp.Create(
                        kind="VIEW", this=view.copy(), replace=True, expression=exp.select("*").from_(material.copy())
                    )
                )


class WarehouseEngine:
    """Opens `Session`s on one warehouse: the configuration and logic of every engine, without Dagster.

    A mixin for pydantic models: `Warehouse` (profiles_dagster.warehouse.resource) adds Dagster's
    ConfigurableResource to it; the CLI runs DuckDB through a plain model (`DuckDBEngine`), so
    `profiles-dagster` starts without importing Dagster."""

    output_schema: str = "profiles"

    kind: ClassVar[str] = ""
    # Dagster resources take a `${VAR}` secret as an EnvVar (the UI shows its name); plain engines its value
    env_var_fields: ClassVar[bool] = False
    # pb's siteconfig spelling -> field name, and pb keys this engine accepts but does not need
    pb_aliases: ClassVar[dict[str, str]] = {}
    pb_ignored: ClassVar[frozenset[str]] = frozenset()

    def open_session(self) -> Session:
        raise NotImplementedError

    def access_grants(self, session: Session) -> Grants:
        """Who the connection acts as and the GRANTs it would need (`validate access`): none here."""
        return Grants("<user>", None)

    @classmethod
    def from_connection(cls, connection: Any) -> WarehouseEngine:
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
            env = getattr(connection, "env_refs", {}).get(key)
            if env and is_secret(key) and cls.env_var_fields:  # Dagster shows the variable's name, not the secret
                from dagster import EnvVar

                value = EnvVar(env)
            kwargs[name] = value
        try:
            return cls(output_schema=connection.schema, **kwargs)
        except Exception as exc:  # pydantic's or Dagster's validation error (it may quote a value)
            secrets = connection.secret_values() if hasattr(connection, "secret_values") else []
            error = ProfilesError(
                f"invalid {cls.kind} connection: {redact(summary(exc), secrets)}", file=connection.source, key=key_root
            )
            raise error from (None if redact(str(exc), secrets) != str(exc) else exc)

    def __repr_args__(self):  # repr() shows a secret field as ***, an EnvVar as its name
        for name, value in super().__repr_args__():
            hidden = is_secret(name or "") and value is not None and not hasattr(value, "env_var_name")
            yield name, ("***" if hidden else value)

    def secret_values(self) -> list[Any]:
        """The values of this resource's secret fields (to keep out of error messages)."""
        return [getattr(self, name) for name in type(self).model_fields if is_secret(name)]

    def resolved(self) -> WarehouseEngine:
        """This resource with its EnvVar fields read from the environment. Dagster does that for a run's
        resources; the CLI, sensors and code that builds a resource by hand use it as built."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        env = {name: v for name, v in values.items() if hasattr(v, "env_var_name") and hasattr(v, "get_value")}
        if not env:
            return self
        for name, var in env.items():
            if var.get_value() is None:
                raise ProfilesError(
                    f"environment variable {var.env_var_name} is not set (the {self.kind} resource's `{name}`)"
                )
            values[name] = var.get_value()
        return type(self)(**values)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        warehouse = self.resolved()
        try:
            session = warehouse.open_session()
        except ProfilesError:
            raise
        except Exception as exc:  # the client's own error: keep any secret it quotes out of the message
            secrets = warehouse.secret_values()
            message = redact(summary(exc), secrets)
            error = ProfilesError(f"cannot connect to {self.kind}: {message}")
            raise error from (None if redact(str(exc), secrets) != str(exc) else exc)
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
        raise ProfilesError(f"{label} failed in the warehouse: {summary(exc)}") from exc
    elapsed = time.perf_counter() - start
    log.debug("%s: %.3fs", label, elapsed)
    return elapsed


def parse_check(sql: str, dialect: str) -> None:
    sqlglot.parse(sql, read=dialect)


def lazy_resource(config: type[WarehouseEngine], name: str, module: str) -> Callable[[str], Any]:
    """An engine module's `__getattr__`: `name` (e.g. `PostgresWarehouse`), the Dagster resource class of
    `config`, is built on first use, so importing the engine module does not import Dagster."""

    def resource_attribute(attr: str) -> Any:
        if attr == name:
            from profiles_dagster.warehouse.resource import resource_class

            return resource_class(config, name, module)
        raise AttributeError(f"module {module!r} has no attribute {attr!r}")

    return resource_attribute


def __getattr__(name: str) -> Any:
    """`Warehouse`, the Dagster resource, imported on first use: the CLI path never imports Dagster."""
    if name == "Warehouse":
        from profiles_dagster.warehouse.resource import Warehouse

        return Warehouse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _limit_zero(statement: exp.Create | exp.Insert) -> exp.Create | exp.Insert:
    """A copy of the statement whose query returns no row: `SELECT * FROM (<query>) LIMIT 0`."""
    statement = statement.copy()
    query = statement.expression
    assert isinstance(query, exp.Query)
    statement.set("expression", exp.select("*").from_(query.subquery("_pd_prepare")).limit(0))
    return statement
