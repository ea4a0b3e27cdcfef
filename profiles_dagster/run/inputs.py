"""The inputs a run reads: `csv:`/`s3:` files loaded into tables of the run, and each input checked before
any step runs (a missing table or a broken pb contract stops the run naming the input; pb would silently
prune the models that read it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from sqlglot import exp

from profiles_dagster.errors import ProfilesError, summary
from profiles_dagster.plan.steps import Step, StepKind
from profiles_dagster.project.model import Input, Project
from profiles_dagster.sql.compiler import CompileContext, file_table_name
from profiles_dagster.sql.names import table
from profiles_dagster.warehouse import files
from profiles_dagster.warehouse.base import Session

log = logging.getLogger("profiles_dagster")


def file_tables(
    project: Project, steps: Iterable[Step], session: Session, schema: str, seq_no: int
) -> dict[str, exp.Table]:
    """`csv:`/`s3:` inputs the engine cannot read in place: the run loads each into a table of its own."""
    return {
        name: table(file_table_name(name, seq_no), schema)
        for name in sorted({n for s in steps for n in s.external_inputs})
        if files.is_file_input(project, name) and not session.reads_in_place(files.location(project, name))
    }


def check_inputs(
    session: Session,
    project: Project,
    context: CompileContext,
    steps: Iterable[Step],
    loaded: dict[str, exp.Table],
    *,
    continuing: int | None = None,
) -> None:
    """Load the file inputs into `loaded`'s tables (`continuing` run N: N's loaded tables stay); then every
    input must exist and keep its contract."""
    needed = {name for s in steps for name in s.external_inputs}
    for name in sorted(needed):
        source = context.input_table(name)
        if name in loaded:  # a missing file or object stops the load, naming the input
            _load_file(session, project, name, source, continuing)
            exists = True
        elif isinstance(source.this, exp.ReadCSV):  # read in place: s3 objects are checked by the engine
            if project.inputs[name].spec.app_defaults.s3 is None:
                with files.local_copy(project, name):  # the file itself: stops naming it if missing
                    pass
            exists = True
        else:
            exists = session.table_exists(source)
        inp = project.inputs[name]
        if not exists:
            raise missing_input(name, inp, source, session)
        promised = inp.spec.contract.with_columns if inp.spec.contract else []
        if promised and (inp.spec.app_defaults.s3 is None or name in loaded):  # pb's contract
            have = {c.lower() for c, _ in session.columns(source)}
            missing = [c.name for c in promised if c.name.lower() not in have]
            if missing:
                at = inp.origin.at("contract.with_columns")
                raise ProfilesError(
                    f"input '{name}' breaks its contract: {source.sql(session.dialect)} has no column(s) "
                    f"{', '.join(missing)}",
                    file=at.file,
                    line=at.line,
                    column=at.column,
                    key=at.key,
                )


def missing_input(name: str, inp: Input, source: exp.Table, session: Session) -> ProfilesError:
    """An input whose table is not there: the name as written, where it was looked for, and why there."""
    written = inp.spec.app_defaults.source
    parts = len(exp.to_table(written).parts)
    why = {
        1: f"an unqualified name is in the connection's schema ({source.db}), as pb resolves it",
        2: "a schema-qualified name is in the connection's database",
        3: session.database_part_meaning(),
    }.get(parts, "")
    at = inp.origin.at("app_defaults.table" if inp.spec.app_defaults.table else "app_defaults.view")
    return ProfilesError(
        f"input '{name}' reads table '{written}', looked for as {source.sql(session.dialect)}, which does not "
        f"exist or is not readable"
        + (f" ({why}; unquoted names fold as the project's SQL dialect folds them)" if why else ""),
        file=at.file,
        line=at.line,
        column=at.column,
        key=at.key,
    )


def _load_file(session: Session, project: Project, name: str, target: exp.Table, continuing: int | None) -> None:
    """Load a `csv:`/`s3:` input into its table, once per run (continuing run N: N's table, if loaded)."""
    if continuing is not None and session.table_exists(target):
        log.info("input %s: reading %s, loaded by run %d", name, target.name, continuing)
        return
    start = time.perf_counter()
    rows = files.load(session, project, name, target)
    seconds = time.perf_counter() - start
    where = files.location(project, name)
    log.info("input %s: loaded %s into %s: %d rows in %.2fs", name, where, target.name, rows, seconds)


def drop_file_tables(session: Session, loaded: dict[str, exp.Table], written: Iterable[Step]) -> None:
    """The tables a run loaded its file inputs into, once no material of the run reads them (a view built on
    an input keeps its table; `cleanup` drops what a failed run left, as scratch tables)."""
    views = [s for s in written if s.kind is StepKind.SQL_MODEL and s.payload.output_type != "table"]
    read_by_views = {n for step in views for n in step.external_inputs}
    for name, target in loaded.items():
        if name in read_by_views:
            continue
        try:
            session.drop_table(target)
        except Exception as exc:
            log.warning("could not drop %s: %s", target.name, summary(exc, named=True))
