"""Google BigQuery over google-cloud-bigquery (`pip install profiles-dagster[bigquery]`).

pb's siteconfig keys: project_id, schema (the dataset), credentials (the service account's JSON key as a
mapping or text); without credentials, Application Default Credentials. `location` pins the dataset's region.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from profiles_dagster.sql.dialects import BIGQUERY
from profiles_dagster.warehouse.base import Session, WarehouseEngine, lazy_resource
from profiles_dagster.warehouse.grants import Grants, quoted_name


class BigQuerySession(Session):
    """A `bigquery.Client`: each statement is a query job; table metadata through the API."""

    dialect = BIGQUERY

    def __init__(self, client: Any, schema: str, location: str | None = None) -> None:
        super().__init__(client, schema)
        self.location = location

    def _job(self, sql: str):
        return self.connection.query(sql, location=self.location).result()

    def execute(self, sql: str) -> None:
        self._job(sql)

    def query(self, sql: str) -> list[tuple]:
        return [tuple(row.values()) for row in self._job(sql)]

    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        result = self._job(sql)
        rows = [tuple(row.values()) for row in result]
        return [f.name for f in result.schema or ()], rows

    def _ref(self, table: exp.Table) -> str:
        parts = [p for p in (table.catalog, table.db or self.schema, table.name) if p]
        return ".".join(parts)

    def table_exists(self, target: exp.Table) -> bool:
        from google.api_core.exceptions import NotFound

        try:
            self.connection.get_table(self._ref(target))
        except NotFound:
            return False
        return True

    def columns(self, table: exp.Table) -> list[tuple[str, str]]:
        return [(f.name, f.field_type) for f in self.connection.get_table(self._ref(table)).schema]

    def list_objects(self, schema: str | None = None) -> dict[str, str]:
        # the client's table list carries each one's type: no query job for a listing
        return {
            t.table_id: ("VIEW" if t.table_type == "VIEW" else "TABLE")
            for t in self.connection.list_tables(schema or self.schema)
        }

    def view_definitions(self, schema: str | None = None) -> dict[str, str]:
        # the dataset's own INFORMATION_SCHEMA.VIEWS (one query; the table API's view_query is not always set)
        views = exp.table_("VIEWS", db="INFORMATION_SCHEMA", catalog=schema or self.schema)
        query = exp.select("table_name", "view_definition").from_(views)
        return {str(n): str(d or "") for n, d in self.query(self.render(query))}

    def create_schema(self, schema: str) -> None:
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.connection.project}.{schema}")
        if self.location:
            dataset.location = self.location
        self.connection.create_dataset(dataset, exists_ok=True)

    def load_rows(
        self, target: exp.Table, columns: Sequence[tuple[str, exp.DataType]], batches: Iterable[Sequence[Sequence]]
    ) -> int:
        # One load job of newline-delimited JSON into the table the DDL made (the column types stay those of
        # every engine). Multi-row INSERTs were one DML job per 500 rows: slow and counted against DML quotas.
        from google.cloud import bigquery

        from profiles_dagster.warehouse.files import column_name

        self.replace_with_empty_table(target, columns)
        names = [column_name(c, self.dialect).name for c, _ in columns]
        count = 0
        with tempfile.TemporaryFile() as staged:
            for batch in batches:
                for row in batch:
                    record = {n: _json_value(v) for n, v in zip(names, row, strict=True)}
                    staged.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
                count += len(batch)
            if not count:
                return 0
            staged.seek(0)
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            )
            job = self.connection.load_table_from_file(
                staged, self._ref(target), job_config=config, location=self.location
            )
            job.result()
        return count

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # BigQuery's transactions cannot hold DDL; every statement here is atomic on its own
        yield

    # -- validate (run/prepare_scratch.py): a query bills the bytes it scans whatever its LIMIT, so queries over
    # the inputs are dry runs, which bind a query and return its result schema without running it

    reads_billed = True

    def _dry_run(self, sql: str) -> Any:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)
        return self.connection.query(sql, job_config=config, location=self.location)

    def probe(self, sql: str) -> None:
        self._dry_run(sql)

    def create_empty(self, create: exp.Create) -> str | None:
        """The query dry-run; the table created empty from its schema through the API."""
        from google.cloud import bigquery

        query = create.expression
        assert isinstance(query, exp.Query)
        job = self._dry_run(query.sql(self.dialect))
        target = create.this.this if isinstance(create.this, exp.Schema) else create.this
        assert isinstance(target, exp.Table)
        ref = self._ref(target)
        if ref.count(".") == 1:  # the API's table references name the project
            ref = f"{self.connection.project}.{ref}"
        if create.args.get("replace"):
            self.connection.delete_table(ref, not_found_ok=True)
        table = bigquery.Table(ref, schema=list(job.schema or ()))
        self.connection.create_table(table, exists_ok=bool(create.args.get("exists")))
        return None

    def insert_empty(self, insert: exp.Insert) -> str | None:
        """Inserts no row: its query dry-run."""
        query = insert.expression
        assert isinstance(query, exp.Query)
        self._dry_run(query.sql(self.dialect))
        return None

    def create_scratch_schema(self, schema: str) -> None:
        """The dataset's tables expire after a day: a validate killed before it deletes the dataset leaves only
        an empty dataset behind."""
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.connection.project}.{schema}")
        if self.location:
            dataset.location = self.location
        dataset.default_table_expiration_ms = _SCRATCH_EXPIRATION_MS
        dataset.description = "profiles-dagster validate: scratch, deleted when the validation ends"
        self.connection.create_dataset(dataset, exists_ok=True)

    def drop_schema(self, schema: str) -> None:
        self.connection.delete_dataset(schema, delete_contents=True, not_found_ok=True)

    def close(self) -> None:
        self.connection.close()


_JSON_EXACT_INT = 2**53 - 1
_SCRATCH_EXPIRATION_MS = 24 * 3600 * 1000


def _json_value(value: Any) -> Any:
    """A CSV value (as DuckDB read it) as BigQuery's JSON loader reads it for the column's type."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):  # BigQuery's docs: an INT64 beyond 2**53 goes as text, or it may be corrupted
        return value if abs(value) <= _JSON_EXACT_INT else str(value)
    if isinstance(value, float):  # JSON has no infinities: text, as the client's own insert_rows sends them
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):  # DATETIME, or TIMESTAMP with its offset (UTC from a run's DuckDB)
        return value.isoformat(sep=" ")
    return str(value)  # DATE, TIME and NUMERIC as their ISO / decimal text


