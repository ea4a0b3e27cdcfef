"""pb-like chores: init, validate offline, show; and dialect problems named at the var."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
import yaml

from profiles_dagster.cli import main
from profiles_dagster.project.siteconfig import load_connection
from profiles_dagster_tests.conftest import EXAMPLE
from profiles_dagster_tests.format.harness import write
from profiles_dagster_tests.format.test_format_core import ORDERS_INPUT, project, rid


def test_init_pb_project_runs_as_is(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "new_project"
    assert main(["init", "pb-project", "-o", str(folder)]) == 0
    assert main(["validate", "-p", str(folder)]) == 0
    assert main(["run", "-p", str(folder), "--end_time", "2025-02-01T00:00:00Z"]) == 0
    con = duckdb.connect(str(folder / "sample.duckdb"), read_only=True)
    rows = dict(con.execute("select user_main_id, revenue from profiles.user_feature_view").fetchall())
    buyers = con.execute("select count(*) from profiles.user_buyers").fetchone()[0]
    con.close()
    # u1: a1, a2, Ann@Example.com and a5 (via ann@example.com) are one person with orders o1 + o2
    assert rows[rid("a1", "anonymous_id")] == 100 and buyers == 2
    assert main(["init", "pb-project", "-o", str(folder)]) == 1  # never overwrites
    assert "not empty" in capsys.readouterr().err


def test_init_connection_writes_env_references_not_secrets(tmp_path: Path, monkeypatch) -> None:
    site = tmp_path / "siteconfig.yaml"
    monkeypatch.setenv("PG_PASSWORD", "s3cret-value")
    argv = [
        "init",
        "connection",
        "--site-config",
        str(site),
        "--name",
        "wh",
        "--type",
        "postgres",
        "--set",
        "host=db.internal",
        "--set",
        "port=5432",
        "--set",
        "dbname=analytics",
        "--set",
        "user=pb",
        "--set",
        "schema=profiles",
        "--secret",
        "password=PG_PASSWORD",
    ]
    assert main(argv) == 0
    text = site.read_text()
    assert "s3cret-value" not in text and "${PG_PASSWORD}" in text
    data = yaml.safe_load(text)
    assert data["connections"]["wh"]["outputs"]["dev"]["port"] == 5432
    connection = load_connection(site, "wh")
    assert connection.type == "postgres" and connection.settings["password"] == "s3cret-value"
    assert "s3cret-value" not in repr(connection)
    assert (
        main(
            [
                "init",
                "connection",
                "--site-config",
                str(site),
                "--name",
                "wh",
                "--type",
                "x",
                "--secret",
                "password=not an env name",
            ]
        )
        == 1
    )


def test_validate_needs_no_warehouse_nor_input_tables(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("PROFILES_SITE_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    write(
        tmp_path / "p",
        {
            "pb_project.yaml": project("offline"),
            "siteconfig.yaml": "connections: {}\n",
            "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
            "models/vars.yaml": """
            var_groups:
              - name: v
                entity_key: user
                vars:
                  - entity_var:
                      name: n
                      select: count(*)
                      from: inputs/orders
            """,
        },
    )
    (tmp_path / "p" / "siteconfig.yaml").unlink()
    assert main(["validate", "-p", str(tmp_path / "p")]) == 0
    assert "runs on duckdb (prepared on empty inputs)" in capsys.readouterr().out
    assert not list((tmp_path / "p").glob("*.duckdb"))  # nothing was created


def test_a_construct_the_engine_cannot_do_is_named_at_the_var(tmp_path: Path, capsys) -> None:
    write(
        tmp_path,
        {
            "pb_project.yaml": project("to_bigquery"),
            "profiles_dagster.yaml": "dialect: snowflake\n",
            "siteconfig.yaml": """
            connections:
              test:
                target: dev
                outputs:
                  dev:
                    type: bigquery
                    project_id: p
                    schema: s
            """,
            "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
            "models/vars.yaml": """
            var_groups:
              - name: v
                entity_key: user
                vars:
                  - entity_var:
                      name: total
                      select: sum(amount)
                      from: inputs/orders
                  - entity_var:
                      name: skus
                      select: listagg(distinct sku, ',') within group (order by sku)
                      from: inputs/orders
            """,
        },
    )
    # --no-prepare: without it validate would also open the BigQuery connection (Application Default Credentials)
    assert main(["validate", "--no-prepare", "-p", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "vars.yaml:" in err and "skus" in err and "cannot be written for bigquery" in err


def test_show_models_and_dependencies(capsys) -> None:
    assert main(["show", "models", "-p", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "user/id_stitcher" in out and "user_id_stitcher" in out and "profiles.yaml:" in out
    assert main(["show", "dependencies", "-p", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "user/all  <-  user/id_stitcher" in out
    assert main(["show", "dependencies", "--dot", "-p", str(EXAMPLE)]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "example_project"') and '"user/id_stitcher" -> "user/all";' in dot
    assert '"inputs/orders" -> "user/input_vars/orders";' in dot


@pytest.mark.parametrize("argv", [["show", "nothing"], ["init"], ["frobnicate"]])
def test_bad_command_lines_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2


def test_validate_reports_tolerated_keys(tmp_path: Path, capsys) -> None:
    text = project("tolerated") + "python_requirements:\n  - profiles-rudderstack==0.24.*\n"
    write(tmp_path, {"pb_project.yaml": text, "models/inputs.yaml": "inputs:" + ORDERS_INPUT})
    assert main(["validate", "-p", str(tmp_path)]) == 0
    assert "note: python_requirements is accepted" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "pb_project.yaml")
