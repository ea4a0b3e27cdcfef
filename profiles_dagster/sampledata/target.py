"""Where sample data goes: the project's own DuckDB connection, or a DuckDB file of the user's choosing with a
siteconfig that points the project's connection at it (so a Snowflake project runs on a laptop)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.model import Project
from profiles_dagster.project.siteconfig import Connection, find_site_config, load_connection
from profiles_dagster.warehouse import EMBEDDED_ENGINE
from profiles_dagster.warehouse.duckdb import DuckDBEngine

DEFAULT_SCHEMA = "profiles"
SAMPLE_TARGET = "sample"


@dataclass(frozen=True)
class Destination:
    engine: DuckDBEngine
    site_config: Path | None  # the siteconfig a run should be given (None: the one it already finds)
    written: bool  # sample-data wrote that siteconfig


def destination(
    project: Project,
    *,
    site_config: str | Path | None,
    target: str | None,
    duckdb_path: str | Path | None,
    catalogs: set[str],
) -> Destination:
    """The project's DuckDB connection unless `duckdb_path` is given or the connection is not DuckDB."""
    connection = _connection(project, site_config, target)
    if duckdb_path is None and connection is not None and connection.type == EMBEDDED_ENGINE:
        engine = DuckDBEngine.from_connection(connection)
        assert isinstance(engine, DuckDBEngine)
        return Destination(engine, Path(site_config) if site_config else None, written=False)
    schema = sample_schema(connection.schema if connection is not None else None, catalogs)
    path = Path(duckdb_path) if duckdb_path else _default_path(project, catalogs)
    path = path.expanduser().resolve()
    config = path.with_name(f"{path.stem}.siteconfig.yaml")
    # each other database inputs name in `DB.SCHEMA.TABLE`: a file beside it, attached under that name
    # DuckDB matches database names case-insensitively: `DB` and `db` are one file, attached once
    unique = {c.lower(): c for c in sorted(catalogs, reverse=True)}
    attach = [
        {"path": str(path.with_name(f"{c}.duckdb")), "alias": c, "read_only": False}
        for c in sorted(unique.values())
        if c.lower() != path.stem.lower()
    ]
    _write_site_config(config, project.file.connection, path, schema, attach)
    engine = DuckDBEngine.model_validate({"database": str(path), "output_schema": schema, "attach": attach})
    return Destination(engine, config, written=True)


def sample_schema(schema: str | None, catalogs: set[str]) -> str:
    """The output schema on a sample DuckDB file: the connection's, else `profiles`; renamed where inputs name a
    database of that name (DuckDB could not tell `schema.table` from `db.table`)."""
    schema = schema or DEFAULT_SCHEMA
    if schema.lower() in {c.lower() for c in catalogs}:
        schema = f"{schema}_output"
    return schema


def _connection(project: Project, site_config: str | Path | None, target: str | None) -> Connection | None:
    """The project's connection if a siteconfig names it and it can be read (its secrets set), else None."""
    try:
        config = find_site_config(project.root, site_config)
    except ProfilesError:
        if site_config:
            raise
        return None
    try:
        return load_connection(config, project.file.connection, target)
    except ProfilesError:
        if site_config:
            raise
        return None


def _default_path(project: Project, catalogs: set[str]) -> Path:
    """`<project>/output/sample_data/<name>.duckdb`: named after the database inputs name in `DB.SCHEMA.TABLE`
    (DuckDB names a file's database after the file), else `<project>_sample` (a database named like the output
    schema would make DuckDB's unqualified `schema.table` ambiguous)."""
    stem = next(iter(catalogs)) if len(catalogs) == 1 else f"{project.name}_sample"
    return project.root / "output" / "sample_data" / f"{stem}.duckdb"


def _write_site_config(config: Path, connection: str, path: Path, schema: str, attach: list[dict]) -> None:
    output: dict = {"type": EMBEDDED_ENGINE, "path": str(path), "schema": schema}
    if attach:
        output["attach"] = [{"path": a["path"], "alias": a["alias"]} for a in attach]
    document = {"connections": {connection: {"target": SAMPLE_TARGET, "outputs": {SAMPLE_TARGET: output}}}}
    config.parent.mkdir(parents=True, exist_ok=True)
    header = "# written by `profiles-dagster sample-data`: the project's connection on a local DuckDB file\n"
    config.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
