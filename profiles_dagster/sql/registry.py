"""The run registry kept in the output schema: runs (seq_no, status) and the materials each wrote."""

from __future__ import annotations

from datetime import datetime

import sqlglot
from sqlglot import exp

from profiles_dagster.sql.names import table

RUNS = "_profiles_runs"
MATERIALS = "_profiles_materials"

_RUNS_COLUMNS = (
    "seq_no INT, project VARCHAR, status VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, end_time TIMESTAMP"
)
_MATERIALS_COLUMNS = (
    "seq_no INT, project VARCHAR, step VARCHAR, content_hash VARCHAR, table_name VARCHAR, "
    "status VARCHAR, row_count BIGINT, seconds DOUBLE, finished_at TIMESTAMP"
)


def create_statements(schema: str) -> list[exp.Expression]:
    out = []
    for name, columns in ((RUNS, _RUNS_COLUMNS), (MATERIALS, _MATERIALS_COLUMNS)):
        ddl = sqlglot.parse_one(f"CREATE TABLE IF NOT EXISTS t ({columns})", read="duckdb")
        ddl.this.set("this", table(name, schema))
        out.append(ddl)
    return out


def next_seq_no(schema: str) -> exp.Query:
    return exp.select(exp.func("coalesce", exp.Max(this=exp.column("seq_no")), exp.Literal.number(0))).from_(
        table(RUNS, schema)
    )


def _value(v: object) -> exp.Expression:
    if v is None:
        return exp.null()
    if isinstance(v, datetime):
        return exp.cast(exp.Literal.string(v.strftime("%Y-%m-%d %H:%M:%S.%f")), exp.DataType.build("timestamp"))
    if isinstance(v, int | float):
        return exp.Literal.number(v)
    return exp.Literal.string(str(v))


def insert(schema: str, name: str, row: dict[str, object]) -> exp.Expression:
    return exp.insert(
        exp.values([tuple(_value(v) for v in row.values())]),
        exp.Schema(this=table(name, schema), expressions=[exp.to_identifier(k) for k in row]),
    )


def finish_run(schema: str, seq_no: int, status: str, finished_at: datetime) -> exp.Expression:
    return exp.update(
        table(RUNS, schema),
        {"status": _value(status), "finished_at": _value(finished_at)},
        where=exp.column("seq_no").eq(seq_no),
    )


def latest_material(schema: str, project: str, step: str, content_hash: str) -> exp.Query:
    """The newest complete material of a step with the same definition."""
    return (
        exp.select("table_name", "seq_no")
        .from_(table(MATERIALS, schema))
        .where(
            exp.and_(
                exp.column("project").eq(exp.Literal.string(project)),
                exp.column("step").eq(exp.Literal.string(step)),
                exp.column("content_hash").eq(exp.Literal.string(content_hash)),
                exp.column("status").eq(exp.Literal.string("complete")),
            )
        )
        .order_by(exp.Ordered(this=exp.column("seq_no"), desc=True))
        .limit(1)
    )
