"""Databricks' stand-in: Spark SQL (pyspark local[2], its own venv) behind a thin DB-API adapter.

The product's `DatabricksWarehouse` opens its connections through `connect()`; the stand-in's subclass
returns a `SparkConnection` instead of `databricks.sql.connect(...)`, and everything above the DB-API
(the session, dialect, SQL) is the product's own. Traps: no Delta offline (tables are parquet), so no
CREATE OR REPLACE TABLE or MERGE; no three-part names or USE CATALOG; pandas < 3 beside pyspark.
Speed (the example and the stitcher tests: 166 s -> 74 s here): no code generation for tiny tables, one
shuffle partition, the JVM's C1 compiler only, tables on tmpfs, UPDATE as one rewrite plus a rename, and
test inputs read from their CSV files by Spark instead of parsed from INSERT ... VALUES.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from profiles_dagster.warehouse.databricks import DatabricksWarehouse
from profiles_dagster_tests.standins._venv import StandinError, venv
from profiles_dagster_tests.standins.postgres import free_port

REQUIREMENTS = ["pyspark==4.3.0", "pandas<3", "pyarrow"]
SERVER = Path(__file__).with_name("spark_server.py")


class SparkError(Exception):
    pass


def _decode(value):
    if isinstance(value, dict):
        if "$ts" in value:
            return datetime.datetime.fromisoformat(value["$ts"])
        if "$date" in value:
            return datetime.date.fromisoformat(value["$date"])
        if "$dec" in value:
            return decimal.Decimal(value["$dec"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def emulate_dml(sql: str) -> list[str] | None:
    """Delta's UPDATE and DELETE on a parquet table: the kept rows into a scratch table, which then takes the
    target's name (one write; not atomic; tests only). Updated columns keep their type."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="databricks")
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(tree, exp.Update | exp.Delete):
        return None
    target = tree.this.copy()
    scratch = exp.Table(this=exp.to_identifier(f"_standin_dml_{abs(hash(sql)) % 10**9}"), db=target.args.get("db"))
    cond = tree.args.get("where").this if tree.args.get("where") else exp.true()
    hit = exp.func("coalesce", exp.paren(cond.copy()), exp.false())
    if isinstance(tree, exp.Delete):
        select = exp.select("*").from_(target.copy()).where(exp.not_(hit))
    else:
        columns = SparkConnection.current.columns_of(target.sql("databricks"))
        sets = {e.this.name.lower(): e.expression for e in tree.expressions}
        select = exp.select(
            *(
                exp.alias_(
                    exp.cast(
                        exp.Case(ifs=[exp.If(this=hit.copy(), true=sets[c.lower()].copy())], default=exp.column(c)),
                        exp.DataType.build(t, dialect="databricks"),
                    ),
                    c,
                )
                if c.lower() in sets
                else exp.column(c)
                for c, t in columns
            )
        ).from_(target.copy())
    return [
        f"DROP TABLE IF EXISTS {scratch.sql('databricks')}",
        exp.Create(kind="TABLE", this=scratch.copy(), expression=select).sql("databricks"),
        f"DROP TABLE {target.sql('databricks')}",
        f"ALTER TABLE {scratch.sql('databricks')} RENAME TO {target.sql('databricks')}",
    ]


class SparkCursor:
    def __init__(self, connection: SparkConnection) -> None:
        self.connection = connection
        self.description = None
        self._rows: list[tuple] = []

    def execute(self, sql: str, parameters=None) -> SparkCursor:
        if sql.strip().upper() in ("BEGIN", "COMMIT", "ROLLBACK"):
            raise SparkError(f"[PARSE_SYNTAX_ERROR] {sql.strip()} is not a Databricks SQL statement")
        SparkConnection.current = self.connection
        rewritten = emulate_dml(sql) if sql.lstrip()[:6].upper() in ("UPDATE", "DELETE") else None
        for statement in rewritten or [sql]:
            reply = self.connection.request(statement)
        self.description = [
            (c, t, None, None, None, None, None) for c, t in zip(reply["columns"], reply["types"], strict=True)
        ]
        self._rows = [tuple(_decode(r)) for r in reply["rows"]]
        return self

    def fetchall(self) -> list[tuple]:
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self):
        return self._rows.pop(0) if self._rows else None

    def close(self) -> None:
        self._rows = []


class SparkConnection:
    """DB-API shape of databricks.sql's connection, over the stand-in's socket."""

    current: SparkConnection | None = None

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port))
        self.file = self.socket.makefile("rwb")
        self.lock = threading.Lock()

    def request(self, sql: str) -> dict:
        with self.lock:
            self.file.write((json.dumps({"sql": sql}) + "\n").encode())
            self.file.flush()
            reply = json.loads(self.file.readline())
        if "error" in reply:
            raise SparkError(reply["error"])
        return reply

    def columns_of(self, table: str) -> list[tuple[str, str]]:
        """(name, Spark type) of each column."""
        reply = self.request(f"SELECT * FROM {table} LIMIT 0")
        return list(zip(reply["columns"], reply["types"], strict=True))

    def load_csv(self, schema: str, name: str, path: Path, types: dict[str, str]) -> None:
        """A table from a CSV file with a header, read by Spark itself: parsing thousands of rows of INSERT
        ... VALUES costs Spark seconds per batch. Empty fields are NULL, as the INSERT path writes them."""
        from sqlglot import exp

        view = f"_standin_csv_{name}"
        target = exp.table_(name, db=schema, quoted=True).sql("databricks")
        columns = ", ".join(
            exp.alias_(exp.cast(exp.column(c, quoted=True), exp.DataType.build(t)), c, quoted=True).sql("databricks")
            for c, t in types.items()
        )
        self.request(f"DROP TABLE IF EXISTS {target}")
        self.request(
            f"CREATE OR REPLACE TEMPORARY VIEW {view} USING csv "
            f"OPTIONS (path {exp.Literal.string(str(path)).sql('databricks')}, header 'true')"
        )
        self.request(f"CREATE TABLE {target} AS SELECT {columns} FROM {view}")
        self.request(f"DROP VIEW {view}")

    def cursor(self) -> SparkCursor:
        return SparkCursor(self)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
            self.socket.close()


class StandinDatabricksWarehouse(DatabricksWarehouse):
    standin_port: int

    def connect(self):
        return SparkConnection(self.standin_port)


@contextlib.contextmanager
def spark_server() -> Iterator[int]:
    folder = venv("pyspark", REQUIREMENTS)
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="spark-", suffix=".log")[1])
    # tables in memory where the machine has a tmpfs: Spark writes a parquet folder per statement
    shm = Path("/dev/shm")
    warehouse = tempfile.mkdtemp(prefix="spark-warehouse-", dir=shm if os.access(shm, os.W_OK) else None)
    out = open(log, "w")  # noqa: SIM115 - open for the server's lifetime
    process = subprocess.Popen(
        [str(folder / "bin" / "python"), str(SERVER), str(port), warehouse],
        stdout=subprocess.PIPE, stderr=out, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("READY"):
            process.wait(timeout=5)
            raise StandinError(
                f"Spark did not start (exit {process.poll()}):\n{log.read_text(errors='replace')[-3000:]}"
            )
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        out.close()
        log.unlink(missing_ok=True)
        shutil.rmtree(warehouse, ignore_errors=True)
