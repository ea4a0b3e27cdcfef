"""`profiles-dagster sample-data`: plausible input tables for a project, so it can be tried with no warehouse.

Each table input gets every column the project reads (`columns.py`), rows whose ids overlap across inputs and
include junk the id filters drop (`rows.py`, `ids.py`), written through the DuckDB warehouse code where a run
will look for it (`target.py`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlglot import exp

from profiles_dagster.errors import ProfilesError
from profiles_dagster.offline import offline_context
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.project.loader import load_project
from profiles_dagster.project.model import Project
from profiles_dagster.sampledata.columns import Column, input_columns, sampled_table, table_key
from profiles_dagster.sampledata.rows import column_types, sample_rows
from profiles_dagster.sampledata.target import Destination, destination
from profiles_dagster.sql.dialects import DUCKDB
from profiles_dagster.warehouse.base import Session

DEFAULT_ROWS = 1000


@dataclass
class SampleData:
    """What was written: the tables (input -> table, rows), where, and what a run needs to find it."""

    destination: Destination
    tables: dict[str, tuple[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def write_sample_data(
    project_dir: str | Path,
    *,
    seed: int = 0,
    rows: int = DEFAULT_ROWS,
    end_time: datetime,
    site_config: str | Path | None = None,
    target: str | None = None,
    duckdb_path: str | Path | None = None,
) -> SampleData:
    """Write `rows` rows into each table input of the project; the same seed and end time give the same data."""
    if rows < 1:
        raise ProfilesError(f"--rows must be at least 1, got {rows}")
    project = load_project(project_dir)
    plan = build_plan(project)
    columns = input_columns(project, plan)
    ctx = offline_context(project, plan, DUCKDB)
    tables = {name: sampled_table(name, ctx) for name in columns}
    catalogs = {t.catalog for t in tables.values() if t.catalog}
    where = destination(project, site_config=site_config, target=target, duckdb_path=duckdb_path, catalogs=catalogs)
    result = SampleData(where)
    result.notes.extend(_skipped(project, columns))
    id_types = {t.name: t for t in project.file.id_types}
    with where.engine.session() as session:
        database = str(session.query("SELECT current_database()")[0][0])
        attached = {
            str(r[0]).lower() for r in session.query("SELECT database_name FROM duckdb_databases() WHERE NOT readonly")
        }
        _check_catalogs(project, tables, database, attached)
        written: dict[tuple[str, ...], str] = {}
        for name, table in tables.items():
            if table_key(table) in written:  # another input reads the same table: written once
                result.notes.append(f"input '{name}' reads the table of input '{written[table_key(table)]}'")
                continue
            written[table_key(table)] = name
            found = list(columns[name].values())
            _write(session, table, found, sample_rows(name, found, id_types, rows=rows, seed=seed, end_time=end_time))
            result.tables[name] = (table.sql(DUCKDB), rows)
    return result


def _write(session: Session, table: exp.Table, found: list[Column], values: Iterable[tuple]) -> None:
    """The input's table, where today's run reads it: a schema-qualified name in that schema; an unqualified
    one in the output schema (where the input check looks) with a view in DuckDB's default schema (where the
    run's SQL finds it)."""
    types = column_types(found)
    if table.db:  # in its database: the file's own, or one siteconfig's `attach:` names
        schema = exp.Table(db=table.args["db"].copy(), catalog=table.args["catalog"].copy() if table.catalog else None)
        session.run(exp.Create(kind="SCHEMA", this=schema, exists=True))
        session.load_rows(table, types, [list(values)])
        return
    session.create_schema(session.schema)
    stored = table.copy()
    stored.set("db", exp.to_identifier(session.schema, quoted=True))
    session.load_rows(stored, types, [list(values)])
    if session.schema.lower() != "main":
        session.run(exp.Create(kind="VIEW", this=table.copy(), replace=True, expression=exp.select("*").from_(stored)))


def _check_catalogs(project: Project, tables: dict[str, exp.Table], database: str, attached: set[str]) -> None:
    """DuckDB finds `DB.SCHEMA.TABLE` only in a database named DB: the file DB.duckdb, or one siteconfig's
    `attach:` gives the alias DB (written to when it is not read-only)."""
    for name, table in tables.items():
        if table.catalog and table.catalog.lower() != database.lower() and table.catalog.lower() not in attached:
            inp = project.inputs.get(name)
            what = f"input '{name}'" if inp else "a sql model"  # else a table a sql model reads by name
            raise ProfilesError(
                f"{what} reads {table.sql(DUCKDB)}, in database {table.catalog}, but the DuckDB file's "
                f"database is {database}",
                file=inp.origin.file if inp else None,
                line=inp.origin.line if inp else None,
                key=f"inputs.{name}.app_defaults" if inp else None,
                hint=f"give --duckdb PATH/{table.catalog}.duckdb (DuckDB names a file's database after the file)",
            )


def _skipped(project: Project, columns: dict[str, dict[str, Column]]) -> list[str]:
    notes = []
    for name, inp in project.inputs.items():
        if name not in columns:
            kind = "csv" if inp.spec.app_defaults.csv is not None else "s3"
            notes.append(f"input '{name}' reads a `{kind}:` file: it brings its own rows, none written")
    for id_type in project.file.id_types:
        if any(f.sql is not None for f in id_type.filters):
            notes.append(f"id type '{id_type.name}': its `sql` filter reads a table; sample ids ignore it")
    return notes
