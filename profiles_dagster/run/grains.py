"""pb's timegrains: results reused until the grain's next boundary.

A project with `default_time_grain` computes every run as of the grain's last boundary at or before its end
time (`project/timegrains.py`). pb 0.26.4 (observed on Postgres, `default_time_grain: day`): a second run on
the same day finds the boundary already computed and writes no material at all; its views point at the
first run's. New rows dated before the boundary are so not seen until the next boundary, as with pb.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from profiles_dagster.clock import naive_utc
from profiles_dagster.plan.steps import Step, StepKey
from profiles_dagster.sql.increments import Increments, Previous


def reused_within_grain(
    grain: str, increments: Increments, steps: Sequence[Step], end_time: datetime, begin_time: datetime | None
) -> dict[StepKey, Previous]:
    """The steps an earlier complete run already computed as of this run's boundary (same definition, same
    end and begin time): reused, not computed again. None with grain `tick` (every end time is its own
    boundary) or a full refresh (`increments` then holds nothing)."""
    if grain == "tick":
        return {}
    found = {}
    for step in steps:
        previous = increments.of(step.key)
        if previous is None:
            continue
        same_end = naive_utc(previous.end_time) == naive_utc(end_time)
        if same_end and naive_utc(previous.begin_time) == naive_utc(begin_time):
            found[step.key] = previous
    return found
