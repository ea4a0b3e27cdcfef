"""`validate` proves a project's SQL runs on Postgres or Redshift, against the real connection, writing nothing.

Postgres' DDL is transactional (Redshift's too), so the whole preparation is one transaction, rolled back at
the end: the run's own executor (`ProfilesRun`) takes the lock, opens its registry rows and builds each
step's material inside it, and all of it vanishes with the rollback. A step's material is created empty:
`CREATE TABLE ... AS <query> WITH NO DATA` on Postgres (`... LIMIT 0` on the outer query on Redshift, which
has no WITH NO DATA), so the engine plans and binds the query against the real inputs without reading them,
and the next step binds against the material's columns. An `INSERT ... <query>` gets `LIMIT 0` the same way;
every other statement (the id stitcher's loop over its scratch tables) runs on the empty tables. A count of
a view's rows is an EXPLAIN.

On Postgres every statement runs in a savepoint of its own: one that fails leaves the transaction usable,
as autocommit would (a failed var table is then prepared again var by var, `prepare._failing_vars`, each
trial an EXPLAIN); a nested `transaction()` (a step's table committed with its registry row) is a savepoint,
and a bare ROLLBACK (the lock's and resume's recovery after a failed statement) does nothing more. Redshift
has no savepoints and a failed statement aborts its transaction: there the failing step is reported (named
with a var where the engine's error points at one, `blame`), the transaction rolled back, and the
preparation starts again in a new one without that step and the steps that read it. The lock's heartbeat
thread is not started (no `beat_sessions`).

Snowflake, BigQuery and Databricks cannot roll DDL back: there the preparation runs in a scratch schema
dropped at the end (`prepare_scratch`), through the same `_prepare`.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import sqlglot
from sqlglot import exp

from profiles_dagster.errors import ErrorCollector, ProfilesError, ProfilesErrors, summary
from profiles_dagster.offline import check_writable
from profiles_dagster.plan.steps import RunPlan, Step
from profiles_dagster.project.model import Project
from profiles_dagster.run import prepare as local
from profiles_dagster.runner import ProfilesRun
from profiles_dagster.sql.dialects import POSTGRES
from profiles_dagster.warehouse.base import Session, WarehouseEngine

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+(?:(?:GLOBAL|LOCAL|TEMP|TEMPORARY|UNLOGGED)\s+)*TABLE\b", re.IGNORECASE)
_INSERT = re.compile(r"^\s*INSERT\b", re.IGNORECASE)


class PreparingSession(Session):
    """Mixed in before an engine's session class: one outer transaction, a savepoint per statement, tables
    created empty. `begin()` opens the transaction, `rollback()` ends it."""

    with_no_data: bool = True  # Postgres' CREATE TABLE AS ... WITH NO DATA; else LIMIT 0 on the outer query
    savepoints: bool = True  # Postgres; Redshift has none (a failed statement aborts the transaction)
    _savepoints: Iterator[int]
    aborted = False  # without savepoints: a statement failed, the transaction only waits for its rollback

    def begin(self) -> None:
        self._savepoints = itertools.count(1)
        self.aborted = False
        super().execute("BEGIN")

    def rollback(self) -> None:
        super().execute("ROLLBACK")

    @contextlib.contextmanager
    def _savepoint(self) -> Iterator[None]:
        if not self.savepoints:
            try:
                yield
            except Exception:
                self.aborted = True
                raise
            return
        name = f"pd_prepare_{next(self._savepoints)}"
        super().execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            super().execute(f"ROLLBACK TO SAVEPOINT {name}")
            super().execute(f"RELEASE SAVEPOINT {name}")
            raise
        super().execute(f"RELEASE SAVEPOINT {name}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._savepoint():
            yield

    def execute(self, sql: str) -> None:
        if sql.strip().rstrip(";").strip().upper() == "ROLLBACK":
            return  # the failed statement's savepoint was rolled back already
        if self.aborted:  # the failed step's registry row, written after its error: rolled back anyway
            return
        sql = self.empty(sql)
        with self._savepoint():
            super().execute(sql)

    def query(self, sql: str) -> list[tuple]:
        with self._savepoint():
            return super().query(sql)

    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        with self._savepoint():
            return super().fetch(sql)

    def columns(self, table: exp.Table) -> list[tuple[str, str]]:
        with self._savepoint():
            return super().columns(table)

    def row_count(self, target: exp.Table) -> int:
        """A view's query over the real inputs is planned (EXPLAIN), not run; a material is empty."""
        self.probe(self.render(exp.select(exp.func("count", exp.Star())).from_(target.copy())))
        return 0

    def probe(self, sql: str) -> None:
        """Plan and bind a query without running it."""
        self.query(f"EXPLAIN {sql}")

    def empty(self, sql: str) -> str:
        """A statement that writes a query's rows, made to write none (the query still planned and bound)."""
        creates = bool(_CREATE_TABLE.match(sql))
        if not creates and not _INSERT.match(sql):
            return sql
        if creates and self.with_no_data:
            if not _is_create_as(sql, self.dialect):
                return sql
            return sql.rstrip().rstrip(";") + "\nWITH NO DATA"
        try:
            statement = sqlglot.parse_one(sql, read=self.dialect)
        except Exception:  # sqlglot raises several error types; what it cannot read runs as written
            return sql
        query = statement.expression if isinstance(statement, (exp.Create, exp.Insert)) else None
        if not isinstance(query, exp.Query):
            return sql
        statement.set("expression", exp.select("*").from_(query.subquery("_pd_prepare")).limit(0))
        return statement.sql(self.dialect)


