"""`profiles-dagster validate / compile / run`, as a user types them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster_tests.conftest import END_TIME, EXAMPLE


def test_validate(example_db, capsys) -> None:
    _, site = example_db
    assert main(["validate", "-p", str(EXAMPLE), "--site-config", str(site)]) == 0
    assert "example_project" in capsys.readouterr().out


def test_compile_writes_each_steps_sql(tmp_path: Path, example_db) -> None:
    _, site = example_db
    project = tmp_path / "proj"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("*.duckdb", "output", "data"))
    assert main(["compile", "-p", str(project), "--site-config", str(site), "--end_time", END_TIME]) == 0
    files = sorted((project / "output" / "dev" / "seq_no_1").glob("*.sql"))
    assert len(files) == 19
    entity_vars = next(f for f in files if "entity_vars" in f.name).read_text()
    assert "CAST('2025-11-01 00:00:00' AS TIMESTAMP)" in entity_vars
    assert "Material_user_var_table_" in entity_vars
    # compile takes a seq_no as pb does; the next compile takes the next one
    assert main(["compile", "-p", str(project), "--site-config", str(site)]) == 0
    assert (project / "output" / "dev" / "seq_no_2").is_dir()


def test_run_from_another_directory_prints_each_step(tmp_path: Path, example_db) -> None:
    database, site = example_db
    env = {**os.environ}
    env.pop("DAGSTER_HOME", None)
    cli = Path(sys.executable).parent / "profiles-dagster"
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "profiles_dagster.cli"]
    proc = subprocess.run(
        [*command, "run", "-p", str(EXAMPLE), "--site-config", str(site), "--end_time", END_TIME],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if " rows " in line]
    assert len(lines) == 19
    assert any(line.startswith("user/id_stitcher") for line in lines)
    con = duckdb.connect(str(database), read_only=True)
    assert con.execute("select count(*) from profiles.user_feature_view").fetchone()[0] > 0
    con.close()


def test_run_creates_a_missing_output_schema(tmp_path: Path, example_db) -> None:
    database, _ = example_db
    site = tmp_path / "other.yaml"
    site.write_text(
        "connections:\n  example:\n    target: dev\n    outputs:\n      dev:\n        type: duckdb\n"
        f"        path: {database}\n        schema: brand_new_schema\n"
    )
    assert main(["run", "-p", str(EXAMPLE), "--site-config", str(site), "--end_time", END_TIME]) == 0
    con = duckdb.connect(str(database), read_only=True)
    assert con.execute("select count(*) from brand_new_schema.user_all").fetchone()[0] > 0
    con.close()


def test_missing_input_table_fails_naming_input_and_table(tmp_path: Path, capsys) -> None:
    database = tmp_path / "empty.duckdb"
    duckdb.connect(str(database)).close()
    site = tmp_path / "siteconfig.yaml"
    site.write_text(
        "connections:\n  example:\n    target: dev\n    outputs:\n      dev:\n        type: duckdb\n"
        f"        path: {database.name}\n        schema: profiles\n"
    )
    assert main(["run", "-p", str(EXAMPLE), "--site-config", str(site)]) == 1
    err = capsys.readouterr().err
    assert "inputs.yaml" in err and "input 'identifies'" in err and "raw.identifies" in err
    con = duckdb.connect(str(database), read_only=True)
    statuses = con.execute("select status from profiles._profiles_runs").fetchall()
    con.close()
    assert statuses == [("failed",)]


def test_failed_step_leaves_views_on_previous_run(tmp_path: Path, example_db, capsys) -> None:
    database, site = example_db
    assert main(["run", "-p", str(EXAMPLE), "--site-config", str(site), "--end_time", END_TIME]) == 0
    con = duckdb.connect(str(database))
    before = con.execute("select count(*) from profiles.user_feature_view").fetchone()[0]
    con.execute("drop table raw.orders")
    con.execute("create table raw.orders (order_id varchar, user_id varchar, timestamp timestamp)")
    con.close()
    assert main(["run", "-p", str(EXAMPLE), "--site-config", str(site), "--end_time", END_TIME]) == 1
    err = capsys.readouterr().err
    assert "failed in the warehouse" in err and "step '" in err
    con = duckdb.connect(str(database), read_only=True)
    assert con.execute("select count(*) from profiles.user_feature_view").fetchone()[0] == before
    sql = con.execute("select sql from duckdb_views() where view_name = 'user_feature_view'").fetchone()[0]
    con.close()
    assert "_1" in sql.split("Material_user_feature_view_")[1]


@pytest.mark.parametrize("bad", ["yesterday", "2025-13-01"])
def test_bad_end_time(example_db, capsys, bad: str) -> None:
    _, site = example_db
    assert main(["run", "-p", str(EXAMPLE), "--site-config", str(site), "--end_time", bad]) == 1
    assert "ISO 8601" in capsys.readouterr().err
