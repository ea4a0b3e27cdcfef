"""Runs plan steps against a warehouse: the one step executor behind the Dagster assets and the CLI.

A run takes the output schema's run lock (`lock.RunLock`: a second run waits or refuses, naming this
one; a killed run's lock is taken over), then a new seq_no, writes every selected step's material as a
new table, and only when all of them succeeded repoints the stable pb views, together. A failed or
killed run leaves the views on the previous complete run. `ProfilesRun` orchestrates; each job is a
module of `profiles_dagster.run`: the registry rows (`recording`), the materials read and written
(`materials`), the inputs (`inputs`), a step's statements (`execution`), `--seq_no N` (`resume`) and the
view swap (`publication`). `profiles-dagster cleanup` and retention are `maintenance.py`'s.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlglot import exp

from profiles_dagster.clock import default_end_time, now_utc, parse_time
from profiles_dagster.errors import ProfilesError, summary
from profiles_dagster.lock import RunLock, ensure_registry, open_session
from profiles_dagster.maintenance import recover_unfinished_runs, retain_after_run
from profiles_dagster.plan.steps import RunPlan, Step, StepKey, StepKind
from profiles_dagster.project.model import Project
from profiles_dagster.project.timegrains import boundary
from profiles_dagster.run import blame, column_types, execution, inputs, publication
from profiles_dagster.run.grains import reused_within_grain
from profiles_dagster.run.incremental import IncrementalRun
from profiles_dagster.run.increments import previous_materials
from profiles_dagster.run.materials import step_materials
from profiles_dagster.run.recording import RunRecord
from profiles_dagster.run.resume import Resume, parse_seq_no
from profiles_dagster.run.sql_files import sql_folder, write_step_sql
from profiles_dagster.sql.compiler import CompileContext, StepProgram, compile_step
from profiles_dagster.sql.increments import Previous
from profiles_dagster.sql.names import table
from profiles_dagster.sql.registry import Status
from profiles_dagster.sql.stitcher import run_stitcher_step
from profiles_dagster.warehouse.base import Session, WarehouseEngine

log = logging.getLogger("profiles_dagster")

# the run's public names; the clock's and `parse_seq_no` are re-exported for the CLI, Dagster and tests
__all__ = ["ProfilesRun", "StepResult", "now_utc", "parse_seq_no", "parse_time", "run_all"]


@dataclass(frozen=True)
class StepResult:
    step: Step
    table: exp.Table
    row_count: int
    seconds: float
    render_sql: Callable[[], str]  # the step's SQL text, written only when asked for (Dagster's metadata)
    columns: list[tuple[str, str]]
    stats: dict[str, object] = field(default_factory=dict)

    @functools.cached_property
    def sql(self) -> str:
        """A large var table's SQL takes as long to write out as to compile: a CLI run or validate never asks."""
        return self.render_sql()


