"""The shape of the SQL that keeps a run cheap (issue 9), compiled offline from the example project,
and the registry a run writes when a step's table and its row commit together."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster.offline import offline_context
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.project.loader import load_project
from profiles_dagster.sql.compiler import compile_step
from profiles_dagster.sql.dialects import dialect_for
from profiles_dagster_tests.conftest import END_TIME, load_example_inputs, write_site_config
from profiles_dagster_tests.projects import copy_example

EXAMPLE = Path(__file__).resolve().parents[2] / "example_project"


@pytest.fixture(scope="module")
def example():
    project = load_project(EXAMPLE)
    return project, build_plan(project)


def _sql(example, path: str, dialect: str) -> str:
    project, plan = example
    step = next(s for s in plan.steps if s.path == path)
    program = compile_step(step, offline_context(project, plan, dialect_for(dialect)))
    return program.sql(dialect_for(dialect))


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_input_rows_are_numbered_in_scan_order_without_a_sort(example, dialect: str) -> None:
    sql = _sql(example, "user/input_vars/tracks", dialect)
    assert "ROW_NUMBER() OVER ()" in sql and "ORDER BY" not in sql


def test_engines_without_scan_order_numbering_number_by_occurred_at(example) -> None:
    sql = _sql(example, "user/input_vars/tracks", "snowflake")
    assert "ORDER BY" in sql and "TIMESTAMP" in sql.upper()


def test_observations_are_one_row_per_input_row_with_each_id_filtered_once(example) -> None:
    sql = " ".join(_sql(example, "user/id_stitcher", "postgres").split())
    # one regex per id observed through a regex-filtered type (identifies and orders: email), in the CASE of
    # its slot, computed once per input row; anonymous_id's filter (literal junk values and a prefix) is
    # written as IN and LIKE on Postgres (identifies and tracks and pages)
    assert sql.count(" ~ ") + sql.count(" !~ ") == 2
    assert sql.count(" LIKE 'test%'") == 3
    # one part per edge source (identifies, tracks, pages, orders), each row's ids in three slots, a slot per
    # id type (user_id, anonymous_id, email): identifies and orders fill the email slot, tracks and pages not
    assert sql.count(" UNION ALL ") == 3 and "row_key" not in sql
    assert sql.count("AS other_id_3") == 4
    assert sql.count("CAST('email' AS VARCHAR) AS other_id_type_3") == 2
    assert sql.count("CAST(NULL AS VARCHAR) AS other_id_type_3") == 2


def test_mapped_rows_find_their_main_id_by_the_unfiltered_id(example) -> None:
    sql = _sql(example, "user/input_vars_mapped/identifies", "duckdb")
    # every node of the graph passed its id type's filters: a join on the plain value finds the same node
    assert "REGEXP" not in sql.upper() and "CASE WHEN" not in sql
    assert "LOWER(TRIM(src.email))" in sql


def test_a_run_records_each_tables_rows_with_it(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "project")
    database = tmp_path / "warehouse.duckdb"
    load_example_inputs(database)
    site = write_site_config(tmp_path, database)
    assert main(["run", "-p", str(root), "--site-config", str(site), "--end_time", END_TIME]) == 0
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute("select table_name, status, row_count from profiles._profiles_materials").fetchall()
        assert rows and {status for _, status, _ in rows} == {"complete"}
        for name, _, count in rows:
            assert con.execute(f'select count(*) from profiles."{name}"').fetchone()[0] == count, name
    finally:
        con.close()
