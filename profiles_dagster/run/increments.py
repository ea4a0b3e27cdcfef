"""The previous complete material of each step of a run, read from the run registry (`sql/increments.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from profiles_dagster.clock import naive_utc
from profiles_dagster.plan.steps import Step, StepKey
from profiles_dagster.sql import registry
from profiles_dagster.sql.increments import Checkpoint, Increments, Previous
from profiles_dagster.sql.names import table
from profiles_dagster.warehouse.base import Session


def previous_materials(
    session: Session, schema: str, project: str, steps: Sequence[Step], seq_no: int, *, full_refresh: bool
) -> Increments:
    """For each step, the newest complete material of its definition (content hash) written by an earlier run
    whose table still exists, with that run's times and the checkpoint recorded with it. `full_refresh`: none.
    Three queries for the whole run, whatever its number of steps."""
    if full_refresh:
        return Increments(full_refresh=True)
    wanted = {(s.path, s.content_hash): s.key for s in steps}
    rows = session.query(registry.complete_materials(schema, project, seq_no).sql(dialect=session.dialect))
    newest: dict[StepKey, tuple] = {}
    for row in rows:  # newest first
        key = wanted.get((str(row[1]), str(row[2])))
        if key is not None and key not in newest:
            newest[key] = row
    if not newest:
        return Increments()
    existing = {n.lower() for n in session.list_tables(schema)}
    states = session.query(registry.checkpoints(schema, project).sql(dialect=session.dialect))
    points = {
        str(name): Checkpoint(naive_utc(wm), naive_utc(ws), int(before or 0), int(ids or 0), int(clusters or 0))
        for name, wm, ws, before, ids, clusters in states
    }
    found: dict[StepKey, Previous] = {}
    for key, (prev_seq, _, _, name, end_time, begin_time) in newest.items():
        if str(name).lower() not in existing:
            continue
        found[key] = Previous(
            table(str(name), schema), int(prev_seq), naive_utc(end_time), naive_utc(begin_time), points.get(name)
        )
    return Increments(found)
