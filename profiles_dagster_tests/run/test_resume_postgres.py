"""`run --seq_no N --force` on Postgres, where a stable view pins the material it reads (DROP TABLE is refused):
run N's materials are moved aside, rebuilt under pb's names, the views repointed, and the old ones dropped.

Uses the throwaway Postgres 15 cluster of the stand-in tests, which fails (never skips) when it cannot start.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml

from profiles_dagster.cli import main
from profiles_dagster_tests.format.harness import write
from profiles_dagster_tests.format.test_format_core import rid
from profiles_dagster_tests.format.test_format_runs import END_2, VARS, files


@pytest.fixture(scope="module")
def target(postgres_standin) -> dict:  # the shared server: it fails, never skips, if it cannot start
    return postgres_standin.target("seq_no")


def connect(target: dict):
    return psycopg.connect(
        host=target["host"],
        port=target["port"],
        dbname=target["dbname"],
        user=target["user"],
        password=target["password"],
        autocommit=True,
    )


def test_force_rebuilds_run_materials_that_the_stable_views_read(tmp_path: Path, target: dict) -> None:
    site = {"connections": {"test": {"target": "dev", "outputs": {"dev": {**target, "schema": "seq_out"}}}}}
    project = files("pgforce")
    project["models/vars.yaml"] = VARS.replace(
        " + (select count(*) from raw.switch where error('switched on') is null)", ""
    )  # DuckDB's error() is not Postgres's
    write(tmp_path, {**project, "siteconfig.yaml": yaml.safe_dump(site)})
    with connect(target) as con:
        con.execute("drop schema if exists raw cascade")
        con.execute("drop schema if exists seq_out cascade")
        con.execute("create schema raw")
        con.execute("create table raw.switch (x int)")
        con.execute("create table raw.orders (user_id text, amount numeric, ts timestamp)")
        con.execute(
            "insert into raw.orders values ('u1', 10, '2025-01-01'), ('u1', 20, '2025-01-02'), ('u2', 5, '2025-01-03')"
        )
    assert main(["run", "-p", str(tmp_path), "--end_time", END_2]) == 0
    with connect(target) as con:
        con.execute("insert into raw.orders values ('u1', 1000, '2025-01-05')")
    assert main(["run", "-p", str(tmp_path), "--seq_no", "1", "--force"]) == 0
    u1, u2 = rid("u1", "user_id"), rid("u2", "user_id")
    with connect(target) as con:
        view = dict(
            (m, (t, n)) for m, t, n in con.execute("select user_main_id, total, orders from seq_out.user_feature_view")
        )
        assert view == {u1: (Decimal(1030), 3), u2: (Decimal(5), 1)}
        assert con.execute("select seq_no, status from seq_out._profiles_runs").fetchall() == [(1, "complete")]
        left = con.execute(
            "select table_name from information_schema.tables where table_schema = 'seq_out' "
            "and table_name like '%replaced'"
        ).fetchall()
        assert left == []  # moved aside, then dropped once the views were repointed
