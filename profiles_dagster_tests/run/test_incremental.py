"""Incremental runs over an append-only input: every stable view equals a full recompute's, cell by cell."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from profiles_dagster.loading import load
from profiles_dagster.runner import ProfilesRun
from profiles_dagster_tests.run.incr_project import add_events, write_project

D = datetime


def _run(root: Path, site: Path, end: datetime, **kwargs: object) -> ProfilesRun:
    loaded = load(root, site_config=site)
    with loaded.warehouse.session() as session:
        run = ProfilesRun(loaded.project, loaded.plan, session, end_time=end, **kwargs)  # type: ignore[arg-type]
        try:
            run.start()
            for _ in run.execute():
                pass
            run.publish()
        except BaseException as exc:
            run.fail(exc)
            raise
    return run


BASE = [
    (D(2025, 1, 1, 10), "u1", "a1", 50.0, "buy"),
    (D(2025, 1, 2, 10), None, "a1", None, "view"),
    (D(2025, 1, 3, 10), "u2", "a2", 120.0, "buy"),
    (D(2025, 1, 4, 10), None, "a3", None, "view"),
    (D(2025, 1, 5, 10), "u3", None, 10.0, "buy"),
]


def test_previous_materials_known_after_a_complete_run(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    root, site = write_project(tmp_path, database)
    add_events(database, BASE)
    first = _run(root, site, D(2025, 1, 6))
    assert first.context is not None and not first.context.increments.previous
    second = _run(root, site, D(2025, 1, 7))
    assert second.context is not None
    known = second.context.increments.previous
    assert set(known) == {s.key for s in second.steps}
    for step in second.steps:
        prev = known[step.key]
        assert prev.seq_no == first.seq_no and prev.end_time == D(2025, 1, 6)
        assert prev.table.name == first.materials[step.key].name
    stitcher = next(s for s in second.steps if s.kind.name == "ID_STITCHER")
    assert known[stitcher.key].checkpoint is not None
    refreshed = _run(root, site, D(2025, 1, 7), full_refresh=True)
    assert refreshed.context is not None and refreshed.context.increments.of(stitcher.key) is None
