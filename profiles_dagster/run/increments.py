"""The previous complete material of each step of a run, read from the run registry (`sql/increments.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from profiles_dagster.plan.steps import Step, StepKey
from profiles_dagster.sql import registry
from profiles_dagster.sql.increments import Checkpoint, Increments, Previous
from profiles_dagster.sql.names import table
from profiles_dagster.warehouse.base import Session


def _as_datetime(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def previous_materials(
    session: Session, schema: str, project: str, steps: Sequence[Step], seq_no: int, *, full_refresh: bool
) -> Increments:
    """For each step, the newest complete material of its definition (content hash) written by an earlier run
    whose table still exists, with that run's times and the checkpoint recorded with it. `full_refresh`: none."""
    if full_refresh:
        return Increments(full_refresh=True)
    found: dict[StepKey, Previous] = {}
    for step in steps:
        query = registry.previous_material(schema, project, step.path, step.content_hash, seq_no)
        rows = session.query(query.sql(dialect=session.dialect))
        if not rows:
            continue
        prev_seq, name, end_time, begin_time = rows[0]
        material = table(str(name), schema)
        if not session.table_exists(material):
            continue
        state = session.query(registry.stitcher_checkpoint(schema, str(name)).sql(dialect=session.dialect))
        checkpoint = None
        if state:
            watermark, window_start, rows_before, ids, clusters = state[0]
            checkpoint = Checkpoint(
                _as_datetime(watermark),
                _as_datetime(window_start),
                int(rows_before or 0),
                int(ids or 0),
                int(clusters or 0),
            )
        found[step.key] = Previous(
            material, int(prev_seq), _as_datetime(end_time), _as_datetime(begin_time), checkpoint
        )
    return Increments(found)
