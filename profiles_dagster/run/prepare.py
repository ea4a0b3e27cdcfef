"""`validate` proves a project's SQL runs on DuckDB, writing nothing to the user's database.

Every step runs through the run's own executor (`ProfilesRun`) on a scratch in-memory DuckDB, in the plan's
order, so each step reads its upstream's (empty) material as a run would. Each input is an empty table with
the columns and types of the real table where the connection's DuckDB file (or an `attach:`ed one) has it,
read through a read-only connection; else with the columns the project reads, typed from their use (the
inference `sample-data` writes its tables with). On empty tables every statement is cheap, and the engine
still binds it: an unknown function, `sum(VARCHAR)`, a window function where an aggregate is needed or a
missing column fails here, not at `run`.

A var table that fails is prepared again var by var (each with the vars it reads), so every failing var is
named with its file:line, not only the first the engine met; a failed step's dependents are skipped, the
independent steps still run.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot import exp

from profiles_dagster.errors import ErrorCollector, ProfilesError, ProfilesErrors, summary
from profiles_dagster.offline import check_writable, offline_context
from profiles_dagster.plan.payloads import MappedPayload, VarTablePayload
from profiles_dagster.plan.steps import RunPlan, Step, StepKey
from profiles_dagster.plan.vars import PlannedVar
from profiles_dagster.project.model import Project
from profiles_dagster.run import blame, inputs
from profiles_dagster.runner import ProfilesRun
from profiles_dagster.sampledata.columns import NAMED_TABLE, input_columns, named_tables, table_key
from profiles_dagster.sampledata.rows import column_types
from profiles_dagster.sampledata.target import sample_schema
from profiles_dagster.sql.compiler import CompileContext, StepProgram, compile_step
from profiles_dagster.sql.dialects import DUCKDB
from profiles_dagster.warehouse import files
from profiles_dagster.warehouse.base import Session
from profiles_dagster.warehouse.duckdb import DuckDBConfig, DuckDBEngine

Columns = list[tuple[str, exp.DataType]]


@dataclass
class Prepared:
    """What was prepared: the steps that ran, and where each input's columns came from."""

    steps: int = 0
    real: list[str] = field(default_factory=list)  # inputs typed from their table in the DuckDB file
    inferred: list[str] = field(default_factory=list)  # inputs typed from the project's use of their columns
    notes: list[str] = field(default_factory=list)


def prepare(project: Project, plan: RunPlan, engine: DuckDBConfig | None, errors: ErrorCollector) -> Prepared:
    """Run every step on empty inputs in a scratch DuckDB; failures go to `errors` (steps already in
    `errors.failed`, e.g. those that did not compile, are skipped with their dependents)."""
    # the steps that compiled (a failed step's dependents are in `failed` too): those the inference reads
    plan = RunPlan(plan.project_name, [s for s in plan.steps if s.path not in errors.failed], plan.notes)
    prepared = Prepared()
    try:
        _prepare(project, plan, engine, errors, prepared)
    except ProfilesError as exc:
        errors.add(exc)
    except Exception as exc:  # the scratch database itself: one located error rather than a traceback
        errors.add(ProfilesError(f"validate could not prepare the SQL on DuckDB: {summary(exc, named=True)}"))
    return prepared


