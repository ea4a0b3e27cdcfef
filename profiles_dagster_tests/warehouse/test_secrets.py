"""Every secret key each engine's siteconfig takes stays out of reprs, errors and what Dagster shows; a server
resource configured with `dg.EnvVar` works, in a Dagster run and outside one, and Dagster shows the name only."""

from __future__ import annotations

import traceback
from pathlib import Path

import dagster as dg
import pytest
import yaml

from profiles_dagster import build_definitions
from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.siteconfig import is_secret, load_connection
from profiles_dagster.warehouse import warehouse_for
from profiles_dagster.warehouse.postgres import PostgresWarehouse
from profiles_dagster.warehouse.resource import as_resource
from profiles_dagster_tests.conftest import END_TIME
from profiles_dagster_tests.standins.example import load_example_inputs, project_copy
from profiles_dagster_tests.test_secrets import resource_snaps

# the keys each engine needs besides a secret, and its secret keys as pb and the resources spell them
REQUIRED = {
    "postgres": {"host": "db.internal", "dbname": "warehouse", "user": "profiles"},
    "redshift": {"host": "rs.internal", "dbname": "dev", "user": "profiles"},
    "snowflake": {"account": "acme", "user": "profiles", "dbname": "analytics"},
    "bigquery": {"project_id": "acme-data"},
    "databricks": {"host": "dbc-1.cloud.databricks.com", "http_endpoint": "/sql/1.0/warehouses/1"},
}
SECRET_KEYS = {
    "postgres": ("password",),
    "redshift": ("password", "secret_access_key", "session_token"),
    "snowflake": (
        "password",
        "privateKey",
        "private_key",
        "privateKeyPassphrase",
        "private_key_passphrase",
        "private_key_password",
        "passcode",
    ),
    "bigquery": ("credentials", "credentials_json"),
    "databricks": ("access_token",),
}
CASES = [(engine, key) for engine, keys in SECRET_KEYS.items() for key in keys]
PG_PASSWORD = "pg-Pa55-3f9c1e-do-not-print"
PG_ENV = "PD_TEST_PG_PASSWORD"


def _secret(key: str) -> str:
    return f"{key}-s3cr3t-9d2b7a"


def _site(tmp_path: Path, engine: str, settings: dict) -> Path:
    site = tmp_path / "siteconfig.yaml"
    target = {"type": engine, **REQUIRED[engine], **settings}
    site.write_text(yaml.safe_dump({"connections": {"c": {"target": "dev", "outputs": {"dev": target}}}}))
    return site


def _everything(exc: BaseException) -> str:
    """The error as a user or Dagster's event log sees it: message, hint, and the whole chain of causes."""
    return "".join(traceback.format_exception(exc)) + str(getattr(exc, "hint", "") or "")


@pytest.mark.parametrize(("engine", "key"), CASES, ids=[f"{e}-{k}" for e, k in CASES])
def test_each_secret_key_is_kept_out_of_reprs_and_errors(tmp_path: Path, engine: str, key: str) -> None:
    secret = _secret(key)
    assert is_secret(key)
    connection = load_connection(_site(tmp_path, engine, {key: secret}), "c")
    assert connection.redacted()[key] == "***"
    assert secret not in repr(connection)
    try:
        resource = warehouse_for(connection)
    except ProfilesError as exc:  # a key this engine does not take (Snowflake's MFA passcode): named, not shown
        assert f"'{key}'" in str(exc)
        assert secret not in _everything(exc)
    else:
        assert secret not in repr(resource) and secret not in str(resource)
        assert secret in [str(v) for v in resource.secret_values()]  # the resource still has it, to connect
    # a wrong value of another key, and the secret under a wrong type: the validation errors quote no secret
    for bad in ({"port": "not-a-port", "location": ["x"]}, {key: [secret]}):
        settings = {key: secret, **{k: v for k, v in bad.items() if k != key}} if key not in bad else bad
        if engine == "bigquery":
            settings.pop("port", None)
        else:
            settings.pop("location", None)
        try:
            warehouse_for(load_connection(_site(tmp_path, engine, settings), "c"))
        except ProfilesError as exc:
            assert secret not in _everything(exc), _everything(exc)


