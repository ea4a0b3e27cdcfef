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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import sqlglot
from sqlglot import exp

from profiles_dagster.clock import default_end_time, naive_utc, now_utc, parse_time
from profiles_dagster.errors import ProfilesError, summary
from profiles_dagster.lock import RunLock, ensure_registry, open_session
from profiles_dagster.maintenance import cleanup, recover_unfinished_runs
from profiles_dagster.plan.steps import RunPlan, Step, StepKey, StepKind
from profiles_dagster.project.model import Project
from profiles_dagster.sql import registry
from profiles_dagster.sql.compiler import CompileContext, StepProgram, compile_step, file_table_name
from profiles_dagster.sql.names import material_name, table
from profiles_dagster.sql.stitcher import run_stitcher_step
from profiles_dagster.warehouse import files
from profiles_dagster.warehouse.base import Session, WarehouseEngine

log = logging.getLogger("profiles_dagster")

# the run's public names; the clock's are re-exported for the CLI, Dagster and tests that import them here
__all__ = ["ProfilesRun", "StepResult", "now_utc", "parse_seq_no", "parse_time", "run_all"]


@dataclass(frozen=True)
class StepResult:
    step: Step
    table: exp.Table
    row_count: int
    seconds: float
    sql: str
    columns: list[tuple[str, str]]
    stats: dict[str, object] = field(default_factory=dict)


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
        seq_no: int | str | None = None,
        force: bool = False,
        beat_sessions: Callable[[], contextlib.AbstractContextManager[Session]] | None = None,
    ) -> None:
        """`beat_sessions` opens further sessions on the same warehouse: on a shared one, the run lock's
        heartbeat thread uses one, so a long step is not taken for a dead run (see `lock.RunLock.keep_alive`)."""
        self.project = project
        self.plan = plan
        self.session = session
        self.schema = session.schema
        keys = set(selected) if selected is not None else set(plan.by_key)
        self.steps = plan.ordered(keys)
        self.end_time = end_time or default_end_time()
        self.begin_time = begin_time
        # the dialect the project's SQL is written in: profiles_dagster.yaml, else the engine's own
        self.source_dialect = source_dialect or project.settings.sql_dialect(session.dialect)
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
        # pb's `--seq_no N`: continue run N (its time window, its materials); `latest`: the newest run
        self.resume = parse_seq_no(seq_no)
        self.force = force  # with `resume`: rebuild run N's materials even where they are complete
        self.kept: dict[StepKey, int | None] = {}  # steps whose material run N already completed: their rows
        self.resumed_status: str | None = None  # run N's status before this run took it over
        self.resumed_row: dict[str, object] = {}  # and its end of record, put back by `compile --seq_no N`
        self.newer_run: int | None = None  # a complete run after N: the stable views stay on it
        self.moved_aside: list[tuple[exp.Table, str]] = []  # `--force`: old materials a view still read
        self.beat_sessions = beat_sessions

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self, *, check_inputs: bool = True) -> None:
        session = self.session
        ensure_registry(session, self.schema)
        self.lock.acquire()
        try:
            self.recovered = recover_unfinished_runs(session, self.schema)
            if self.resume is not None:
                self._take_over_run()
            else:
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
                            "begin_time": self.begin_time,
                            "run_id": self.lock.run_id,
                            "pid": self.lock.pid,
                            "host": self.lock.host,
                            "heartbeat_at": now_utc(),
                        },
                    )
                )
            self.lock.claim(self.seq_no)
            if self.beat_sessions is not None and session.shared:
                self.lock.keep_alive(self.beat_sessions)
        except BaseException:
            if not self.seq_no:
                self.lock.release()
            raise
        self.materials = self._materials()
        # `csv:`/`s3:` inputs the engine cannot read in place: the run loads each into a table of its own
        self.file_tables = {
            name: table(file_table_name(name, self.seq_no), self.schema)
            for name in sorted({n for s in self.steps for n in s.external_inputs})
            if files.is_file_input(self.project, name)
            and not session.reads_in_place(files.location(self.project, name))
        }
        self.context = CompileContext(
            self.project,
            self.plan,
            session.dialect,
            self.source_dialect,
            self.materials,
            self.end_time,
            self.begin_time,
            self.file_tables,
        )
        if check_inputs:
            self._check_inputs()

    def _take_over_run(self) -> None:
        """pb's `--seq_no N`: this run continues run N with N's time window; a missing N is an error."""
        session = self.session
        runs = session.query(
            session.render(
                registry.select(
                    self.schema,
                    registry.RUNS,
                    registry.eq("project", self.project.name),
                    ("seq_no", "status", "end_time", "begin_time", "finished_at", "message"),
                ).order_by("seq_no")
            )
        )
        known = {int(n): (status, end, begin) for n, status, end, begin, _, _ in runs}
        before = {int(n): (finished, message) for n, _, _, _, finished, message in runs}
        wanted = max(known, default=0) if self.resume == "latest" else self.resume
        if wanted not in known:
            listed = ", ".join(f"{n} ({known[n][0]})" for n in sorted(known)[-10:]) or "none yet"
            raise ProfilesError(
                f"run seq_no {self.resume} does not exist for project '{self.project.name}' in output schema "
                f"'{self.schema}'; its runs: {listed}",
                hint="leave out --seq_no to start a new run",
            )
        self.seq_no = int(wanted)
        status, end, begin = known[self.seq_no]
        self.resumed_status = str(status)
        self.resumed_row = {"status": str(status), "finished_at": naive_utc(before[self.seq_no][0])}
        self.resumed_row["message"] = before[self.seq_no][1]
        # pb reuses the run's time window: its end and begin time, whatever --end_time says
        self.end_time = naive_utc(end) or self.end_time
        self.begin_time = naive_utc(begin)
        newer = [n for n, (st, _, _) in known.items() if n > self.seq_no and st == "complete"]
        self.newer_run = max(newer) if newer else None
        session.run(
            registry.update(
                self.schema,
                registry.RUNS,
                {
                    "status": "running",
                    "run_id": self.lock.run_id,
                    "pid": self.lock.pid,
                    "host": self.lock.host,
                    "heartbeat_at": now_utc(),
                    "finished_at": None,
                    "message": None,
                },
                registry.eq("seq_no", self.seq_no),
            )
        )

    def _run_material(self, step: Step) -> tuple[str, int | None] | None:
        """The complete material run `seq_no` wrote for this step's current definition, if its table exists."""
        rows = self.session.query(
            self.session.render(
                registry.select(
                    self.schema,
                    registry.MATERIALS,
                    exp.and_(
                        registry.eq("seq_no", self.seq_no),
                        registry.eq("project", self.project.name),
                        registry.eq("step", step.path),
                        registry.eq("content_hash", step.content_hash),
                        registry.eq("status", "complete"),
                    ),
                    ("table_name", "row_count"),
                )
            )
        )
        if rows and self.session.table_exists(table(rows[0][0], self.schema)):
            return str(rows[0][0]), None if rows[0][1] is None else int(rows[0][1])
        return None

    def _materials(self) -> dict[StepKey, exp.Table]:
        """New names for selected steps; the latest complete material for the upstream they read.

        Continuing run N (`--seq_no N`), the steps N already completed with their current definition keep
        their material (unless `force`), and the upstream they read is N's own where N has it.
        """
        selected = {s.key for s in self.steps}
        materials = {
            s.key: table(material_name(s.model_name, s.content_hash, self.seq_no), self.schema) for s in self.steps
        }
        if self.resume is not None and not self.force:
            for step in self.steps:
                found = self._run_material(step)
                if found:
                    materials[step.key] = table(found[0], self.schema)
                    self.kept[step.key] = found[1]
        missing = []
        reused: list[tuple[Step, str]] = []
        for step in self.plan.ordered(self.plan.upstream(selected) - selected):
            own = self._run_material(step) if self.resume is not None else None
            if own:
                materials[step.key] = table(own[0], self.schema)
                continue  # run N's own material: already registered as written by N
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
            self._insert_material(step, name, "reused", finished=True)
        return materials

    def _check_inputs(self) -> None:
        """A missing input table stops the run naming it; pb would silently prune the models."""
        needed = {name for s in self.steps for name in s.external_inputs}
        for name in sorted(needed):
            source = self.context.input_table(name)
            if name in self.file_tables:  # a missing file or object stops the load, naming the input
                self._load_file(name, source)
                exists = True
            elif isinstance(source.this, exp.ReadCSV):  # read in place: s3 objects are checked by the engine
                if self.project.inputs[name].spec.app_defaults.s3 is None:
                    with files.local_copy(self.project, name):  # the file itself: stops naming it if missing
                        pass
                exists = True
            else:
                exists = self.session.table_exists(source)
            inp = self.project.inputs[name]
            if not exists:
                raise ProfilesError(
                    f"input '{name}' reads table {source.sql(self.session.dialect)}, which does not exist or is not "
                    "readable",
                    file=inp.origin.file,
                    line=inp.origin.line,
                    key=f"inputs.{name}.app_defaults",
                )
            promised = inp.spec.contract.with_columns if inp.spec.contract else []
            if promised and (inp.spec.app_defaults.s3 is None or name in self.file_tables):  # pb's contract
                have = {c.lower() for c, _ in self.session.columns(source)}
                missing = [c.name for c in promised if c.name.lower() not in have]
                if missing:
                    at = inp.origin.at("contract.with_columns")
                    raise ProfilesError(
                        f"input '{name}' breaks its contract: {source.sql(self.session.dialect)} has no column(s) "
                        f"{', '.join(missing)}",
                        file=at.file,
                        line=at.line,
                        key=at.key,
                    )

    def _load_file(self, name: str, target: exp.Table) -> None:
        """Load a `csv:`/`s3:` input into its table, once per run (continuing run N: N's table, if loaded)."""
        if self.resume is not None and self.session.table_exists(target):
            log.info("input %s: reading %s, loaded by run %d", name, target.name, self.seq_no)
            return
        start = time.perf_counter()
        rows = files.load(self.session, self.project, name, target)
        seconds = time.perf_counter() - start
        where = files.location(self.project, name)
        log.info("input %s: loaded %s into %s: %d rows in %.2fs", name, where, target.name, rows, seconds)

    def compile(self, step: Step) -> StepProgram:
        return compile_step(step, self.context)

    def compiled_sql(self, step: Step) -> str:
        """The step's SQL as it would run (the stitcher's: the observations it stitches)."""
        return self.compile(step).sql(self.session.dialect)

    def execute(self) -> Iterator[StepResult]:
        for step in self.steps:
            yield self.execute_step(step)

    def keep_step(self, step: Step) -> StepResult:
        """A step run N already completed (`--seq_no N` without --force): its material, not rebuilt."""
        target = self.materials[step.key]
        rows = self.kept.get(step.key)
        if rows is None:
            rows = self.session.row_count(target)
        result = StepResult(step, target, rows, 0.0, "", self.session.columns(target), {"kept": True})
        self.results.append(result)
        log.info("%s -> %s: kept from run %d (%d rows)", step.path, target.name, self.seq_no, rows)
        return result

    def _clear_earlier_attempt(self, step: Step, target: exp.Table) -> None:
        """Continuing run N: what an earlier attempt of N left for this step is replaced, never read."""
        session = self.session
        session.run(
            registry.update(
                self.schema,
                registry.MATERIALS,
                {"status": "replaced"},
                exp.and_(
                    registry.eq("seq_no", self.seq_no),
                    registry.eq("step", step.path),
                    exp.column("status").isin(*(exp.Literal.string(s) for s in ("complete", "failed", "running"))),
                ),
            )
        )
        if step.kind is StepKind.ID_STITCHER:  # its checkpoint row goes with the table it described
            session.run(
                exp.delete(table(registry.STITCHER_STATE, self.schema), where=registry.eq("table_name", target.name))
            )
        kinds = session.query(
            session.render(
                exp.select("table_type")
                .from_(exp.table_("tables", db="information_schema"))
                .where(
                    exp.and_(
                        exp.column("table_schema").eq(exp.Literal.string(self.schema)),
                        exp.column("table_name").eq(exp.Literal.string(target.name)),
                    )
                )
            )
        )
        for (kind,) in kinds:  # rebuilt in place under pb's name, as pb does
            drop_kind = "VIEW" if "VIEW" in str(kind).upper() else "TABLE"
            try:
                session.run(exp.Drop(kind=drop_kind, tables=[target.copy()], exists=True))
            except Exception as exc:  # a stable view reads it (Postgres, Redshift): move it aside instead
                self._move_aside(step, target, drop_kind, exc)

    def _move_aside(self, step: Step, target: exp.Table, kind: str, why: Exception) -> None:
        """Rename a material a view still reads; the views (bound to the object, not its name) keep reading
        it until `publish` repoints them, then it is dropped (or by `cleanup`, as a scratch table of this run)."""
        with contextlib.suppress(Exception):
            self.session.execute("ROLLBACK")  # the failed DROP may have aborted the transaction
        aside = f"_pd_{step.content_hash}_{self.seq_no}_replaced"
        try:
            self.session.run(exp.Drop(kind=kind, tables=[table(aside, self.schema)], exists=True))
            rename = sqlglot.parse_one("ALTER TABLE a RENAME TO b")
            rename.set("this", target.copy())
            rename.set("kind", kind)
            rename.args["actions"][0].set("this", exp.to_table(exp.to_identifier(aside, quoted=True).sql()))
            self.session.run(rename)
        except Exception as exc:
            raise ProfilesError(
                f"cannot rebuild {target.name} of run {self.seq_no} for step '{step.path}': {summary(why, named=True)}",
                hint=f"leave out --force to keep run {self.seq_no}'s complete materials, or start a new run",
            ) from exc
        self.moved_aside.append((table(aside, self.schema), kind))

    def execute_step(self, step: Step) -> StepResult:
        if step.key in self.kept:
            return self.keep_step(step)
        session = self.session
        target = self.materials[step.key]
        self.lock.heartbeat()
        if self.resume is not None:
            self._clear_earlier_attempt(step, target)
        self._record_start(step, target)
        start = time.perf_counter()
        stats: dict[str, object] = {}
        recorded: tuple[int, float] | None = None  # a step's table and registry row, committed together
        try:
            program = self.compile(step)
        except Exception as exc:  # a bug of ours, not the user's: still one clear error, named with the step
            self._record(step, target, "failed", None, time.perf_counter() - start)
            if isinstance(exc, ProfilesError):
                raise
            where = f" (defined at {step.origin})" if step.origin else ""
            raise ProfilesError(f"step '{step.path}' could not be compiled{where}: {summary(exc, named=True)}") from exc
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
                    full_refresh=self.full_refresh or self._stitch_from_scratch(step),
                    table_exists=session.table_exists,
                )
            else:
                sql = program.sql(session.dialect)
                recorded = self._write(step, program, start)
        except ProfilesError:
            self._record(step, target, "failed", None, time.perf_counter() - start)
            raise
        except Exception as exc:  # the engine's own error, named with the step
            self._record(step, target, "failed", None, time.perf_counter() - start)
            message = summary(exc)
            where = f" (defined at {step.origin})" if step.origin else ""
            raise ProfilesError(f"step '{step.path}' failed in the warehouse{where}: {message}") from exc
        if recorded is None:
            seconds = time.perf_counter() - start
            rows = session.row_count(program.target)
            self._record(step, program.target, "complete", rows, seconds)
        else:
            rows, seconds = recorded
        self.lock.heartbeat()
        result = StepResult(step, program.target, rows, seconds, sql, session.columns(program.target), stats)
        self.results.append(result)
        log.info("%s -> %s: %d rows in %.2fs", step.path, program.target.name, rows, seconds)
        return result

    def _write(self, step: Step, program: StepProgram, start: float) -> tuple[int, float] | None:
        """Run a step's statements. Where a step is one CREATE TABLE AS and the engine's DDL is transactional,
        the table and its registry row commit together (one commit, not two: a killed step leaves its
        `running` row and no table) and the engine's own row count saves a count(*): (rows, seconds, the
        commit included; the registry's seconds stop before it)."""
        session = self.session
        statements = program.statements
        if not (session.transactional_ddl and len(statements) == 1 and _creates_table(statements[0])):
            for statement in statements:
                session.run(statement)
            return None
        with session.transaction():
            rows = session.run_count(statements[0])
            if rows is None:
                rows = session.row_count(program.target)
            self._record(step, program.target, "complete", rows, time.perf_counter() - start)
        return rows, time.perf_counter() - start

    def _stitch_from_scratch(self, step: Step) -> bool:
        """Continuing run N, an incremental stitcher may only extend a graph of an earlier run than N."""
        if self.resume is None:
            return False
        rows = self.session.query(
            self.session.render(registry.latest_material(self.schema, self.project.name, step.path, step.content_hash))
        )
        return bool(rows) and int(rows[0][1]) >= self.seq_no

    def _record_start(self, step: Step, target: exp.Table) -> None:
        """Registered before the table exists: a kill mid-step leaves a `running` row cleanup can find."""
        self._insert_material(step, target.name, "running")

    def _insert_material(self, step: Step, table_name: str, status: str, *, finished: bool = False) -> None:
        row = {
            "seq_no": self.seq_no,
            "project": self.project.name,
            "step": step.path,
            "content_hash": step.content_hash,
            "table_name": table_name,
            "status": status,
            "started_at": now_utc(),
        }
        if finished:
            row["finished_at"] = row["started_at"]
        self.session.run(registry.insert(self.schema, registry.MATERIALS, row))

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
        if self.newer_run is not None:  # as pb: the stable views show the newest complete run
            log.info("run %d is complete; the stable views stay on the newer run %d", self.seq_no, self.newer_run)
            views = []
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
        self._drop_file_tables()
        for aside, kind in self.moved_aside:  # `--force` moved them aside; no view reads them now
            try:
                session.run(exp.Drop(kind=kind, tables=[aside], exists=True))
            except Exception as exc:  # cleanup drops it later (a scratch table of this run)
                log.warning("could not drop %s: %s", aside.name, summary(exc, named=True))
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

    def _drop_file_tables(self) -> None:
        """The tables this run loaded its `csv:`/`s3:` inputs into, once no material of the run reads them (a
        view built on an input keeps its table; `cleanup` drops what a failed run left, as scratch tables)."""
        views = [
            r.step for r in self.results if r.step.kind is StepKind.SQL_MODEL and r.step.payload.output_type != "table"
        ]
        read_by_views = {n for step in views for n in step.external_inputs}
        for name, loaded in self.file_tables.items():
            if name in read_by_views:
                continue
            try:
                self.session.drop_table(loaded)
            except Exception as exc:
                log.warning("could not drop %s: %s", loaded.name, summary(exc, named=True))

    def finish(self, status: str, message: str | None = None) -> None:
        """Record the run's final status and give the schema's run lock back.

        Compiling an earlier run (`compile --seq_no N`) leaves N's own status as it was.
        """
        try:
            if status == "compiled" and self.resumed_status is not None:
                self.session.run(
                    registry.update(self.schema, registry.RUNS, self.resumed_row, registry.eq("seq_no", self.seq_no))
                )
            else:
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
            message = summary(error)
        try:
            self.finish("failed", message)
        except Exception:  # the original failure matters more than this bookkeeping
            log.warning("could not mark run %s failed", self.seq_no)


def parse_seq_no(value: int | str | None) -> int | str | None:
    """pb's --seq_no: a run's number, `latest`, or `new` (the default: a new run) -> int, "latest" or None."""
    if value is None or isinstance(value, int):
        if isinstance(value, int) and value < 1:
            raise ProfilesError(f"--seq_no must be a run's number (1, 2, ...), `latest` or `new`, got {value}")
        return value
    text = str(value).strip().lower()
    if text in ("", "new"):
        return None
    if text == "latest":
        return "latest"
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise ProfilesError(f"--seq_no must be a run's number (1, 2, ...), `latest` or `new`, got '{value}'")


def _creates_table(statement: exp.Expression) -> bool:
    """CREATE TABLE ... AS <query>: a step's material written by one statement."""
    return (
        isinstance(statement, exp.Create)
        and str(statement.args.get("kind") or "").upper() == "TABLE"
        and isinstance(statement.expression, exp.Query)
    )


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
