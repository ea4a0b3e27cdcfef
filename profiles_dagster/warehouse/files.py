"""`csv:` and `s3:` inputs where the engine cannot read the file in place: a run loads each one into a table.

DuckDB reads a CSV file in place (`read_csv`), and an S3 object too when its httpfs extension loads. Every
other engine (and DuckDB without httpfs) reads a table the run loads once, before the steps that read it:
the file is read client-side by an in-process DuckDB, so the column types are the ones `read_csv` infers
on a DuckDB run, and the rows go in through the session (`Session.load_rows`: CREATE TABLE with the engine's
type names, then multi-row INSERTs rendered by sqlglot; Postgres copies, BigQuery runs one load job). S3
objects are fetched with boto3 (`pip install 'profiles-dagster[s3]'`), with credentials, region and endpoint
from the usual AWS variables.

The table is a scratch table of the run (`sql.compiler.file_table_name`): `profiles-dagster cleanup` and
retention drop it with the run, unless a view that stays still reads it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from profiles_dagster.errors import ProfilesError, summary
from profiles_dagster.project.model import Project
from profiles_dagster.project.siteconfig import redact
from profiles_dagster.sql.compiler import csv_path
from profiles_dagster.sql.literals import timestamp_literal

if TYPE_CHECKING:
    from profiles_dagster.warehouse.base import Session

BATCH_ROWS = 500  # rows per INSERT statement
MAX_STATEMENT_CHARS = 500_000  # about; BigQuery's limit for a query's text is 1,024K characters
TEXT_TYPES = (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR, exp.DataType.Type.NVARCHAR)


def is_file_input(project: Project, name: str) -> bool:
    defaults = project.inputs[name].spec.app_defaults
    return defaults.csv is not None or defaults.s3 is not None


def location(project: Project, name: str) -> str:
    """The input's file (absolute path) or S3 URL, as read."""
    defaults = project.inputs[name].spec.app_defaults
    return str(defaults.s3) if defaults.s3 is not None else str(csv_path(project, name))


def _error(project: Project, name: str, message: str, hint: str | None = None) -> ProfilesError:
    inp = project.inputs[name]
    key = "s3" if inp.spec.app_defaults.s3 is not None else "csv"
    return inp.origin.at(f"app_defaults.{key}").error(message, hint=hint)


# -- reading the file -----------------------------------------------------------------------------------


def _s3_client() -> Any:
    import boto3

    env = os.environ
    options: dict[str, Any] = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint if "://" in endpoint else f"https://{endpoint}"
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["region_name"] = region
    return boto3.client("s3", **options)  # credentials: boto3's chain (AWS_ACCESS_KEY_ID, ..., profiles, roles)


