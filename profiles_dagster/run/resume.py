"""pb's `--seq_no N [--force]`: a run continues run N, with N's time window and the materials N completed.

Everything a continued run needs to know about N lives in one `Resume`; a new run has none.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import sqlglot
from sqlglot import exp

from profiles_dagster.clock import naive_utc, now_utc
from profiles_dagster.errors import ProfilesError, summary
from profiles_dagster.lock import RunLock
from profiles_dagster.plan.steps import Step, StepKey, StepKind
from profiles_dagster.sql import registry
from profiles_dagster.sql.names import table
from profiles_dagster.sql.registry import RunRow, Status
from profiles_dagster.sql.stitcher import keep_previous_readable
from profiles_dagster.warehouse.base import Session

log = logging.getLogger("profiles_dagster")


def parse_seq_no(value: int | str | None) -> int | Literal["latest"] | None:
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


@dataclass
class Resume:
    """The state of a run continuing run N: what was asked, then what taking N over found."""

    wanted: int | Literal["latest"]  # N as given
    force: bool = False  # rebuild N's materials even where they are complete
    seq_no: int = 0  # N, once taken over
    status: Status | None = None  # N's status before this run took it over
    record: dict[str, object] = field(default_factory=dict)  # and its end of record, put back by `compile`
    end_time: datetime | None = None  # N's time window, which the run keeps whatever --end_time says
    begin_time: datetime | None = None
    newer_run: int | None = None  # a complete run after N: the stable views stay on it
    kept: dict[StepKey, int | None] = field(default_factory=dict)  # steps N already completed: their rows
    moved_aside: list[tuple[exp.Table, str]] = field(default_factory=list)  # `--force`: materials a view read

    def take_over(self, session: Session, schema: str, project: str, lock: RunLock) -> None:
        """Mark run N running again under this run's lock; a missing N is an error naming the runs there are."""
        rows = session.query(
            session.render(
                registry.select(schema, registry.RUNS, registry.eq("project", project), RunRow.COLUMNS[:7]).order_by(
                    "seq_no"
                )
            )
        )
        runs = {run.seq_no: run for run in map(RunRow.from_row, rows)}
        wanted = max(runs, default=0) if self.wanted == "latest" else self.wanted
        if wanted not in runs:
            listed = ", ".join(f"{n} ({runs[n].status})" for n in sorted(runs)[-10:]) or "none yet"
            raise ProfilesError(
                f"run seq_no {self.wanted} does not exist for project '{project}' in output schema "
                f"'{schema}'; its runs: {listed}",
                hint="leave out --seq_no to start a new run",
            )
        run = runs[wanted]
        self.seq_no = run.seq_no
        self.status = run.status
        self.record = {"status": run.status, "finished_at": naive_utc(run.finished_at), "message": run.message}
        # pb reuses the run's time window: its end and begin time
        self.end_time = naive_utc(run.end_time)
        self.begin_time = naive_utc(run.begin_time)
        newer = [n for n, r in runs.items() if n > self.seq_no and r.status is Status.COMPLETE]
        self.newer_run = max(newer) if newer else None
        session.run(
            registry.update(
                schema,
                registry.RUNS,
                {
                    "status": Status.RUNNING,
                    "run_id": lock.run_id,
                    "pid": lock.pid,
                    "host": lock.host,
                    "heartbeat_at": now_utc(),
                    "finished_at": None,
                    "message": None,
                },
                registry.eq("seq_no", self.seq_no),
            )
        )

    def stitch_from_scratch(self, session: Session, schema: str, project: str, step: Step) -> bool:
        """An incremental stitcher may only extend a graph of an earlier run than N."""
        latest = registry.latest_material_row(session, schema, project, step.path, step.content_hash)
        return latest is not None and latest.seq_no >= self.seq_no

    def clear_earlier_attempt(self, session: Session, schema: str, step: Step, target: exp.Table) -> None:
        """What an earlier attempt of N left for this step is replaced, never read."""
        session.run(
            registry.update(
                schema,
                registry.MATERIALS,
                {"status": Status.REPLACED},
                exp.and_(
                    registry.eq("seq_no", self.seq_no),
                    registry.eq("step", step.path),
                    exp.column("status").isin(
                        *(exp.Literal.string(s) for s in (Status.COMPLETE, Status.FAILED, Status.RUNNING))
                    ),
                ),
            )
        )
        if step.kind is StepKind.ID_STITCHER:  # its checkpoint row goes with the table it described
            session.run(
                exp.delete(table(registry.STITCHER_STATE, schema), where=registry.eq("table_name", target.name))
            )
            keep_previous_readable(session, schema, target)  # the previous table may be a view of this one
        # the session's own listing: some engines list views apart (Snowflake) or only through SHOW (Databricks)
        listed = session.list_objects(schema)
        kind = listed.get(target.name)
        if kind is None:  # an engine may list the name in another case (Snowflake: upper)
            kind = next((k for name, k in listed.items() if name.lower() == target.name.lower()), None)
        if kind is None:
            return
        try:  # rebuilt in place under pb's name, as pb does
            session.run(exp.Drop(kind=kind, tables=[target.copy()], exists=True))
        except Exception as exc:  # a stable view reads it (Postgres, Redshift): move it aside instead
            self._move_aside(session, schema, step, target, kind, exc)

    def _move_aside(
        self, session: Session, schema: str, step: Step, target: exp.Table, kind: str, why: Exception
    ) -> None:
        """Rename a material a view still reads; the views (bound to the object, not its name) keep reading
        it until publication repoints them, then it is dropped (or by `cleanup`, as a scratch table of N)."""
        with contextlib.suppress(Exception):
            session.execute("ROLLBACK")  # the failed DROP may have aborted the transaction
        aside = f"_pd_{step.content_hash}_{self.seq_no}_replaced"
        try:
            session.run(exp.Drop(kind=kind, tables=[table(aside, schema)], exists=True))
            rename = sqlglot.parse_one("ALTER TABLE a RENAME TO b")
            rename.set("this", target.copy())
            rename.set("kind", kind)
            rename.args["actions"][0].set("this", exp.to_table(exp.to_identifier(aside, quoted=True).sql()))
            session.run(rename)
        except Exception as exc:
            raise ProfilesError(
                f"cannot rebuild {target.name} of run {self.seq_no} for step '{step.path}': {summary(why, named=True)}",
                hint=f"leave out --force to keep run {self.seq_no}'s complete materials, or start a new run",
            ) from exc
        self.moved_aside.append((table(aside, schema), kind))

    def drop_moved_aside(self, session: Session) -> None:
        """Once the views are repointed, no view reads what `--force` moved aside."""
        for aside, kind in self.moved_aside:
            try:
                session.run(exp.Drop(kind=kind, tables=[aside], exists=True))
            except Exception as exc:  # cleanup drops it later (a scratch table of this run)
                log.warning("could not drop %s: %s", aside.name, summary(exc, named=True))
