"""What the column-type learner hands the compiler: types keyed by table name (a fragment may read a table
unqualified), so two tables of one name in two schemas must leave that name untyped, not typed as either."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlglot import exp

from profiles_dagster.loading import load
from profiles_dagster.run.column_types import Learner
from profiles_dagster.sql.compiler import CompileContext
from profiles_dagster.sql.names import table
from profiles_dagster_tests.projects import copy_example


def _context(tmp_path: Path, engine: str, source: str) -> CompileContext:
    loaded = load(copy_example(tmp_path / "p"))
    return CompileContext(loaded.project, loaded.plan, engine, source, {}, datetime(2025, 11, 1))


def test_two_tables_of_one_name_in_two_schemas_are_neither_typed(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "duckdb", "snowflake")
    learner = Learner(ctx, [])
    learner.record(table("events", "a"), [("d", "DATE"), ("n", "VARCHAR")], "duckdb")
    assert ctx.column_types["events"]["d"] == exp.DataType.build("date")
    learner.record(table("events", "b"), [("d", "TIMESTAMP")], "duckdb")
    assert "events" not in ctx.column_types  # a's DATE would be a wrong answer for b's TIMESTAMP
    learner.record(table("events", "a"), [("d", "DATE"), ("n", "VARCHAR")], "duckdb")
    assert "events" not in ctx.column_types  # and stays unknown
    learner.record(table("orders", "a"), [("amount", "DOUBLE")], "duckdb")
    learner.record(table("orders", "a"), [("amount", "DOUBLE")], "duckdb")  # the same table again
    assert ctx.column_types["orders"] == {"amount": exp.DataType.build("double")}


@pytest.mark.parametrize(("engine", "names"), [("duckdb", False), ("postgres", True), ("snowflake", True)])
def test_column_names_are_kept_where_the_engine_cannot_select_every_column_but_one(
    tmp_path: Path, engine: str, names: bool
) -> None:
    ctx = _context(tmp_path, engine, engine)
    learner = Learner(ctx, [])
    learner.record(table("Material_x_1", "out"), [("User_Main_Id", "TEXT"), ("points", "INT")], engine)
    assert ctx.column_names == ({"material_x_1": ("User_Main_Id", "points")} if names else {})
    assert ctx.column_types == {}  # the project's SQL is written for the engine: no type-dependent casts
