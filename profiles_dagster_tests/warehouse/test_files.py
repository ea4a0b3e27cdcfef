"""`csv:` inputs on engines that cannot read a file in place: each run loads the file into a table first.

The example project with every input a `csv:` file runs on DuckDB (which reads the files in place with
read_csv) and on each stand-in (where the run reads them client-side with DuckDB and loads them through the
engine's session); every output equals the DuckDB run's, value by value, and the independent truth.
PROFILES_DAGSTER_STANDINS=postgres,snowflake narrows the stand-ins.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlglot import exp

from profiles_dagster.cli import main
from profiles_dagster.errors import ProfilesError
from profiles_dagster.loading import load
from profiles_dagster.maintenance import cleanup
from profiles_dagster.runner import parse_time, run_all
from profiles_dagster.sql.compiler import file_table_name
from profiles_dagster.sql.dialects import parses
from profiles_dagster.sql.names import table
from profiles_dagster.sql.retention import scratch_seq_no
from profiles_dagster_tests.conftest import END_TIME, END_TIME_NAIVE, EXAMPLE_DATA
from profiles_dagster_tests.example_truth import Truth, compute_truth
from profiles_dagster_tests.standins import Engine
from profiles_dagster_tests.standins.example import project_copy, recorded
from profiles_dagster_tests.test_example_results import assert_frames_equal

INPUTS = ("identifies", "tracks", "pages", "orders")
KEYS = {
    "id_graph": "node",
    "all": "user_main_id",
    "features": "user_main_id",
    "by_email": "email",
    "high_value": "user_main_id",
    "hv_view": "user_main_id",
    "hv_by_email": "email",
    "var_table": "user_main_id",
}


def inputs_from(project: Path, source: dict[str, str]) -> None:
    """Point example inputs at another source (`csv: ...`, `s3: ...`) instead of their raw tables."""
    path = project / "models" / "inputs.yaml"
    text = path.read_text(encoding="utf-8")
    for name, new in source.items():
        text, n = re.subn(rf"table: raw\.{name}\n", f"{new}\n", text)
        assert n == 1, name
    path.write_text(text, encoding="utf-8")


def csv_sources() -> dict[str, str]:
    return {n: f"csv: data/{n}.csv" for n in INPUTS}  # relative to the project folder (its copy holds data/)


@dataclass
class FileRun:
    tables: dict[str, pd.DataFrame]
    statements: list[str]
    after: list[str]  # the output schema's tables and views after the run
    seconds: float


def _frame(session, sql: str, notes: dict) -> pd.DataFrame:
    columns, rows = session.fetch(sql)
    times = [n for n, _ in enumerate(columns) if any(isinstance(r[n], datetime) for r in rows)]
    if times and notes.get("null_timestamps_read_as_epoch"):
        select = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" if n in times else c for n, c in enumerate(columns))
        _, rows = session.fetch(f"SELECT {select} FROM ({sql}) AS q")
        rows = [tuple(pd.Timestamp(v) if n in times and v is not None else v for n, v in enumerate(r)) for r in rows]
    rows = [tuple(pd.Timestamp(v) if isinstance(v, datetime) else v for v in r) for r in rows]
    frame = pd.DataFrame(rows, columns=[c.lower() for c in columns], dtype=object)
    if "other_id" in frame.columns and "other_id_type" in frame.columns:
        frame["node"] = frame.other_id_type + ":" + frame.other_id
    return frame


def run_example(project: Path, site: Path, adapt=None, notes: dict | None = None) -> FileRun:
    """Run the example project through `run_all` and read every output back."""
    loaded = load(project, site_config=site)
    warehouse = adapt(loaded.warehouse) if adapt else loaded.warehouse
    with warehouse.session() as session:
        session_class = type(session)
    start = time.perf_counter()
    with recorded(session_class) as statements:
        _, results = run_all(loaded.project, loaded.plan, warehouse, end_time=parse_time(END_TIME))
    seconds = time.perf_counter() - start
    schema = warehouse.output_schema
    queries = {
        "id_graph": f"select user_main_id, other_id, other_id_type, first_seen_at from {schema}.user_id_stitcher",
        "all": f"select * from {schema}.user_all",
        "features": f"select * from {schema}.user_feature_view",
        "by_email": f"select * from {schema}.user_features_by_email",
        "high_value": f"select * from {schema}.user_high_value",
        "hv_view": f"select * from {schema}.high_value_feature_view",
        "hv_by_email": f"select * from {schema}.high_value_by_email",
    }
    with warehouse.session() as session:
        tables = {name: _frame(session, sql, notes or {}) for name, sql in queries.items()}
        (var_table,) = [r.table for r in results if r.step.path == "user/entity_vars"]
        tables["var_table"] = _frame(session, f"select * from {session.render(var_table)}", notes or {})
        after = session.list_tables(schema)
    return FileRun(tables, list(statements), after, seconds)


def assert_runs_equal(actual: FileRun, expected: FileRun) -> None:
    for name, key in KEYS.items():
        a, e = actual.tables[name], expected.tables[name]
        assert len(e) > 0, name
        assert_frames_equal(a[list(e.columns)], e, key)


@pytest.fixture(scope="module")
def truth() -> Truth:
    return compute_truth(EXAMPLE_DATA, END_TIME_NAIVE)


@pytest.fixture(scope="module")
def duckdb_csv_run(tmp_path_factory: pytest.TempPathFactory) -> FileRun:
    folder = tmp_path_factory.mktemp("csv_duckdb")
    project, site = project_copy(folder, {"type": "duckdb", "path": str(folder / "warehouse.duckdb")})
    inputs_from(project, csv_sources())
    return run_example(project, site)


@pytest.fixture(scope="module")
def engine_csv_run(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> FileRun:
    folder = tmp_path_factory.mktemp(f"csv_{engine.name}")
    project, site = project_copy(folder, engine.target, schema="profiles_csv")
    inputs_from(project, csv_sources())
    run = run_example(project, site, engine.adapt, engine.notes)
    print(f"\n{engine.name}: csv inputs, whole run (loading included) in {run.seconds:.1f}s")
    return run


def test_duckdb_reads_csv_inputs_in_place(duckdb_csv_run: FileRun, truth: Truth) -> None:
    assert not [n for n in duckdb_csv_run.after if n.lower().startswith("_pd_")]
    assert any("READ_CSV(" in s.upper() for s in duckdb_csv_run.statements)
    assert_frames_equal(
        duckdb_csv_run.tables["features"][list(truth.feature_view.columns)], truth.feature_view, "user_main_id"
    )


def test_csv_inputs_on_each_engine_equal_the_duckdb_run(
    engine_csv_run: FileRun, duckdb_csv_run: FileRun, truth: Truth
) -> None:
    assert_runs_equal(engine_csv_run, duckdb_csv_run)
    assert_frames_equal(engine_csv_run.tables["features"], truth.feature_view, "user_main_id")


def test_the_run_loads_each_file_once_and_drops_its_tables_after(engine: Engine, engine_csv_run: FileRun) -> None:
    creates = [s for s in engine_csv_run.statements if re.match(r"CREATE TABLE \S+\.\S*_FILE_", s, re.IGNORECASE)]
    assert len(creates) == len(INPUTS), creates
    for name in INPUTS:
        assert any(file_table_name(name, 1).upper() in s.upper() for s in creates), name
    assert not any("READ_CSV" in s.upper() for s in engine_csv_run.statements)
    # published: nothing reads the loaded tables any more, so the run dropped them
    assert not [n for n in engine_csv_run.after if n.lower().startswith("_pd_")]
    for sql in engine_csv_run.statements:
        assert parses(sql, engine.name), sql


def test_file_tables_are_scratch_tables_of_their_run() -> None:
    name = file_table_name("identifies", 12)
    assert name.startswith("_pd_") and scratch_seq_no(name) == 12
    assert len(file_table_name("x" * 200, 3)) <= 63 and scratch_seq_no(file_table_name("x" * 200, 3)) == 3


def test_a_failed_run_leaves_its_file_tables_to_cleanup(postgres_standin, tmp_path: Path) -> None:
    """A run stopped after loading some inputs (here: orders breaks its contract) leaves their tables;
    `cleanup` drops them as scratch tables of the failed run."""
    server = postgres_standin
    target = server.target("csv_cleanup")
    project, site = project_copy(tmp_path, target)
    inputs_from(project, csv_sources())
    inputs = project / "models" / "inputs.yaml"
    text = inputs.read_text(encoding="utf-8").replace(
        "        - name: email\n    app_defaults:",
        "        - name: email\n        - name: no_such_column\n    app_defaults:",
    )
    inputs.write_text(text, encoding="utf-8")
    loaded = load(project, site_config=site)
    with pytest.raises(ProfilesError, match="no_such_column"):
        run_all(loaded.project, loaded.plan, loaded.warehouse, end_time=parse_time(END_TIME))
    with loaded.warehouse.session() as session:
        left = [n for n in session.list_tables("profiles") if n.startswith("_pd_")]
        assert left == [file_table_name("identifies", 1)]
        report = cleanup(session, loaded.project, loaded.plan, keep=1)
        assert report.dropped == left and not report.errors
        assert not [n for n in session.list_tables("profiles") if n.startswith("_pd_")]


@pytest.mark.parametrize("engine_kind", ["postgres", "snowflake", "bigquery"])
def test_validate_and_compile_name_the_table_a_run_loads(engine_kind: str, tmp_path: Path, capsys) -> None:
    """Offline (`--no-prepare`: no connection; Postgres' validate prepares on it otherwise), in the engine's
    dialect: the SQL reads the input's loaded table, never the file."""
    target = {
        "postgres": {"host": "127.0.0.1", "port": 1, "dbname": "d", "user": "u"},
        "snowflake": {"account": "a", "user": "u", "dbname": "d"},
        "bigquery": {"project_id": "p"},
    }[engine_kind]
    project, site = project_copy(tmp_path, {"type": engine_kind, **target})
    inputs_from(project, {"orders": "csv: data/orders.csv", "pages": "s3: s3://bucket/events/pages.csv"})
    assert main(["validate", "--no-prepare", "-p", str(project), "--site-config", str(site)]) == 0, (
        capsys.readouterr().err
    )
    assert "compiles for" in capsys.readouterr().out


def test_a_missing_csv_file_names_the_input_the_file_and_where_it_is_declared(
    postgres_standin,
    tmp_path: Path,
) -> None:
    server = postgres_standin
    target = server.target("csv_missing")
    project, site = project_copy(tmp_path, target)
    inputs_from(project, {**csv_sources(), "pages": "csv: data/no_such_file.csv"})
    loaded = load(project, site_config=site)
    with pytest.raises(ProfilesError) as caught:
        run_all(loaded.project, loaded.plan, loaded.warehouse, end_time=parse_time(END_TIME))
    error = caught.value
    assert "input 'pages'" in error.message and str(project / "data" / "no_such_file.csv") in error.message
    assert error.file and error.file.endswith("inputs.yaml") and error.line and "app_defaults.csv" in (error.key or "")


def test_validate_access_checks_the_files(postgres_standin, tmp_path: Path, capsys) -> None:
    server = postgres_standin
    target = server.target("csv_access")
    project, site = project_copy(tmp_path, target)
    inputs_from(project, csv_sources())
    assert main(["validate", "access", "-p", str(project), "--site-config", str(site)]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "ok   read input 'orders'" in out and "a run loads it into a table in profiles" in out, out
    (project / "data" / "orders.csv").unlink()
    assert main(["validate", "access", "-p", str(project), "--site-config", str(site)]) == 1
    out = capsys.readouterr().out
    assert "FAIL read input 'orders'" in out and "orders.csv does not exist" in out, out


def test_dagster_materializes_csv_inputs_on_postgres(postgres_standin, tmp_path: Path) -> None:
    """The multi-asset runs the same way: the run loads the files before the input var steps read them."""
    import dagster as dg

    from profiles_dagster.dagster import build_definitions

    server = postgres_standin
    target = server.target("csv_dagster")
    project, site = project_copy(tmp_path, target)
    inputs_from(project, csv_sources())
    defs = build_definitions(project, site_config=site, output_dir=tmp_path / "sql")
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"inputs/identifies", "inputs/orders"} <= keys  # a file input is keyed by its name, not its path
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, run_config={"ops": {"profiles_example_project": {"config": {"end_time": END_TIME}}}}
        )
        assert result.success
    sql = (tmp_path / "sql").glob("*/seq_no_1/*input_vars__orders.sql")
    (orders,) = [p.read_text(encoding="utf-8") for p in sql]
    assert file_table_name("orders", 1) in orders
    loaded = load(project, site_config=site)
    with loaded.warehouse.session() as session:
        assert session.query("select count(*) from profiles.user_feature_view")[0][0] > 10


