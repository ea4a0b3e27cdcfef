"""Incremental runs on Postgres: the example project with append-only inputs, a day of new rows (some late),
and every stable view equal to a full run's over the same rows in another schema."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from profiles_dagster.loading import load
from profiles_dagster.runner import ProfilesRun
from profiles_dagster_tests.standins.example import load_example_inputs, project_copy

VIEWS = ("user_id_stitcher", "user_all", "user_high_value", "user_feature_view", "user_features_by_email")
TABLES = ("identifies", "tracks", "pages", "orders")
CUT = "2025-10-25 00:00:00"
END = datetime(2025, 11, 1)


@pytest.fixture(scope="module")
def target(postgres_standin) -> dict:
    return postgres_standin.target("incremental")


def _append_only(project: Path) -> None:
    inputs = project / "models" / "inputs.yaml"
    spec = yaml.safe_load(inputs.read_text(encoding="utf-8"))
    for inp in spec["inputs"]:
        inp.setdefault("contract", {})["is_append_only"] = True
    inputs.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def _run(project: Path, site: Path, **kwargs: object) -> ProfilesRun:
    loaded = load(project, site_config=site)
    with loaded.warehouse.session() as session:
        run = ProfilesRun(loaded.project, loaded.plan, session, end_time=END, **kwargs)  # type: ignore[arg-type]
        run.start()
        for _ in run.execute():
            pass
        run.publish()
    return run


def _views(project: Path, site: Path, schema: str) -> dict[str, list[tuple]]:
    with load(project, site_config=site).warehouse.session() as session:
        return {v: sorted(session.query(f"SELECT * FROM {schema}.{v}"), key=repr) for v in VIEWS}


def test_incremental_equals_full_on_postgres(target: dict, tmp_path: Path) -> None:
    project, site = project_copy(tmp_path / "incr", target, schema="profiles_incr")
    _append_only(project)
    loaded = load(project, site_config=site)
    with loaded.warehouse.session() as session:
        load_example_inputs(session)
        session.execute("DROP SCHEMA IF EXISTS stage CASCADE")
        session.execute("CREATE SCHEMA stage")
        for t in TABLES:  # the last week aside; a tenth of it dated back two days (late, inside the look-back)
            session.execute(f"CREATE TABLE stage.{t} AS SELECT * FROM raw.{t} WHERE timestamp > '{CUT}'")
            session.execute(f"DELETE FROM raw.{t} WHERE timestamp > '{CUT}'")
        session.execute("UPDATE stage.tracks SET timestamp = timestamp - interval '2 days' WHERE random() < 0.1")
    _run(project, site)
    with loaded.warehouse.session() as session:
        for t in TABLES:
            session.execute(f"INSERT INTO raw.{t} SELECT * FROM stage.{t}")
    second = _run(project, site)
    stats = {r.step.path: r.stats for r in second.results}
    for path in ("user/input_vars/tracks", "user/input_vars_mapped/tracks", "user/entity_vars"):
        assert stats[path]["incremental"] is True, (path, stats[path])
    # moved rows counted (deleted, added back under the new main id); the var table patched in place, the feature
    # table (its days_since_* features change on every row) written anew from it
    assert "rows_moved" in stats["user/input_vars_mapped/tracks"]
    assert stats["user/entity_vars"]["patched_in_place"] is True
    assert stats["user/features"]["incremental"] is False
    full_project, full_site = project_copy(tmp_path / "full", target, schema="profiles_full")
    _append_only(full_project)
    _run(full_project, full_site)
    assert _views(project, site, "profiles_incr") == _views(full_project, full_site, "profiles_full")
