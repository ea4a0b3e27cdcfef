"""Runs plan steps against a warehouse: the one step executor behind the Dagster assets and the CLI.

A run takes a new seq_no, writes every selected step's material as a new table, and only when all
of them succeeded repoints the stable pb views, together. A failed run leaves the views alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlglot import exp

from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.steps import RunPlan, Step, StepKey, StepKind
from profiles_dagster.project.model import Project
from profiles_dagster.sql import registry
from profiles_dagster.sql.compiler import CompileContext, StepProgram, compile_step, csv_path
from profiles_dagster.sql.names import material_name, table
from profiles_dagster.sql.stitcher import run_stitcher
from profiles_dagster.warehouse.base import Session, Warehouse

log = logging.getLogger("profiles_dagster")


@dataclass(frozen=True)
class StepResult:
    step: Step
    table: exp.Table
    row_count: int
    seconds: float
    sql: str
    columns: list[tuple[str, str]]
    stats: dict[str, object] = field(default_factory=dict)


def parse_time(text: str | None) -> datetime | None:
    """pb's --begin_time/--end_time: ISO 8601, `Z` allowed; stored as naive UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ProfilesError(f"invalid time '{text}': use ISO 8601, e.g. 2025-11-01T00:00:00Z") from exc
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


class ProfilesRun:
    """One run of a (subset of a) plan. Use as a context manager; iterate `execute()`; then `publish()`."""

    def __init__(
        self,
        project: Project,
        plan: RunPlan,
        session: Session,
        *,
        selected: Iterable[StepKey] | None = None,
        end_time: datetime | None = None,
        begin_time: datetime | None = None,
        source_dialect: str | None = None,
    ) -> None:
        self.project = project
        self.plan = plan
        self.session = session
        self.schema = session.schema
        keys = set(selected) if selected is not None else set(plan.by_key)
        self.steps = plan.ordered(keys)
        self.end_time = end_time or now_utc()
        self.begin_time = begin_time
        # the dialect the project's SQL is written in: profiles_dagster.yaml, else the engine's own
        self.source_dialect = source_dialect or project.settings.dialect or session.dialect
        self.seq_no = 0
        self.results: list[StepResult] = []
        self.published = False

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self, *, check_inputs: bool = True) -> None:
        session = self.session
        session.create_schema(self.schema)
        for ddl in registry.create_statements(self.schema):
            session.run(ddl)
        self.seq_no = int(session.query(session.render(registry.next_seq_no(self.schema)))[0][0]) + 1
        session.run(
            registry.insert(
                self.schema,
                registry.RUNS,
                {
                    "seq_no": self.seq_no,
                    "project": self.project.name,
                    "status": "running",
                    "started_at": now_utc(),
                    "end_time": self.end_time,
                },
            )
        )
        self.materials = self._materials()
        self.context = CompileContext(
            self.project,
            self.plan,
            session.dialect,
            self.source_dialect,
            self.materials,
            self.end_time,
            self.begin_time,
        )
        if check_inputs:
            self._check_inputs()

    def _materials(self) -> dict[StepKey, exp.Table]:
        """New names for selected steps; the latest complete material for the upstream they read."""
        selected = {s.key for s in self.steps}
        materials = {
            s.key: table(material_name(s.model_name, s.content_hash, self.seq_no), self.schema) for s in self.steps
        }
        missing = []
        for step in self.plan.ordered(self.plan.upstream(selected) - selected):
            rows = self.session.query(
                self.session.render(
                    registry.latest_material(self.schema, self.project.name, step.path, step.content_hash)
                )
            )
            if rows:
                materials[step.key] = table(rows[0][0], self.schema)
            else:
                missing.append(step.path)
        if missing:
            raise ProfilesError(
                f"the selection reads {', '.join(missing)}, never materialized with their current definition; "
                "include them in the selection (or materialize them first)"
            )
        return materials

    def _check_inputs(self) -> None:
        """A missing input table stops the run naming it; pb would silently prune the models."""
        needed = {name for s in self.steps for name in s.external_inputs}
        for name in sorted(needed):
            source = self.context.input_table(name)
            if isinstance(source.this, exp.ReadCSV):
                exists = csv_path(self.project, name).is_file()
            else:
                exists = self.session.table_exists(source)
            if not exists:
                inp = self.project.inputs[name]
                raise ProfilesError(
                    f"input '{name}' reads table {source.sql(self.session.dialect)}, which does not exist or is not "
                    "readable",
                    file=inp.origin.file,
                    line=inp.origin.line,
                    key=f"inputs.{name}.app_defaults",
                )

    def compile(self, step: Step) -> StepProgram:
        return compile_step(step, self.context)

    def compiled_sql(self, step: Step) -> str:
        """The step's SQL as it would run (the stitcher's: the observations it stitches)."""
        return self.compile(step).sql(self.session.dialect)

    def execute(self) -> Iterator[StepResult]:
        for step in self.steps:
            yield self.execute_step(step)

    def execute_step(self, step: Step) -> StepResult:
        session = self.session
        program = self.compile(step)
        start = time.perf_counter()
        stats: dict[str, object] = {}
        try:
            if step.kind is StepKind.ID_STITCHER:
                sql = program.observations.sql(session.dialect, pretty=True)
                result = run_stitcher(
                    session,
                    observations=program.observations,
                    target=program.target,
                    main_id_column=self.project.entities[step.entity].main_id_column,
                    scratch_prefix=f"_pd_{step.content_hash}_{self.seq_no}",
                )
                stats = {
                    "stitcher_rounds": result.rounds,
                    "stitcher_ids": result.ids,
                    "stitcher_edges": result.edges,
                    "stitcher_clusters": result.clusters,
                }
            else:
                sql = program.sql(session.dialect)
                for statement in program.statements:
                    session.run(statement)
        except ProfilesError:
            self._record(step, program.target, "failed", None, time.perf_counter() - start)
            raise
        except Exception as exc:  # the engine's own error, named with the step
            self._record(step, program.target, "failed", None, time.perf_counter() - start)
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = f" (defined at {step.origin})" if step.origin else ""
            raise ProfilesError(f"step '{step.path}' failed in the warehouse{where}: {message}") from exc
        seconds = time.perf_counter() - start
        rows = session.row_count(program.target)
        self._record(step, program.target, "complete", rows, seconds)
        result = StepResult(step, program.target, rows, seconds, sql, session.columns(program.target), stats)
        self.results.append(result)
        log.info("%s -> %s: %d rows in %.2fs", step.path, program.target.name, rows, seconds)
        return result

    def _record(self, step: Step, target: exp.Table, status: str, rows: int | None, seconds: float) -> None:
        self.session.run(
            registry.insert(
                self.schema,
                registry.MATERIALS,
                {
                    "seq_no": self.seq_no,
                    "project": self.project.name,
                    "step": step.path,
                    "content_hash": step.content_hash,
                    "table_name": target.name,
                    "status": status,
                    "row_count": rows,
                    "seconds": round(seconds, 6),
                    "finished_at": now_utc(),
                },
            )
        )

    def publish(self) -> list[str]:
        """Repoint the stable views of the steps run here, in one transaction."""
        views = [(table(r.step.view_name, self.schema), r.table) for r in self.results if r.step.view_name]
        self.session.point_views(views)
        self.finish("complete")
        self.published = True
        return [v.name for v, _ in views]

    def finish(self, status: str) -> None:
        self.session.run(registry.finish_run(self.schema, self.seq_no, status, now_utc()))

    def fail(self) -> None:
        if not self.seq_no:
            return
        try:
            self.finish("failed")
        except Exception:  # the original failure matters more than this bookkeeping
            log.warning("could not mark run %s failed", self.seq_no)


def run_all(
    project: Project,
    plan: RunPlan,
    warehouse: Warehouse,
    *,
    selected: Iterable[StepKey] | None = None,
    end_time: datetime | None = None,
    begin_time: datetime | None = None,
    on_result=None,
) -> tuple[int, list[StepResult]]:
    """Open a session, run the selection, publish; the CLI's whole run."""
    with warehouse.session() as session:
        run = ProfilesRun(project, plan, session, selected=selected, end_time=end_time, begin_time=begin_time)
        try:
            run.start()
            for result in run.execute():
                if on_result:
                    on_result(result)
            run.publish()
        except BaseException:
            run.fail()
            raise
        return run.seq_no, run.results
