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
from profiles_dagster.sql.retention import CleanupPlan, MaterialRow, RunRow, plan_cleanup
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
    rows = _rows(
        session,
        registry.select(
            schema,
            registry.RUNS,
            exp.column("status").isin(exp.Literal.string("running"), exp.Literal.string("publishing")),
            ("seq_no", "project", "status", "pid", "host", "started_at"),
        ).order_by("seq_no"),
    )
    for seq_no, project, status, pid, host, started_at in rows:
        if own_seq_no is not None and seq_no == own_seq_no:
            continue
        if status == "publishing":
            pointers = _rows(
                session,
                registry.select(schema, registry.VIEWS, registry.eq("seq_no", seq_no), ("view_name", "table_name")),
            )
            missing = [m for _, m in pointers if not session.table_exists(table(m, schema))]
            if not missing:
                session.point_views([(table(v, schema), table(m, schema)) for v, m in pointers])
                session.run(
                    registry.finish_run(
                        schema, seq_no, "complete", now_utc(), "completed by a later run: killed while publishing"
                    )
                )
                notes.append(f"run {seq_no} was killed while publishing its views; finished publishing them")
                continue
        message = f"process {pid} on host {host} stopped before the run finished (found by a later run)"
        session.run(registry.finish_run(schema, seq_no, "killed", now_utc(), message))
        notes.append(f"run {seq_no} of project '{project}' (pid {pid} on {host}, started {started_at}) was killed")
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
            MaterialRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]))
            for r in _rows(
                session,
                registry.select(
                    schema,
                    registry.MATERIALS,
                    columns=("seq_no", "project", "step", "content_hash", "table_name", "status"),
                ),
            )
        ]
        # the registry's spelling of a name the engine lists in another case (Snowflake: upper)
        registered = {m.table_name.lower(): m.table_name for m in materials}
        decided = plan_cleanup(
            project.name,
            keep=keep,
            runs=[
                RunRow(int(s), str(p), str(st))
                for s, p, st in _rows(
                    session, registry.select(schema, registry.RUNS, columns=("seq_no", "project", "status"))
                )
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
        int(n): str(st)
        for n, st in _rows(session, registry.select(schema, registry.RUNS, columns=("seq_no", "status")))
    }
    current: dict[str, tuple[int, str]] = {}
    pending: dict[str, str] = {}
    rows = _rows(session, registry.select(schema, registry.VIEWS, columns=("view_name", "table_name", "seq_no")))
    for view, material, seq_no in rows:
        st = status.get(int(seq_no))
        if st == "complete" and int(seq_no) >= current.get(view, (0, ""))[0]:
            current[view] = (int(seq_no), material)
        elif st == "publishing":
            pending[f"{view} (pending, run {seq_no})"] = material
    return {**{v: m for v, (_, m) in current.items()}, **pending}
