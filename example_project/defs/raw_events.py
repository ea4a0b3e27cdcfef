"""CSV loaders of the example's inputs: ordinary assets keyed by the inputs' table names, so the inputs connect."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from example_project.loading import RAW_TABLES, load_raw_table
from profiles_dagster.warehouse import Warehouse

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def _loader(name: str) -> dg.AssetsDefinition:
    @dg.asset(key=["raw", name], group_name="raw_events", kinds={"duckdb", "csv"}, description=f"raw.{name} from CSV")
    def load(profiles_warehouse: Warehouse) -> dg.MaterializeResult:
        with profiles_warehouse.session() as session:
            rows = load_raw_table(session.connection, name, DATA_DIR)
        return dg.MaterializeResult(metadata={"dagster/row_count": rows, "dagster/table_name": f"raw.{name}"})

    return load


loaders = [_loader(name) for name in RAW_TABLES]
