"""The run registry kept in the output schema, as SQL (no IO here).

- `_profiles_runs`: one row per run (seq_no, status, timings, the process that ran it).
  Status: running -> publishing -> complete, or failed / killed (found dead by a later run) / compiled.
- `_profiles_materials`: one row per material a run wrote (running -> complete | failed; later dropped)
  and per material it reused from an earlier run (status `reused`), so retention knows what a run read.
- `_profiles_views`: which material each stable view was pointed at, per publishing run.
- `_profiles_lock`: one row, the schema's run lock (who holds it, since when, last heartbeat).
- `_profiles_stitcher_state`: the id stitcher's checkpoint per stitcher material (incremental runs).
"""

from __future__ import annotations

from datetime import datetime

import sqlglot
from sqlglot import exp

from profiles_dagster.sql.literals import timestamp_literal
from profiles_dagster.sql.names import table

RUNS = "_profiles_runs"
MATERIALS = "_profiles_materials"
VIEWS = "_profiles_views"
LOCK = "_profiles_lock"
LOCK_NAME = "run"
STITCHER_STATE = "_profiles_stitcher_state"

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    RUNS: (
        ("seq_no", "INT"),
        ("project", "VARCHAR"),
        ("status", "VARCHAR"),
        ("started_at", "TIMESTAMP"),
        ("finished_at", "TIMESTAMP"),
        ("end_time", "TIMESTAMP"),
        ("run_id", "VARCHAR"),
        ("pid", "INT"),
        ("host", "VARCHAR"),
        ("heartbeat_at", "TIMESTAMP"),
        ("message", "VARCHAR"),
        ("begin_time", "TIMESTAMP"),  # pb's --begin_time: `--seq_no N` reuses run N's time window
    ),
    MATERIALS: (
        ("seq_no", "INT"),
        ("project", "VARCHAR"),
        ("step", "VARCHAR"),
        ("content_hash", "VARCHAR"),
        ("table_name", "VARCHAR"),
        ("status", "VARCHAR"),
        ("row_count", "BIGINT"),
        ("seconds", "DOUBLE"),
        ("finished_at", "TIMESTAMP"),
        ("started_at", "TIMESTAMP"),
    ),
    VIEWS: (
        ("view_name", "VARCHAR"),
        ("table_name", "VARCHAR"),
        ("seq_no", "INT"),
        ("project", "VARCHAR"),
        ("published_at", "TIMESTAMP"),
    ),
    LOCK: (
        ("name", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("seq_no", "INT"),
        ("project", "VARCHAR"),
        ("pid", "INT"),
        ("host", "VARCHAR"),
        ("node", "VARCHAR"),
        ("acquired_at", "TIMESTAMP"),
        ("heartbeat_at", "TIMESTAMP"),
    ),
    # the id stitcher's checkpoint per stitcher material: what its next incremental run starts from
    STITCHER_STATE: (
        ("table_name", "VARCHAR"),
        ("seq_no", "INT"),
        ("project", "VARCHAR"),
        ("step", "VARCHAR"),
        ("content_hash", "VARCHAR"),
        ("mode", "VARCHAR"),
        ("watermark", "TIMESTAMP"),
        ("window_start", "TIMESTAMP"),
        ("rows_before", "BIGINT"),
        ("ids", "BIGINT"),
        ("clusters", "BIGINT"),
        ("recorded_at", "TIMESTAMP"),
    ),
}


def _t(name: str, schema: str) -> exp.Table:
    return table(name, schema)


