"""The example code location: CSV loaders (ordinary Dagster assets) upstream of the Profiles project."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from example_project.loading import RAW_TABLES, load_raw_table
from profiles_dagster import build_definitions
from profiles_dagster.warehouse import Warehouse

PROJECT_DIR = Path(__file__).resolve().parent
DATA_DIR = PROJECT_DIR / "data"


def raw_loader(name: str) -> dg.AssetsDefinition:
    """Loads data/<name>.csv into raw.<name>: the key is the input's table name, so the input connects."""

    @dg.asset(
        key=["raw", name],
        group_name="raw_events",
        kinds={"duckdb", "csv"},
        description=f"Event table raw.{name}, loaded from example_project/data/{name}.csv",
    )
    def load(profiles_warehouse: Warehouse) -> dg.MaterializeResult:
        with profiles_warehouse.session() as session:
            rows = load_raw_table(session.connection, name, DATA_DIR)
        return dg.MaterializeResult(metadata={"dagster/row_count": rows, "dagster/table_name": f"raw.{name}"})

    return load


defs = build_definitions(PROJECT_DIR, assets=[raw_loader(name) for name in RAW_TABLES])