@pytest.mark.parametrize("engine", sorted(SECRET_KEYS))
def test_secrets_written_as_env_references_reach_the_resource_as_env_vars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    # two secrets where the engine has two fields for them (BigQuery's two keys are one field)
    keys = [k for k in SECRET_KEYS[engine] if k != "passcode"][: 1 if engine == "bigquery" else 2]
    for n, key in enumerate(keys):
        monkeypatch.setenv(f"PD_TEST_SECRET_{n}", _secret(key))
    site = _site(tmp_path, engine, {key: f"${{PD_TEST_SECRET_{n}}}" for n, key in enumerate(keys)})
    connection = load_connection(site, "c")
    resource = as_resource(warehouse_for(connection), connection)  # what build_definitions gives Dagster
    shown = repr(resource_snaps(dg.Definitions(resources={"wh": resource})))
    for n, key in enumerate(keys):
        assert _secret(key) not in shown and _secret(key) not in repr(resource)
        assert f"PD_TEST_SECRET_{n}" in shown  # Dagster shows the variable's name
    resolved = resource.resolved()  # what a session outside a Dagster run connects with
    assert sorted(str(v) for v in resolved.secret_values() if v) == sorted(_secret(k) for k in keys)


# -- a real server -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg(postgres_standin) -> dict:
    """A database owned by a role whose password is long enough to search every output for."""
    server = postgres_standin
    server.create_database("secrets")
    with server.connect() as admin:
        admin.execute("DROP ROLE IF EXISTS profiles_secret")
        admin.execute(f"CREATE ROLE profiles_secret LOGIN PASSWORD '{PG_PASSWORD}'")
        admin.execute('ALTER DATABASE "secrets" OWNER TO profiles_secret')
    with server.connect("secrets") as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        admin.execute("ALTER SCHEMA public OWNER TO profiles_secret")
    return {"host": server.host, "port": server.port, "dbname": "secrets", "user": "profiles_secret"}


def test_an_env_var_resource_connects_outside_a_run_and_names_a_missing_variable(
    pg: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = PostgresWarehouse(**pg, password=dg.EnvVar(PG_ENV), sslmode="disable")
    monkeypatch.setenv(PG_ENV, PG_PASSWORD)
    with resource.session() as session:
        assert session.query("SELECT current_user")[0][0] == "profiles_secret"
    assert PG_PASSWORD not in repr(resource)
    monkeypatch.delenv(PG_ENV)
    with pytest.raises(ProfilesError, match=f"environment variable {PG_ENV} is not set"):
        resource.session().__enter__()
    monkeypatch.setenv(PG_ENV, "wrong-" + PG_PASSWORD)
    with pytest.raises(ProfilesError, match="cannot connect to postgres") as caught:
        resource.session().__enter__()
    assert PG_PASSWORD not in _everything(caught.value)


def test_a_dagster_run_with_an_env_var_password_works_and_shows_only_its_name(
    pg: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PG_ENV, PG_PASSWORD)
    project, site = project_copy(
        tmp_path, {"type": "postgres", **pg, "password": f"${{{PG_ENV}}}", "sslmode": "disable"}
    )
    with PostgresWarehouse(**pg, password=dg.EnvVar(PG_ENV), sslmode="disable").session() as session:
        load_example_inputs(session)
    for defs in (
        build_definitions(project, site_config=site),  # siteconfig: `password: ${PD_TEST_PG_PASSWORD}`
        build_definitions(project, warehouse=PostgresWarehouse(**pg, password=dg.EnvVar(PG_ENV), sslmode="disable")),
    ):
        shown = repr(resource_snaps(defs))
        assert PG_ENV in shown and PG_PASSWORD not in shown
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, run_config={"ops": {"profiles_example_project": {"config": {"end_time": END_TIME}}}}
        )
        assert result.success
        records = instance.get_records_for_run(result.run_id).records
        text = "\n".join(repr(r.event_log_entry) for r in records)
        assert "Material_user_id_stitcher_" in text
        assert PG_PASSWORD not in text
        assert PG_PASSWORD not in repr(instance.get_run_by_id(result.run_id))


def test_a_token_inside_another_value_is_redacted(tmp_path: Path) -> None:
    """A MotherDuck path carries its token in the value of `path`, not under a secret key."""
    site = tmp_path / "siteconfig.yaml"
    target = {"type": "duckdb", "path": f"md:analytics?motherduck_token={_secret('md')}&saas_mode=true"}
    site.write_text(yaml.safe_dump({"connections": {"c": {"target": "dev", "outputs": {"dev": target}}}}))
    connection = load_connection(site, "c")
    assert _secret("md") not in repr(connection) and "saas_mode=true" in repr(connection)
