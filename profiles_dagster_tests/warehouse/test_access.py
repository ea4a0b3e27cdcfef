"""`check_access` / `profiles-dagster validate access` on Postgres: a user without grants gets the exact GRANTs."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles_dagster.cli import main
from profiles_dagster.loading import load
from profiles_dagster.warehouse.access import check_access
from profiles_dagster_tests.standins.example import load_example_inputs, project_copy
from profiles_dagster_tests.standins.postgres import postgres_server


def test_missing_grants_are_printed_then_granting_them_passes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with postgres_server() as server:
        server.create_database("wh")
        admin = {"type": "postgres", "host": server.host, "port": server.port, "dbname": "wh", "user": "postgres",
                 "password": "postgres"}  # fmt: skip
        project, site = project_copy(tmp_path / "admin", admin)
        with load(project, site_config=site).warehouse.session() as session:
            load_example_inputs(session)
            session.execute("CREATE ROLE reader LOGIN PASSWORD 'pw'")
            session.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        reader = {**admin, "user": "reader", "password": "pw"}
        project, site = project_copy(tmp_path / "reader", reader)
        report = check_access(load(project, site_config=site))
        assert not report.ok
        assert "GRANT SELECT ON raw.identifies TO reader;" in report.grants
        assert "GRANT USAGE ON SCHEMA raw TO reader;" in report.grants
        assert "CREATE SCHEMA IF NOT EXISTS profiles AUTHORIZATION reader;" in report.grants
        assert main(["validate", "access", "-p", str(project), "--site-config", str(site)]) == 1
        assert "GRANT SELECT ON raw.orders TO reader;" in capsys.readouterr().out
        with server.connect("wh") as con:
            for grant in report.grants:
                con.execute(grant)
        again = check_access(load(project, site_config=site))
        assert again.ok, again.text()
        assert main(["validate", "access", "-p", str(project), "--site-config", str(site)]) == 0