class BigQueryGrants(Grants):
    """BigQuery's syntax: IAM roles on a table or dataset, to a service account; jobs need a project role."""

    def read(self, source: exp.Table, schema: str) -> tuple[str, ...]:
        ref = quoted_name([source.catalog or self.database, schema, source.name], "`")
        return (f'GRANT `roles/bigquery.dataViewer` ON TABLE {ref} TO "{self.principal}";',)

    def write(self, schema: str, exists: bool) -> tuple[str, ...]:
        ref, who = quoted_name([self.database, schema], "`"), self.principal
        return (
            f'GRANT `roles/bigquery.dataEditor` ON SCHEMA {ref} TO "{who}";',
            f"-- and on the project (gcloud): roles/bigquery.jobUser for {who}"
            + ("" if exists else f"; creating dataset {schema} needs roles/bigquery.dataEditor on the project"),
        )


class BigQueryConfig(WarehouseEngine):
    project_id: str
    location: str | None = None
    credentials: Any = Field(None, description="service account key: a mapping or its JSON text")
    keyfile: str | None = Field(None, description="path to a service account key file")
    api_endpoint: str | None = Field(None, description="another endpoint, e.g. an emulator")
    anonymous: bool = Field(False, description="no credentials at all (emulators)")

    kind: ClassVar[str] = "bigquery"
    pb_aliases: ClassVar[dict[str, str]] = {"credentials_json": "credentials", "dataset": "output_schema"}

    def _credentials(self):
        if self.anonymous:
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()
        from google.oauth2 import service_account

        if self.credentials:
            info = json.loads(self.credentials) if isinstance(self.credentials, str) else dict(self.credentials)
            return service_account.Credentials.from_service_account_info(info)
        if self.keyfile:
            return service_account.Credentials.from_service_account_file(self.keyfile)
        return None  # Application Default Credentials

    def access_grants(self, session: Session) -> Grants:
        email = getattr(getattr(session.connection, "_credentials", None), "service_account_email", None)
        who = f"serviceAccount:{email}" if email else "serviceAccount:<service account email>"
        return BigQueryGrants(who, self.project_id)

    def open_session(self) -> BigQuerySession:
        from google.cloud import bigquery

        options = {"api_endpoint": self.api_endpoint} if self.api_endpoint else None
        client = bigquery.Client(
            project=self.project_id, credentials=self._credentials(), location=self.location, client_options=options
        )
        return BigQuerySession(client, self.output_schema, self.location)


class BigQueryEngine(BigQueryConfig, BaseModel):
    """BigQuery without Dagster: what `profiles-dagster` runs on (Definitions get a `BigQueryWarehouse`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


__getattr__ = lazy_resource(BigQueryConfig, "BigQueryWarehouse", __name__)  # the Dagster resource, on first use
