"""CSV inputs on S3 (`app_defaults: s3:`): DuckDB reads them in place through httpfs; other engines stop
with an error naming the input and the engine.

DuckDB against moto's S3 server runs in the stand-in venv (DuckDB 1.5.5 + the httpfs wheel; see
standins/s3.py): the example project with every input on S3 gives the same feature view, row by row, as
with every input a local `csv:` file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster_tests.standins.example import END_TIME, EXAMPLE_DATA, project_copy

BUCKET = "profiles-inputs"
INPUTS = ("identifies", "tracks", "pages", "orders")


def _inputs_from(project: Path, source: dict[str, str]) -> None:
    """Point each example input at another source (`s3: ...` or `csv: ...`) instead of its raw table."""
    path = project / "models" / "inputs.yaml"
    text = path.read_text(encoding="utf-8")
    for name, new in source.items():
        text, n = re.subn(rf"table: raw\.{name}\n", f"{new}\n", text)
        assert n == 1, name
    path.write_text(text, encoding="utf-8")


def _duckdb_project(folder: Path, source: dict[str, str]) -> tuple[Path, Path]:
    project, site = project_copy(folder, {"type": "duckdb", "path": str(folder / "warehouse.duckdb")})
    _inputs_from(project, source)
    return project, site


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    import boto3

    from profiles_dagster_tests.standins.s3 import AWS_ENV, moto_server

    with moto_server() as endpoint:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_ENV["AWS_REGION"],
        )
        client.create_bucket(Bucket=BUCKET)
        for name in INPUTS:
            client.upload_file(str(EXAMPLE_DATA / f"{name}.csv"), BUCKET, f"events/{name}.csv")
        yield endpoint


def _feature_view(database: Path) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute("SELECT * FROM profiles.user_feature_view ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_s3_inputs_on_duckdb_equal_local_csv_inputs(s3_endpoint: str, tmp_path: Path) -> None:
    from profiles_dagster_tests.standins.s3 import AWS_ENV, run_cli

    env = {**AWS_ENV, "AWS_ENDPOINT_URL": s3_endpoint}
    views = {}
    for kind in ("csv", "s3"):
        folder = tmp_path / kind
        folder.mkdir()
        source = {
            n: f"s3: s3://{BUCKET}/events/{n}.csv" if kind == "s3" else f"csv: {EXAMPLE_DATA / f'{n}.csv'}"
            for n in INPUTS
        }
        project, site = _duckdb_project(folder, source)
        done = run_cli(["run", "-p", str(project), "--site-config", str(site), "--end_time", END_TIME], env, folder)
        assert done.returncode == 0, done.stderr[-3000:]
        assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr
        views[kind] = _feature_view(folder / "warehouse.duckdb")
    assert len(views["s3"]) > 10
    assert views["s3"] == views["csv"]


def test_a_missing_s3_object_names_the_input(s3_endpoint: str, tmp_path: Path) -> None:
    from profiles_dagster_tests.standins.s3 import AWS_ENV, run_cli

    source = {n: f"s3: s3://{BUCKET}/events/{n}.csv" for n in INPUTS}
    source["orders"] = f"s3: s3://{BUCKET}/events/no_such_file.csv"
    project, site = _duckdb_project(tmp_path, source)
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": s3_endpoint}
    done = run_cli(["run", "-p", str(project), "--site-config", str(site), "--end_time", END_TIME], env, tmp_path)
    assert done.returncode == 1
    assert "no_such_file.csv" in done.stderr, done.stderr[-3000:]
    assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr


def test_without_httpfs_duckdb_says_which_input_and_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This venv's DuckDB has no httpfs (no wheel for its version, no download): the run stops naming both."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no extension installed by hand either
    con = duckdb.connect()
    try:
        con.execute("LOAD httpfs")
        pytest.fail(f"httpfs loads on DuckDB {duckdb.__version__} here: run the moto test in this venv instead")
    except duckdb.Error:
        pass
    finally:
        con.close()
    source = {n: f"s3: s3://{BUCKET}/events/{n}.csv" for n in INPUTS}
    project, site = _duckdb_project(tmp_path, source)
    assert main(["run", "-p", str(project), "--site-config", str(site), "--end_time", END_TIME]) == 1
    err = capsys.readouterr().err
    assert f"input 'identifies' reads s3://{BUCKET}/events/identifies.csv" in err, err
    assert f"DuckDB {duckdb.__version__}" in err and "httpfs" in err
    assert "pip install duckdb-extension-httpfs" in err


@pytest.mark.parametrize("engine", ["postgres", "redshift", "snowflake", "bigquery", "databricks"])
def test_other_engines_name_the_s3_input_they_cannot_read(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    target = {
        "postgres": {"host": "127.0.0.1", "port": 1, "dbname": "d", "user": "u"},
        "redshift": {"host": "127.0.0.1", "port": 1, "dbname": "d", "user": "u"},
        "snowflake": {"account": "a", "user": "u", "dbname": "d"},
        "bigquery": {"project_id": "p"},
        "databricks": {"host": "h", "http_endpoint": "/sql"},
    }[engine]
    project, site = project_copy(tmp_path, {"type": engine, **target})
    _inputs_from(project, {"orders": f"s3: s3://{BUCKET}/events/orders.csv"})
    assert main(["validate", "-p", str(project), "--site-config", str(site)]) == 1  # offline, in its dialect
    err = capsys.readouterr().err
    assert "inputs.yaml" in err and "input 'orders'" in err and engine in err, err
