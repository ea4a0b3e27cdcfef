"""Google BigQuery over google-cloud-bigquery (`pip install profiles-dagster[bigquery]`).

pb's siteconfig keys: project_id, schema (the dataset), credentials (the service account's JSON key as a
mapping or text); without credentials, Application Default Credentials. `location` pins the dataset's region.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from profiles_dagster.sql.dialects import BIGQUERY
from profiles_dagster.warehouse.base import Session, WarehouseEngine, lazy_resource


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

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # BigQuery's transactions cannot hold DDL; every statement here is atomic on its own
        yield

    def close(self) -> None:
        self.connection.close()


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
