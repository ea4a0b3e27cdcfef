"""The column types of the tables a step reads, for the compile context (`CompileContext.column_types`).

Some of the source dialect's casts depend on the types of the columns a fragment reads (transpile/types.py);
those are the types of upstream materials and input tables, known only once they exist: a run compiles each
step after its upstream ran, and validate's preparation compiles a step again when it was compiled before the
tables it reads existed (`learn` says when new types became known).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from sqlglot import exp

from profiles_dagster.plan.steps import Step, StepKey
from profiles_dagster.sql.compiler import CompileContext
from profiles_dagster.sql.transpile.types import table_key
from profiles_dagster.warehouse.base import Session


def learn(session: Session, context: CompileContext, step: Step, materials: Mapping[StepKey, exp.Table]) -> bool:
    """Record the column types of the tables `step` reads that exist now; True when any became known. Nothing
    is read where the project's SQL is written for the engine itself (no rule depends on types there)."""
    if context.source_dialect == context.dialect:
        return False
    tables = [materials[d] for d in step.deps if d in materials]
    for name in step.external_inputs:
        with contextlib.suppress(Exception):  # an input the run loads itself (a file) has no table yet
            tables.append(context.input_table(name))
    learned = False
    for table in tables:
        key = table_key(table)
        if not key or key in context.column_types:
            continue
        try:  # asked first: a failed query would abort an open transaction on some engines
            if not session.table_exists(table):  # not there yet (validate compiles before it runs)
                continue
            columns = session.columns(table)
        except Exception:  # a table this session cannot describe: its types stay unknown
            continue
        context.column_types[key] = {name.lower(): _data_type(kind, session.dialect) for name, kind in columns}
        learned = True
    return learned


def _data_type(name: str, dialect: str) -> exp.DataType:
    try:
        return exp.DataType.build(name, dialect=dialect)
    except Exception:  # a type sqlglot does not know: unknown, so a cast that depends on it is refused
        return exp.DataType.build("unknown")
