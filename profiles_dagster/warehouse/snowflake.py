"""Snowflake over snowflake-connector-python via dagster-snowflake (`pip install profiles-dagster[snowflake]`).

Password or key-pair auth (pb's `privateKey` / `privateKeyPassphrase`). Names the product writes are
folded to upper case like unquoted identifiers (see `profiles_dagster.sql.dialects.snowflake_case`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from profiles_dagster.sql.dialects import SNOWFLAKE, fold_upper
from profiles_dagster.warehouse.base import Session, WarehouseEngine, lazy_resource
from profiles_dagster.warehouse.grants import Grants, quoted_name

_OBJECT_DOES_NOT_EXIST = 2003  # Snowflake's error code for a missing database, schema or table


class SnowflakeSession(Session):
    dialect = SNOWFLAKE

    def __init__(self, connection: Any, schema: str, closer: contextlib.ExitStack | None = None) -> None:
        super().__init__(connection, schema)
        self._closer = closer

    def close(self) -> None:
        if self._closer is not None:
            self._closer.close()
        else:
            self.connection.close()

    def _in_schema(self, schema: str | None = None) -> exp.Expression:
        return exp.column("table_schema").eq(exp.Literal.string(fold_upper(schema or self.schema)))

    def _where(self, table: exp.Table) -> exp.Expression:
        where = exp.and_(
            self._in_schema(table.db or self.schema),
            exp.column("table_name").eq(exp.Literal.string(fold_upper(table.name))),
        )
        if table.catalog:  # DB.SCHEMA.TABLE: another database's tables, never the current one's of that name
            where = exp.and_(where, exp.column("table_catalog").eq(exp.Literal.string(fold_upper(table.catalog))))
        return where

    def _information_schema(self, view: str, table: exp.Table) -> exp.Table:
        # each database has its own information_schema: DB.information_schema lists DB's tables
        return exp.table_(
            view, db="information_schema", catalog=exp.to_identifier(table.catalog) if table.catalog else None
        )

    def table_exists(self, target: exp.Table) -> bool:
        # views are listed in information_schema.views (some stand-ins leave them out of .tables)
        counts = [
            exp.select(exp.func("count", exp.Star())).from_(self._information_schema(kind, target))
            for kind in ("tables", "views")
        ]
        with self._database_may_be_missing(target):
            return any(int(self.query(self.render(q.where(self._where(target))))[0][0]) for q in counts)
        return False

    def columns(self, table: exp.Table) -> list[tuple[str, str]]:
        with self._database_may_be_missing(table):
            return [(name.lower(), kind) for name, kind in self.information_schema_columns(table)]
        return []

    @contextlib.contextmanager
    def _database_may_be_missing(self, table: exp.Table) -> Iterator[None]:
        """`DB.information_schema` of a database that does not exist (or the role cannot see) fails with
        "object does not exist" (002003): the table is not there, which the caller reports with its name."""
        try:
            yield
        except Exception as exc:
            if not (table.catalog and getattr(exc, "errno", None) == _OBJECT_DOES_NOT_EXIST):
                raise

    def list_tables(self, schema: str | None = None, prefix: str = "") -> list[str]:
        return sorted(n for n in self.list_objects(schema) if n.startswith(fold_upper(prefix)) or n.startswith(prefix))

    def list_objects(self, schema: str | None = None) -> dict[str, str]:
        # views are listed in information_schema.views (some stand-ins leave them out of .tables)
        objects = super().list_objects(schema)
        views = exp.select("table_name").from_(exp.table_("views", db="information_schema"))
        objects.update((str(r[0]), "VIEW") for r in self.query(self.render(views.where(self._in_schema(schema)))))
        return objects

    def point_views(self, views: Sequence[tuple[exp.Table, exp.Table]]) -> None:
        # Snowflake commits each DDL statement on its own; CREATE OR REPLACE VIEW is atomic per view
        for view, material in views:
            self.run(
                exp.Create(
                    kind="VIEW", this=view.copy(), replace=True, expression=exp.select("*").from_(material.copy())
                )
            )


class SnowflakeGrants(Grants):
    """Snowflake's syntax: privileges go to a role, through the database and the schema."""

    def read(self, source: exp.Table, schema: str) -> tuple[str, ...]:
        db, who = source.catalog or self.database, self.principal
        return (
            f"GRANT USAGE ON DATABASE {quoted_name([db])} TO ROLE {who};",
            f"GRANT USAGE ON SCHEMA {quoted_name([db, schema])} TO ROLE {who};",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {quoted_name([db, schema])} TO ROLE {who};",
            f"GRANT SELECT ON ALL VIEWS IN SCHEMA {quoted_name([db, schema])} TO ROLE {who};",
        )

    def write(self, schema: str, exists: bool) -> tuple[str, ...]:
        db, who = self.database, self.principal
        create_db = () if exists else (f"GRANT CREATE SCHEMA ON DATABASE {quoted_name([db])} TO ROLE {who};",)
        return (
            f"GRANT USAGE ON DATABASE {quoted_name([db])} TO ROLE {who};",
            *create_db,
            f"GRANT USAGE, CREATE TABLE, CREATE VIEW ON SCHEMA {quoted_name([db, schema])} TO ROLE {who};",
        )


