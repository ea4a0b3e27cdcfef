"""The run registry kept in the output schema: its tables, statuses and typed rows, as SQL.

No IO of its own: the one lookup that reads (a step's latest material) takes the session as a `Reader`.

- `_profiles_runs`: one row per run (seq_no, status, timings, the process that ran it).
  Status: running -> publishing -> complete, or failed / killed (found dead by a later run) / compiled.
- `_profiles_materials`: one row per material a run wrote (running -> complete | failed; later dropped)
  and per material it reused from an earlier run (status `reused`), so retention knows what a run read.
- `_profiles_views`: which material each stable view was pointed at, per publishing run.
- `_profiles_lock`: one row, the schema's run lock (who holds it, since when, last heartbeat).
- `_profiles_stitcher_state`: the id stitcher's checkpoint per stitcher material (incremental runs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlglot import exp

from profiles_dagster.sql.literals import timestamp_literal
from profiles_dagster.sql.names import table

RUNS = "_profiles_runs"
MATERIALS = "_profiles_materials"
VIEWS = "_profiles_views"
LOCK = "_profiles_lock"
LOCK_NAME = "run"
STITCHER_STATE = "_profiles_stitcher_state"


class Status(StrEnum):
    """A run's or a material's status, stored as its text (a StrEnum: the values in the tables are unchanged)."""

    RUNNING = "running"  # a run or material under way (or killed: a later run finds it dead)
    PUBLISHING = "publishing"  # a run whose views are being repointed: rolled forward if killed
    COMPLETE = "complete"
    FAILED = "failed"
    KILLED = "killed"  # a run found dead by a later one
    COMPILED = "compiled"  # `profiles-dagster compile`: SQL written, nothing run
    REUSED = "reused"  # an earlier run's material this run read (retention keeps it while needed)
    REJECTED = "rejected"  # a material a blocking check failed: never reused as an upstream
    REPLACED = "replaced"  # `--seq_no N`: an earlier attempt of run N at this step
    DROPPED = "dropped"  # dropped by retention or `cleanup`


UNFINISHED = (Status.RUNNING, Status.PUBLISHING)

# Column types as sqlglot types, rendered in each engine's spelling; instants are stored naive, in UTC.
_INT = exp.DType.INT
_BIGINT = exp.DType.BIGINT
_DOUBLE = exp.DType.DOUBLE
_TEXT = exp.DType.TEXT
_TIMESTAMP = exp.DType.TIMESTAMPNTZ

COLUMNS: dict[str, tuple[tuple[str, exp.DType], ...]] = {
    RUNS: (
        ("seq_no", _INT),
        ("project", _TEXT),
        ("status", _TEXT),
        ("started_at", _TIMESTAMP),
        ("finished_at", _TIMESTAMP),
        ("end_time", _TIMESTAMP),
        ("run_id", _TEXT),
        ("pid", _INT),
        ("host", _TEXT),
        ("heartbeat_at", _TIMESTAMP),
        ("message", _TEXT),
        ("begin_time", _TIMESTAMP),  # pb's --begin_time: `--seq_no N` reuses run N's time window
    ),
    MATERIALS: (
        ("seq_no", _INT),
        ("project", _TEXT),
        ("step", _TEXT),
        ("content_hash", _TEXT),
        ("table_name", _TEXT),
        ("status", _TEXT),
        ("row_count", _BIGINT),
        ("seconds", _DOUBLE),
        ("finished_at", _TIMESTAMP),
        ("started_at", _TIMESTAMP),
    ),
    VIEWS: (
        ("view_name", _TEXT),
        ("table_name", _TEXT),
        ("seq_no", _INT),
        ("project", _TEXT),
        ("published_at", _TIMESTAMP),
    ),
    LOCK: (
        ("name", _TEXT),
        ("run_id", _TEXT),
        ("seq_no", _INT),
        ("project", _TEXT),
        ("pid", _INT),
        ("host", _TEXT),
        ("node", _TEXT),
        ("acquired_at", _TIMESTAMP),
        ("heartbeat_at", _TIMESTAMP),
    ),
    # the id stitcher's checkpoint per stitcher material: what its next incremental run starts from
    STITCHER_STATE: (
        ("table_name", _TEXT),
        ("seq_no", _INT),
        ("project", _TEXT),
        ("step", _TEXT),
        ("content_hash", _TEXT),
        ("mode", _TEXT),
        ("watermark", _TIMESTAMP),
        ("window_start", _TIMESTAMP),
        ("rows_before", _BIGINT),
        ("ids", _BIGINT),
        ("clusters", _BIGINT),
        ("recorded_at", _TIMESTAMP),
        ("health", _TEXT),  # the table's health figures (JSON): the next incremental run updates them
    ),
}


@dataclass(frozen=True)
class RunRow:
    """A row of `_profiles_runs`, as the code reads it (columns beyond the first three are read where needed)."""

    seq_no: int
    project: str
    status: Status
    end_time: datetime | None = None
    begin_time: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None
    pid: int | None = None
    host: str | None = None
    started_at: datetime | None = None

    COLUMNS = (
        "seq_no",
        "project",
        "status",
        "end_time",
        "begin_time",
        "finished_at",
        "message",
        "pid",
        "host",
        "started_at",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RunRow:
        """A row selected with `COLUMNS` (or a prefix of them)."""
        seq_no, project, status, *rest = row
        return cls(int(seq_no), str(project), Status(str(status)), *rest)


@dataclass(frozen=True)
class MaterialRow:
    """A row of `_profiles_materials`: one material a run wrote or reused."""

    seq_no: int
    project: str
    step: str
    content_hash: str
    table_name: str
    status: Status
    row_count: int | None = None

    COLUMNS = ("seq_no", "project", "step", "content_hash", "table_name", "status", "row_count")

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> MaterialRow:
        """A row selected with `COLUMNS` (or its first six)."""
        seq_no, project, step, content_hash, table_name, status, *rest = row
        rows = rest[0] if rest else None
        return cls(
            int(seq_no),
            str(project),
            str(step),
            str(content_hash),
            str(table_name),
            Status(str(status)),
            None if rows is None else int(rows),
        )


@dataclass(frozen=True)
class ViewRow:
    """A row of `_profiles_views`: where a publishing run pointed a stable view."""

    view_name: str
    table_name: str
    seq_no: int

    COLUMNS = ("view_name", "table_name", "seq_no")

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ViewRow:
        view_name, table_name, seq_no = row
        return cls(str(view_name), str(table_name), int(seq_no))


def _t(name: str, schema: str) -> exp.Table:
    return table(name, schema)


def _s(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _column(name: str, type_: exp.DType) -> exp.ColumnDef:
    return exp.ColumnDef(this=exp.to_identifier(name), kind=exp.DataType(this=type_))


def create_statements(schema: str) -> list[tuple[str, exp.Create]]:
    """(table, CREATE TABLE IF NOT EXISTS) per registry table. The lock table is created with its one
    row in the same statement, so two first runs racing cannot leave two lock rows."""
    out = []
    for name, columns in COLUMNS.items():
        if name == LOCK:
            row = exp.select(
                *(
                    exp.alias_(exp.cast(_s(LOCK_NAME) if c == "name" else exp.null(), exp.DataType(this=t)), c)
                    for c, t in columns
                )
            )
            ddl = exp.Create(kind="TABLE", exists=True, this=_t(name, schema), expression=row)
        else:
            schema_ = exp.Schema(this=_t(name, schema), expressions=[_column(c, t) for c, t in columns])
            ddl = exp.Create(kind="TABLE", exists=True, this=schema_)
        out.append((name, ddl))
    return out


def add_missing_columns(schema: str, name: str, existing: set[str]) -> list[exp.Alter]:
    """ALTER TABLE statements bringing a registry table written by an older version up to date."""
    lowered = {c.lower() for c in existing}
    return [
        exp.Alter(this=_t(name, schema), kind="TABLE", actions=[_column(column, type_)])
        for column, type_ in COLUMNS[name]
        if column not in lowered
    ]


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
        _t(name, schema),
        columns=list(row),
    )


def update(schema: str, name: str, values: Mapping[str, object], where: exp.Expr) -> exp.Expression:
    return exp.update(_t(name, schema), {k: _value(v) for k, v in values.items()}, where=where)


def select(schema: str, name: str, where: exp.Expr | None = None, columns: tuple[str, ...] = ()) -> exp.Select:
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
        exp.and_(eq("seq_no", seq_no), eq("step", step), eq("status", Status.RUNNING)),
    )


def latest_material(schema: str, project: str, step: str, content_hash: str, *, seq_no: int | None = None) -> exp.Query:
    """The newest complete (not dropped) material of a step with the same definition (of run `seq_no`)."""
    where = [eq("project", project), eq("step", step), eq("content_hash", content_hash), eq("status", Status.COMPLETE)]
    if seq_no is not None:
        where.append(eq("seq_no", seq_no))
    return (
        select(schema, MATERIALS, exp.and_(*where), MaterialRow.COLUMNS)
        .order_by(exp.Ordered(this=exp.column("seq_no"), desc=True))
        .limit(1)
    )


def complete_materials(schema: str, project: str, before_seq_no: int) -> exp.Query:
    """Every complete material of the project written by a run before `before_seq_no`, newest first, with that
    run's times: (seq_no, step, content_hash, table_name, end_time, begin_time). One query for a whole run."""
    where = exp.and_(
        exp.column("project", "m").eq(_s(project)),
        exp.column("status", "m").eq(_s(Status.COMPLETE)),
        exp.LT(this=exp.column("seq_no", "m"), expression=exp.Literal.number(before_seq_no)),
    )
    return (
        exp.select(
            *(exp.column(c, "m") for c in ("seq_no", "step", "content_hash", "table_name")),
            exp.column("end_time", "r"),
            exp.column("begin_time", "r"),
        )
        .from_(_t(MATERIALS, schema).as_("m"))
        .join(
            _t(RUNS, schema).as_("r"),
            on=exp.and_(
                exp.column("seq_no", "m").eq(exp.column("seq_no", "r")),
                exp.column("project", "m").eq(exp.column("project", "r")),
            ),
        )
        .where(where)
        .order_by(exp.Ordered(this=exp.column("seq_no", "m"), desc=True))
    )


