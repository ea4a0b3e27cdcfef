"""`validate` proves a project's SQL runs on Snowflake, BigQuery or Databricks, leaving nothing behind and
reading no data.

Their DDL cannot be rolled back (what `prepare_server` does on Postgres and Redshift), so the run's own
executor (`ProfilesRun`) works in a **scratch schema** (dataset on BigQuery) made for the validation and
dropped at the end, whatever happens: its registry, lock row and every step's material live there, while the
inputs are read where the run reads them. Each material is created empty, so the engine binds each step's
query against the real inputs and the upstream steps' columns without reading a row:

- a `CREATE TABLE ... AS <query>` is made empty by the engine's `create_empty` hook (`warehouse/*.py`):
  `... LIMIT 0` on the outer query on Snowflake and Databricks (their planners return an empty LIMIT 0 without
  scanning); on BigQuery, whose LIMIT does not cut what a query bills, a dry-run query job binds the query and
  returns its schema, and the empty table is created from that schema through the API (no query runs);
- an `INSERT ... <query>` is emptied the same way (`insert_empty`);
- a var table that fails is probed var by var with the engine's `probe` (Snowflake `EXPLAIN`, Databricks
  `DESCRIBE QUERY`, BigQuery a dry run), so each failing var is named with its file:line;
- a count of a view's rows is a probe, not a scan.

A statement that would write anywhere but the scratch schema (a table, view or schema outside it) is not run:
what the preparation proves is the SQL of the steps, and nothing outside the scratch schema changes. The
scratch schema's name starts with `_pd_validate_`; a validate killed before its end leaves it behind (empty
tables only), and `DROP SCHEMA ... CASCADE` removes it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from typing import Any

import sqlglot
from sqlglot import exp

from profiles_dagster.errors import ErrorCollector, ProfilesError, summary
from profiles_dagster.plan.steps import RunPlan
from profiles_dagster.project.model import Project
from profiles_dagster.run import prepare_server
from profiles_dagster.warehouse.base import Session, WarehouseEngine

log = logging.getLogger("profiles_dagster.sql")

SCRATCH_PREFIX = "_pd_validate_"
# statements sqlglot cannot read that only read (the engines' EXPLAIN / DESCRIBE QUERY / SHOW)
_READS = re.compile(r"^\s*(?:SELECT|WITH|EXPLAIN|DESCRIBE|DESC|SHOW)\b", re.IGNORECASE)
_METADATA = re.compile(r"^\s*(?:EXPLAIN|DESCRIBE|DESC|SHOW)\b", re.IGNORECASE)  # run as they are, unparsed
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Drop, exp.Alter, exp.TruncateTable)


class ScratchSession(Session):
    """Mixed in before an engine's session class: writes only inside the scratch schema, every material
    created empty, counts probed."""

    scratch: str = ""
    savepoints = True  # a failed statement leaves the session usable (no transaction spans the preparation)
    skipped: list[str]

    def in_scratch(self, table: exp.Table) -> bool:
        """Whether a table (or, with no name, a schema) is the scratch schema's."""
        schema = table.db if table.name else (table.db or table.name)
        return bool(self.scratch) and (schema or self.schema).lower() == self.scratch.lower()

    def _statement(self, sql: str) -> exp.Expr | None:
        if _METADATA.match(sql):  # sqlglot reads some as a Command, warning on stderr each time
            return None
        try:
            return sqlglot.parse_one(sql, read=self.dialect)
        except Exception:  # sqlglot raises several error types; the caller decides by the statement's first word
            return None

    def _skip(self, sql: str) -> None:
        log.debug("validate: not run (it writes outside the scratch schema): %s", sql)
        self.skipped.append(sql)

    def execute(self, sql: str) -> None:
        statement = self._statement(sql)
        if statement is None or isinstance(statement, exp.Command):
            if _READS.match(sql):
                super().execute(sql)
            else:
                self._skip(sql)
            return
        if isinstance(statement, exp.Create):
            target = _target(statement)
            if target is None or not self.in_scratch(target):
                return self._skip(sql)
            kind = str(statement.args.get("kind") or "").upper()
            if kind == "TABLE" and isinstance(statement.expression, exp.Query):
                text = self.create_empty(statement)
                if text is not None:
                    super().execute(text)
                return
            super().execute(sql)
            return
        if isinstance(statement, _WRITES):
            targets = _targets(statement)
            if not targets or not all(self.in_scratch(t) for t in targets):
                return self._skip(sql)
            if isinstance(statement, exp.Insert) and isinstance(statement.expression, exp.Query):
                text = self.insert_empty(statement)
                if text is not None:
                    super().execute(text)
                return
            super().execute(sql)
            return
        if isinstance(statement, (exp.Query, exp.Transaction, exp.Commit, exp.Rollback, exp.Describe, exp.Show)):
            if isinstance(statement, exp.Query) and not self._free(statement):
                self.probe(sql)
                return
            super().execute(sql)
            return
        self._skip(sql)

    def query(self, sql: str) -> list[tuple]:
        statement = self._statement(sql)
        if isinstance(statement, exp.Query) and not self._free(statement):
            self.probe(sql)  # bound, not run: a query that bills what it reads returns no rows here
            return []
        return super().query(sql)

    def _free(self, query: exp.Query) -> bool:
        """Whether running the query costs nothing: the engine's reads are not billed by what a query
        returns (`reads_billed` false), or it reads only the scratch schema's (empty) tables."""
        if not self.reads_billed:
            return True
        ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
        tables = [t for t in query.find_all(exp.Table) if t.name and t.name.lower() not in ctes]
        return all(self.in_scratch(t) for t in tables)

    def create_schema(self, schema: str) -> None:
        if schema.lower() == self.scratch.lower():
            super().create_schema(schema)

    def row_count(self, target: exp.Table) -> int:
        """A view's query over the real inputs is bound (the engine's probe), not run; a material is empty."""
        self.probe(self.render(exp.select(exp.func("count", exp.Star())).from_(target.copy())))
        return 0


