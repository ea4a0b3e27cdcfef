"""End to end through the real UI server: dagster-webserver on a free port with a temporary DAGSTER_HOME,
runs launched over GraphQL as the UI's Materialize button does, results read back over GraphQL."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest
from dagster_graphql import DagsterGraphQLClient

from profiles_dagster_tests.conftest import END_TIME, REPO, write_site_config

BIN = Path(sys.executable).parent
RUN_CONFIG = {"ops": {"profiles_example_project": {"config": {"end_time": END_TIME}}}}

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      status
      assetMaterializations {
        assetKey { path }
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
          ... on PathMetadataEntry { path }
          ... on TableSchemaMetadataEntry { schema { columns { name type description } } }
        }
      }
    }
  }
  logsForRun(runId: $runId, limit: 5000) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on AssetCheckEvaluationEvent { evaluation { checkName success assetKey { path } } }
        ... on MessageEvent { message }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(port: int, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"dagster-webserver did not answer on port {port} within {seconds}s")


def _wait_for_run(client: DagsterGraphQLClient, run_id: str, seconds: float = 300) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish within {seconds}s")


def _run(client: DagsterGraphQLClient, run_id: str) -> tuple[dict[str, dict], list[dict]]:
    data = client._execute(RUN_QUERY, {"runId": run_id})
    run = data["runOrError"]
    assert run["__typename"] == "Run", run
    materialized = {}
    for m in run["assetMaterializations"]:
        entries = {e["label"]: e for e in m["metadataEntries"]}
        materialized["/".join(m["assetKey"]["path"])] = entries
    events = data["logsForRun"]["events"]
    return materialized, events


@pytest.fixture
def webserver(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
        "telemetry:\n  enabled: false\n"
    )
    database = tmp_path / "ui.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PROFILES_SITE_CONFIG": str(write_site_config(tmp_path, database)),
    }
    port = _free_port()
    log = (tmp_path / "webserver.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "example_project.definitions",
            "-d",
            str(REPO),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(port, proc)
        yield DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=120), database
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


def test_materialize_everything_then_a_subset_through_the_ui_server(webserver) -> None:
    client, database = webserver
    run_id = client.submit_job_execution("__ASSET_JOB", run_config=RUN_CONFIG)
    assert _wait_for_run(client, run_id) == "SUCCESS"
    materialized, events = _run(client, run_id)
    assert len(materialized) == 4 + 19
    stitcher = materialized["user/id_stitcher"]
    assert stitcher["dagster/row_count"]["intValue"] == 2710
    assert stitcher["dagster/table_name"]["text"].startswith("profiles.Material_user_id_stitcher_")
    assert materialized["user/features"]["dagster/row_count"]["intValue"] == 951
    assert materialized["user/views/user_features_by_email"]["dagster/row_count"]["intValue"] == 707
    columns = {c["name"]: c for c in materialized["user/features"]["dagster/column_schema"]["schema"]["columns"]}
    assert columns["total_revenue"]["description"] == "Revenue from completed orders."
    sql_file = Path(materialized["user/features"]["profiles/sql_file"]["path"])
    assert sql_file.is_file() and sql_file.parent.name == "seq_no_1"
    checks = [e["evaluation"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"]
    assert len(checks) >= 30 and all(c["success"] for c in checks)
    messages = [e.get("message") or "" for e in events]
    assert any(m.startswith("user/features: running ") for m in messages)

    subset = [["user", "features"], ["user", "views", "user_feature_view"]]
    run_id = client.submit_job_execution("__ASSET_JOB", run_config=RUN_CONFIG, asset_selection=subset)
    assert _wait_for_run(client, run_id) == "SUCCESS"
    materialized, events = _run(client, run_id)
    assert set(materialized) == {"user/features", "user/views/user_feature_view"}
    assert materialized["user/views/user_feature_view"]["dagster/row_count"]["intValue"] == 951
    subset_checks = {
        ("/".join(e["evaluation"]["assetKey"]["path"]), e["evaluation"]["checkName"])
        for e in events
        if e["__typename"] == "AssetCheckEvaluationEvent"
    }
    assert ("user/features", "user_main_id_unique") in subset_checks
    assert not any(asset == "user/id_stitcher" for asset, _ in subset_checks)

    con = duckdb.connect(str(database), read_only=True)
    try:
        runs = con.execute("select seq_no, status from profiles._profiles_runs order by seq_no").fetchall()
        view = con.execute("select sql from duckdb_views() where view_name = 'user_feature_view'").fetchone()[0]
        stitcher_view = con.execute("select sql from duckdb_views() where view_name = 'user_id_stitcher'").fetchone()
    finally:
        con.close()
    assert runs == [(1, "complete"), (2, "complete")]
    assert re.search(r"Material_user_feature_view_[0-9a-f]{8}_2\b", view)
    assert re.search(r"Material_user_id_stitcher_[0-9a-f]{8}_1\b", stitcher_view[0])
