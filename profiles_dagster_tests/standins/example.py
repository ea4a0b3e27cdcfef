"""The example project on any engine: load its CSVs through a Session, run it through the CLI, read results."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml
from sqlglot import exp

from example_project.loading import COLUMN_TYPES, RAW_TABLES
from profiles_dagster.warehouse.base import Session

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"
EXAMPLE_DATA = EXAMPLE / "data"
END_TIME = "2025-11-01T00:00:00Z"


def _literal(value: str, typ: str) -> exp.Expression:
    if value == "":
        return exp.cast(exp.null(), exp.DataType.build(typ))
    if typ == "TIMESTAMP":
        return exp.cast(exp.Literal.string(value), exp.DataType.build("TIMESTAMP"))
    if typ.startswith("DECIMAL"):
        return exp.cast(exp.Literal.number(value), exp.DataType.build(typ))
    return exp.Literal.string(value)


def load_table(session: Session, schema: str, name: str, rows: list[dict[str, str]], types: dict[str, str]) -> None:
    """CREATE TABLE with the engine's type names, then multi-row INSERTs rendered in its dialect."""
    target = exp.Table(this=exp.to_identifier(name), db=exp.to_identifier(schema))
    session.drop_table(target)
    columns = [exp.ColumnDef(this=exp.to_identifier(c), kind=exp.DataType.build(t)) for c, t in types.items()]
    session.run(exp.Create(kind="TABLE", this=exp.Schema(this=target.copy(), expressions=columns)))
    for start in range(0, len(rows), 1000):
        batch = rows[start : start + 1000]
        values = exp.values([tuple(_literal(row[c], t) for c, t in types.items()) for row in batch])
        session.run(
            exp.insert(values, exp.Schema(this=target.copy(), expressions=[exp.to_identifier(c) for c in types]))
        )


def load_example_inputs(session: Session, schema: str = "raw", *, reuse: bool = False) -> dict[str, int]:
    """The example's CSVs as tables. `reuse`: keep a table that already holds as many rows as its CSV (the
    stand-ins live for the whole session, and no test writes to the inputs; loading takes a minute or more
    on the slowest)."""
    session.create_schema(schema)
    counts = {}
    for name in RAW_TABLES:
        with open(EXAMPLE_DATA / f"{name}.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        counts[name] = len(rows)
        target = exp.table_(name, db=schema)
        if reuse and session.table_exists(target) and session.row_count(target) == len(rows):
            continue
        bulk = getattr(session.connection, "load_csv", None)  # a stand-in that reads the file itself (Spark)
        if bulk is not None:
            bulk(schema, name, EXAMPLE_DATA / f"{name}.csv", COLUMN_TYPES[name])
        else:
            load_table(session, schema, name, rows, COLUMN_TYPES[name])
    return counts


def project_copy(folder: Path, target: dict, *, schema: str = "profiles") -> tuple[Path, Path]:
    """The example project (its SQL written for DuckDB: profiles_dagster.yaml says so) and a siteconfig
    whose one target has the engine's pb keys."""
    project = folder / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("*.duckdb", "output", "logs", "__pycache__"))
    (project / "profiles_dagster.yaml").write_text("dialect: duckdb\n", encoding="utf-8")
    site = folder / "siteconfig.yaml"
    outputs = {"dev": {**target, "schema": schema}}
    site.write_text(yaml.safe_dump({"connections": {"example": {"target": "dev", "outputs": outputs}}}))
    return project, site


def frame(session: Session, sql: str) -> pd.DataFrame:
    cursor_rows = session.query(sql)
    return pd.DataFrame(cursor_rows, columns=[c for c, _ in _describe(session, sql)])


def _describe(session: Session, sql: str) -> list[tuple[str, str]]:
    cursor = session.connection.cursor()
    try:
        cursor.execute(sql)
        return [(d[0], "") for d in cursor.description]
    finally:
        cursor.close()


@contextmanager
def recorded(session_class: type[Session]) -> Iterator[list[str]]:
    """Every statement a session of this class executes or queries, in order."""
    statements: list[str] = []
    original_execute, original_query = session_class.execute, session_class.query

    def execute(self, sql: str) -> None:
        statements.append(sql)
        return original_execute(self, sql)

    def query(self, sql: str) -> list[tuple]:
        statements.append(sql)
        return original_query(self, sql)

    session_class.execute, session_class.query = execute, query  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        session_class.execute, session_class.query = original_execute, original_query  # type: ignore[method-assign]
