"""Warehouses: one engine adapter per engine, heavy clients imported lazily."""

from __future__ import annotations

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.siteconfig import Connection
from profiles_dagster.warehouse.base import Session, Warehouse

ENGINES = ("duckdb",)


def warehouse_for(connection: Connection) -> Warehouse:
    """The resource for a siteconfig connection."""
    if connection.type == "duckdb":
        from profiles_dagster.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(
            database=str(connection.settings.get("path") or ":memory:"), output_schema=connection.schema
        )
    raise ProfilesError(
        f"connection '{connection.name}' has type '{connection.type}', which this version cannot run yet",
        file=connection.source,
        key=f"connections.{connection.name}.outputs.{connection.target}.type",
        hint=f"supported: {', '.join(ENGINES)}",
    )


__all__ = ["Session", "Warehouse", "warehouse_for"]
