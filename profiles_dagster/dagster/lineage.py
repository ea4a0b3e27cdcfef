"""Column lineage of a plan as Dagster metadata: each step compiled once with placeholder material names.

Built when the Definitions load (about a tenth of a second for the example), so specs carry the
lineage of every column known before a run; a materialization adds the columns only a run knows
(the input columns that `*` passes through) by tracing them through the same compiled trees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from dagster import AssetKey, TableColumnDep, TableColumnLineage
from sqlglot import exp

from profiles_dagster.plan.steps import RunPlan, StepKey, StepKind
from profiles_dagster.project.model import Project
from profiles_dagster.project.templating import TemplateContext
from profiles_dagster.sql import lineage
from profiles_dagster.sql.compiler import CompileContext, compile_step
from profiles_dagster.sql.fragments import Where
from profiles_dagster.sql.names import table

log = logging.getLogger("profiles_dagster")

STITCHER_OUTPUT = ("other_id", "other_id_type", "valid_at", "first_seen_at")


@dataclass
class _PlaceholderContext(CompileContext):
    """Parses each distinct fragment once: hundreds of vars share a few selects and wheres, and the
    entity's and each cohort's var table compile the same vars again. Never changed once made."""

    _fragments: dict[str, exp.Expr] = field(default_factory=dict, repr=False)
    _templates: TemplateContext | None = field(default=None, repr=False)

    def fragment(self, text: str, where: Where, reads: exp.Expr | None = None) -> exp.Expr:
        parsed = self._fragments.get(text)
        if parsed is None:  # rendering depends on the text alone here: one context, one end_time, no types
            parsed = self._fragments[text] = super().fragment(text, where)
        return parsed.copy()  # the compiler attaches and changes the trees it gets

    def template_context(self, deref: Callable[[str], str] | None = None, this_name: str = "") -> TemplateContext:
        """The one every templated var renders with, made once (it writes SQL for the time values)."""
        if deref is not None or this_name:  # a sql model's own
            return super().template_context(deref, this_name)
        if self._templates is None:
            self._templates = super().template_context()
        return self._templates


def placeholder_context(project: Project, plan: RunPlan, dialect: str, source_dialect: str) -> CompileContext:
    """A compile context whose materials are named after their step: what the SQL of a run looks like."""
    materials = {step.key: table(f"__profiles_{n}", "__profiles") for n, step in enumerate(plan.steps)}
    return _PlaceholderContext(
        project=project,
        plan=plan,
        dialect=dialect,
        source_dialect=source_dialect,
        materials=materials,
        end_time=datetime(2000, 1, 1),
    )


class PlanLineage:
    def __init__(
        self,
        ctx: CompileContext,
        asset_keys: Mapping[StepKey, AssetKey],
        input_keys: Mapping[str, AssetKey],
    ) -> None:
        self.tables: dict[str, AssetKey] = {lineage.table_key(t): asset_keys[k] for k, t in ctx.materials.items()}
        for name, key in input_keys.items():
            try:
                self.tables[lineage.table_key(ctx.input_table(name))] = key
            except Exception:  # an input this engine cannot read; the run will say so
                log.debug("no lineage for input %s", name, exc_info=True)
        self.queries: dict[StepKey, exp.Query] = {}
        self.columns: dict[StepKey, list[str]] = {}
        self.kinds: dict[StepKey, StepKind] = {}
        self.main_ids: dict[StepKey, str | None] = {}
        known: dict[str, list[str]] = {}
        project = ctx.project
        for step in ctx.plan.steps:
            main = project.entities[step.entity].main_id_column if step.entity in project.entities else None
            try:
                query = lineage.program_query(compile_step(step, ctx))
            except Exception:  # lineage is a nicety: a step that does not compile here fails clearly at run time
                log.debug("no lineage for %s", step.path, exc_info=True)
                continue
            if query is None:
                continue
            if step.kind is StepKind.ID_STITCHER and main is not None:
                columns, complete = [main, *STITCHER_OUTPUT], True
            else:
                columns, complete = lineage.output_columns(query, known)
            if complete:
                known[lineage.table_key(ctx.materials[step.key])] = columns
            self.queries[step.key] = query
            self.columns[step.key] = columns
            self.kinds[step.key] = step.kind
            self.main_ids[step.key] = main

    def for_step(self, key: StepKey, columns: list[str] | None = None) -> TableColumnLineage | None:
        """The lineage of the given columns (default: those known before a run); None when unknown."""
        query = self.queries.get(key)
        if query is None:
            return None
        names = columns if columns is not None else self.columns[key]
        deps = lineage.step_lineage(self.kinds[key], query, names, self.tables, self.main_ids[key])
        by_column = {
            column: [TableColumnDep(asset_key=asset, column_name=name) for asset, name in found]
            for column, found in deps.items()
            if found
        }
        return TableColumnLineage(deps_by_column=by_column) if by_column else None