def _s(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def create_statements(schema: str) -> list[tuple[str, exp.Expression]]:
    """(table, CREATE TABLE IF NOT EXISTS) per registry table. The lock table is created with its one
    row in the same statement, so two first runs racing cannot leave two lock rows."""
    out = []
    for name, columns in COLUMNS.items():
        if name == LOCK:
            values = ", ".join(
                f"CAST({_s(LOCK_NAME).sql() if c == 'name' else 'NULL'} AS {t}) AS {c}" for c, t in columns
            )
            ddl = sqlglot.parse_one(f"CREATE TABLE IF NOT EXISTS t AS SELECT {values}", read="duckdb")
        else:
            ddl = sqlglot.parse_one(
                f"CREATE TABLE IF NOT EXISTS t ({', '.join(f'{c} {t}' for c, t in columns)})", read="duckdb"
            )
        ddl.this.set("this", _t(name, schema))
        out.append((name, ddl))
    return out


def add_missing_columns(schema: str, name: str, existing: set[str]) -> list[exp.Expression]:
    """ALTER TABLE statements bringing a registry table written by an older version up to date."""
    lowered = {c.lower() for c in existing}
    out = []
    for column, type_ in COLUMNS[name]:
        if column not in lowered:
            ddl = sqlglot.parse_one(f"ALTER TABLE t ADD COLUMN {column} {type_}", read="duckdb")
            ddl.set("this", _t(name, schema))
            out.append(ddl)
    return out


def next_seq_no(schema: str) -> exp.Query:
    return exp.select(exp.func("coalesce", exp.Max(this=exp.column("seq_no")), exp.Literal.number(0))).from_(
        _t(RUNS, schema)
    )


def _value(v: object) -> exp.Expression:
    if v is None:
        return exp.null()
    if isinstance(v, datetime):
        return timestamp_literal(v)
    if isinstance(v, bool):
        return exp.Literal.number(int(v))
    if isinstance(v, int | float):
        return exp.Literal.number(v)
    return exp.Literal.string(str(v))


def insert(schema: str, name: str, row: dict[str, object]) -> exp.Expression:
    return exp.insert(
        exp.values([tuple(_value(v) for v in row.values())]),
        exp.Schema(this=_t(name, schema), expressions=[exp.to_identifier(k) for k in row]),
    )


def update(schema: str, name: str, values: dict[str, object], where: exp.Expression) -> exp.Expression:
    return exp.update(_t(name, schema), {k: _value(v) for k, v in values.items()}, where=where)


def select(schema: str, name: str, where: exp.Expression | None = None, columns: tuple[str, ...] = ()) -> exp.Select:
    """The named (default: all) registry columns, in COLUMNS order, so rows zip with `column_names`."""
    query = exp.select(*(columns or column_names(name))).from_(_t(name, schema))
    return query.where(where) if where is not None else query


def column_names(name: str) -> tuple[str, ...]:
    return tuple(c for c, _ in COLUMNS[name])


def eq(column: str, value: object) -> exp.Expression:
    if value is None:
        return exp.column(column).is_(exp.null())
    return exp.column(column).eq(_value(value))


def finish_run(
    schema: str, seq_no: int, status: str, finished_at: datetime, message: str | None = None
) -> exp.Expression:
    values: dict[str, object] = {"status": status, "finished_at": finished_at}
    if message is not None:
        values["message"] = message[:1000]
    return update(schema, RUNS, values, eq("seq_no", seq_no))


def finish_material(
    schema: str, seq_no: int, step: str, status: str, rows: int | None, seconds: float, finished_at: datetime
) -> exp.Expression:
    return update(
        schema,
        MATERIALS,
        {"status": status, "row_count": rows, "seconds": round(seconds, 6), "finished_at": finished_at},
        exp.and_(eq("seq_no", seq_no), eq("step", step), eq("status", "running")),
    )


def latest_material(schema: str, project: str, step: str, content_hash: str) -> exp.Query:
    """The newest complete (not dropped) material of a step with the same definition."""
    return (
        exp.select("table_name", "seq_no")
        .from_(_t(MATERIALS, schema))
        .where(
            exp.and_(
                eq("project", project),
                eq("step", step),
                eq("content_hash", content_hash),
                eq("status", "complete"),
            )
        )
        .order_by(exp.Ordered(this=exp.column("seq_no"), desc=True))
        .limit(1)
    )


def mark_dropped(schema: str, table_name: str, at: datetime) -> exp.Expression:
    return update(
        schema,
        MATERIALS,
        {"status": "dropped", "finished_at": at},
        exp.and_(eq("table_name", table_name), exp.column("status").neq(_s("dropped"))),
    )


def record_views(schema: str, project: str, seq_no: int, views: list[tuple[str, str]], at: datetime) -> list:
    """This run's pointers (view_name -> material), appended: a view's current one is its row of the
    latest complete run (or of a run killed while publishing, until a later run finishes it)."""
    if not views:
        return []
    rows = exp.values([tuple(_value(x) for x in (v, m, seq_no, project, at)) for v, m in views])
    return [
        exp.insert(
            rows, exp.Schema(this=_t(VIEWS, schema), expressions=[exp.to_identifier(c) for c in column_names(VIEWS)])
        )
    ]


def stitcher_checkpoint(schema: str, table_name: str) -> exp.Query:
    """The checkpoint recorded with a stitcher material: (watermark, window_start, rows_before, ids, clusters)."""
    return select(
        schema,
        STITCHER_STATE,
        eq("table_name", table_name),
        ("watermark", "window_start", "rows_before", "ids", "clusters"),
    ).limit(1)
