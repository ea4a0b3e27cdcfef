"""pb's timegrain boundaries: the table is what pb 0.26.4 wrote into its SQL for each grain and end time."""

from __future__ import annotations

from datetime import datetime

import pytest

from profiles_dagster.project.timegrains import GRAINS, boundary, finer

# end time -> the boundary pb's compiled SQL read rows up to, per grain (runs on Postgres, one per cell)
PB_OBSERVED = {
    "2026-01-01T10:00:50": {  # a Thursday, the first of a month whose first Monday is the 5th
        "tick": "2026-01-01T10:00:50",
        "10minutes": "2026-01-01T10:00:00",
        "hour": "2026-01-01T10:00:00",
        "day": "2026-01-01T00:00:00",
        "week": "2025-12-29T00:00:00",
        "month": "2025-12-01T00:00:00",  # January's first Monday is later: December's
        "year": "2025-01-06T00:00:00",  # 2026's first Monday is later: 2025's
    },
    "2026-01-09T23:06:40": {
        "10minutes": "2026-01-09T23:00:00",
        "hour": "2026-01-09T23:00:00",
        "week": "2026-01-05T00:00:00",
        "month": "2026-01-05T00:00:00",
        "year": "2026-01-05T00:00:00",
    },
    "2025-03-08T14:00:00": {
        "10minutes": "2025-03-08T14:00:00",
        "week": "2025-03-03T00:00:00",
        "month": "2025-03-03T00:00:00",
        "year": "2025-01-06T00:00:00",
    },
}


@pytest.mark.parametrize(
    ("end", "grain", "expected"),
    [(end, grain, expected) for end, row in PB_OBSERVED.items() for grain, expected in row.items()],
)
def test_boundaries_are_pbs(end: str, grain: str, expected: str) -> None:
    assert boundary(datetime.fromisoformat(end), grain) == datetime.fromisoformat(expected)


def test_grains_are_ordered_finest_first() -> None:
    assert GRAINS == ("tick", "10minutes", "hour", "day", "week", "month", "year")
    assert finer("hour", "day") and not finer("day", "day") and not finer("week", "day")
