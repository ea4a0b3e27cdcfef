"""Shared fixtures: the example project run against throwaway DuckDB files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from example_project.loading import load_raw
from profiles_dagster_tests.standins.fixtures import engine, postgres_standin  # noqa: F401 - one server per session

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_project"
EXAMPLE_DATA = EXAMPLE / "data"
END_TIME = "2025-11-01T00:00:00Z"
END_TIME_NAIVE = datetime(2025, 11, 1)


def write_site_config(folder: Path, database: Path, *, connection: str = "example", schema: str = "profiles") -> Path:
    """A pb-style siteconfig with one duckdb target; the path is relative, as users write it."""
    path = folder / "siteconfig.yaml"
    path.write_text(
        f"connections:\n  {connection}:\n    target: dev\n    outputs:\n      dev:\n        type: duckdb\n"
        f"        path: {database.name}\n        schema: {schema}\n",
        encoding="utf-8",
    )
    return path


def load_example_inputs(database: Path) -> dict[str, int]:
    con = duckdb.connect(str(database))
    try:
        return load_raw(con, EXAMPLE_DATA)
    finally:
        con.close()


@pytest.fixture
def example_db(tmp_path: Path) -> tuple[Path, Path]:
    """A DuckDB file holding raw.* from the example CSVs, and a siteconfig pointing at it."""
    database = tmp_path / "warehouse.duckdb"
    load_example_inputs(database)
    return database, write_site_config(tmp_path, database)


@pytest.fixture(scope="session")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project run once through the CLI with a pinned end time; the DuckDB file it wrote."""
    from profiles_dagster.cli import main

    folder = tmp_path_factory.mktemp("example_run")
    database = folder / "warehouse.duckdb"
    load_example_inputs(database)
    site = write_site_config(folder, database)
    assert main(["run", "-p", str(EXAMPLE), "--site-config", str(site), "--end_time", END_TIME]) == 0
    return database
