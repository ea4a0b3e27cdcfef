"""Runs plan steps against a warehouse: the one step executor behind the Dagster assets and the CLI.

A run takes the output schema's run lock (`lock.RunLock`: a second run waits or refuses, naming this
one; a killed run's lock is taken over), then a new seq_no, writes every selected step's material as a
new table, and only when all of them succeeded repoints the stable pb views, together. A failed or
killed run leaves the views on the previous complete run. The registry (`sql/registry.py`) records
each run and material with its status and timings, so a later run or `profiles-dagster cleanup` can
settle what a killed run left behind (`maintenance.py`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlglot import exp

from profiles_dagster.errors import ProfilesError
from profiles_dagster.lock import RunLock, ensure_registry, open_session
from profiles_dagster.maintenance import cleanup, recover_unfinished_runs
from profiles_dagster.plan.steps import RunPlan, Step, StepKey, StepKind
from profiles_dagster.project.model import Project
from profiles_dagster.sql import registry
from profiles_dagster.sql.compiler import CompileContext, StepProgram, compile_step, csv_path
from profiles_dagster.sql.names import material_name, table
from profiles_dagster.sql.stitcher import run_stitcher_step
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
        lock_wait_seconds: float | None = None,
        full_refresh: bool = False,
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
        settings = project.settings.run_lock
        self.lock = RunLock(
            session,
            self.schema,
            project.name,
            wait_seconds=settings.wait_seconds if lock_wait_seconds is None else lock_wait_seconds,
            stale_after_seconds=settings.stale_after_seconds,
        )
        self.recovered: list[str] = []  # what this run settled for runs killed before it
        self.full_refresh = full_refresh  # rebuild incremental steps (the id stitcher) from all rows

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self, *, check_inputs: bool = True) -> None:
        session = self.session
        ensure_registry(session, self.schema)
        self.lock.acquire()
        try:
            self.recovered = recover_unfinished_runs(session, self.schema)
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
                        "run_id": self.lock.run_id,
                        "pid": self.lock.pid,
                        "host": self.lock.host,
                        "heartbeat_at": now_utc(),
                    },
                )
            )
            self.lock.claim(self.seq_no)
        except BaseException:
            if not self.seq_no:
                self.lock.release()
            raise
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
        reused: list[tuple[Step, str]] = []
        for step in self.plan.ordered(self.plan.upstream(selected) - selected):
            rows = self.session.query(
                self.session.render(
                    registry.latest_material(self.schema, self.project.name, step.path, step.content_hash)
                )
            )
            if rows and self.session.table_exists(table(rows[0][0], self.schema)):
                materials[step.key] = table(rows[0][0], self.schema)
                reused.append((step, rows[0][0]))
            else:
                missing.append(step.path)
        if missing:
            raise ProfilesError(
                f"the selection reads {', '.join(missing)}, never materialized with their current definition; "
                "include them in the selection (or materialize them first)"
            )
        for step, name in reused:  # what this run reads from earlier runs: retention keeps it while needed
            self.session.run(
                registry.insert(
                    self.schema,
                    registry.MATERIALS,
                    {
                        "seq_no": self.seq_no,
                        "project": self.project.name,
                        "step": step.path,
                        "content_hash": step.content_hash,
                        "table_name": name,
                        "status": "reused",
                        "started_at": now_utc(),
                        "finished_at": now_utc(),
                    },
                )
            )
        return materials

    def _check_inputs(self) -> None:
        """A missing input table stops the run naming it; pb would silently prune the models."""
        needed = {name for s in self.steps for name in s.external_inputs}
        for name in sorted(needed):
            source = self.context.input_table(name)
            if isinstance(source.this, exp.ReadCSV):  # s3 objects are checked by the engine when read
                exists = (
                    self.project.inputs[name].spec.app_defaults.s3 is not None or csv_path(self.project, name).is_file()
                )
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
        target = self.materials[step.key]
        self.lock.heartbeat()
        self._record_start(step, target)
        start = time.perf_counter()
        stats: dict[str, object] = {}
        try:
            program = self.compile(step)
        except Exception as exc:  # a bug of ours, not the user's: still one clear error, named with the step
            self._record(step, target, "failed", None, time.perf_counter() - start)
            if isinstance(exc, ProfilesError):
                raise
            where = f" (defined at {step.origin})" if step.origin else ""
            raise ProfilesError(f"step '{step.path}' could not be compiled{where}: {_first_line(exc)}") from exc
        try:
            if step.kind is StepKind.ID_STITCHER:
                sql = program.observations.sql(session.dialect, pretty=True)
                stats = run_stitcher_step(  # incremental unless full_refresh; records its checkpoint
                    session,
                    self.project,
                    step,
                    observations=program.observations,
                    target=program.target,
                    schema=self.schema,
                    seq_no=self.seq_no,
                    full_refresh=self.full_refresh,
                    table_exists=session.table_exists,
                )
            else:
                sql = program.sql(session.dialect)
                for statement in program.statements:
                    session.run(statement)
        except ProfilesError:
            self._record(step, target, "failed", None, time.perf_counter() - start)
            raise
        except Exception as exc:  # the engine's own error, named with the step
            self._record(step, target, "failed", None, time.perf_counter() - start)
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = f" (defined at {step.origin})" if step.origin else ""
            raise ProfilesError(f"step '{step.path}' failed in the warehouse{where}: {message}") from exc
        seconds = time.perf_counter() - start
        rows = session.row_count(program.target)
        self._record(step, program.target, "complete", rows, seconds)
        self.lock.heartbeat()
        result = StepResult(step, program.target, rows, seconds, sql, session.columns(program.target), stats)
        self.results.append(result)
        log.info("%s -> %s: %d rows in %.2fs", step.path, program.target.name, rows, seconds)
        return result

    def _record_start(self, step: Step, target: exp.Table) -> None:
        """Registered before the table exists: a kill mid-step leaves a `running` row cleanup can find."""
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
                    "status": "running",
                    "started_at": now_utc(),
                },
            )
        )

    def _record(self, step: Step, target: exp.Table, status: str, rows: int | None, seconds: float) -> None:
        self.session.run(
            registry.finish_material(self.schema, self.seq_no, step.path, status, rows, seconds, now_utc())
        )

    def reject(self, step: Step) -> None:
        """A blocking check failed on this step's material: later runs must not reuse it as their upstream."""
        self.session.run(
            registry.update(
                self.schema,
                registry.MATERIALS,
                {"status": "rejected"},
                exp.and_(registry.eq("seq_no", self.seq_no), registry.eq("step", step.path)),
            )
        )

    def publish(self) -> list[str]:
        """Repoint the stable views of the steps run here, together, and mark the run complete.

        The pointers are recorded (status `publishing`) before the views move, so a run killed while
        publishing is finished by the next one (roll forward); until then readers see the previous run.
        """
        views = [(table(r.step.view_name, self.schema), r.table) for r in self.results if r.step.view_name]
        session = self.session
        self.lock.heartbeat()
        with session.transaction():
            for statement in registry.record_views(
                self.schema, self.project.name, self.seq_no, [(v.name, m.name) for v, m in views], now_utc()
            ):
                session.run(statement)
            session.run(
                registry.update(
                    self.schema, registry.RUNS, {"status": "publishing"}, registry.eq("seq_no", self.seq_no)
                )
            )
        session.point_views(views)
        session.run(registry.finish_run(self.schema, self.seq_no, "complete", now_utc()))
        self.published = True
        keep = self.project.settings.retention_runs
        if keep:
            try:
                report = cleanup(session, self.project, self.plan, keep=keep, lock=self.lock, own_seq_no=self.seq_no)
                if report.dropped:
                    log.info("retention: dropped %d material(s) older than the last %d runs", len(report.dropped), keep)
            except Exception as exc:  # the run is complete; a failed cleanup only leaves extra tables
                log.warning("retention after run %s failed: %s", self.seq_no, exc)
        try:
            self.lock.release()
        except Exception as exc:  # published and complete; a dead holder's lock is taken over by the next run
            log.warning("run %s could not release the run lock: %s", self.seq_no, exc)
        return [v.name for v, _ in views]

    def finish(self, status: str, message: str | None = None) -> None:
        """Record the run's final status and give the schema's run lock back."""
        try:
            self.session.run(registry.finish_run(self.schema, self.seq_no, status, now_utc(), message))
        finally:
            self.lock.release()

    def fail(self, error: BaseException | None = None) -> None:
        if not self.seq_no or self.published:  # nothing recorded yet, or already complete: just let go
            with contextlib.suppress(Exception):
                self.lock.release()
            return
        message = None
        if error is not None:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        try:
            self.finish("failed", message)
        except Exception:  # the original failure matters more than this bookkeeping
            log.warning("could not mark run %s failed", self.seq_no)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def run_all(
    project: Project,
    plan: RunPlan,
    warehouse: Warehouse,
    *,
    selected: Iterable[StepKey] | None = None,
    end_time: datetime | None = None,
    begin_time: datetime | None = None,
    on_result=None,
    lock_wait_seconds: float | None = None,
    full_refresh: bool = False,
) -> tuple[int, list[StepResult]]:
    """Open a session, run the selection, publish; the CLI's whole run."""
    wait = project.settings.run_lock.wait_seconds if lock_wait_seconds is None else lock_wait_seconds
    with open_session(warehouse, wait) as session:
        run = ProfilesRun(
            project,
            plan,
            session,
            selected=selected,
            end_time=end_time,
            begin_time=begin_time,
            lock_wait_seconds=lock_wait_seconds,
            full_refresh=full_refresh,
        )
        try:
            run.start()
            for result in run.execute():
                if on_result:
                    on_result(result)
            run.publish()
        except BaseException as exc:
            run.fail(exc)
            raise
        return run.seq_no, run.results
