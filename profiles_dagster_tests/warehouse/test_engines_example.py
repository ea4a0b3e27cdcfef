"""The example project on every engine's stand-in equals the independent pandas truth, value by value.

Each engine runs the same project (its SQL written for DuckDB, transpiled by sqlglot plus our fixes)
through the CLI with a pb siteconfig of that engine's keys, then every output is read back and compared
with `example_truth` exactly as `test_example_results` compares DuckDB's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pytest

from profiles_dagster.loading import load
from profiles_dagster.runner import parse_time, run_all
from profiles_dagster.sql.dialects import parses
from profiles_dagster_tests.conftest import END_TIME, END_TIME_NAIVE, EXAMPLE_DATA
from profiles_dagster_tests.example_truth import Truth, compute_truth
from profiles_dagster_tests.standins import Engine
from profiles_dagster_tests.standins.example import load_example_inputs, project_copy, recorded
from profiles_dagster_tests.test_example_results import assert_frames_equal


@dataclass
class EngineRun:
    engine: Engine
    tables: dict[str, pd.DataFrame]
    statements: list[str]
    steps: int
    seconds: float
    stitcher_types: dict[str, str]


def _frame(session, sql: str, standin: Engine) -> pd.DataFrame:
    columns, rows = session.fetch(sql)
    times = [n for n, c in enumerate(columns) if any(isinstance(r[n], datetime) for r in rows)]
    if times and standin.notes.get("null_timestamps_read_as_epoch"):
        # the stand-in returns NULL timestamps as 1970-01-01: read them as text, where NULL stays NULL
        select = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" if n in times else c for n, c in enumerate(columns))
        _, rows = session.fetch(f"SELECT {select} FROM ({sql}) AS q")
        rows = [tuple(pd.Timestamp(v) if n in times and v is not None else v for n, v in enumerate(r)) for r in rows]
    return pd.DataFrame(rows, columns=[c.lower() for c in columns], dtype=object)


@pytest.fixture(scope="module")
def truth() -> Truth:
    return compute_truth(EXAMPLE_DATA, END_TIME_NAIVE)


@pytest.fixture(scope="module")
def engine_run(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> EngineRun:
    folder = tmp_path_factory.mktemp(f"example_{engine.name}")
    project_dir, site = project_copy(folder, engine.target)
    loaded = load(project_dir, site_config=site)
    warehouse = engine.adapt(loaded.warehouse) if engine.adapt else loaded.warehouse
    assert warehouse.kind == engine.name
    with warehouse.session() as session:
        load_example_inputs(session, reuse=True)
        session_class = type(session)
    start = time.perf_counter()
    with recorded(session_class) as statements:
        _, results = run_all(loaded.project, loaded.plan, warehouse, end_time=parse_time(END_TIME))
    seconds = time.perf_counter() - start
    schema = warehouse.output_schema
    queries = {
        "id_graph": "select user_main_id, other_id, other_id_type, valid_at, first_seen_at "
        f"from {schema}.user_id_stitcher",
        "all": f"select * from {schema}.user_all",
        "features": f"select * from {schema}.user_feature_view",
        "by_email": f"select * from {schema}.user_features_by_email",
        "high_value": f"select * from {schema}.user_high_value",
        "hv_view": f"select * from {schema}.high_value_feature_view",
        "hv_by_email": f"select * from {schema}.high_value_by_email",
    }
    with warehouse.session() as session:
        tables = {name: _frame(session, sql, engine) for name, sql in queries.items()}
        (var_table,) = [r.table for r in results if r.step.path == "user/entity_vars"]
        tables["var_table"] = _frame(session, f"select * from {session.render(var_table)}", engine)
        (stitcher,) = [r.table for r in results if r.step.path == "user/id_stitcher"]
        stitcher_types = {name.lower(): kind.lower() for name, kind in session.columns(stitcher)}
    print(f"\n{engine.name}: {len(results)} steps in {seconds:.1f}s (stand-in started in {engine.start_seconds:.1f}s)")
    return EngineRun(engine, tables, list(statements), len(results), seconds, stitcher_types)


def test_id_graph_equals_union_find(engine_run: EngineRun, truth: Truth) -> None:
    actual = engine_run.tables["id_graph"].copy()
    actual["node"] = actual.other_id_type + ":" + actual.other_id
    expected = truth.id_graph.copy()
    expected["node"] = expected.other_id_type + ":" + expected.other_id
    columns = ["node", "user_main_id", "first_seen_at"]
    assert_frames_equal(actual[columns], expected[columns], "node")
    assert (pd.to_datetime(actual.valid_at) >= pd.to_datetime(actual.first_seen_at)).all()


def test_id_graph_string_columns_have_pbs_types(engine_run: EngineRun) -> None:
    """Text on every engine; on Postgres exactly pb's: other_id and other_id_type `character varying`, the
    main id `text` (read off pb 0.26.4's own stitcher table)."""
    types = engine_run.stitcher_types
    string_columns = (types["other_id"], types["other_id_type"], types["user_main_id"])
    assert all(any(word in t for word in ("char", "text", "string")) for t in string_columns), types
    if engine_run.engine.name == "postgres":
        assert string_columns == ("character varying", "character varying", "text"), types


def test_all_cohort(engine_run: EngineRun, truth: Truth) -> None:
    all_ = engine_run.tables["all"]
    assert list(all_.columns) == ["user_main_id"]
    assert set(all_.user_main_id) == set(truth.id_graph.user_main_id) and all_.user_main_id.is_unique


def test_entity_var_table(engine_run: EngineRun, truth: Truth) -> None:
    assert_frames_equal(engine_run.tables["var_table"], truth.var_table, "user_main_id")


def test_feature_views(engine_run: EngineRun, truth: Truth) -> None:
    assert_frames_equal(engine_run.tables["features"], truth.feature_view, "user_main_id")
    assert_frames_equal(engine_run.tables["by_email"], truth.feature_view_by_email, "email")


def test_cohort(engine_run: EngineRun, truth: Truth) -> None:
    assert set(engine_run.tables["high_value"].user_main_id) == truth.high_value
    assert_frames_equal(engine_run.tables["hv_view"], truth.high_value_feature_view, "user_main_id")
    expected_emails = set(
        truth.id_graph[truth.id_graph.user_main_id.isin(truth.high_value)].query("other_id_type == 'email'").other_id
    )
    assert set(engine_run.tables["hv_by_email"].email) == expected_emails


def test_every_statement_parses_in_its_dialect(engine_run: EngineRun) -> None:
    assert engine_run.statements
    for sql in engine_run.statements:
        assert parses(sql, engine_run.engine.name), sql