class ProfilesRun:
    """One run of a (subset of a) plan: `start()`, iterate `execute()`, then `publish()` (or `fail()`)."""

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
        seq_no: int | str | None = None,
        force: bool = False,
        beat_sessions: Callable[[], contextlib.AbstractContextManager[Session]] | None = None,
        sql_output: tuple[Path, str] | None = None,
    ) -> None:
        """`seq_no`/`force`: pb's `--seq_no N [--force]`, continuing run N (`run.resume`). `beat_sessions` opens
        further sessions on the same warehouse: on a shared one, the run lock's heartbeat thread uses one, so
        a long step is not taken for a dead run (see `lock.RunLock.keep_alive`). `sql_output` (project root,
        target): each step's SQL is written under output/<target>/seq_no_<n>/ before it runs, so a failed
        run leaves the SQL up to the step that failed."""
        self.project = project
        self.plan = plan
        self.session = session
        self.schema = session.schema
        keys = set(selected) if selected is not None else set(plan.by_key)
        self.steps = plan.ordered(keys)
        # pb's default_time_grain: the run computes as of the grain's last boundary (none: the end time itself)
        self.end_time = boundary(end_time or default_end_time(), project.time_grain)
        self.begin_time = begin_time
        # the dialect the project's SQL is written in: profiles_dagster.yaml, else the engine's own
        self.source_dialect = source_dialect or project.settings.sql_dialect(session.dialect)
        self.full_refresh = full_refresh  # rebuild incremental steps (the id stitcher) from all rows
        settings = project.settings.run_lock
        self.lock = RunLock(
            session,
            self.schema,
            project.name,
            wait_seconds=settings.wait_seconds if lock_wait_seconds is None else lock_wait_seconds,
            stale_after_seconds=settings.stale_after_seconds,
        )
        self.beat_sessions = beat_sessions
        self.record = RunRecord(session, self.schema, project.name)
        wanted = parse_seq_no(seq_no)
        self.resume = Resume(wanted, force) if wanted is not None else None
        self.recovered: list[str] = []  # what this run settled for runs killed before it
        # known once started: each step's material, the tables file inputs are loaded into, the compile context
        self.materials: dict[StepKey, exp.Table] = {}
        self.file_tables: dict[str, exp.Table] = {}
        self.context: CompileContext | None = None
        self.incremental: IncrementalRun | None = None  # extends previous materials where that is exact
        self._programs: dict[StepKey, StepProgram] = {}
        self.within_grain: dict[StepKey, Previous] = {}  # steps reused from an earlier run of the same boundary
        # compiled before the types of some tables they read were known: the tables typed then
        self._untyped: dict[StepKey, frozenset[str]] = {}
        self.types: column_types.Learner | None = None
        self.results: list[StepResult] = []
        self.published = False
        self.sql_output = sql_output

    @property
    def seq_no(self) -> int:
        """This run's number in the registry; 0 until `start()` allocated (or took over) one."""
        return self.record.seq_no

    @property
    def newer_run(self) -> int | None:
        """Continuing run N: a complete run after N, whose stable views stay."""
        return self.resume.newer_run if self.resume is not None else None

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self, *, check_inputs: bool = True) -> None:
        """Take the lock and a seq_no (or run N's), settle killed runs, name the materials, check the inputs."""
        session = self.session
        ensure_registry(session, self.schema)
        self.lock.acquire()
        try:
            self.recovered = recover_unfinished_runs(session, self.schema)
            if self.resume is not None:
                self.resume.take_over(session, self.schema, self.project.name, self.lock)
                self.record.seq_no = self.resume.seq_no
                self.end_time = self.resume.end_time or self.end_time
                self.begin_time = self.resume.begin_time
            else:
                self.record.open(self.lock, self.end_time, self.begin_time)
            self.lock.claim(self.seq_no)
            if self.beat_sessions is not None and session.shared:
                self.lock.keep_alive(self.beat_sessions)
        except BaseException:
            if not self.seq_no:
                self.lock.release()
            raise
        self.materials = step_materials(self.record, self.plan, self.steps, self.resume)
        self.file_tables = inputs.file_tables(self.project, self.steps, session, self.schema, self.seq_no)
        increments = previous_materials(
            session, self.schema, self.project.name, self.steps, self.seq_no, full_refresh=self.full_refresh
        )
        self.context = CompileContext(
            self.project,
            self.plan,
            session.dialect,
            self.source_dialect,
            self.materials,
            self.end_time,
            self.begin_time,
            self.file_tables,
            input_schema=self.schema,
            increments=increments,
        )
        if self.resume is None:  # pb's timegrains: a boundary an earlier run computed is reused, not redone
            self.within_grain = reused_within_grain(
                self.project.time_grain, increments, self.steps, self.end_time, self.begin_time
            )
            self.materials.update({key: previous.table for key, previous in self.within_grain.items()})
        self.types = column_types.Learner(self.context, (self.materials[s.key] for s in self.steps))
        self.incremental = IncrementalRun(session, self.record, self.context, self.seq_no)
        if check_inputs:
            continuing = self.seq_no if self.resume is not None else None
            inputs.check_inputs(
                session, self.project, self.context, self.steps, self.file_tables, continuing=continuing
            )

    def compile(self, step: Step) -> StepProgram:
        """The step's program, compiled once per run (validate's preparation asks for it more than once)."""
        if self.context is None:
            raise RuntimeError("ProfilesRun.start() must come before compiling a step")
        # compiled again when the types of the tables it reads became known since (validate compiles first)
        typed = self.types.learn(self.session, step, self.materials) if self.types is not None else frozenset()
        if step.key not in self._programs or self._untyped.get(step.key, typed) != typed:
            self.context.types_missed = False
            self._programs[step.key] = compile_step(step, self.context)
            if self.context.types_missed:
                self._untyped[step.key] = typed
            else:
                self._untyped.pop(step.key, None)
        return self._programs[step.key]

    def compiled_sql(self, step: Step) -> str:
        """The step's SQL as it would run (the stitcher's: the observations it stitches)."""
        return self.compile(step).sql(self.session.dialect)

    def execute(self) -> Iterator[StepResult]:
        for step in self.steps:
            yield self.execute_step(step)

    def keep_step(self, step: Step, rows: int | None) -> StepResult:
        """A step run N already completed (`--seq_no N` without --force): its material, not rebuilt."""
        target = self.materials[step.key]
        if rows is None:
            rows = self.session.row_count(target)
        result = StepResult(step, target, rows, 0.0, str, self.session.columns(target), {"kept": True})
        if self.types is not None:
            self.types.built(target, result.columns, self.session.dialect)
        self.results.append(result)
        log.info("%s -> %s: kept from run %d (%d rows)", step.path, target.name, self.seq_no, rows)
        return result

    def reuse_within_grain(self, step: Step) -> StepResult:
        """A step an earlier run computed as of this run's timegrain boundary: its material, recorded as reused
        (retention keeps it while this run's views read it)."""
        previous = self.within_grain[step.key]
        target = previous.table
        self.record.material(step, target.name, Status.REUSED, finished=True)
        rows = self.session.row_count(target)
        grain = step.grain or self.project.time_grain
        stats: dict[str, object] = {"reused_within_grain": grain, "from_run": previous.seq_no}
        result = StepResult(step, target, rows, 0.0, str, self.session.columns(target), stats)
        self.results.append(result)
        log.info(
            "%s -> %s: reused from run %d (same %s boundary)",
            step.path,
            target.name,
            previous.seq_no,
            grain,
        )
        return result

    def same_as_default_grain(self, step: Step) -> StepResult | None:
        """A coarser grain's step whose boundary is this run's own (a week's on a Monday run with `day`): the
        same rows as the default grain's step, which this run already built: its material, not a second
        build (pb too computes that boundary once). The var table of the grain's own vars is still built."""
        if step.grain is None or step.kind in (StepKind.ENTITY_VARS, StepKind.COHORT_VARS):
            return None
        if boundary(self.end_time, step.grain) != self.end_time or self.resume is not None:
            return None
        base = self.plan.by_key.get(step.key.base)
        built = next((r for r in self.results if base is not None and r.step.key == base.key), None)
        if built is None or built.stats.get("kept") or "reused_within_grain" in built.stats:
            return None
        if any(self.materials.get(d) != self.materials.get(d.base) for d in step.deps):
            return None  # what it reads differs from what the default grain's step read
        self.materials[step.key] = built.table
        # complete, as if written here: a later run of the same grain boundary reuses it (run/grains.py)
        self.record.material(step, built.table.name, Status.RUNNING)
        self.record.finish_material(step, Status.COMPLETE, built.row_count, 0.0)
        stats: dict[str, object] = {"time_grain": step.grain, "same_as": base.path if base else ""}
        result = StepResult(step, built.table, built.row_count, 0.0, str, built.columns, stats)
        self.results.append(result)
        log.info(
            "%s -> %s: the %s boundary is this run's: %s's material",
            step.path,
            built.table.name,
            step.grain,
            built.step.path,
        )
        return result

    def execute_step(self, step: Step) -> StepResult:
        resume = self.resume
        if resume is not None and step.key in resume.kept:
            return self.keep_step(step, resume.kept[step.key])
        if step.key in self.within_grain:
            return self.reuse_within_grain(step)
        same = self.same_as_default_grain(step)
        if same is not None:
            return same
        session = self.session
        target = self.materials[step.key]
        self.lock.heartbeat()
        if resume is not None:
            resume.clear_earlier_attempt(session, self.schema, step, target)
        self.record.material(step, target.name, Status.RUNNING)
        start = time.perf_counter()
        stats: dict[str, object] = {}
        recorded: tuple[int, float] | None = None  # a step's table and registry row, committed together
        # a step of a coarser grain (a var_group's time_grain) is built in full, as of its own boundary: the
        # incremental path extends a material up to the run's end time, not to an earlier boundary
        # (and a step reading one: the incremental path knows the default grain's steps only)
        incremental = self.incremental if step.grain is None and not any(d.grain for d in step.deps) else None
        where = f" (defined at {step.origin})" if step.origin else ""
        try:
            program = self.compile(step)
        except Exception as exc:  # a bug of ours, not the user's: still one clear error, named with the step
            self.record.finish_material(step, Status.FAILED, None, time.perf_counter() - start)
            if isinstance(exc, ProfilesError):
                raise
            raise ProfilesError(f"step '{step.path}' could not be compiled{where}: {summary(exc, named=True)}") from exc
        sql_file = None
        if self.sql_output is not None:
            root, target_name = self.sql_output
            folder = sql_folder(root, target_name, self.seq_no)
            try:
                sql_file = write_step_sql(folder, self.steps.index(step) + 1, step, program.sql(session.dialect))
            except OSError as exc:  # a read-only project folder must not fail the run
                log.warning("%s: could not write its SQL under %s: %s", step.path, folder, exc)
        try:
            if step.kind is StepKind.ID_STITCHER:
                sql: Callable[[], str] = functools.partial(program.observations.sql, session.dialect, pretty=True)
                from_scratch = resume is not None and resume.stitch_from_scratch(
                    session, self.schema, self.project.name, step
                )
                changes = incremental.change_tables(step) if incremental else None
                stats = run_stitcher_step(  # incremental unless full_refresh; records its checkpoint
                    session,
                    self.project,
                    step,
                    observations=program.observations,
                    target=program.target,
                    schema=self.schema,
                    seq_no=self.seq_no,
                    full_refresh=self.full_refresh or from_scratch or step.grain is not None,
                    table_exists=session.table_exists,
                    unchanged_before=incremental.vouch(step) if incremental else None,
                    added=incremental.added(step) if incremental else None,
                    changes=changes,
                )
                if incremental is not None:
                    incremental.stitched(step, changes)
                stats["incremental"] = stats.get("stitcher_mode") == "incremental"
                if not stats["incremental"]:
                    stats["incremental_reason"] = stats.get("stitcher_full_reason", "")
            else:
                sql = functools.partial(program.sql, session.dialect)
                built = incremental.build(step, program.target, start) if incremental else None
                if built is not None and built.recorded is not None:
                    recorded = built.recorded
                else:
                    recorded = execution.write(session, self.record, step, program, start)
                    if incremental is not None:
                        incremental.after_full(step, program.target)
                stats = built.stats if built is not None else {}
            if step.grain is not None:
                stats["time_grain"] = step.grain
                stats["incremental_reason"] = f"time_grain {step.grain}: built in full as of its boundary"
            # a view's query runs first when it is counted: its engine error is the step's too
            counted = session.row_count(program.target) if recorded is None else None
        except ProfilesError:
            self.record.finish_material(step, Status.FAILED, None, time.perf_counter() - start)
            raise
        except Exception as exc:  # the engine's own error, named with the step
            self.record.finish_material(step, Status.FAILED, None, time.perf_counter() - start)
            raise blame.step_failure(step, exc, sql_file) from exc
        if recorded is None:
            seconds = time.perf_counter() - start
            rows = counted or 0
            self.record.finish_material(step, Status.COMPLETE, rows, seconds)
        else:
            rows, seconds = recorded
        self.lock.heartbeat()
        result = StepResult(step, program.target, rows, seconds, sql, session.columns(program.target), stats)
        if self.types is not None:
            self.types.built(program.target, result.columns, session.dialect)
        self.results.append(result)
        log.info("%s -> %s: %d rows in %.2fs", step.path, program.target.name, rows, seconds)
        return result

    def reject(self, step: Step) -> None:
        """A blocking check failed on this step's material: later runs must not reuse it as their upstream."""
        self.record.reject(step)

    def publish(self) -> list[str]:
        """Repoint the stable views of the steps run here, together, and mark the run complete; then drop
        what the run no longer needs, apply retention and give the lock back. Returns the views repointed."""
        views = [(table(r.step.view_name, self.schema), r.table) for r in self.results if r.step.view_name]
        if self.newer_run is not None:  # as pb: the stable views show the newest complete run
            log.info("run %d is complete; the stable views stay on the newer run %d", self.seq_no, self.newer_run)
            views = []
        self.lock.heartbeat()
        publication.publish(self.record, views)
        self.published = True
        if self.incremental is not None:
            self.incremental.drop_scratch()
        inputs.drop_file_tables(self.session, self.file_tables, [r.step for r in self.results])
        if self.resume is not None:  # `--force` moved them aside; no view reads them now
            self.resume.drop_moved_aside(self.session)
        retain_after_run(self.session, self.project, self.plan, self.lock, self.seq_no)
        try:
            self.lock.release()
        except Exception as exc:  # published and complete; a dead holder's lock is taken over by the next run
            log.warning("run %s could not release the run lock: %s", self.seq_no, exc)
        return [v.name for v, _ in views]

    def finish(self, status: Status, message: str | None = None) -> None:
        """Record the run's final status and give the schema's run lock back.

        Compiling an earlier run (`compile --seq_no N`) leaves N's own status as it was.
        """
        try:
            if status is Status.COMPILED and self.resume is not None and self.resume.status is not None:
                self.record.restore(self.resume.record)
            else:
                self.record.finish(status, message)
        finally:
            self.lock.release()

    def fail(self, error: BaseException | None = None) -> None:
        if self.incremental is not None:
            with contextlib.suppress(Exception):
                self.incremental.drop_scratch()
        if not self.seq_no or self.published:  # nothing recorded yet, or already complete: just let go
            with contextlib.suppress(Exception):
                self.lock.release()
            return
        try:
            self.finish(Status.FAILED, summary(error) if error is not None else None)
        except Exception:  # the original failure matters more than this bookkeeping
            log.warning("could not mark run %s failed", self.seq_no)


def run_all(
    project: Project,
    plan: RunPlan,
    warehouse: WarehouseEngine,
    *,
    selected: Iterable[StepKey] | None = None,
    end_time: datetime | None = None,
    begin_time: datetime | None = None,
    on_result=None,
    lock_wait_seconds: float | None = None,
    full_refresh: bool = False,
    seq_no: int | str | None = None,
    force: bool = False,
    on_publish=None,
    sql_output: tuple[Path, str] | None = None,
) -> tuple[int, list[StepResult]]:
    """Open a session, run the selection, publish; the CLI's whole run.

    `seq_no`/`force`: pb's `--seq_no N [--force]`, continuing run N (see `ProfilesRun`); `on_publish`
    gets the names of the stable views repointed and the newer complete run that keeps them, if any."""
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
            seq_no=seq_no,
            force=force,
            beat_sessions=warehouse.session,
            sql_output=sql_output,
        )
        try:
            run.start()
            for result in run.execute():
                if on_result:
                    on_result(result)
            views = run.publish()
            if on_publish:
                on_publish(views, run.newer_run)
        except BaseException as exc:
            run.fail(exc)
            raise
        return run.seq_no, run.results
