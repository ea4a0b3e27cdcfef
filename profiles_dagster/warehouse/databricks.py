"""Databricks SQL over databricks-sql-connector (`pip install profiles-dagster[databricks]`).

pb's siteconfig keys: host, port, http_endpoint, access_token, catalog, schema. Tables are written with
Databricks' default format (Delta) in `catalog.schema`; names are case-insensitive (stored lower case).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from profiles_dagster.sql.dialects import DATABRICKS
from profiles_dagster.warehouse.base import Session, WarehouseEngine, lazy_resource
from profiles_dagster.warehouse.grants import Grants, quoted_name


class DatabricksSession(Session):
    dialect = DATABRICKS

    def _show_tables(self, schema: str, like: str | None = None) -> list[str]:
        sql = f"SHOW TABLES IN {exp.to_identifier(schema, quoted=True).sql(self.dialect)}"
        if like is not None:
            sql += " LIKE " + exp.Literal.string(like).sql(self.dialect)
        rows = self.query(sql)
        # (database, tableName, isTemporary): temporary views of this session have no database
        return [str(r[1]) for r in rows if r[0]]

    def table_exists(self, target: exp.Table) -> bool:
        schema = target.db or self.schema
        with contextlib.suppress(Exception):  # SHOW TABLES on a missing schema fails
            return target.name.lower() in [n.lower() for n in self._show_tables(schema, target.name)]
        return False

    def list_tables(self, schema: str | None = None, prefix: str = "") -> list[str]:
        return sorted(n for n in self._show_tables(schema or self.schema) if n.lower().startswith(prefix.lower()))

    def _show_views(self, schema: str) -> set[str]:
        # rows: (namespace, viewName, isTemporary): temporary views of this session have no namespace
        rows = self.query(f"SHOW VIEWS IN {exp.to_identifier(schema, quoted=True).sql(self.dialect)}")
        return {str(r[1]) for r in rows if r[0]}

    def list_objects(self, schema: str | None = None) -> dict[str, str]:
        # SHOW TABLES lists views too; SHOW VIEWS tells them apart
        views = self._show_views(schema or self.schema)
        return {n: ("VIEW" if n in views else "TABLE") for n in self._show_tables(schema or self.schema)}

    def view_definitions(self, schema: str | None = None) -> dict[str, str]:
        # information_schema.views exists only under Unity Catalog; SHOW CREATE TABLE works for every view
        schema = schema or self.schema
        views = sorted(self._show_views(schema))
        return {
            n: str(self.query(f"SHOW CREATE TABLE {exp.table_(n, db=schema, quoted=True).sql(self.dialect)}")[0][0])
            for n in views
        }

    def columns(self, table: exp.Table) -> list[tuple[str, str]]:
        out = []
        for name, data_type, *_ in self.query(f"DESCRIBE TABLE {table.sql(self.dialect)}"):
            if not name or str(name).startswith("#"):
                break  # partition and detail sections follow a blank line
            out.append((str(name), str(data_type)))
        return out

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # no multi-statement transactions; every statement is atomic on its own
        yield

    def probe(self, sql: str) -> None:
        # Spark's EXPLAIN reports an analysis error as its plan's text; DESCRIBE QUERY raises it (validate)
        self.query(f"DESCRIBE QUERY {sql}")


class DatabricksGrants(Grants):
    """Unity Catalog's syntax: privileges on the catalog, schema and table, to a user or group."""

    def read(self, source: exp.Table, schema: str) -> tuple[str, ...]:
        db, who = source.catalog or self.database, self.principal
        return (
            f"GRANT USE CATALOG ON CATALOG {quoted_name([db], '`')} TO `{who}`;" if db else "",
            f"GRANT USE SCHEMA ON SCHEMA {quoted_name([db, schema], '`')} TO `{who}`;",
            f"GRANT SELECT ON TABLE {quoted_name([db, schema, source.name], '`')} TO `{who}`;",
        )

    def write(self, schema: str, exists: bool) -> tuple[str, ...]:
        db, who = self.database, self.principal
        create = () if exists else (f"GRANT CREATE SCHEMA ON CATALOG {quoted_name([db], '`')} TO `{who}`;",)
        return (
            *create,
            f"GRANT USE SCHEMA, CREATE TABLE, MODIFY, SELECT ON SCHEMA {quoted_name([db, schema], '`')} TO `{who}`;",
        )


class DatabricksConfig(WarehouseEngine):
    host: str = Field(description="server hostname, e.g. dbc-a1b2c3d4-e5f6.cloud.databricks.com")
    port: int = 443
    http_path: str = Field(description="the SQL warehouse's HTTP path (pb's http_endpoint)")
    access_token: str | None = Field(None, description="a personal access token or service principal token")
    catalog: str | None = None

    kind: ClassVar[str] = "databricks"
    pb_aliases: ClassVar[dict[str, str]] = {"http_endpoint": "http_path", "server_hostname": "host"}
    pb_ignored: ClassVar[frozenset[str]] = frozenset({"user"})

    def connect(self) -> Any:
        from databricks import sql

        kwargs: dict[str, Any] = {"server_hostname": self.host, "http_path": self.http_path}
        if self.port != 443:
            kwargs["_port"] = self.port
        if self.access_token:
            kwargs["access_token"] = self.access_token
        if self.catalog:
            kwargs["catalog"] = self.catalog
        return sql.connect(**kwargs)

    def access_grants(self, session: Session) -> Grants:
        who = None
        with contextlib.suppress(Exception):
            who = session.query("SELECT current_user()")[0][0]
        return DatabricksGrants(str(who or "<user or group>"), self.catalog)

    def open_session(self) -> DatabricksSession:
        return DatabricksSession(self.connect(), self.output_schema)


class DatabricksEngine(DatabricksConfig, BaseModel):
    """Databricks without Dagster: what `profiles-dagster` runs on (Definitions get a `DatabricksWarehouse`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


__getattr__ = lazy_resource(DatabricksConfig, "DatabricksWarehouse", __name__)  # the Dagster resource, on first use
