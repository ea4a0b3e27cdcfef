"""CSV inputs on S3 (`app_defaults: s3:`), against moto's S3 server (standins/s3.py).

DuckDB with httpfs reads them in place: that runs in the stand-in venv (DuckDB 1.5.5 + the httpfs wheel),
the CLI as a subprocess. Without httpfs (this venv's DuckDB 2.0.0) and on every other engine, the run
fetches each object with boto3 and loads it into a table first (profiles_dagster/warehouse/files.py). In
each case the example project with every input on S3 gives the same outputs as with local `csv:` files.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster.errors import ProfilesError
from profiles_dagster.loading import load
from profiles_dagster.runner import parse_time, run_all
from profiles_dagster_tests.standins.example import END_TIME, EXAMPLE_DATA, project_copy
from profiles_dagster_tests.warehouse.test_files import assert_runs_equal, inputs_from, run_example

BUCKET = "profiles-inputs"
INPUTS = ("identifies", "tracks", "pages", "orders")


def _duckdb_project(folder: Path, source: dict[str, str]) -> tuple[Path, Path]:
    project, site = project_copy(folder, {"type": "duckdb", "path": str(folder / "warehouse.duckdb")})
    inputs_from(project, source)
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


def _without_httpfs(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This venv's DuckDB has no httpfs (no wheel for its version, no download), nor one installed by hand."""
    monkeypatch.setenv("HOME", str(home))
    con = duckdb.connect()
    try:
        con.execute("LOAD httpfs")
        pytest.fail(f"httpfs loads on DuckDB {duckdb.__version__} here: this test needs a DuckDB without it")
    except duckdb.Error:
        pass
    finally:
        con.close()


def _aws(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    from profiles_dagster_tests.standins.s3 import AWS_ENV

    for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)


def _s3_sources(**other: str) -> dict[str, str]:
    return {**{n: f"s3: s3://{BUCKET}/events/{n}.csv" for n in INPUTS}, **other}


def test_s3_inputs_on_duckdb_without_httpfs_are_loaded_and_equal_local_csv_inputs(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """DuckDB 2.0.0 (this venv) cannot read S3 in place: the run fetches each object with boto3 and reads it
    with DuckDB's own read_csv into a table; every output equals the run on the same files read locally."""
    from profiles_dagster_tests.standins.s3 import AWS_ENV

    _without_httpfs(tmp_path, monkeypatch)
    _aws(monkeypatch, s3_endpoint)
    runs = {}
    for kind, source in (("csv", {n: f"csv: {EXAMPLE_DATA / f'{n}.csv'}" for n in INPUTS}), ("s3", _s3_sources())):
        folder = tmp_path / kind
        folder.mkdir()
        project, site = _duckdb_project(folder, source)
        runs[kind] = run_example(project, site)
    assert_runs_equal(runs["s3"], runs["csv"])
    creates = [s for s in runs["s3"].statements if re.match(r"CREATE TABLE \S+\.\S*_file_", s, re.IGNORECASE)]
    assert len(creates) == len(INPUTS)
    assert not [n for n in runs["s3"].after if n.startswith("_pd_")]  # dropped once the run published
    assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in caplog.text + "".join(runs["s3"].statements)


def test_without_httpfs_or_boto3_duckdb_says_which_input_and_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_httpfs(tmp_path, monkeypatch)
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if not installed: `import boto3` raises ImportError
    project, site = _duckdb_project(tmp_path, _s3_sources())
    assert main(["run", "-p", str(project), "--site-config", str(site), "--end_time", END_TIME]) == 1
    err = capsys.readouterr().err
    assert f"input 'identifies' reads s3://{BUCKET}/events/identifies.csv" in err, err
    assert "inputs.yaml" in err and "boto3" in err and "pip install 'profiles-dagster[s3]'" in err
    assert "httpfs" in err and f"pip install duckdb-extension-httpfs=={duckdb.__version__}" in err


def test_s3_inputs_on_postgres_equal_local_csv_inputs(
    s3_endpoint: str,
    postgres_standin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from profiles_dagster_tests.standins.s3 import AWS_ENV

    _aws(monkeypatch, s3_endpoint)
    server = postgres_standin
    target = server.target("s3_inputs")
    runs = {}
    for kind, source in (("csv", {n: f"csv: data/{n}.csv" for n in INPUTS}), ("s3", _s3_sources())):
        folder = tmp_path / kind
        folder.mkdir()
        project, site = project_copy(folder, target, schema=f"profiles_{kind}")
        inputs_from(project, source)
        runs[kind] = run_example(project, site)
    assert_runs_equal(runs["s3"], runs["csv"])
    loads = [s for s in runs["s3"].statements if re.match(r"CREATE TABLE \S+\.\S*_file_", s, re.IGNORECASE)]
    assert len(loads) == len(INPUTS)
    assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in caplog.text + "".join(runs["s3"].statements)


def test_a_missing_s3_object_on_postgres_names_the_input_the_object_and_where_it_is_declared(
    s3_endpoint: str,
    postgres_standin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from profiles_dagster_tests.standins.s3 import AWS_ENV

    _aws(monkeypatch, s3_endpoint)
    server = postgres_standin
    target = server.target("s3_missing")
    project, site = project_copy(tmp_path, target)
    url = f"s3://{BUCKET}/events/no_such_file.csv"
    inputs_from(project, _s3_sources(orders=f"s3: {url}"))
    loaded = load(project, site_config=site)
    with pytest.raises(ProfilesError) as caught:
        run_all(loaded.project, loaded.plan, loaded.warehouse, end_time=parse_time(END_TIME))
    error = caught.value
    assert error.message == f"input 'orders' reads {url}, which does not exist", error
    assert error.file and error.file.endswith("inputs.yaml") and error.line and error.key.endswith("app_defaults.s3")
    assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in str(error)
