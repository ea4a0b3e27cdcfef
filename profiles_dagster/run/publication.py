"""The swap of the stable views: pb's names (`user_id_stitcher`, `user_feature_view`, ...) repointed at a
run's materials together, and only once every step of the run succeeded.

The pointers are recorded (status `publishing`) before the views move, so a run killed while publishing
is finished by the next one (roll forward, `maintenance.recover_unfinished_runs`); until then readers see
the previous complete run.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from profiles_dagster.run.recording import RunRecord
from profiles_dagster.sql.registry import Status


def publish(record: RunRecord, views: Sequence[tuple[exp.Table, exp.Table]]) -> None:
    """Point each stable view at its material and mark the run complete."""
    record.publishing([(view.name, material.name) for view, material in views])
    record.session.point_views(views)
    record.finish(Status.COMPLETE)
