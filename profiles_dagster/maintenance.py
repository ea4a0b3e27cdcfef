"""Keeping the output schema in order: recovering from killed runs, and dropping old materials.

Both run under the schema's run lock (`lock.RunLock`), so they never race a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlglot import exp

from profiles_dagster.clock import now_utc
from profiles_dagster.errors import ProfilesError, summary
from profiles_dagster.lock import RunLock, ensure_registry
from profiles_dagster.plan.steps import RunPlan
from profiles_dagster.project.model import Project
from profiles_dagster.sql import registry
from profiles_dagster.sql.names import table
from profiles_dagster.sql.registry import MaterialRow, RunRow, Status
from profiles_dagster.sql.retention import CleanupPlan, plan_cleanup
from profiles_dagster.warehouse.base import Session

log = logging.getLogger("profiles_dagster")

DEFAULT_KEEP = 3


def _rows(session: Session, query: exp.Expression) -> list[tuple]:
    return session.query(session.render(query))


def recover_unfinished_runs(session: Session, schema: str, own_seq_no: int | None = None) -> list[str]:
    """With the lock held, no other run is alive: settle the ones that never finished.

    A run killed while publishing had completed every step and recorded where its views go: its views
    are (re)pointed and it is marked complete (roll forward). Any other unfinished run is marked killed;
    its materials stay until a cleanup drops them. Returns what was done, for the log.
    """
    notes = []
    unfinished = exp.column("status").isin(*(exp.Literal.string(s) for s in registry.UNFINISHED))
    runs = [
        registry.RunRow.from_row(r)
        for r in _rows(
            session, registry.select(schema, registry.RUNS, unfinished, registry.RunRow.COLUMNS).order_by("seq_no")
        )
    ]
    for run in runs:
        seq_no = run.seq_no
        if own_seq_no is not None and seq_no == own_seq_no:
            continue
        if run.status is Status.PUBLISHING:
            pointers = [
                registry.ViewRow.from_row(r)
                for r in _rows(
                    session,
                    registry.select(schema, registry.VIEWS, registry.eq("seq_no", seq_no), registry.ViewRow.COLUMNS),
                )
            ]
            missing = [p.table_name for p in pointers if not session.table_exists(table(p.table_name, schema))]
            if not missing:
                session.point_views([(table(p.view_name, schema), table(p.table_name, schema)) for p in pointers])
                session.run(
                    registry.finish_run(
                        schema, seq_no, Status.COMPLETE, now_utc(), "completed by a later run: killed while publishing"
                    )
                )
                notes.append(f"run {seq_no} was killed while publishing its views; finished publishing them")
                continue
        pid, host = run.pid, run.host
        message = f"process {pid} on host {host} stopped before the run finished (found by a later run)"
        session.run(registry.finish_run(schema, seq_no, Status.KILLED, now_utc(), message))
        notes.append(
            f"run {seq_no} of project '{run.project}' (pid {pid} on {host}, started {run.started_at}) was killed"
        )
    for note in notes:
        log.warning(note)
    return notes


@dataclass
class CleanupReport:
    plan: CleanupPlan
    dry_run: bool
    dropped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)


def cleanup(
    session: Session,
    project: Project,
    plan: RunPlan,
    *,
    keep: int | None = None,
    dry_run: bool = False,
    lock: RunLock | None = None,
    own_seq_no: int | None = None,
) -> CleanupReport:
    """Drop what `plan_cleanup` says may go; with `lock` (a run's own, held) or taking the schema's lock."""
    keep = keep or project.settings.retention_runs or DEFAULT_KEEP
    if keep < 1:
        raise ProfilesError(f"--keep must be at least 1, got {keep}")
    schema = session.schema
    owned = lock is None
    recovered: list[str] = []
    if owned:
        ensure_registry(session, schema)
        settings = project.settings.run_lock
        lock = RunLock(
            session,
            schema,
            project.name,
            wait_seconds=settings.wait_seconds,
            stale_after_seconds=settings.stale_after_seconds,
        )
        lock.acquire()
    try:
        if owned and not dry_run:
            recovered = recover_unfinished_runs(session, schema)
        materials = [
            MaterialRow.from_row(r)
            for r in _rows(session, registry.select(schema, registry.MATERIALS, columns=MaterialRow.COLUMNS))
        ]
        # the registry's spelling of a name the engine lists in another case (Snowflake: upper)
        registered = {m.table_name.lower(): m.table_name for m in materials}
        decided = plan_cleanup(
            project.name,
            keep=keep,
            runs=[
                RunRow.from_row(r)
                for r in _rows(session, registry.select(schema, registry.RUNS, columns=RunRow.COLUMNS[:3]))
            ],
            materials=materials,
            existing=session.list_objects(schema),
            view_pointers=_view_pointers(session, schema),
            view_definitions=session.view_definitions(schema),
            current_hashes={s.path: s.content_hash for s in plan.steps},
            running=[own_seq_no] if own_seq_no else [],
        )
        report = CleanupReport(decided, dry_run, recovered=recovered)
        if dry_run:
            return report
        for drop in decided.drops:
            try:
                session.run(exp.Drop(kind=drop.kind, tables=[table(drop.name, schema)], exists=True))
            except Exception as exc:  # keep going: one undroppable table must not block the others
                first = summary(exc)
                report.errors.append(f"{drop.name}: {first}")
                continue
            session.run(registry.mark_dropped(schema, registered.get(drop.name.lower(), drop.name), now_utc()))
            report.dropped.append(drop.name)
        return report
    finally:
        if owned:
            lock.release()


def _view_pointers(session: Session, schema: str) -> dict[str, str]:
    """Stable view -> material: its latest complete run's pointer, and pending ones of runs killed while
    publishing (which a later run rolls forward)."""
    status = {
        run.seq_no: run.status
        for run in map(
            RunRow.from_row, _rows(session, registry.select(schema, registry.RUNS, columns=RunRow.COLUMNS[:3]))
        )
    }
    current: dict[str, tuple[int, str]] = {}
    pending: dict[str, str] = {}
    rows = _rows(session, registry.select(schema, registry.VIEWS, columns=registry.ViewRow.COLUMNS))
    for row in map(registry.ViewRow.from_row, rows):
        view, material, seq_no = row.view_name, row.table_name, row.seq_no
        st = status.get(seq_no)
        if st is Status.COMPLETE and seq_no >= current.get(view, (0, ""))[0]:
            current[view] = (seq_no, material)
        elif st is Status.PUBLISHING:
            pending[f"{view} (pending, run {seq_no})"] = material
    return {**{v: m for v, (_, m) in current.items()}, **pending}


def retain_after_run(session: Session, project: Project, plan: RunPlan, lock: RunLock, seq_no: int) -> None:
    """After a complete run, with its lock: drop materials older than the last `retention_runs` complete runs
    (unset: keep everything, as pb does). A failed cleanup only leaves extra tables: a warning, not an error."""
    keep = project.settings.retention_runs
    if not keep:
        return
    try:
        report = cleanup(session, project, plan, keep=keep, lock=lock, own_seq_no=seq_no)
        if report.dropped:
            log.info("retention: dropped %d material(s) older than the last %d runs", len(report.dropped), keep)
    except Exception as exc:
        log.warning("retention after run %s failed: %s", seq_no, exc)
