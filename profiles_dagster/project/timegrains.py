"""pb's timegrains: the boundary up to which a model with a `time_grain` reads its inputs.

What pb 0.26.4 does (its compiled SQL and `model_timegrains.json`, one run per grain and end time): a model
of grain G computes as of the last boundary of G at or before the run's end time, UTC; `tick` is the end time
itself; `week` starts on Monday; `month` and `year` start on the first Monday of the month or year (the docs'
"first Monday" rule: 2026-01-01 10:00 gives 2025-12-01 for `month`, 2025-01-06 for `year`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

# pb's order, finest first: a model may not be finer than the project's default_time_grain
GRAINS = ("tick", "10minutes", "hour", "day", "week", "month", "year")


def finer(grain: str, than: str) -> bool:
    return GRAINS.index(grain) < GRAINS.index(than)


def boundary(end: datetime, grain: str) -> datetime:
    """The last boundary of `grain` at or before `end` (naive UTC)."""
    if grain == "tick":
        return end
    if grain == "10minutes":
        return end.replace(minute=end.minute - end.minute % 10, second=0, microsecond=0)
    if grain == "hour":
        return end.replace(minute=0, second=0, microsecond=0)
    day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        start = _first_monday(day.year, day.month)
        if start > end:
            year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
            start = _first_monday(year, month)
        return start
    if grain == "year":
        start = _first_monday(day.year, 1)
        return start if start <= end else _first_monday(day.year - 1, 1)
    raise ValueError(f"unknown time grain {grain!r}")


def _first_monday(year: int, month: int) -> datetime:
    first = datetime(year, month, 1)
    return first + timedelta(days=(7 - first.weekday()) % 7)


__all__ = ["GRAINS", "boundary", "finer"]
