"""Warehouse resources without a server: siteconfig keys as pb writes them, lazy imports, dialect fixes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlglot
import yaml
from sqlglot import exp

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.siteconfig import load_connection
from profiles_dagster.sql import dialects
from profiles_dagster.warehouse import ENGINES, warehouse_for

CLIENTS = {
    "postgres": "psycopg",
    "redshift": "redshift_connector",
    "snowflake": "snowflake.connector",
    "bigquery": "google.cloud.bigquery",
    "databricks": "databricks.sql",
}

# one target per engine, written with pb's keys (`pb init connection`), secrets as env refs
_TARGETS = {
    "pg": {"type": "postgres", "host": "db.internal", "port": 5432, "dbname": "analytics", "user": "rudder",
           "password": "${PD_PW}", "schema": "profiles", "sslmode": "require"},
    "rs": {"type": "redshift", "host": "x.redshift.amazonaws.com", "port": 5439, "dbname": "dev", "user": "rudder",
           "password": "${PD_PW}", "schema": "profiles"},
    "sf": {"type": "snowflake", "account": "xy12345.eu-west-1", "user": "rudder", "privateKey": "${PD_PW}",
           "privateKeyPassphrase": "pp", "useKeyPairAuth": True, "role": "transformer", "warehouse": "wh",
           "dbname": "analytics", "schema": "profiles"},
    "bq": {"type": "bigquery", "project_id": "my-project", "schema": "profiles",
           "credentials": {"type": "service_account", "project_id": "my-project"}},
    "dbx": {"type": "databricks", "host": "dbc-1.cloud.databricks.com", "port": 443,
            "http_endpoint": "/sql/1.0/warehouses/abc", "access_token": "${PD_PW}", "catalog": "main",
            "schema": "profiles"},
}  # fmt: skip
SITECONFIG = yaml.safe_dump(
    {"connections": {name: {"target": "dev", "outputs": {"dev": t}} for name, t in _TARGETS.items()}}
)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PD_PW", "s3cret")
    path = tmp_path / "siteconfig.yaml"
    path.write_text(SITECONFIG)
    return path


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("pg", "postgres", {"host": "db.internal", "dbname": "analytics", "password": "s3cret", "sslmode": "require"}),
        ("rs", "redshift", {"host": "x.redshift.amazonaws.com", "port": 5439, "password": "s3cret"}),
        ("sf", "snowflake", {"account": "xy12345.eu-west-1", "private_key": "s3cret", "private_key_password": "pp"}),
        (
            "bq",
            "bigquery",
            {"project_id": "my-project", "credentials": {"type": "service_account", "project_id": "my-project"}},
        ),
        (
            "dbx",
            "databricks",
            {"host": "dbc-1.cloud.databricks.com", "http_path": "/sql/1.0/warehouses/abc", "catalog": "main"},
        ),
    ],
)
def test_pb_siteconfig_keys_map_to_resources(site: Path, name: str, kind: str, expected: dict) -> None:
    warehouse = warehouse_for(load_connection(site, name))
    assert warehouse.kind == kind and warehouse.output_schema == "profiles"
    resolved = warehouse.resolved()  # a secret written as ${PD_PW} is an EnvVar until a session opens
    for key, value in expected.items():
        assert getattr(resolved, key) == value


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "siteconfig.yaml"
    path.write_text(
        "connections:\n  c:\n    target: d\n    outputs:\n      d: {type: postgres, host: h, dbnam: x, user: u}\n"
    )
    with pytest.raises(ProfilesError, match=r"unknown key 'dbnam'.*did you mean 'dbname'"):
        warehouse_for(load_connection(path, "c"))


def test_missing_required_key(tmp_path: Path) -> None:
    path = tmp_path / "siteconfig.yaml"
    path.write_text("connections:\n  c:\n    target: d\n    outputs:\n      d: {type: snowflake, user: u, dbname: x}\n")
    with pytest.raises(ProfilesError, match="invalid snowflake connection"):
        warehouse_for(load_connection(path, "c"))


def test_resources_take_dagster_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from profiles_dagster.warehouse.postgres import PostgresWarehouse

    monkeypatch.setenv("PD_PG_PASSWORD", "from-env")
    resource = PostgresWarehouse(host="h", dbname="d", user="u", password=dg.EnvVar("PD_PG_PASSWORD"))
    assert resource.process_config_and_initialize().password == "from-env"


def test_loading_an_engine_imports_no_warehouse_client() -> None:
    """Each engine module imports its client only when a session opens: a code location using one
    engine never loads the others (nor its own until it connects)."""
    code = textwrap.dedent(
        f"""
        import sys
        import profiles_dagster.dagster, profiles_dagster.runner, profiles_dagster.cli
        from profiles_dagster.warehouse import warehouse_class
        for kind in {[k for k in ENGINES if k != "duckdb"]!r}:
            warehouse_class(kind)
            loaded = sorted(m for m in {sorted(CLIENTS.values())!r} if m in sys.modules)
            print(kind, loaded)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for line in out.strip().splitlines():
        assert line.endswith("[]"), f"loading an engine imported a client: {line}"
    assert len(out.strip().splitlines()) == len(CLIENTS)


def test_engine_dialect_is_its_name_and_a_sqlglot_dialect() -> None:
    pg = dialects.POSTGRES
    assert pg == "postgres" and f"{pg}" == "postgres" and hash(pg) == hash("postgres") and isinstance(pg, str)
    assert sqlglot.parse_one("select 1", read=pg).sql(pg) == "SELECT 1"
    assert dialects.dialect_for("snowflake") is dialects.SNOWFLAKE


def test_unaliased_subqueries_get_an_alias_on_postgres_and_redshift() -> None:
    tree = sqlglot.parse_one("select * from (select 1 as a) join (select 1 as b) on true", read="duckdb")
    for d in (dialects.POSTGRES, dialects.REDSHIFT):
        sql = tree.sql(d)
        assert "AS _sq0" in sql and "AS _sq1" in sql, sql
    assert "_sq" not in tree.sql("duckdb")


def test_snowflake_folds_quoted_plain_names_to_upper_case() -> None:
    tree = exp.select(exp.column("x", quoted=True)).from_(exp.table_("user_feature_view", db="profiles", quoted=True))
    assert tree.sql(dialects.SNOWFLAKE) == 'SELECT "X" FROM "PROFILES"."USER_FEATURE_VIEW"'
    odd = exp.select("*").from_(exp.table_("has space", db="p", quoted=True))
    assert '"has space"' in odd.sql(dialects.SNOWFLAKE)
