"""Can this connection run the project? Read every input; create, replace and drop objects in the output schema.

`check_access(loaded)` tries each thing for real (a zero-row read of each input; a scratch table and view
in the output schema, replaced once, then dropped) and, for each failure, prints the GRANT statement that
the warehouse's admin would run, in that warehouse's syntax.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from profiles_dagster.errors import summary
from profiles_dagster.sql.names import source_table, table
from profiles_dagster.warehouse import files
from profiles_dagster.warehouse.base import Session, WarehouseEngine


@dataclass(frozen=True)
class AccessCheck:
    what: str  # e.g. "read input 'identifies' (raw.identifies)"
    ok: bool
    error: str | None = None
    grants: tuple[str, ...] = ()


@dataclass
class AccessReport:
    kind: str
    principal: str
    checks: list[AccessCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def grants(self) -> list[str]:
        out: list[str] = []
        for check in self.checks:
            out.extend(g for g in check.grants if g not in out)
        return out

    def text(self) -> str:
        lines = [f"{'ok  ' if c.ok else 'FAIL'} {c.what}" + (f": {c.error}" if c.error else "") for c in self.checks]
        if self.ok:
            lines.append(f"{self.kind}: {self.principal} can run this project")
        else:
            lines.append(f"missing privileges for {self.principal}; an admin can grant them with:")
            lines.extend(f"  {g}" for g in self.grants)
        return "\n".join(lines)


# -- GRANT statements per engine --------------------------------------------------------------------


def _name(parts: list[str | None], quote: str = '"') -> str:
    return ".".join(f"{quote}{p}{quote}" if not p.replace("_", "").isalnum() else p for p in parts if p)


class Grants:
    """The statements an admin runs; `principal` is the user or role the connection acts as."""

    def __init__(self, kind: str, principal: str, database: str | None) -> None:
        self.kind, self.principal, self.database = kind, principal, database

    def read(self, source: exp.Table, schema: str) -> tuple[str, ...]:
        k, who = self.kind, self.principal
        name = source.name
        db = source.catalog or self.database
        if k in ("postgres", "redshift"):
            return (
                f"GRANT USAGE ON SCHEMA {_name([schema])} TO {who};",
                f"GRANT SELECT ON {_name([schema, name])} TO {who};",
            )
        if k == "snowflake":
            return (
                f"GRANT USAGE ON DATABASE {_name([db])} TO ROLE {who};",
                f"GRANT USAGE ON SCHEMA {_name([db, schema])} TO ROLE {who};",
                f"GRANT SELECT ON ALL TABLES IN SCHEMA {_name([db, schema])} TO ROLE {who};",
                f"GRANT SELECT ON ALL VIEWS IN SCHEMA {_name([db, schema])} TO ROLE {who};",
            )
        if k == "bigquery":
            ref = _name([db, schema, name], "`")
            return (f'GRANT `roles/bigquery.dataViewer` ON TABLE {ref} TO "{who}";',)
        if k == "databricks":
            return (
                f"GRANT USE CATALOG ON CATALOG {_name([db], '`')} TO `{who}`;" if db else "",
                f"GRANT USE SCHEMA ON SCHEMA {_name([db, schema], '`')} TO `{who}`;",
                f"GRANT SELECT ON TABLE {_name([db, schema, name], '`')} TO `{who}`;",
            )
        return ()

    def write(self, schema: str, exists: bool) -> tuple[str, ...]:
        k, who, db = self.kind, self.principal, self.database
        if k in ("postgres", "redshift"):
            if not exists:  # the owner of the schema may do everything in it
                return (f"CREATE SCHEMA IF NOT EXISTS {_name([schema])} AUTHORIZATION {who};",)
            return (f"GRANT USAGE, CREATE ON SCHEMA {_name([schema])} TO {who};",)
        if k == "snowflake":
            create_db = () if exists else (f"GRANT CREATE SCHEMA ON DATABASE {_name([db])} TO ROLE {who};",)
            return (
                f"GRANT USAGE ON DATABASE {_name([db])} TO ROLE {who};",
                *create_db,
                f"GRANT USAGE, CREATE TABLE, CREATE VIEW ON SCHEMA {_name([db, schema])} TO ROLE {who};",
            )
        if k == "bigquery":
            ref = _name([db, schema], "`")
            return (
                f'GRANT `roles/bigquery.dataEditor` ON SCHEMA {ref} TO "{who}";',
                f"-- and on the project (gcloud): roles/bigquery.jobUser for {who}"
                + ("" if exists else f"; creating dataset {schema} needs roles/bigquery.dataEditor on the project"),
            )
        if k == "databricks":
            create = () if exists else (f"GRANT CREATE SCHEMA ON CATALOG {_name([db], '`')} TO `{who}`;",)
            return (
                *create,
                f"GRANT USE SCHEMA, CREATE TABLE, MODIFY, SELECT ON SCHEMA {_name([db, schema], '`')} TO `{who}`;",
            )
        return ()


def _principal(warehouse: WarehouseEngine, session: Session) -> tuple[str, str | None]:
    """Who the connection acts as, and its database (catalog / project)."""
    kind = warehouse.kind
    fields: dict[str, Any] = dict(warehouse)
    if kind == "snowflake":
        role = fields.get("role")
        if not role:
            with contextlib.suppress(Exception):
                role = session.query("SELECT CURRENT_ROLE()")[0][0]
        return str(role or "<role>"), str(fields.get("database") or "").upper() or None
    if kind == "bigquery":
        email = getattr(getattr(session.connection, "_credentials", None), "service_account_email", None)
        who = f"serviceAccount:{email}" if email else "serviceAccount:<service account email>"
        return who, fields.get("project_id")
    if kind == "databricks":
        who = None
        with contextlib.suppress(Exception):
            who = session.query("SELECT current_user()")[0][0]
        return str(who or "<user or group>"), fields.get("catalog")
    return str(fields.get("user") or "<user>"), fields.get("dbname")


def _try(session: Session, sql: str) -> str | None:
    try:
        session.execute(sql)
    except Exception as exc:
        return summary(exc)
    return None


def check_access(loaded: Any) -> AccessReport:
    """Check the connection of a loaded project (`profiles_dagster.loading.load`) for every privilege a run needs."""
    warehouse: WarehouseEngine = loaded.warehouse
    project = loaded.project
    schema = warehouse.output_schema
    with warehouse.session() as session:
        principal, database = _principal(warehouse, session)
        grants = Grants(warehouse.kind, principal, database)
        report = AccessReport(warehouse.kind, principal)
        source_dialect = project.settings.sql_dialect(session.dialect)
        for name in sorted(project.inputs):
            if files.is_file_input(project, name):  # read client-side (or in place on DuckDB), not a grant
                where = files.location(project, name)
                error = files.check_readable(project, name)
                loads = "" if session.reads_in_place(where) else f"; a run loads it into a table in {schema}"
                report.checks.append(AccessCheck(f"read input '{name}' ({where}{loads})", error is None, error))
                continue
            source = source_table(project.inputs[name].spec.app_defaults.source, source_dialect)
            probe = exp.select("*").from_(source.copy()).where(exp.false()).limit(0)
            error = _try(session, session.render(probe))
            where = source.sql(session.dialect)
            schema_of = source.db or session.schema
            report.checks.append(
                AccessCheck(
                    f"read input '{name}' ({where})",
                    error is None,
                    error,
                    () if error is None else grants.read(source, schema_of),
                )
            )
        existed = _schema_exists(session, schema)
        error = None
        try:
            session.create_schema(schema)
        except Exception as exc:
            error = summary(exc)
        report.checks.append(
            AccessCheck(
                f"create schema {schema} if missing",
                error is None,
                error,
                () if error is None else grants.write(schema, existed),
            )
        )
        if error is None:
            report.checks.extend(_write_checks(session, schema, grants))
    return report


def _schema_exists(session: Session, schema: str) -> bool:
    """Whether the schema holds anything (an empty one counts as missing: then both grants are printed)."""
    with contextlib.suppress(Exception):
        return bool(session.list_tables(schema))
    return False


def _write_checks(session: Session, schema: str, grants: Grants) -> list[AccessCheck]:
    probe = table(f"_profiles_access_{uuid.uuid4().hex[:8]}", schema)
    view = table(f"{probe.name}_v", schema)
    fix = grants.write(schema, True)
    checks = []
    steps = [
        ("create a table", lambda: session.create_table_as(probe, exp.select(exp.alias_(exp.Literal.number(1), "x")))),
        (
            "replace a table (drop + create)",
            lambda: (
                session.drop_table(probe),
                session.create_table_as(probe, exp.select(exp.alias_(exp.Literal.number(2), "x"))),
            ),
        ),
        (
            "create and repoint a view",
            lambda: (session.point_views([(view, probe)]), session.point_views([(view, probe)])),
        ),
    ]
    try:
        for what, action in steps:
            try:
                action()
                checks.append(AccessCheck(f"{what} in {schema}", True))
            except Exception as exc:
                checks.append(AccessCheck(f"{what} in {schema}", False, summary(exc), fix))
                break
    finally:
        with contextlib.suppress(Exception):
            session.run(exp.Drop(kind="VIEW", tables=[view.copy()], exists=True))
        with contextlib.suppress(Exception):
            session.drop_table(probe)
    return checks


def print_access_report(loaded: Any) -> int:
    """`profiles-dagster validate access`: print the report; exit status 0 when every check passed."""
    report = check_access(loaded)
    print(report.text())
    return 0 if report.ok else 1