def checkpoints(schema: str, project: str) -> exp.Query:
    """Every recorded checkpoint of the project: (table_name, watermark, window_start, rows_before, ids, clusters)."""
    return select(
        schema,
        STITCHER_STATE,
        eq("project", project),
        ("table_name", "watermark", "window_start", "rows_before", "ids", "clusters"),
    )


class Reader(Protocol):
    """What the lookups below need of a session: its dialect and a query."""

    @property
    def dialect(self) -> str: ...

    def query(self, sql: str) -> list[tuple[Any, ...]]: ...


def latest_material_row(
    reader: Reader, schema: str, project: str, step: str, content_hash: str, *, seq_no: int | None = None
) -> MaterialRow | None:
    """The registry's newest complete material of a step's current definition (of run `seq_no`), whether or
    not its table is still there."""
    query = latest_material(schema, project, step, content_hash, seq_no=seq_no)
    rows = reader.query(query.sql(dialect=reader.dialect))
    return MaterialRow.from_row(rows[0]) if rows else None


def latest_existing_material(
    reader: Reader,
    table_exists: Callable[[exp.Table], bool],
    schema: str,
    project: str,
    step: str,
    content_hash: str,
    *,
    seq_no: int | None = None,
) -> MaterialRow | None:
    """That newest material if its table still exists: what a run reuses (a dropped table is not read)."""
    found = latest_material_row(reader, schema, project, step, content_hash, seq_no=seq_no)
    return found if found is not None and table_exists(_t(found.table_name, schema)) else None


def mark_dropped(schema: str, table_name: str, at: datetime) -> exp.Expression:
    return update(
        schema,
        MATERIALS,
        {"status": Status.DROPPED, "finished_at": at},
        exp.and_(eq("table_name", table_name), exp.column("status").neq(_s(Status.DROPPED))),
    )


def record_views(
    schema: str, project: str, seq_no: int, views: list[tuple[str, str]], at: datetime
) -> list[exp.Expression]:
    """This run's pointers (view_name -> material), appended: a view's current one is its row of the
    latest complete run (or of a run killed while publishing, until a later run finishes it)."""
    if not views:
        return []
    rows = exp.values([tuple(_value(x) for x in (v, m, seq_no, project, at)) for v, m in views])
    return [exp.insert(rows, _t(VIEWS, schema), columns=column_names(VIEWS))]


def stitcher_checkpoint(schema: str, table_name: str) -> exp.Query:
    """The checkpoint recorded with a stitcher material: (watermark, window_start, rows_before, ids, clusters,
    health)."""
    return select(
        schema,
        STITCHER_STATE,
        eq("table_name", table_name),
        ("watermark", "window_start", "rows_before", "ids", "clusters", "health"),
    ).limit(1)