TRICKY = (
    "name,n,x,ok,day,at\n"
    '"O\'Brien, ""Bob""",1,1.5,true,2025-01-02,2025-01-02 03:04:05\n'
    '"line\none",-9007199254740993,-2.5e-07,false,2024-02-29,2024-02-29 23:59:59.123456\n'
    "back\\slash ü 😀,,,,,\n"
    ",42,3.0,true,1999-12-31,1999-12-31 00:00:00\n"
)


def _normal(rows: list[tuple]) -> list[tuple]:
    """Values as comparable Python objects (drivers return Decimal or float, naive or aware datetimes)."""
    out = []
    for row in rows:
        values = []
        for v in row:
            if isinstance(v, datetime) and v.tzinfo is not None:
                v = v.replace(tzinfo=None)
            if isinstance(v, Decimal):
                v = int(v) if v == v.to_integral_value() else float(v)
            values.append(v)
        out.append(tuple(values))
    return sorted(out, key=repr)


def test_values_arrive_as_duckdb_reads_them(engine: Engine, tmp_path: Path) -> None:
    """Quotes, commas, newlines, backslashes, non-ASCII, NULLs, 64-bit ints, floats, booleans, dates and
    timestamps: the loaded table holds what DuckDB's read_csv reads, in columns of the inferred types."""
    import duckdb

    from profiles_dagster.warehouse.files import read_csv

    path = tmp_path / "tricky.csv"
    path.write_text(TRICKY, encoding="utf-8")
    con = duckdb.connect()
    expected = con.execute(f"select * from read_csv('{path}')").fetchall()
    con.close()
    columns, _ = read_csv(path)
    assert [t.sql("duckdb") for _, t in columns] == ["TEXT", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP"]
    warehouse = engine.warehouse("files_values")
    with warehouse.session() as session:
        session.create_schema("files_values")
        target = table("tricky", "files_values")
        assert session.load_csv(target, path) == 4
        names, rows = session.fetch(f"select * from {session.render(target)}")
        if engine.notes.get("null_timestamps_read_as_epoch"):  # fakesnow sends NULL dates/times as 1970-01-01
            rows = [r[:-2] + ((None, None) if r[0] == "back\\slash ü 😀" else r[-2:]) for r in rows]
    assert [n.lower() for n in names] == ["name", "n", "x", "ok", "day", "at"]
    assert _normal(rows) == _normal(expected)


@pytest.mark.parametrize("engine", ["bigquery"], indirect=True)
def test_bigquery_load_job_keeps_instants_and_infinities(engine: Engine, tmp_path: Path) -> None:
    """BigQuery loads a file's rows with one JSON load job: offsets become the same instants in a TIMESTAMP
    column, and non-finite floats (not in JSON's grammar) arrive as infinities."""
    path = tmp_path / "instants.csv"
    path.write_text("at\n2025-01-02 03:04:05+02\n2024-02-29 23:59:59.5-05:30\n\n", encoding="utf-8")
    with engine.warehouse("files_instants").session() as session:
        session.create_schema("files_instants")
        target = table("instants", "files_instants")
        assert session.load_csv(target, path) == 3
        assert session.columns(target) == [("at", "TIMESTAMP")]
        instants = session.query(f"select * from {session.render(target)}")
        floats = table("floats", "files_instants")
        double = exp.DataType.build("DOUBLE")
        assert session.load_rows(floats, [("x", double)], [[(float("inf"),), (float("-inf"),), (1.25,)]]) == 3
        values = session.query(f"select x from {session.render(floats)}")
    assert _normal(instants) == _normal(
        [(datetime(2025, 1, 2, 1, 4, 5),), (datetime(2024, 3, 1, 5, 29, 59, 500000),), (None,)]
    )
    assert sorted(v for (v,) in values) == [float("-inf"), 1.25, float("inf")]
