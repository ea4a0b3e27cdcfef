"""What an incremental step starts from: the previous complete material of the same definition, as data.

The runner fills one `Previous` per step from the run registry (`run/increments.py`) before compiling;
`full_refresh` leaves the map empty, so every step is built from all rows. Pure data here: `sql/` runs no
SQL and never imports `run/`. A step with no `Previous` (first run, a changed definition: another content
hash, a dropped table) is built in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlglot import exp

from profiles_dagster.plan.keys import StepKey
from profiles_dagster.sql.stitcher import Checkpoint

__all__ = ["Checkpoint", "Increments", "Previous"]


@dataclass(frozen=True)
class Previous:
    """A step's newest complete material of its current definition whose table still exists, and its run."""

    table: exp.Table
    seq_no: int
    end_time: datetime | None  # the end time that run read its inputs up to
    begin_time: datetime | None
    checkpoint: Checkpoint | None = None  # recorded with the material (the stitcher's, an input var table's)


@dataclass(frozen=True)
class Increments:
    """Every step's `Previous`, and whether this run may use them at all."""

    previous: Mapping[StepKey, Previous] = field(default_factory=dict)
    full_refresh: bool = False  # --full-refresh / run config: nothing is extended

    def of(self, key: StepKey) -> Previous | None:
        """The step's previous material, or None when the step is built in full."""
        return None if self.full_refresh else self.previous.get(key)
