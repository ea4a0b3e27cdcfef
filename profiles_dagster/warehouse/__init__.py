"""Warehouses: one engine adapter per engine, heavy clients imported lazily.

Importing this package imports no warehouse client: each engine's module imports its client
(psycopg, redshift_connector, snowflake.connector, google.cloud.bigquery, databricks.sql) only
when a session opens, so a code location that uses one engine never loads the others. Dagster is
imported with the first resource class (`Warehouse`, `PostgresWarehouse`, ...): the CLI runs DuckDB
through the plain `DuckDBEngine` and starts without it.
"""

from __future__ import annotations

import importlib

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.siteconfig import Connection
from profiles_dagster.warehouse.base import Session, WarehouseEngine

# siteconfig `type` -> (module, resource class)
_ENGINES: dict[str, tuple[str, str]] = {
    "duckdb": ("profiles_dagster.warehouse.duckdb", "DuckDBWarehouse"),
    "postgres": ("profiles_dagster.warehouse.postgres", "PostgresWarehouse"),
    "redshift": ("profiles_dagster.warehouse.redshift", "RedshiftWarehouse"),
    "snowflake": ("profiles_dagster.warehouse.snowflake", "SnowflakeWarehouse"),
    "bigquery": ("profiles_dagster.warehouse.bigquery", "BigQueryWarehouse"),
    "databricks": ("profiles_dagster.warehouse.databricks", "DatabricksWarehouse"),
}
ENGINES = tuple(_ENGINES)
EMBEDDED_ENGINE = "duckdb"  # runs with no server: what a project without a siteconfig compiles for


def warehouse_class(kind: str) -> type[WarehouseEngine]:
    """The Dagster resource class of an engine (imports Dagster)."""
    module, name = _ENGINES[kind]
    return getattr(importlib.import_module(module), name)


def warehouse_for(connection: Connection) -> WarehouseEngine:
    """The plain engine for a siteconfig connection (no Dagster import). Dagster code turns it into a
    resource with `profiles_dagster.warehouse.resource.as_resource`."""
    if connection.type in _ENGINES:
        module, name = _ENGINES[connection.type]
        engine = getattr(importlib.import_module(module), name.removesuffix("Warehouse") + "Engine")
        return engine.from_connection(connection)
    raise ProfilesError(
        f"connection '{connection.name}' has type '{connection.type}', which this version cannot run",
        file=connection.source,
        key=f"connections.{connection.name}.outputs.{connection.target}.type",
        hint=f"supported: {', '.join(ENGINES)}",
    )


def __getattr__(name: str):
    """`from profiles_dagster.warehouse import Warehouse, PostgresWarehouse` etc., imported on first use."""
    if name == "Warehouse":
        from profiles_dagster.warehouse.resource import Warehouse

        return Warehouse
    for kind, (_, cls_name) in _ENGINES.items():
        if cls_name == name:
            return warehouse_class(kind)
    raise AttributeError(name)


__all__ = ["ENGINES", "Session", "Warehouse", "WarehouseEngine", "warehouse_class", "warehouse_for"]