def _is_create_as(sql: str, dialect: str) -> bool:
    try:
        statement = sqlglot.parse_one(sql, read=dialect)
    except Exception:  # sqlglot raises several error types
        return False
    return isinstance(statement, exp.Create) and isinstance(statement.expression, exp.Query)


_CLASSES: dict[type[Session], type[Session]] = {}


def preparing(session: Session) -> PreparingSession:
    """The open session, now preparing (its class mixed with `PreparingSession`)."""
    base = type(session)
    if base not in _CLASSES:
        attrs: dict[str, Any] = {"with_no_data": base.dialect == POSTGRES, "savepoints": base.dialect == POSTGRES}
        _CLASSES[base] = type(f"Preparing{base.__name__}", (PreparingSession, base), attrs)
    session.__class__ = _CLASSES[base]
    assert isinstance(session, PreparingSession)
    return session


def prepare_on_server(project: Project, plan: RunPlan, engine: WarehouseEngine, errors: ErrorCollector) -> int:
    """Prepare every step in a rolled-back transaction on the connection; failures go to `errors`. The
    number of steps prepared."""
    plan = RunPlan(plan.project_name, [s for s in plan.steps if s.path not in errors.failed], plan.notes)

    def in_transactions(opened: Session, stack: contextlib.ExitStack) -> int:
        session = preparing(opened)
        while True:  # more than once only without savepoints: a new transaction after each failed step
            session.begin()
            try:
                prepared, again = _prepare(project, plan, session, errors)
            finally:
                session.rollback()
            if not again:
                return prepared

    return on_connection(engine, errors, in_transactions)


def on_connection(
    engine: WarehouseEngine, errors: ErrorCollector, prepare: Callable[[Session, contextlib.ExitStack], int]
) -> int:
    """`prepare` on a session of the connection (closed at the end, with what `prepare` pushes on the stack);
    a failure to connect or to prepare goes to `errors` as one located error, never a traceback."""
    try:
        opening = engine.session()
        try:
            opened = opening.__enter__()
        except ProfilesError as exc:
            if exc.hint:
                raise
            hint = "validate prepares the SQL on the connection; --no-prepare compiles it without one"
            raise ProfilesError(exc.message, file=exc.file, line=exc.line, key=exc.key, hint=hint) from exc
        with contextlib.ExitStack() as stack:
            stack.push(opening)
            return prepare(opened, stack)
    except ProfilesError as exc:
        errors.add(exc)
    except Exception as exc:  # the connection itself: one located error rather than a traceback
        errors.add(ProfilesError(f"validate could not prepare the SQL on {engine.kind}: {summary(exc, named=True)}"))
    return 0


@runtime_checkable
class Preparing(Protocol):
    """What `_prepare` needs of a preparing session beyond `Session`: whether a failed statement leaves it
    usable, and how it binds a query without running it."""

    savepoints: bool

    def probe(self, sql: str) -> None: ...


def _prepare(
    project: Project,
    plan: RunPlan,
    session: Session,
    errors: ErrorCollector,
    *,
    input_schema: str | None = None,
) -> tuple[int, bool]:
    """The steps prepared, and whether to start again in a new transaction (a step failed where a failed
    statement aborts the transaction). `input_schema`: where unqualified input tables are, when the run's
    own schema is another (a scratch schema)."""
    assert isinstance(session, Preparing)
    # no beat_sessions: no heartbeat thread; full_refresh: every step's whole build is prepared (never an earlier
    # run's material reused within its time grain, nor a previous table moved by an incremental step)
    run = ProfilesRun(project, plan, session, lock_wait_seconds=0, full_refresh=True)
    run.start(check_inputs=False)
    assert run.context is not None
    if input_schema is not None:
        run.context.input_schema = input_schema
    with errors.item("inputs"):
        local.inputs.check_inputs(session, project, run.context, run.steps, run.file_tables)
    if "inputs" in errors.failed:
        return 0, False
    prepared = 0
    for step in run.steps:
        if step.path in errors.failed or any("/".join(dep) in errors.failed for dep in step.deps):
            errors.failed.add(step.path)
            continue
        with errors.item(step.path):
            check_writable(step, run.compile(step), session.dialect)
            _prepare_step(run, step, session)
            prepared += 1
        if step.path in errors.failed and not session.savepoints:
            return prepared, True
    return prepared, False


def _prepare_step(run: ProfilesRun, step: Step, session: Preparing) -> None:
    try:
        run.execute_step(step)
    except ProfilesError as failure:
        found = local._failing_vars(run, step, probe=session.probe) if session.savepoints else []
        if not found:
            raise
        raise ProfilesErrors(found) from failure