def _s3_parts(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc, parts.path.lstrip("/")


def _boto3_missing(session: Session | None, project: Project, name: str, url: str) -> ProfilesError:
    also = session.read_in_place_hint() if session is not None else ""
    return _error(
        project,
        name,
        f"input '{name}' reads {url}, and fetching S3 objects needs boto3, which is not installed",
        hint=f"pip install 'profiles-dagster[s3]'{also}",
    )


def _s3_failure(project: Project, name: str, url: str, exc: Exception) -> ProfilesError:
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    if code in ("404", "NoSuchKey", "NotFound"):
        return _error(project, name, f"input '{name}' reads {url}, which does not exist")
    if code == "NoSuchBucket":
        return _error(project, name, f"input '{name}' reads {url}, whose bucket does not exist")
    text = summary(exc)
    secrets = [os.environ.get(k) for k in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")]
    return _error(project, name, f"input '{name}' cannot read {url}: {redact(text, [s for s in secrets if s])}")


@contextlib.contextmanager
def local_copy(project: Project, name: str, session: Session | None = None) -> Iterator[Path]:
    """A local file with the input's CSV: its own `csv:` file, or its `s3:` object downloaded to a temp dir."""
    defaults = project.inputs[name].spec.app_defaults
    if defaults.s3 is None:
        path = csv_path(project, name)
        if not path.is_file():
            raise _error(project, name, f"input '{name}' reads the file {path}, which does not exist")
        yield path
        return
    url = str(defaults.s3)
    bucket, key = _s3_parts(url)
    try:
        client = _s3_client()
    except ImportError:
        raise _boto3_missing(session, project, name, url) from None
    with tempfile.TemporaryDirectory(prefix="profiles-s3-") as folder:
        path = Path(folder) / (PurePosixPath(key).name or "object.csv")  # keeps .csv.gz: read_csv decompresses
        try:
            client.download_file(bucket, key, str(path))
        except Exception as exc:  # botocore's ClientError, or no credentials / endpoint
            raise _s3_failure(project, name, url, exc) from None
        yield path


def check_readable(project: Project, name: str) -> str | None:
    """Why the input's file cannot be read, or None (`validate access`): the file exists, or S3 answers HEAD."""
    defaults = project.inputs[name].spec.app_defaults
    if defaults.s3 is None:
        path = csv_path(project, name)
        return None if path.is_file() else f"{path} does not exist"
    url = str(defaults.s3)
    bucket, key = _s3_parts(url)
    try:
        client = _s3_client()
    except ImportError:
        return "fetching S3 objects needs boto3: pip install 'profiles-dagster[s3]'"
    try:
        client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        return _s3_failure(project, name, url, exc).message
    return None


def read_csv(path: Path, batch_rows: int = BATCH_ROWS) -> tuple[list[tuple[str, exp.DataType]], Iterator[list[tuple]]]:
    """The columns (name, type) DuckDB's `read_csv` infers for a file, and its rows in batches."""
    import duckdb

    con = duckdb.connect()
    source = f"read_csv({exp.Literal.string(str(path)).sql('duckdb')})"
    try:
        con.execute("SET TimeZone = 'UTC'")  # as a DuckDB session of a run: TIMESTAMPTZ values come back in UTC
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except BaseException:
        con.close()
        raise
    columns = [(str(r[0]), exp.DataType.build(str(r[1]), dialect="duckdb")) for r in described]

    def batches() -> Iterator[list[tuple]]:
        try:
            result = con.execute(f"SELECT * FROM {source}")
            while rows := result.fetchmany(batch_rows):
                yield rows
        finally:
            con.close()

    return columns, batches()


def load(session: Session, project: Project, name: str, target: exp.Table) -> int:
    """Load the input's file into `target` (replacing it); the number of rows."""
    with local_copy(project, name, session) as path:
        try:
            return session.load_csv(target, path)
        except ProfilesError:
            raise
        except Exception as exc:  # DuckDB cannot parse the file, or the engine refused a statement
            text = summary(exc)
            raise _error(
                project, name, f"input '{name}' ({location(project, name)}) could not be loaded into a table: {text}"
            ) from exc


# -- writing rows ---------------------------------------------------------------------------------------


def literal(value: Any, dtype: exp.DataType) -> exp.Expression:
    """One value, as a literal of its column's type."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | decimal.Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return exp.Literal.number(repr(value))
        return exp.cast(exp.Literal.string(str(value)), dtype.copy())  # 'nan', 'inf'
    if isinstance(value, dt.datetime):
        return timestamp_literal(value, dtype)
    if isinstance(value, dt.date | dt.time):
        return exp.cast(exp.Literal.string(value.isoformat()), dtype.copy())
    if isinstance(value, str) and dtype.this in TEXT_TYPES:
        return exp.Literal.string(value)
    return exp.cast(exp.Literal.string(str(value)), dtype.copy())


def column_name(name: str, dialect: str) -> exp.Identifier:
    """A CSV header as the engine would store it unquoted (Postgres: lower case, Snowflake: upper case), quoted so
    reserved words (`at`, `order`) work; the project's SQL finds it as it finds it on DuckDB."""
    ident = Dialect.get_or_raise(dialect).normalize_identifier(exp.to_identifier(name))
    ident.set("quoted", True)
    return ident


def create_statement(target: exp.Table, columns: Sequence[tuple[str, exp.DataType]], dialect: str) -> exp.Create:
    """CREATE TABLE with these columns, their types as the engine stores them (`Session.column_type`)."""
    defs = [exp.ColumnDef(this=column_name(c, dialect), kind=t) for c, t in columns]
    return exp.Create(kind="TABLE", this=exp.Schema(this=target.copy(), expressions=defs))


def _chunks(batches: Iterable[Sequence[Sequence[Any]]]) -> Iterator[list[Sequence[Any]]]:
    """Rows regrouped so one INSERT stays under BATCH_ROWS rows and about MAX_STATEMENT_CHARS characters."""
    chunk: list[Sequence[Any]] = []
    size = 0
    for batch in batches:
        for row in batch:
            chunk.append(row)
            size += sum(len(str(v)) + 16 for v in row)
            if len(chunk) >= BATCH_ROWS or size >= MAX_STATEMENT_CHARS:
                yield chunk
                chunk, size = [], 0
    if chunk:
        yield chunk


def column_list(target: exp.Table, columns: Sequence[tuple[str, exp.DataType]], dialect: str) -> exp.Schema:
    """`target (c1, c2, ...)`, the names as `create_statement` writes them."""
    return exp.Schema(this=target.copy(), expressions=[column_name(c, dialect) for c, _ in columns])


def insert_statements(
    target: exp.Table,
    columns: Sequence[tuple[str, exp.DataType]],
    batches: Iterable[Sequence[Sequence[Any]]],
    dialect: str,
) -> Iterator[tuple[exp.Insert, int]]:
    """One multi-row INSERT per batch of rows, with the row count."""
    types = [t for _, t in columns]
    for batch in _chunks(batches):
        rows = [exp.Tuple(expressions=[literal(v, t) for v, t in zip(row, types, strict=True)]) for row in batch]
        into = column_list(target, columns, dialect)
        yield exp.Insert(this=into, expression=exp.Values(expressions=rows)), len(batch)  # built: no deep copies