class SnowflakeConfig(WarehouseEngine):
    """pb's siteconfig keys: account, user, password or privateKey (+ privateKeyPassphrase), role,
    warehouse, dbname, schema. `host`, `port` and `protocol` reach a private endpoint (PrivateLink)."""

    account: str
    user: str
    password: str | None = None
    private_key: str | None = Field(None, description="PEM text or its base64; pb's privateKey")
    private_key_path: str | None = None
    private_key_password: str | None = Field(None, description="pb's privateKeyPassphrase")
    authenticator: str | None = None
    role: str | None = None
    warehouse: str | None = None
    database: str = Field(description="pb's dbname")
    host: str | None = None
    port: int | None = None
    protocol: str | None = None

    kind: ClassVar[str] = "snowflake"
    pb_aliases: ClassVar[dict[str, str]] = {
        "dbname": "database",
        "privateKey": "private_key",
        "privateKeyPassphrase": "private_key_password",
        "private_key_passphrase": "private_key_password",
    }
    pb_ignored: ClassVar[frozenset[str]] = frozenset({"useKeyPairAuth"})

    def dagster_resource(self):
        """The equivalent `dagster_snowflake.SnowflakeResource` (it handles key-pair auth)."""
        from dagster_snowflake import SnowflakeResource

        extra = {k: v for k, v in (("host", self.host), ("port", self.port), ("protocol", self.protocol)) if v}
        fields = {
            "account": self.account,
            "user": self.user,
            "password": self.password,
            "private_key": self.private_key,
            "private_key_path": self.private_key_path,
            "private_key_password": self.private_key_password,
            "authenticator": self.authenticator,
            "role": self.role,
            "warehouse": self.warehouse,
            "database": fold_upper(self.database),
            "schema": fold_upper(self.output_schema),
            "autocommit": True,
            "additional_snowflake_connection_args": extra or None,
        }
        return SnowflakeResource(**{k: v for k, v in fields.items() if v is not None})

    def access_grants(self, session: Session) -> Grants:
        role = self.role
        if not role:  # the connection's default role
            with contextlib.suppress(Exception):
                role = session.query("SELECT CURRENT_ROLE()")[0][0]
        return SnowflakeGrants(str(role or "<role>"), str(self.database or "").upper() or None)

    def open_session(self) -> SnowflakeSession:
        closer = contextlib.ExitStack()
        connection = closer.enter_context(self.dagster_resource().get_connection())
        return SnowflakeSession(connection, self.output_schema, closer)


class SnowflakeEngine(SnowflakeConfig, BaseModel):
    """Snowflake without Dagster: what `profiles-dagster` runs on (Definitions get a `SnowflakeWarehouse`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


__getattr__ = lazy_resource(SnowflakeConfig, "SnowflakeWarehouse", __name__)  # the Dagster resource, on first use