def _prepare(
    project: Project,
    plan: RunPlan,
    engine: DuckDBConfig | None,
    errors: ErrorCollector,
    prepared: Prepared,
) -> None:
    if engine is not None:  # the run's own schema
        schema = engine.output_schema
    else:  # where sample-data and a first local run put it
        offline = offline_context(project, plan, DUCKDB)
        catalogs = {offline.input_table(n).catalog for n in project.inputs if not files.is_file_input(project, n)}
        schema = sample_schema(None, {c for c in catalogs if c})
    scratch = DuckDBEngine.model_validate({"database": ":memory:", "output_schema": schema})
    with scratch.session() as session:
        run = ProfilesRun(project, plan, session, lock_wait_seconds=0)
        run.start(check_inputs=False)
        assert run.context is not None
        compiled = _compile_all(run, errors)
        plan = RunPlan(plan.project_name, [s for s in plan.steps if s.key in compiled], plan.notes)
        needed = sorted({n for s in run.steps for n in s.external_inputs if not files.is_file_input(project, n)})
        tables = {name: run.context.input_table(name) for name in needed}
        # tables a sql model reads by name, not as an input
        named = named_tables(
            (n for p in compiled.values() for n in p.nodes),
            {table_key(t) for t in [*tables.values(), *run.materials.values()]},
        )
        tables.update(named)
        real = _real_columns(engine, tables, prepared)
        missing = [n for n in needed if n not in real] + [NAMED_TABLE + n for n in named if n not in real]
        try:
            inferred = _inferred_columns(project, plan, missing, compiled, run.context)
        except ProfilesError as exc:  # a step the inference compiles fails: the run would stop there too
            errors.add(exc)
            return
        made: set[tuple[str, ...]] = set()
        for name, table in tables.items():
            if table_key(table) in made:
                continue  # another input reads the same table
            made.add(table_key(table))
            if name in needed:
                (prepared.real if name in real else prepared.inferred).append(name)
            elif name not in real:
                prepared.notes.append(
                    f"{name}, which a sql model reads by name, is no table of the connection: prepared with the "
                    "columns the project reads (the run needs it)"
                )
            columns = real.get(name) or inferred.get(name) or inferred.get(NAMED_TABLE + name) or []
            _empty_table(session, table, columns)
        with errors.item("inputs"):
            inputs.check_inputs(session, project, run.context, run.steps, run.file_tables)
        for step in run.steps:
            if step.path in errors.failed or any("/".join(dep) in errors.failed for dep in step.deps):
                errors.failed.add(step.path)
                continue
            with errors.item(step.path):
                _prepare_step(run, step)
                prepared.steps += 1


def _compile_all(run: ProfilesRun, errors: ErrorCollector) -> dict[StepKey, StepProgram]:
    """Each step compiled once (the run keeps it for executing), its SQL written for DuckDB with sqlglot's
    refusals raised; a step that fails is an error, and the steps that read it are left out."""
    compiled: dict[StepKey, StepProgram] = {}
    for step in run.steps:
        if step.path in errors.failed or any("/".join(dep) in errors.failed for dep in step.deps):
            errors.failed.add(step.path)
            continue
        with errors.item(step.path):
            program = run.compile(step)
            # the scratch session runs these texts as written here, not writing each statement again
            run.session.written_as.update(
                (id(node), (node, text)) for node, text in check_writable(step, program, DUCKDB)
            )
            compiled[step.key] = program
    return compiled


def _prepare_step(run: ProfilesRun, step: Step) -> None:
    try:
        run.execute_step(step)
    except ProfilesError as failure:
        found = _failing_vars(run, step)
        if not found:
            raise
        raise ProfilesErrors(found) from failure


def _failing_vars(run: ProfilesRun, step: Step, probe: Callable[[str], object] | None = None) -> list[ProfilesError]:
    """The vars of a failed var table that fail on their own (with the vars they read), in the order they
    are computed; a var reading a failed one is not tried. Empty when the step fails without any of its vars
    (its members' table), or the step has no vars. `probe` runs a trial's query (default: runs it on the
    session; on a server warehouse an EXPLAIN, which binds it without reading the real inputs)."""
    probe = probe or run.session.query
    payload = step.payload
    if not isinstance(payload, (VarTablePayload, MappedPayload)) or not payload.vars:
        return []
    by_name = {pv.var.name: pv for pv in payload.vars}
    if _trial_error(run, step, [], probe) is not None:
        return []
    failed: set[str] = set()
    found: list[ProfilesError] = []
    for pv in payload.vars:
        if any(ref in failed for ref in pv.refs):
            failed.add(pv.var.name)
            continue
        error = _trial_error(run, step, _with_refs(pv, by_name, payload.vars), probe)
        if error is not None:
            failed.add(pv.var.name)
            found.append(blame.var_failure(step, pv.var, error, f"on {run.session.dialect}"))
    return found


def _with_refs(pv: PlannedVar, by_name: dict[str, PlannedVar], order: tuple[PlannedVar, ...]) -> list[PlannedVar]:
    """The var and every var of its table it reads, directly or not, in the table's order."""
    wanted = {pv.var.name}
    todo = list(pv.refs)
    while todo:
        name = todo.pop()
        if name in by_name and name not in wanted:
            wanted.add(name)
            todo.extend(by_name[name].refs)
    return [v for v in order if v.var.name in wanted]


