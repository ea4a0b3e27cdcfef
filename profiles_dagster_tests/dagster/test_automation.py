"""Schedule, new-rows sensor and automation conditions from profiles_dagster.yaml, on a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._utils.schedules import cron_string_iterator

from profiles_dagster import ProfilesError, build_definitions
from profiles_dagster.dagster.automation import grown
from profiles_dagster.warehouse.duckdb import DuckDBWarehouse
from profiles_dagster_tests.conftest import EXAMPLE, load_example_inputs

SENSOR = "profiles_example_project_new_rows"
SCHEDULE = "profiles_example_project_schedule"


def _defs(database: Path, tmp_path: Path, **kwargs) -> dg.Definitions:
    warehouse = DuckDBWarehouse(database=str(database), output_schema="profiles")
    return build_definitions(EXAMPLE, warehouse=warehouse, output_dir=tmp_path / "sql", **kwargs)


def _evaluate(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    sensor = defs.resolve_sensor_def(SENSOR)
    # as the daemon does: the code location's resources, bound to the sensor's context
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources)
    result = sensor.evaluate_tick(context)
    return result, context.cursor


def test_sensor_fires_after_new_rows_and_not_before(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    load_example_inputs(database)
    defs = _defs(database, tmp_path)
    instance = dg.DagsterInstance.ephemeral()

    first, cursor = _evaluate(defs, instance, None)
    assert first.run_requests == [] and "recorded the state" in first.skip_message
    assert cursor is not None
    again, cursor2 = _evaluate(defs, instance, cursor)
    assert again.run_requests == [] and "no new rows" in again.skip_message and cursor2 == cursor

    con = duckdb.connect(str(database))
    con.execute(
        "insert into raw.orders select 'o-new', user_id, email, 10, 'completed', timestamp '2025-10-30 10:00:00' "
        "from raw.orders limit 1"
    )
    con.close()
    fired, cursor3 = _evaluate(defs, instance, cursor)
    assert len(fired.run_requests) == 1
    request = fired.run_requests[0]
    assert request.tags["profiles/new_rows_in"] == "orders"
    keys = {k.to_user_string() for k in request.asset_selection}
    assert "user/features" in keys and "raw/orders" not in keys and len(keys) == 19
    assert cursor3 != cursor

    quiet, _ = _evaluate(defs, instance, cursor3)
    assert quiet.run_requests == []

    # the request runs in the sensor's own job: every step, default config (end_time: now)
    job = defs.resolve_job_def(defs.resolve_sensor_def(SENSOR).job_name)
    result = job.execute_in_process(asset_selection=list(request.asset_selection), run_config=request.run_config)
    assert result.success and len(result.get_asset_materialization_events()) == 19


def test_sensor_skips_while_the_warehouse_is_unreadable(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    defs = _defs(database, tmp_path)  # no raw tables at all
    result, cursor = _evaluate(defs, dg.DagsterInstance.ephemeral(), None)
    assert result.run_requests == [] and "could not read the inputs" in result.skip_message
    assert cursor is None


def test_grown_compares_counts_and_latest_events() -> None:
    before = {"a": [10, "2025-01-01 00:00:00"], "b": [5, None]}
    assert grown(before, {"a": [10, "2025-01-01 00:00:00"], "b": [5, None]}) == []
    assert grown(before, {"a": [10, "2025-01-02 00:00:00"], "b": [5, None]}) == ["a"]
    assert grown(before, {"a": [9, "2025-01-01 00:00:00"], "b": [6, None]}) == ["b"]
    assert grown(before, {"c": [1, None]}) == []


def test_schedule_pins_the_end_time_to_the_tick(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    load_example_inputs(database)
    defs = _defs(database, tmp_path)
    schedule = defs.resolve_schedule_def(SCHEDULE)
    assert schedule.cron_schedule == "0 6 * * *" and schedule.execution_timezone == "UTC"
    # the cron as the daemon reads it: the next tick after 2025-10-31 07:00 is 2025-11-01 06:00
    start = datetime(2025, 10, 31, 7, 0, tzinfo=UTC).timestamp()
    ticks = cron_string_iterator(start, schedule.cron_schedule, schedule.execution_timezone)
    assert next(ticks) == datetime(2025, 11, 1, 6, 0, tzinfo=UTC)
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2025, 11, 1, 6, 0, tzinfo=UTC))
    request = schedule.evaluate_tick(context).run_requests[0]
    config = request.run_config["ops"]["profiles_example_project"]["config"]
    assert config == {"end_time": "2025-11-01T06:00:00"}
    job = defs.resolve_job_def(schedule.job_name)  # the schedule's own job: every step, no loaders
    result = job.execute_in_process(run_config=request.run_config)
    assert result.success and len(result.get_asset_materialization_events()) == 19
    con = duckdb.connect(str(database), read_only=True)
    end = con.execute("select end_time from profiles._profiles_runs").fetchone()[0]
    con.close()
    assert end == datetime(2025, 11, 1, 6, 0)


def test_automation_conditions(tmp_path: Path) -> None:
    eager = _defs(tmp_path / "w.duckdb", tmp_path, settings={"automation": "eager"})
    graph = eager.resolve_asset_graph()
    features = graph.get(dg.AssetKey(["user", "features"]))
    assert features.automation_condition == dg.AutomationCondition.eager()
    assert graph.get(dg.AssetKey(["raw", "orders"])).automation_condition is None
    assert [s.name for s in eager.schedules] == [SCHEDULE]

    on_cron = _defs(tmp_path / "w.duckdb", tmp_path, settings={"automation": "on_cron"})
    condition = on_cron.resolve_asset_graph().get(dg.AssetKey(["user", "features"])).automation_condition
    assert condition.get_label() == "on_cron(0 6 * * *, UTC)"
    assert list(on_cron.schedules or []) == []  # the cron drives the automation instead of a schedule

    plain = _defs(tmp_path / "w.duckdb", tmp_path, settings={"schedule": None, "sensor": None})
    assert plain.resolve_asset_graph().get(dg.AssetKey(["user", "features"])).automation_condition is None
    assert not list(plain.schedules or []) and not list(plain.sensors or [])

    with pytest.raises(ProfilesError, match="on_cron needs a schedule"):
        _defs(tmp_path / "w.duckdb", tmp_path, settings={"automation": "on_cron", "schedule": None})
    with pytest.raises(ProfilesError, match=r"no input named 'order'.*did you mean 'orders'"):
        _defs(tmp_path / "w.duckdb", tmp_path, settings={"sensor": {"inputs": ["order"]}})


def test_full_refresh_is_run_config(tmp_path: Path) -> None:
    defs = _defs(tmp_path / "w.duckdb", tmp_path)
    config_type = defs.resolve_implicit_global_asset_job_def().run_config_schema.config_type
    fields = config_type.fields["ops"].config_type.fields["profiles_example_project"].config_type.fields
    op_config = fields["config"].config_type.fields
    assert {"end_time", "begin_time", "full_refresh"} <= set(op_config)
    assert op_config["full_refresh"].default_value is False


def test_full_refresh_rebuilds_the_id_graph(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    load_example_inputs(database)
    defs = _defs(database, tmp_path)
    job = defs.resolve_job_def(defs.resolve_schedule_def(SCHEDULE).job_name)
    stitcher = dg.AssetKey(["user", "id_stitcher"])

    def mode(full_refresh: bool, selection: list[dg.AssetKey] | None) -> str:
        config = {"ops": {"profiles_example_project": {"config": {"full_refresh": full_refresh}}}}
        result = job.execute_in_process(run_config=config, asset_selection=selection)
        assert result.success
        events = [e for e in result.get_asset_materialization_events() if e.asset_key == stitcher]
        return events[0].event_specific_data.materialization.metadata["profiles/stitcher_mode"].value

    assert mode(False, None) == "full"  # nothing to build on yet
    assert mode(False, [stitcher]) == "incremental"
    assert mode(True, [stitcher]) == "full"