def _target(create: exp.Create) -> exp.Table | None:
    this = create.this
    if isinstance(this, exp.Schema):
        this = this.this
    return this if isinstance(this, exp.Table) else None


def _targets(statement: exp.Expr) -> list[exp.Table]:
    """The tables (or schemas) a write statement changes."""
    if isinstance(statement, exp.Drop):
        return [t for t in statement.args.get("tables") or [statement.this] if isinstance(t, exp.Table)]
    this = statement.this
    if isinstance(this, exp.Schema):
        this = this.this
    found = [this] if isinstance(this, exp.Table) else []
    if isinstance(statement, exp.Alter):  # ALTER TABLE ... RENAME TO: the new name must be in scratch too
        found.extend(
            t
            for action in statement.args.get("actions") or []
            if isinstance(action, exp.AlterRename)
            for t in [action.this]
            if isinstance(t, exp.Table) and t.db
        )
    return found


_CLASSES: dict[type[Session], type[Session]] = {}


def scratching(session: Session, scratch: str) -> ScratchSession:
    """The open session, now preparing in `scratch` (its class mixed with `ScratchSession`)."""
    base = type(session)
    if base not in _CLASSES:
        _CLASSES[base] = type(f"Scratch{base.__name__}", (ScratchSession, base), {})
    session.__class__ = _CLASSES[base]
    assert isinstance(session, ScratchSession)
    session.scratch = scratch
    session.skipped = []
    return session


def scratch_name() -> str:
    """A schema name of its own for one validation (letters, digits and `_`: valid on every engine)."""
    return SCRATCH_PREFIX + uuid.uuid4().hex[:12]


def prepare_in_scratch(project: Project, plan: RunPlan, engine: WarehouseEngine, errors: ErrorCollector) -> int:
    """Prepare every step in a scratch schema dropped at the end; failures go to `errors`. The number of
    steps prepared."""
    plan = RunPlan(plan.project_name, [s for s in plan.steps if s.path not in errors.failed], plan.notes)

    def in_scratch(opened: Session, stack: contextlib.ExitStack) -> int:
        original: Any = opened.schema
        scratch = scratch_name()
        session = scratching(opened, scratch)
        try:
            session.create_scratch_schema(scratch)
        except Exception as exc:  # the engine's own error: most often the rights to create a schema
            raise ProfilesError(
                f"validate could not create its scratch schema {scratch} on {engine.kind}: {summary(exc)}",
                hint="validate prepares each step in a schema it creates and drops at the end, which needs the "
                "right to create a schema (dataset); --no-prepare compiles the SQL without the connection",
            ) from exc
        stack.callback(_drop_scratch, session, scratch, original)
        session.schema = scratch
        prepared, _ = prepare_server._prepare(project, plan, session, errors, input_schema=original)
        return prepared

    return prepare_server.on_connection(engine, errors, in_scratch)


def _drop_scratch(session: ScratchSession, scratch: str, original: str) -> None:
    session.schema = original
    try:
        session.drop_schema(scratch)
    except Exception as exc:  # say what is left behind rather than hide it
        raise ProfilesError(
            f"validate could not drop its scratch schema {scratch}: {summary(exc)}",
            hint=f"drop it by hand: DROP SCHEMA {scratch} CASCADE",
        ) from exc
