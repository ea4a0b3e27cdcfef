"""One step's statements sent to the warehouse."""

from __future__ import annotations

import time

from sqlglot import exp

from profiles_dagster.plan.steps import Step
from profiles_dagster.run.recording import RunRecord
from profiles_dagster.sql.compiler import StepProgram
from profiles_dagster.sql.registry import Status
from profiles_dagster.warehouse.base import Session


def write(
    session: Session, record: RunRecord, step: Step, program: StepProgram, start: float
) -> tuple[int, float] | None:
    """Run a step's statements. Where a step is one CREATE TABLE AS and the engine's DDL is transactional,
    the table and its registry row commit together (one commit, not two: a killed step leaves its
    `running` row and no table) and the engine's own row count saves a count(*): (rows, seconds, the
    commit included; the registry's seconds stop before it). None: the caller records the step."""
    statements = program.statements
    if not (session.transactional_ddl and len(statements) == 1 and creates_table(statements[0])):
        for statement in statements:
            session.run(statement)
        return None
    with session.transaction():
        rows = session.run_count(statements[0])
        if rows is None:
            rows = session.row_count(program.target)
        record.finish_material(step, Status.COMPLETE, rows, time.perf_counter() - start)
    return rows, time.perf_counter() - start


def creates_table(statement: exp.Expression) -> bool:
    """CREATE TABLE ... AS <query>: a step's material written by one statement."""
    return (
        isinstance(statement, exp.Create)
        and str(statement.args.get("kind") or "").upper() == "TABLE"
        and isinstance(statement.expression, exp.Query)
    )
