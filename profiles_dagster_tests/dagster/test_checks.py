"""Asset checks on a real DuckDB file: they pass on the example; a failing blocking check stops what
depends on it and leaves the views on the previous run; a warn check does not; the check SQL itself."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import sqlglot
from sqlglot import exp

from example_project.definitions import raw_loader
from example_project.loading import RAW_TABLES
from profiles_dagster import ProfilesError, build_definitions
from profiles_dagster.dagster.checks import judge
from profiles_dagster.project.settings import Threshold
from profiles_dagster.sql import checks as sql
from profiles_dagster.warehouse.duckdb import DuckDBWarehouse
from profiles_dagster_tests.conftest import END_TIME, EXAMPLE

RUN_CONFIG = {"ops": {"profiles_example_project": {"config": {"end_time": END_TIME}}}}


def _defs(database: Path, tmp_path: Path, **kwargs) -> dg.Definitions:
    return build_definitions(
        EXAMPLE,
        warehouse=DuckDBWarehouse(database=str(database), output_schema="profiles"),
        assets=[raw_loader(n) for n in RAW_TABLES],
        output_dir=tmp_path / "sql",
        **kwargs,
    )


def _profiles_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    return [k for k in graph.get_all_asset_keys() if k.path[0] in ("user", "models")]


def _view_sql(database: Path, view: str) -> str:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute("select sql from duckdb_views() where view_name = ?", [view]).fetchone()[0]
    finally:
        con.close()


def _evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def example_checked(tmp_path_factory: pytest.TempPathFactory):
    """The example materialized once with its own profiles_dagster.yaml checks."""
    folder = tmp_path_factory.mktemp("checked")
    database = folder / "w.duckdb"
    defs = _defs(database, folder)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(run_config=RUN_CONFIG)
    return defs, result, database


def test_checks_are_declared_per_step(example_checked) -> None:
    defs, _, _ = example_checked
    specs = {
        f"{s.asset_key.to_user_string()}:{s.name}": s
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition)
        for s in a.check_specs
    }
    for name in (
        "user/features:user_main_id_not_null",
        "user/features:user_main_id_unique",
        "user/views/user_features_by_email:email_unique",
        "user/id_stitcher:not_empty",
        "user/id_stitcher:max_cluster_size",
        "user/id_stitcher:max_anonymous_id_per_profile",
        "user/input_vars/orders:freshness",
        "user/features:revenue_not_negative",
    ):
        assert name in specs, name
    assert specs["user/features:user_main_id_unique"].blocking
    assert specs["user/id_stitcher:max_cluster_size"].blocking  # an error threshold is set
    assert not specs["user/input_vars/orders:freshness"].blocking  # only warn: 720 in the example
    assert not specs["user/views/user_feature_view:page_views_not_negative"].blocking  # severity: warn


def test_checks_pass_on_the_example(example_checked) -> None:
    defs, result, _ = example_checked
    assert result.success
    evaluations = _evaluations(result)
    declared = sum(len(a.check_specs) for a in defs.assets if isinstance(a, dg.AssetsDefinition))
    assert len(evaluations) == declared >= 30
    failed = [name for name, e in evaluations.items() if not e.passed]
    assert failed == []
    size = evaluations["user/id_stitcher:max_cluster_size"].metadata
    assert size["size_max"].value == 14 and size["size_p50"].value <= size["size_p99"].value <= 14
    assert size["largest_profile"].value.startswith("rid") and size["largest_profile"].value.endswith("(14 ids)")
    fresh = evaluations["user/input_vars/orders:freshness"].metadata
    assert 0 < fresh["age_hours"].value < 720  # newest order 2025-10-20 18:41, end time 2025-11-01


def test_failing_blocking_check_stops_downstream_and_keeps_views(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    first = _defs(database, tmp_path)
    assert first.resolve_implicit_global_asset_job_def().execute_in_process(run_config=RUN_CONFIG).success
    view_before = _view_sql(database, "user_feature_view")
    cohort_before = _view_sql(database, "user_high_value")

    broken = _defs(
        database,
        tmp_path,
        settings={
            "checks": {"custom": [{"name": "impossible", "step": "user/features", "condition": "total_revenue < 0"}]}
        },
    )
    job = broken.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(run_config=RUN_CONFIG, asset_selection=_profiles_keys(broken), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message
    assert "user/features:impossible" in message and "user/views/user_feature_view" in message
    assert "previous complete run" in message
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "user/features" in materialized
    # what reads the feature table was not run; what does not (the cohort) was
    assert not {"user/views/user_feature_view", "user/views/user_features_by_email"} & materialized
    assert "user/cohort/high_value" in materialized
    impossible = _evaluations(result)["user/features:impossible"]
    assert not impossible.passed and impossible.severity == dg.AssetCheckSeverity.ERROR
    assert impossible.metadata["failing_rows"].value == 951
    assert impossible.metadata["failing_user_main_id"].value.startswith("rid")
    # nothing was repointed, not even the cohort that did run
    assert _view_sql(database, "user_feature_view") == view_before
    assert _view_sql(database, "user_high_value") == cohort_before
    con = duckdb.connect(str(database), read_only=True)
    statuses = dict(
        con.execute(
            "select step, status from profiles._profiles_materials where seq_no = 2 and step = 'user/features'"
        ).fetchall()
    )
    runs = dict(con.execute("select seq_no, status from profiles._profiles_runs").fetchall())
    con.close()
    assert statuses == {"user/features": "rejected"} and runs[2] == "failed"

    # a later subset of the views reads the last good feature table, not the rejected one
    subset = first.resolve_implicit_global_asset_job_def().execute_in_process(
        run_config=RUN_CONFIG, asset_selection=[dg.AssetKey(["user", "views", "user_feature_view"])]
    )
    assert subset.success
    mat = next(iter(subset.get_asset_materialization_events())).event_specific_data.materialization
    assert mat.metadata["dagster/table_name"].value.endswith("_3")
    assert re.search(r"Material_user_feature_table_[0-9a-f]{8}_1\b", mat.metadata["profiles/sql"].value)


def test_failing_warn_check_does_not_block(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    defs = _defs(
        database,
        tmp_path,
        settings={
            "checks": {
                "id_stitcher": {"max_ids_per_profile": {"anonymous_id": {"warn": 2}}},
                "custom": [
                    {"name": "few_orders", "step": "user/features", "condition": "order_count < 2", "severity": "warn"}
                ],
            }
        },
    )
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(run_config=RUN_CONFIG)
    assert result.success
    evaluations = _evaluations(result)
    few = evaluations["user/features:few_orders"]
    assert not few.passed and few.severity == dg.AssetCheckSeverity.WARN and few.metadata["failing_rows"].value > 0
    anon = evaluations["user/id_stitcher:max_anonymous_id_per_profile"]
    assert not anon.passed and anon.severity == dg.AssetCheckSeverity.WARN and anon.metadata["max"].value == 8
    assert re.search(r"Material_user_feature_view_[0-9a-f]{8}_1\b", _view_sql(database, "user_feature_view"))


def test_stitcher_error_threshold_blocks_everything_after_the_stitcher(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    defs = _defs(
        database, tmp_path, settings={"checks": {"id_stitcher": {"max_cluster_size": {"warn": 5, "error": 10}}}}
    )
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(run_config=RUN_CONFIG, raise_on_error=False)
    assert not result.success
    size = _evaluations(result)["user/id_stitcher:max_cluster_size"]
    assert not size.passed and size.severity == dg.AssetCheckSeverity.ERROR
    assert "a profile has 14 ids" in size.description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "user/id_stitcher" in materialized and "models/user_daily_orders" in materialized
    assert not any(k.startswith(("user/all", "user/features", "user/views", "user/cohort")) for k in materialized)
    con = duckdb.connect(str(database), read_only=True)
    views = con.execute("select count(*) from duckdb_views() where schema_name = 'profiles'").fetchone()[0]
    con.close()
    assert views == 0


def test_checks_alone_look_at_the_latest_material(example_checked, tmp_path: Path) -> None:
    defs, _, _ = example_checked
    only_checks = dg.define_asset_job(
        "features_checks", selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["user", "features"]))
    )
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[only_checks]))
    result = merged.resolve_job_def("features_checks").execute_in_process()
    assert result.success
    assert result.get_asset_materialization_events() == []
    evaluations = _evaluations(result)
    assert set(evaluations) == {
        "user/features:user_main_id_not_null",
        "user/features:user_main_id_unique",
        "user/features:not_empty",
        "user/features:revenue_not_negative",
    }
    assert all(e.passed for e in evaluations.values())
    assert evaluations["user/features:not_empty"].metadata["profiles/material"].value.endswith("_1")

    empty = _defs(tmp_path / "empty.duckdb", tmp_path)
    merged = dg.Definitions.merge(empty, dg.Definitions(jobs=[only_checks]))
    never = merged.resolve_job_def("features_checks").execute_in_process(raise_on_error=False)
    results = _evaluations(never)
    assert results and all(not e.passed for e in results.values())
    assert "never materialized" in results["user/features:user_main_id_unique"].description


def test_stitcher_checks_alone_name_the_largest_profile(example_checked) -> None:
    """Without the run's statistics, the largest profile comes from the graph's shape, as the run reports it."""
    defs, result, _ = example_checked
    only_checks = dg.define_asset_job(
        "stitcher_checks", selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["user", "id_stitcher"]))
    )
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[only_checks]))
    alone = _evaluations(merged.resolve_job_def("stitcher_checks").execute_in_process())
    in_run = _evaluations(result)
    size = alone["user/id_stitcher:max_cluster_size"]
    assert size.passed
    expected = in_run["user/id_stitcher:max_cluster_size"].metadata["largest_profile"].value
    assert size.metadata["largest_profile"].value == expected


def test_checks_can_be_turned_off(tmp_path: Path) -> None:
    defs = _defs(tmp_path / "w.duckdb", tmp_path, settings={"checks": {"enabled": False}})
    assert all(not a.check_specs for a in defs.assets if isinstance(a, dg.AssetsDefinition))


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        (
            {"custom": [{"name": "x", "step": "user/featurs", "condition": "true"}]},
            r"no step 'user/featurs'.*did you mean 'user/features'",
        ),
        ({"custom": [{"name": "x", "step": "user/features", "condition": "total_revenue >"}]}, "does not parse"),
        ({"custom": [{"name": "not_empty", "step": "user/features", "condition": "true"}]}, "two checks named"),
        ({"id_stitcher": {"max_ids_per_profile": {"emial": {"warn": 1}}}}, r"'emial'.*did you mean 'email'"),
    ],
)
def test_bad_check_settings_are_named(tmp_path: Path, checks: dict, message: str) -> None:
    with pytest.raises(ProfilesError, match=message):
        _defs(tmp_path / "w.duckdb", tmp_path, settings={"checks": checks})


def test_settings_overrides_stay_on_the_dagster_side(tmp_path: Path) -> None:
    with pytest.raises(ProfilesError, match="change the plan"):
        _defs(tmp_path / "w.duckdb", tmp_path, settings={"dialect": "snowflake"})


# ---- the SQL itself ----------------------------------------------------------------------------------


def test_check_queries_on_duckdb_and_other_dialects(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "q.duckdb"))
    con.execute("create table t (id varchar, v int, ts timestamp)")
    con.execute(
        "insert into t values ('a', 1, '2025-01-01'), ('a', 2, '2025-01-03'), ('b', -1, null), (null, null, null)"
    )
    t = exp.to_table("t")
    assert con.execute(sql.key_query(t, "id").sql("duckdb")).fetchall() == [(4, 1, 1)]
    assert con.execute(sql.row_count_query(t).sql("duckdb")).fetchall() == [(4,)]
    assert con.execute(sql.latest_event_query(t, "ts").sql("duckdb")).fetchall() == [(4, datetime(2025, 1, 3))]
    condition = sql.parse_condition("v >= 0", "duckdb")
    assert con.execute(sql.failing_rows_query(t, condition).sql("duckdb")).fetchall() == [(1,)]  # NULL passes
    assert con.execute(sql.failing_sample_query(t, condition, "id").sql("duckdb")).fetchall() == [("b",)]
    con.close()
    queries = (sql.key_query(t, "id"), sql.latest_event_query(t, "ts"), sql.failing_rows_query(t, condition))
    for dialect in ("snowflake", "bigquery", "postgres", "redshift", "databricks"):
        for query in queries:  # renders in every engine's dialect and parses back there
            back = sqlglot.parse_one(query.sql(dialect), read=dialect)
            assert isinstance(back, exp.Select) and back.find(exp.Table).name == "t"


def test_thresholds() -> None:
    assert judge(5, Threshold(warn=10, error=20)) == (True, "error")
    assert judge(15, Threshold(warn=10, error=20)) == (False, "warn")
    assert judge(25, Threshold(warn=10, error=20)) == (False, "error")
    assert judge(25, Threshold(warn=10)) == (False, "warn")
    assert judge(None, Threshold(error=1)) == (False, "error")
