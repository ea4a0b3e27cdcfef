"""Amazon Redshift over redshift-connector (`pip install profiles-dagster[redshift]`): password or IAM."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from profiles_dagster.sql.dialects import REDSHIFT
from profiles_dagster.warehouse.base import Session, WarehouseEngine, lazy_resource
from profiles_dagster.warehouse.files import TEXT_TYPES
from profiles_dagster.warehouse.grants import Grants
from profiles_dagster.warehouse.postgres import PostgresFamilySession, PostgresGrants


class RedshiftSession(PostgresFamilySession):
    """Postgres-shaped (information_schema, DROP + CREATE view swap, ANALYZE); SHA1 is built in. Its client does
    not report the rows a statement wrote, and its DDL commits on its own."""

    dialect = REDSHIFT

    def columns(self, table: exp.Table) -> list[tuple[str, str]]:
        return self.information_schema_columns(table)

    def column_type(self, dtype: exp.DataType) -> exp.DataType:
        """Redshift's VARCHAR is 256 bytes unless sized: a loaded text column gets the largest size."""
        if dtype.this in TEXT_TYPES and not dtype.expressions:
            return exp.DataType.build("VARCHAR(65535)")
        return dtype


class RedshiftConfig(WarehouseEngine):
    """A Redshift cluster or Serverless workgroup.

    Password auth: host, port, dbname, user, password (pb's keys). IAM auth: `iam: true` with
    cluster_identifier (or serverless_work_group), region, and AWS keys or a profile (else the default
    AWS credential chain); `user` is then the database user to get temporary credentials for.
    """

    host: str
    port: int = 5439
    dbname: str = Field(description="database")
    user: str | None = None
    password: str | None = None
    sslmode: str | None = Field(None, description="disable, or verify-ca (default) / verify-full")
    iam: bool = False
    cluster_identifier: str | None = None
    serverless_work_group: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    profile: str | None = None
    timeout: int = 60

    kind: ClassVar[str] = "redshift"
    pb_aliases: ClassVar[dict[str, str]] = {"workgroup_name": "serverless_work_group"}

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "database": self.dbname,
            "timeout": self.timeout,
        }
        if self.sslmode == "disable":
            kwargs["ssl"] = False
        elif self.sslmode:
            kwargs["sslmode"] = "verify-full" if self.sslmode == "verify-full" else "verify-ca"
        if self.iam:
            kwargs["iam"] = True
            if self.user:
                kwargs["db_user"] = self.user
            optional = {
                "cluster_identifier": self.cluster_identifier,
                "region": self.region,
                "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key,
                "session_token": self.session_token,
                "profile": self.profile,
            }
            kwargs.update({k: v for k, v in optional.items() if v})
            if self.serverless_work_group:
                kwargs.update(is_serverless=True, serverless_work_group=self.serverless_work_group)
        else:
            kwargs.update(user=self.user, password=self.password)
        return kwargs

    def access_grants(self, session: Session) -> Grants:
        return PostgresGrants(str(self.user or "<user>"), self.dbname)

    def open_session(self) -> RedshiftSession:
        import redshift_connector

        connection = redshift_connector.connect(**self.connect_kwargs())
        connection.autocommit = True
        return RedshiftSession(connection, self.output_schema)


class RedshiftEngine(RedshiftConfig, BaseModel):
    """Redshift without Dagster: what `profiles-dagster` runs on (Definitions get a `RedshiftWarehouse`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


__getattr__ = lazy_resource(RedshiftConfig, "RedshiftWarehouse", __name__)  # the Dagster resource, on first use
