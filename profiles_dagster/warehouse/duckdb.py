"""The embedded default: a DuckDB file, no server."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from profiles_dagster.errors import ProfilesError, summary
from profiles_dagster.project.siteconfig import redact
from profiles_dagster.sql.dialects import DUCKDB
from profiles_dagster.warehouse.base import Session, WarehouseEngine

log = logging.getLogger("profiles_dagster")


class DuckDBSession(Session):
    dialect = DUCKDB
    transactional_ddl = True
    shared = False  # a local file: a second process cannot even open it

    def execute(self, sql: str) -> None:
        # fetch everything: DuckDB keeps a partly fetched result open and refuses the next statement
        result = self.connection.execute(sql).fetchall()
        # CREATE TABLE AS (and INSERT) answer with one row, the rows written
        one = result[0][0] if len(result) == 1 and len(result[0]) == 1 else None
        self.written = one if isinstance(one, int) else None

    def query(self, sql: str) -> list[tuple]:
        return self.connection.execute(sql).fetchall()

    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        result = self.connection.execute(sql)
        return [d[0] for d in result.description or ()], result.fetchall()

    def columns(self, table) -> list[tuple[str, str]]:
        # DESCRIBE of a query: a table, a view, or a table function (a `csv:` input's read_csv)
        rows = self.connection.execute(f"DESCRIBE SELECT * FROM {table.sql('duckdb')}").fetchall()
        return [(r[0], str(r[1])) for r in rows]

    def _in_schema(self, schema: str | None = None, catalog: str | None = None) -> exp.Expression:
        """A schema of the database the session opened (or of an attached one), matched as DuckDB matches
        names: case-insensitively, quoted or not; information_schema lists every attached database."""
        where = _lower(exp.column("table_catalog")).eq(
            _lower(exp.Literal.string(catalog)) if catalog else _lower(exp.func("current_database"))
        )
        return exp.and_(where, _lower(exp.column("table_schema")).eq(_lower(exp.Literal.string(schema or self.schema))))

    def _where(self, table: exp.Table) -> exp.Expression:
        return exp.and_(
            self._in_schema(table.db or self.schema, table.catalog or None),
            _lower(exp.column("table_name")).eq(_lower(exp.Literal.string(table.name))),
        )

    def reads_in_place(self, location: str) -> bool:
        """A local CSV file always; an S3 object where the httpfs extension loads (else the run loads it)."""
        if not location.lower().startswith("s3://"):
            return True
        try:
            self.read_s3("", location)
        except ProfilesError as exc:
            log.info("DuckDB cannot read %s in place; the run loads it into a table: %s", location, exc.message)
            return False
        return True

    def database_part_meaning(self) -> str:
        return "the database part is the DuckDB file's name or an `attach:` alias in siteconfig"

    def read_in_place_hint(self) -> str:
        import duckdb

        return (
            f"; or let DuckDB read it in place through its httpfs extension (`INSTALL httpfs` where the internet "
            f"is reachable, or `pip install duckdb-extension-httpfs=={duckdb.__version__}` where a wheel exists)"
        )

    def load_csv(self, target: exp.Table, path: Path) -> int:
        # DuckDB's own read_csv, as it reads a `csv:` file in place
        self.drop_table(target)
        source = exp.Table(this=exp.ReadCSV(this=exp.Literal.string(str(path)), expressions=[]))
        self.create_table_as(target, exp.select("*").from_(source))
        return self.row_count(target)

    def read_s3(self, name: str, location: str) -> None:
        """Make input `name`'s S3 object readable: DuckDB reads S3 through its httpfs extension, with the
        credentials and endpoint of the standard AWS environment variables (as boto3 and the AWS CLI)."""
        if getattr(self, "_s3_ready", False):
            return
        self._load_httpfs(name, location)
        secret = _s3_secret_params()
        if secret:
            options = ", ".join(f"{k} {exp.Literal.string(v).sql('duckdb')}" for k, v in secret.items())
            try:
                self.execute(f"CREATE OR REPLACE TEMPORARY SECRET profiles_dagster_s3 (TYPE s3, {options})")
            except Exception as exc:
                message = redact(summary(exc), secret.values())
                raise ProfilesError(
                    f"input '{name}' reads {location}: DuckDB refused the S3 settings: {message}"
                ) from None
        self._s3_ready = True

    def _load_httpfs(self, name: str, location: str) -> None:
        import duckdb

        errors = []
        for statement in ("LOAD httpfs", *_httpfs_wheel_loads()):
            try:
                self.execute(statement)
                return
            except duckdb.Error as exc:
                errors.append(summary(exc))
        raise ProfilesError(
            f"input '{name}' reads {location}, which DuckDB {duckdb.__version__} reads through its httpfs extension, "
            f"and that extension is not installed: {errors[0]}",
            hint=f"install it once where the internet is reachable (`INSTALL httpfs` in DuckDB), or "
            f"`pip install duckdb-extension-httpfs=={duckdb.__version__}` where a wheel for this DuckDB exists; "
            "or read a local copy with `csv:`",
        )


class DuckDBConfig(WarehouseEngine):
    """`database` is a file path; DuckDB allows one writer per file, so runs go in-process."""

    database: str
    # other DuckDB files reachable as `<alias>.<schema>.<table>`: siteconfig's `attach:` ({path, alias, read_only})
    attach: list[dict[str, Any]] = []

    kind: ClassVar[str] = "duckdb"

    @classmethod
    def from_connection(cls, connection: Any) -> WarehouseEngine:
        """pb's DuckDB target: its `path` (resolved against siteconfig's folder), in memory without one."""
        return cls(
            database=str(connection.settings.get("path") or ":memory:"),
            output_schema=connection.schema,
            attach=list(connection.settings.get("attach") or []),
        )

    def open_session(self) -> DuckDBSession:
        import duckdb

        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = duckdb.connect(self.database)
        except duckdb.Error as exc:  # the file is locked, not a database, or from a newer DuckDB
            raise _busy(self.database, exc) from None
        for entry in self.attach:
            _attach(connection, entry)
        # timestamps with a time zone become UTC wall time, on every machine (as --end_time is read)
        connection.execute("SET TimeZone = 'UTC'")
        # DuckDB 1.3+'s dict_fsst string compression makes writing materials markedly slower (reads no faster)
        # for a smaller file; materials are rewritten every run, so it is off (the user's own tables keep
        # theirs: only new writes are affected)
        with contextlib.suppress(duckdb.Error):  # a DuckDB without the method or the setting
            connection.execute("SET disabled_compression_methods = 'dict_fsst'")
        return DuckDBSession(connection, self.output_schema)


class DuckDBEngine(DuckDBConfig, BaseModel):
    """DuckDB without Dagster: what `profiles-dagster` runs on (Definitions get a `DuckDBWarehouse`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def __getattr__(name: str) -> Any:
    """`DuckDBWarehouse`, the Dagster resource, imported on first use (it imports Dagster)."""
    if name == "DuckDBWarehouse":
        from profiles_dagster.warehouse.resource import DuckDBWarehouse

        return DuckDBWarehouse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _lower(node: exp.Expression) -> exp.Expression:
    return exp.Lower(this=node)


def _attach(connection: Any, entry: dict[str, Any]) -> None:
    """ATTACH one database of siteconfig's `attach:` list; a file that cannot be attached stops the run naming it."""
    import duckdb

    alias = exp.to_identifier(str(entry["alias"]), quoted=True).sql("duckdb")
    options = " (READ_ONLY)" if entry.get("read_only") else ""
    statement = f"ATTACH IF NOT EXISTS {exp.Literal.string(str(entry['path'])).sql('duckdb')} AS {alias}{options}"
    try:
        connection.execute(statement)
    except duckdb.Error as exc:
        where = _TOKEN.sub(r"\1***", str(entry["path"]))
        why = _TOKEN.sub(r"\1***", summary(exc))
        raise ProfilesError(
            f"cannot attach the DuckDB database {where} as '{entry['alias']}' (siteconfig `attach:`): {why}"
        ) from None


def _s3_secret_params() -> dict[str, str]:
    """A DuckDB S3 secret's options from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION
    (or AWS_DEFAULT_REGION) and AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL, e.g. MinIO); empty: DuckDB's defaults."""
    env = os.environ
    params = {
        "KEY_ID": env.get("AWS_ACCESS_KEY_ID", ""),
        "SECRET": env.get("AWS_SECRET_ACCESS_KEY", ""),
        "SESSION_TOKEN": env.get("AWS_SESSION_TOKEN", ""),
        "REGION": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "",
    }
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        url = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        params.update(ENDPOINT=url.netloc, USE_SSL=str(url.scheme == "https").lower(), URL_STYLE="path")
    return {k: v for k, v in params.items() if v}


def _httpfs_wheel_loads() -> list[str]:
    """LOAD statements for the extension file of the `duckdb-extension-httpfs` wheel, if it is installed."""
    try:
        import duckdb_extension_httpfs  # type: ignore[import-not-found]
    except ImportError:
        return []
    files = sorted(Path(duckdb_extension_httpfs.__file__).parent.rglob("httpfs.duckdb_extension"))
    return [f"LOAD {exp.Literal.string(str(f)).sql('duckdb')}" for f in files]


_TOKEN = re.compile(r"((?:token|password|secret)=)[^&\s'\"]+", re.IGNORECASE)


def _busy(database: str, exc: Exception) -> Exception:  # a ProfilesError
    """DuckDB lets one process open a file for writing; name the one holding it (DuckDB says which)."""
    from profiles_dagster.errors import BusyError, ProfilesError

    text = _TOKEN.sub(r"\1***", str(exc))
    database = _TOKEN.sub(r"\1***", database)  # MotherDuck paths carry a token
    if "could not set lock" not in text.lower():
        first = _TOKEN.sub(r"\1***", summary(exc))
        return ProfilesError(f"cannot open the DuckDB file {database}: {first}")
    holder = re.search(r"held in (.*?) \(PID (\d+)\)", text)
    who = f"process {holder.group(2)} ({holder.group(1)})" if holder else "another process"
    return BusyError(
        f"the DuckDB file {database} is in use by {who}; DuckDB lets one process at a time open a file for writing",
        hint="wait for that run (or program) to finish, or set run_lock.wait_seconds in profiles_dagster.yaml to wait",
    )
