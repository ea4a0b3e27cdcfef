"""A var_group of a coarser time_grain as Dagster assets: its steps beside the default grain's, keyed
`<step>/at_<grain>`, materialized in one run and reported with their grain."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from profiles_dagster import build_definitions
from profiles_dagster.dagster.checks import plan_checks
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.plan.steps import StepKey
from profiles_dagster.project.loader import load_project
from profiles_dagster.project.settings import ProfilesDagsterSettings
from profiles_dagster.warehouse.duckdb import DuckDBWarehouse
from profiles_dagster_tests.format.harness import write
from profiles_dagster_tests.format.test_format_timegrains import SEED, U1, U2, U3, WEEK_VARS, _files, _sql


def test_week_steps_are_assets_keyed_with_their_grain(tmp_path: Path) -> None:
    write(tmp_path, _files(WEEK_VARS))
    _sql(tmp_path, SEED)
    database = tmp_path / "warehouse.duckdb"
    defs = build_definitions(tmp_path, warehouse=DuckDBWarehouse(database=str(database), output_schema="out"))
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    week = {
        "user/input_vars/events/at_week",
        "user/id_stitcher/at_week",
        "user/all/at_week",
        "user/input_vars_mapped/events/at_week",
        "user/entity_vars/at_week",
    }
    assert week <= keys
    features = graph.get(dg.AssetKey(["user", "features"]))
    assert {k.to_user_string() for k in features.parent_keys} == {"user/entity_vars", "user/entity_vars/at_week"}
    stitcher = graph.get(dg.AssetKey(["user", "id_stitcher", "at_week"]))
    assert {k.to_user_string() for k in stitcher.parent_keys} == {"user/input_vars/events/at_week"}

    config = {"ops": {"profiles_grains": {"config": {"end_time": "2026-01-22T10:00:00Z"}}}}
    selection = [k for k in graph.get_all_asset_keys() if k.path[0] == "user"]
    result = dg.materialize(
        [*defs.assets],  # type: ignore[list-item]
        selection=selection,
        resources=defs.resources,
        run_config=config,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    materialized = {
        m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("profiles_grains")
    }
    assert materialized["user/entity_vars/at_week"]["profiles/time_grain"].value == "week"
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = dict(con.execute("select user_main_id, week_total from out.user_feature_view").fetchall())
    finally:
        con.close()
    assert {k: (None if v is None else int(v)) for k, v in rows.items()} == {U1: 30, U2: 4, U3: None}


def test_checks_of_week_steps_do_not_block_on_an_early_boundary(tmp_path: Path) -> None:
    """A week's boundary may come before any row (a project started mid-week): its graph's emptiness is a warning,
    where the day's is an error; its input copy has no freshness check (its rows stop at Monday by design)."""
    write(tmp_path, _files(WEEK_VARS))
    project = load_project(tmp_path)
    settings = ProfilesDagsterSettings.model_validate({"checks": {"input_freshness": {"warn": 48}}})
    checks = {(c.step, c.name): c.severity for c in plan_checks(project, build_plan(project), settings, "duckdb")}
    assert checks[(StepKey.id_stitcher("user"), "not_empty")] == "error"
    assert checks[(StepKey.id_stitcher("user").at("week"), "not_empty")] == "warn"
    freshness = {step for step, name in checks if "fresh" in name}
    assert StepKey.input_vars("user", "events") in freshness
    assert StepKey.input_vars("user", "events").at("week") not in freshness
