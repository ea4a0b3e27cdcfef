"""pb's timegrains: results reused until the grain's next boundary.

A project with `default_time_grain` computes every run as of the grain's last boundary at or before its end
time (`project/timegrains.py`). pb 0.26.4 (observed on Postgres, `default_time_grain: day`): a second run on
the same day finds the boundary already computed and writes no material at all; its views point at the
first run's. New rows dated before the boundary are so not seen until the next boundary, as with pb. The steps of a
coarser var_group grain are reused likewise until their own grain's next boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from profiles_dagster.clock import naive_utc
from profiles_dagster.plan.steps import Step, StepKey
from profiles_dagster.project.timegrains import boundary
from profiles_dagster.sql.increments import Increments, Previous


def reused_within_grain(
    grain: str, increments: Increments, steps: Sequence[Step], end_time: datetime, begin_time: datetime | None
) -> dict[StepKey, Previous]:
    """The steps an earlier complete run already computed as of this run's boundary (same definition, same
    end and begin time): reused, not computed again. None with grain `tick` (every end time is its own
    boundary) or a full refresh (`increments` then holds nothing).

    A step of a coarser grain (a var_group's `time_grain`, `Step.grain`) computed as of that grain's last
    boundary before its run's end time: reused while this run's end time has the same boundary, so a week's
    vars are computed once a week however often the day's run."""
    found = {}
    for step in steps:
        previous = increments.of(step.key)
        if previous is None or (step.grain is None and grain == "tick") or previous.end_time is None:
            continue
        before, now = naive_utc(previous.end_time), naive_utc(end_time)
        if step.grain is not None:
            same_end = boundary(before, step.grain) == boundary(now, step.grain)
        else:
            same_end = before == now
        if same_end and naive_utc(previous.begin_time) == naive_utc(begin_time):
            found[step.key] = previous
    return found
