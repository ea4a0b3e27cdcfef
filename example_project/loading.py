"""Load the example project's raw CSVs into DuckDB tables ``raw.<name>``.

Why explicit column types: CSV type sniffing would turn user_id '0' or '000731' into
integers and could guess other columns wrongly; the project's id filters compare strings,
so ids and text are VARCHAR, ``timestamp`` is TIMESTAMP and ``amount`` DECIMAL(12,2).
Empty cells (and quoted empty strings) load as NULL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RAW_TABLES: tuple[str, ...] = ("identifies", "tracks", "pages", "orders")

COLUMN_TYPES: dict[str, dict[str, str]] = {
    "identifies": {
        "message_id": "VARCHAR",
        "anonymous_id": "VARCHAR",
        "user_id": "VARCHAR",
        "email": "VARCHAR",
        "timestamp": "TIMESTAMP",
    },
    "tracks": {
        "message_id": "VARCHAR",
        "anonymous_id": "VARCHAR",
        "user_id": "VARCHAR",
        "event": "VARCHAR",
        "timestamp": "TIMESTAMP",
    },
    "pages": {
        "message_id": "VARCHAR",
        "anonymous_id": "VARCHAR",
        "path": "VARCHAR",
        "timestamp": "TIMESTAMP",
    },
    "orders": {
        "order_id": "VARCHAR",
        "user_id": "VARCHAR",
        "email": "VARCHAR",
        "amount": "DECIMAL(12,2)",
        "status": "VARCHAR",
        "timestamp": "TIMESTAMP",
    },
}


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def load_raw_table(con: Any, name: str, data_dir: Path, schema: str = "raw") -> int:
    """(Re)create ``<schema>.<name>`` from ``<data_dir>/<name>.csv``; returns its row count.

    ``con`` is a ``duckdb.DuckDBPyConnection``.
    """
    if name not in COLUMN_TYPES:
        raise ValueError(f"unknown raw table {name!r}; expected one of {RAW_TABLES}")
    path = Path(data_dir) / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(path)
    columns = ", ".join(f"{_sql_literal(col)}: {_sql_literal(typ)}" for col, typ in COLUMN_TYPES[name].items())
    target = f"{_quote_ident(schema)}.{_quote_ident(name)}"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(schema)}").fetchall()
    con.execute(
        f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM read_csv("
        f"{_sql_literal(str(path))}, header = true, auto_detect = false, delim = ',', quote = '\"', "
        f"nullstr = '', timestampformat = '%Y-%m-%d %H:%M:%S', columns = {{{columns}}})"
    ).fetchall()
    # fetchall(): DuckDB 2 keeps a partially fetched result open on the connection.
    ((count,),) = con.execute(f"SELECT count(*) FROM {target}").fetchall()
    return int(count)


def load_raw(con: Any, data_dir: Path, schema: str = "raw") -> dict[str, int]:
    """Load all four raw tables; returns {table name: row count}."""
    return {name: load_raw_table(con, name, data_dir, schema) for name in RAW_TABLES}
