"""The column types of the tables a step reads, for the compile context (`CompileContext.column_types`).

Some of the source dialect's casts depend on the types of the columns a fragment reads (transpile/types.py);
those are the types of upstream materials and input tables, known only once they exist: a run compiles each
step after its upstream ran, and validate's preparation compiles a step again when it was compiled before the
tables it reads existed (`Learner.learn` says which tables it reads are typed now). A material this run builds is
typed from the columns its step's result read anyway; only inputs and materials of earlier runs are asked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

from sqlglot import exp

from profiles_dagster.plan.steps import Step, StepKey
from profiles_dagster.sql.compiler import CompileContext
from profiles_dagster.sql.dialects import traits_of
from profiles_dagster.sql.transpile.types import table_key
from profiles_dagster.warehouse.base import Session


class Learner:
    """Fills `context.column_types` as the tables steps read come to exist."""

    def __init__(self, context: CompileContext, built_here: Iterable[exp.Table]) -> None:
        self.context = context
        self.pending = {table_key(t) for t in built_here}  # materials this run builds: typed when built
        self.missing: set[str] = set()  # asked and not there (asked again after the next step ran)
        self.known: set[str] = set()
        # keys are table names (a fragment may read a table unqualified); two tables of one name in different
        # schemas are neither typed nor named: a cast depending on their types is refused, never guessed
        self.qualified: dict[str, tuple[str, str, str]] = {}
        self.shared: set[str] = set()
        # nothing depends on types where the project's SQL is written for the engine itself
        self.types_wanted = context.source_dialect != context.dialect
        # column names: where the engine cannot select every column but a source's own main-id-named one
        self.names_wanted = not traits_of(context.dialect).all_columns_but
        self.wanted = self.types_wanted or self.names_wanted

    def learn(self, session: Session, step: Step, materials: Mapping[StepKey, exp.Table]) -> frozenset[str]:
        """Record the column types of the tables `step` reads that exist now; the tables it reads whose types
        are known (a step compiled with fewer is compiled again)."""
        if not self.wanted:
            return frozenset()
        tables = [materials[d] for d in step.deps if d in materials]
        for name in step.external_inputs:
            with contextlib.suppress(Exception):  # an input the run loads itself (a file) has no table yet
                tables.append(self.context.input_table(name))
        for table in tables:
            key = table_key(table)
            if not key or key in self.shared or (key in self.known and not self._one_table(key, table)):
                continue
            if key in self.known or key in self.pending or key in self.missing:
                continue
            try:  # asked first: a failed query would abort an open transaction on some engines
                if not session.table_exists(table):  # not there yet (validate compiles before it runs)
                    self.missing.add(key)
                    continue
                columns = session.columns(table)
            except Exception:  # a table this session cannot describe: its types stay unknown
                self.missing.add(key)
                continue
            self.record(table, columns, session.dialect)
        return frozenset(k for t in tables if (k := table_key(t)) in self.known)

    def built(self, table: exp.Table, columns: list[tuple[str, str]], dialect: str) -> None:
        """A step ran: its material's columns (read for its result anyway); the tables asked before may exist now."""
        self.missing.clear()
        if self.wanted:
            self.pending.discard(table_key(table))
            self.record(table, columns, dialect)

    def record(self, table: exp.Table, columns: list[tuple[str, str]], dialect: str) -> None:
        key = table_key(table)
        if not self._one_table(key, table):
            return
        self.known.add(key)
        if self.types_wanted:
            self.context.column_types[key] = {name.lower(): _data_type(kind, dialect) for name, kind in columns}
        if self.names_wanted:
            self.context.column_names[key] = tuple(name for name, _ in columns)

    def _one_table(self, key: str, table: exp.Table) -> bool:
        """Whether `key` names `table` alone so far; on meeting a second table of its name, it is forgotten."""
        if key not in self.shared and self.qualified.setdefault(key, _qualified(table)) == _qualified(table):
            return True
        self.shared.add(key)
        self.known.discard(key)
        self.context.column_types.pop(key, None)
        self.context.column_names.pop(key, None)
        return False


def _qualified(table: exp.Table) -> tuple[str, str, str]:
    return (table.catalog.lower(), table.db.lower(), table.name.lower())


def _data_type(name: str, dialect: str) -> exp.DataType:
    try:
        return exp.DataType.build(name, dialect=dialect)
    except Exception:  # a type sqlglot does not know: unknown, so a cast that depends on it is refused
        return exp.DataType.build("unknown")