def _trial_error(
    run: ProfilesRun, step: Step, vars_: list[PlannedVar], probe: Callable[[str], object]
) -> BaseException | None:
    """The engine's error for the step's query computing only `vars_`, None when it runs."""
    payload = step.payload
    names = {pv.var.name for pv in vars_}
    trial_payload: VarTablePayload | MappedPayload
    if isinstance(payload, VarTablePayload):
        declared = tuple(n for n in payload.declared if n in names)
        trial_payload = dataclasses.replace(payload, vars=tuple(vars_), declared=declared)
    elif isinstance(payload, MappedPayload):
        trial_payload = dataclasses.replace(payload, vars=tuple(vars_))
    else:
        return None
    trial = dataclasses.replace(step, payload=trial_payload)
    assert run.context is not None
    try:
        program = compile_step(trial, run.context)  # not run.compile: a trial step has the real step's key
        for statement in program.statements:
            query = statement.expression if isinstance(statement, exp.Create) else statement
            if isinstance(query, exp.Query):
                probe(run.session.render(query))
    except Exception as exc:
        return exc
    return None


def _has_file(engine: DuckDBConfig | None) -> bool:
    return engine is not None and engine.database != ":memory:" and Path(engine.database).is_file()


def _real_columns(engine: DuckDBConfig | None, tables: dict[str, exp.Table], prepared: Prepared) -> dict[str, Columns]:
    """Each input's columns and types in the connection's DuckDB file (and its `attach:`ed ones), read
    through a read-only connection; inputs it has no table for are left out."""
    if engine is None or not _has_file(engine):
        return {}
    import duckdb

    try:
        connection = duckdb.connect(engine.database, read_only=True)
    except duckdb.Error as exc:  # another process writes it: the project's use types the inputs
        prepared.notes.append(
            f"could not read {engine.database} ({summary(exc)}): the inputs are prepared with the columns the "
            "project reads"
        )
        return {}
    found: dict[str, Columns] = {}
    with contextlib.closing(connection):
        for entry in engine.attach:
            if Path(str(entry["path"])).is_file():
                with contextlib.suppress(duckdb.Error):
                    connection.execute(_attach(exp.Literal.string(str(entry["path"])), str(entry["alias"]), True))
        for name, table in tables.items():
            try:
                rows = connection.execute(f"DESCRIBE SELECT * FROM {table.sql(DUCKDB)}").fetchall()
            except duckdb.Error:
                continue
            found[name] = [(str(r[0]), _data_type(str(r[1]))) for r in rows]
    return found


def _data_type(text: str) -> exp.DataType:
    """A DuckDB type as DESCRIBE writes it; one sqlglot does not know is kept as DuckDB wrote it."""
    try:
        return exp.DataType.build(text, dialect=DUCKDB)
    except Exception:  # sqlglot raises several error types for types it cannot parse
        return exp.DataType.build(text, dialect=DUCKDB, udt=True)


def _inferred_columns(
    project: Project,
    plan: RunPlan,
    names: list[str],
    compiled: Mapping[StepKey, StepProgram] | None = None,
    ctx: CompileContext | None = None,
) -> dict[str, Columns]:
    """The columns the project reads of each input, typed from their use (sample-data's inference)."""
    if not names:
        return {}
    found = input_columns(project, plan, compiled, ctx)
    return {name: column_types(list(found[name].values())) for name in names if name in found}


def _empty_table(session: Session, table: exp.Table, columns: Columns) -> None:
    """The input's table, empty, where the run's SQL looks for it (its catalog attached in memory)."""
    catalog = table.catalog
    if catalog and catalog.lower() not in _catalogs(session):
        session.execute(_attach(exp.Literal.string(":memory:"), catalog, False))
    if table.db:
        where = exp.Table(db=table.args["db"].copy(), catalog=table.args["catalog"].copy() if catalog else None)
        session.run(exp.Create(kind="SCHEMA", this=where, exists=True))
    if not columns:  # nothing the project reads is known: one column keeps the table valid
        columns = [("_pd_empty", exp.DataType.build("VARCHAR"))]
    session.replace_with_empty_table(table, columns)


def _catalogs(session: Session) -> set[str]:
    return {str(r[0]).lower() for r in session.query("SELECT database_name FROM duckdb_databases()")}


def _attach(path: exp.Literal, alias: str, read_only: bool) -> str:
    name = exp.to_identifier(alias, quoted=True).sql(DUCKDB)
    return f"ATTACH {path.sql(DUCKDB)} AS {name}" + (" (READ_ONLY)" if read_only else "")
