"""Secrets from a siteconfig never show: not on stdout/stderr, in errors, logs, compiled SQL, the run
registry, nor in Dagster's event log and metadata."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from profiles_dagster import build_definitions
from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.siteconfig import load_connection
from profiles_dagster.warehouse import warehouse_for
from profiles_dagster_tests.conftest import END_TIME, EXAMPLE, load_example_inputs

PASSWORD = "hunter2-Pa55w0rd-do-not-print"
TOKEN = "tok-8f3e2c9a-secret-env-value"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkq"
# every other secret key an engine's siteconfig takes (pb's spelling and the resources'), one value each
OTHER_SECRETS = {
    key: f"{key}-value-do-not-print"
    for key in (
        "privateKey",
        "privateKeyPassphrase",
        "private_key_passphrase",
        "private_key_password",
        "passcode",
        "access_token",
        "credentials",
        "secret_access_key",
        "session_token",
        "client_secret",
    )
}
SECRETS = (PASSWORD, TOKEN, PRIVATE_KEY, "MIIEvQIBADANBgkq", *OTHER_SECRETS.values())


def _site(folder: Path, database: Path, *, extra: str = "") -> Path:
    path = folder / "siteconfig.yaml"
    others = "".join(f"        {key}: {value}\n" for key, value in OTHER_SECRETS.items())
    path.write_text(
        "connections:\n  example:\n    target: dev\n    outputs:\n      dev:\n        type: duckdb\n"
        f"        path: {database.name}\n        schema: profiles\n        password: {PASSWORD}\n"
        f"        token: ${{PD_TEST_TOKEN}}\n        private_key: '{PRIVATE_KEY}'\n{others}{extra}",
        encoding="utf-8",
    )
    return path


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret shows in {where}"


@pytest.fixture
def secret_project(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb", "output", "data", "defs"))
    database = tmp_path / "warehouse.duckdb"
    load_example_inputs(database)
    return root, database, _site(tmp_path, database)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "profiles_dagster.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PD_TEST_TOKEN": TOKEN, **(env or {})},
    )


def test_cli_output_compiled_sql_and_registry_hold_no_secret(secret_project, capsys, monkeypatch) -> None:
    from profiles_dagster.cli import main

    root, database, site = secret_project
    monkeypatch.setenv("PD_TEST_TOKEN", TOKEN)
    proc = _cli("run", "-p", str(root), "--site-config", str(site), "--end_time", END_TIME)  # as a user types it
    assert proc.returncode == 0, proc.stderr
    outputs = [proc.stdout + proc.stderr]
    for args in (
        ("validate", "-p", str(root), "--site-config", str(site)),
        ("compile", "-p", str(root), "--site-config", str(site), "--end_time", END_TIME),
        ("cleanup", "-p", str(root), "--site-config", str(site), "--dry-run"),
        ("run", "-p", str(root), "--site-config", str(site), "-t", "nope"),  # an error about the siteconfig
    ):
        code = main(list(args))
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
        assert ("nope" in args) == (code == 1), captured.err
    con = duckdb.connect(str(database))
    con.execute("drop table raw.orders")
    con.close()
    assert main(["run", "-p", str(root), "--site-config", str(site), "--end_time", END_TIME]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    outputs.append(captured.out + captured.err)
    monkeypatch.delenv("PD_TEST_TOKEN")
    assert main(["validate", "-p", str(root), "--site-config", str(site)]) == 1
    captured = capsys.readouterr()
    assert "PD_TEST_TOKEN is not set" in captured.err
    outputs.append(captured.out + captured.err)
    for n, text in enumerate(outputs):
        _assert_clean(text, f"CLI output {n}")
    sql_files = list((root / "output").rglob("*.sql"))
    assert sql_files
    for path in sql_files:
        _assert_clean(path.read_text(encoding="utf-8"), str(path))
    con = duckdb.connect(str(database), read_only=True)
    registry = " ".join(  # every row of every registry table, whatever its columns
        con.execute(f"select string_agg(r::varchar, ' ') from profiles.{name} r").fetchone()[0] or ""
        for name in ("_profiles_runs", "_profiles_materials", "_profiles_lock")
    )
    con.close()
    _assert_clean(registry, "the run registry")


def test_logs_and_errors_hold_no_secret(secret_project, caplog, monkeypatch) -> None:
    from profiles_dagster.cli import main

    root, _, site = secret_project
    monkeypatch.setenv("PD_TEST_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    assert main(["run", "-p", str(root), "--site-config", str(site), "--end_time", END_TIME]) == 0
    _assert_clean(caplog.text, "the log")
    connection = load_connection(site, "example")
    assert connection.settings["password"] == PASSWORD  # resolved, for the engine to use
    _assert_clean(repr(connection), "repr(Connection)")
    _assert_clean(repr(warehouse_for(connection)), "repr(the warehouse resource)")


def test_server_connection_errors_hold_no_secret(tmp_path: Path) -> None:
    """A Postgres target with a wrong key or a wrong type: the error names the key, never the password."""
    site = tmp_path / "siteconfig.yaml"
    for extra in ("        colour: blue\n", "        port: not-a-port\n", f"        sslmode: [{PASSWORD}]\n"):
        site.write_text(
            "connections:\n  pg:\n    target: dev\n    outputs:\n      dev:\n        type: postgres\n"
            f"        host: localhost\n        dbname: db\n        user: u\n        password: {PASSWORD}\n{extra}",
            encoding="utf-8",
        )
        with pytest.raises(ProfilesError) as caught:
            warehouse_for(load_connection(site, "pg"))
        _assert_clean(str(caught.value), f"the error for {extra.strip()}")


def test_dagster_event_log_and_metadata_hold_no_secret(secret_project, monkeypatch) -> None:
    root, _, site = secret_project
    monkeypatch.setenv("PD_TEST_TOKEN", TOKEN)
    defs = build_definitions(root, site_config=site)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, run_config={"ops": {"profiles_example_project": {"config": {"end_time": END_TIME}}}}
        )
        assert result.success
        records = instance.get_records_for_run(result.run_id).records
        text = "\n".join(repr(r.event_log_entry) for r in records)
        assert "Material_user_id_stitcher_" in text  # the log really holds the run's metadata
        _assert_clean(text, "the Dagster event log")
        for event in result.get_asset_materialization_events():
            _assert_clean(repr(event.event_specific_data.materialization.metadata), "materialization metadata")
        _assert_clean(repr(instance.get_run_by_id(result.run_id)), "the Dagster run record")
    _assert_clean(repr(resource_snaps(defs)), "the resource configuration Dagster shows")


def resource_snaps(defs: dg.Definitions) -> list:
    """What Dagster's UI shows of each resource: its configured values (an EnvVar as its name)."""
    from dagster._core.remote_representation.external_data import RepositorySnap

    return list(RepositorySnap.from_def(defs.get_repository_def()).resources)


def test_a_literal_secret_shows_in_dagster_only_as_an_environment_variable_name(tmp_path: Path) -> None:
    """A server connection's password written as is in siteconfig.yaml: Dagster's resource view gets an
    EnvVar name, and the resource still resolves to the password."""
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb", "output", "data", "defs"))
    site = tmp_path / "siteconfig.yaml"
    site.write_text(
        "connections:\n  example:\n    target: dev\n    outputs:\n      dev:\n        type: postgres\n"
        "        host: 127.0.0.2\n        port: 5432\n        dbname: db\n        user: me\n"
        f"        password: {PASSWORD}\n        schema: profiles\n",
        encoding="utf-8",
    )
    defs = build_definitions(root, site_config=site)
    snaps = repr(resource_snaps(defs))
    _assert_clean(snaps, "the resource configuration Dagster shows")
    assert "PROFILES_DAGSTER_SECRET_POSTGRES_PASSWORD_" in snaps  # what shows instead
    (resource,) = [r for r in defs.resources.values() if hasattr(r, "resolved")]
    assert resource.resolved().password == PASSWORD
    _assert_clean(repr(resource), "repr(the resource)")
