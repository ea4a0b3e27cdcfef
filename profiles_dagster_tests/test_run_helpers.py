"""The small shared helpers of a run: registry statuses and rows, timestamps, exception summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlglot import exp

from profiles_dagster.clock import default_end_time, naive_utc, now_utc, parse_time
from profiles_dagster.errors import summary
from profiles_dagster.project.settings import ProfilesDagsterSettings
from profiles_dagster.sql import registry
from profiles_dagster.sql.literals import timestamp_literal
from profiles_dagster.sql.registry import MaterialRow, RunRow, Status


def test_statuses_are_stored_as_the_text_earlier_versions_wrote() -> None:
    assert {s.value for s in Status} == {
        "running",
        "publishing",
        "complete",
        "failed",
        "killed",
        "compiled",
        "reused",
        "rejected",
        "replaced",
        "dropped",
    }
    written = registry.update("s", registry.RUNS, {"status": Status.KILLED}, registry.eq("seq_no", 1)).sql("duckdb")
    assert "status = 'killed'" in written


def test_registry_rows_are_typed_from_the_columns_they_name() -> None:
    run = RunRow.from_row((3, "p", "complete", None, None, None, "done"))
    assert run.status is Status.COMPLETE and run.message == "done"
    material = MaterialRow.from_row((2, "p", "user/all", "h", "Material_all_h_2", "reused", None))
    assert material.status is Status.REUSED and material.row_count is None
    assert MaterialRow(1, "p", "a", "h", "t", "complete").status is Status.COMPLETE
    query = registry.latest_material("s", "p", "a", "h", seq_no=4).sql("duckdb")
    assert query.startswith("SELECT " + ", ".join(MaterialRow.COLUMNS)) and "seq_no = 4" in query


def test_timestamp_literal_is_iso_with_a_fraction_only_when_there_is_one() -> None:
    assert timestamp_literal(datetime(2025, 1, 2, 3, 4, 5)).sql("duckdb") == "CAST('2025-01-02 03:04:05' AS TIMESTAMP)"
    assert "05.000123'" in timestamp_literal(datetime(2025, 1, 2, 3, 4, 5, 123)).sql("duckdb")
    aware = datetime(2025, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    text = timestamp_literal(aware, exp.DataType.build("timestamptz")).sql("postgres")
    assert text == "CAST('2025-01-02 03:04:05+00:00' AS TIMESTAMPTZ)"


def test_clock_is_naive_utc() -> None:
    assert now_utc().tzinfo is None and default_end_time().microsecond == 0
    assert parse_time("2025-11-01T02:00:00+02:00") == datetime(2025, 11, 1)
    assert naive_utc(datetime(2025, 1, 1, tzinfo=UTC)) == datetime(2025, 1, 1)
    assert naive_utc("2025-01-01 00:00:00") == datetime(2025, 1, 1) and naive_utc(None) is None


def test_summary_is_the_first_line_or_the_type() -> None:
    assert summary(ValueError("bad value\nserver trace")) == "bad value"
    assert summary(KeyError()) == "KeyError"
    assert summary(RuntimeError("\n boom\n more"), named=True) == "RuntimeError: boom"


def test_the_projects_sql_dialect_defaults_to_the_engine() -> None:
    assert ProfilesDagsterSettings().sql_dialect("snowflake") == "snowflake"
    assert ProfilesDagsterSettings(dialect="postgres").sql_dialect("redshift") == "postgres"
