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
from profiles_dagster.sql.names import input_table, table
from profiles_dagster.warehouse import files
from profiles_dagster.warehouse.base import Session, WarehouseEngine
from profiles_dagster.warehouse.grants import Grants


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
        grants = warehouse.access_grants(session)  # the engine's syntax and who the connection acts as
        report = AccessReport(warehouse.kind, grants.principal)
        source_dialect = project.settings.sql_dialect(session.dialect)
        for name in sorted(project.inputs):
            if files.is_file_input(project, name):  # read client-side (or in place on DuckDB), not a grant
                where = files.location(project, name)
                error = files.check_readable(project, name)
                loads = "" if session.reads_in_place(where) else f"; a run loads it into a table in {schema}"
                report.checks.append(AccessCheck(f"read input '{name}' ({where}{loads})", error is None, error))
                continue
            source = input_table(project.inputs[name].spec.app_defaults.source, source_dialect, schema, session.dialect)
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
