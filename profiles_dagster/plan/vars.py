"""How the vars of one var table depend on each other: the order to compute them, cycles refused."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from profiles_dagster.errors import ErrorCollector, ProfilesError, did_you_mean
from profiles_dagster.project.gotime import GoTime
from profiles_dagster.project.model import Project, Var
from profiles_dagster.project.templating import TemplateContext, find_references, project_macros


@dataclass(frozen=True)
class PlannedVar:
    var: Var
    refs: tuple[str, ...]  # names of other vars of the same table (or the entity table) it reads


def cohort_entities(project: Project) -> dict[str, str]:
    """Cohort name -> its entity, for `{{ cohort.var }}` in templates (pb: the entity's var)."""
    return {name: cohort.entity for name, cohort in project.cohorts.items()}


def var_context(project: Project) -> TemplateContext:
    return TemplateContext(
        entities=tuple(project.entities),
        sources=tuple(name for name in (*project.inputs, *project.sql_models) if name not in project.entities),
        cohorts=cohort_entities(project),
        values={
            "end_time_sql": "end_time_sql",
            "begin_time_sql": "begin_time_sql",
            "end_time": GoTime(datetime(2000, 1, 1)),
            "begin_time": GoTime(datetime(2000, 1, 1)),
        },
        macros=project_macros(project),
    )


def _fragments(var: Var) -> Iterator[tuple[str, str]]:
    """(key, SQL) of each of the var's fragments that may refer to other vars: a window orders and
    partitions by them too (a var without `from` ranks over the entity's other vars)."""
    spec = var.spec
    for key in ("select", "where"):
        text = getattr(spec, key)
        if text:
            yield key, text
    if spec.window is not None:
        for n, text in enumerate(spec.window.partition_by):
            yield f"window.partition_by[{n}]", text
        for n, text in enumerate(spec.window.order_by):
            yield f"window.order_by[{n}]", text


def _references_by_key(project: Project, var: Var) -> dict[str, set[tuple[str, str]]]:
    """The (entity, var) references of the var's select, where and window, each located at its own key."""
    ctx = var_context(project)
    found: dict[str, set[tuple[str, str]]] = {}
    for key, text in _fragments(var):
        at = var.origin.at(key)
        found[key] = find_references(text, ctx, file=at.file, line=at.line, key=at.key).vars
    return found


def _error_at(project: Project, var: Var, ref: str, message: str, hint: str | None = None) -> ProfilesError:
    """An error on the select (or where) of `var` that mentions the var `ref`."""
    keys = [k for k, refs in _references_by_key(project, var).items() if any(name == ref for _, name in refs)]
    at = var.origin.at(keys[0] if keys else "select")
    return at.error(message, hint=hint)


def _check_input_var_references(project: Project, var: Var) -> None:
    """`{{ orders.Var("x") }}` names input var x of input orders: a column of the rows the var reads."""
    ctx = var_context(project)
    for key in ("select", "where"):
        text = getattr(var.spec, key)
        if not text:
            continue
        at = var.origin.at(key)
        for source, name in sorted(find_references(text, ctx, file=at.file, line=at.line, key=at.key).source_vars):
            kind = "inputs" if source in project.inputs else "models"
            known = [v.name for v in project.input_vars(var.entity, f"{kind}/{source}")]
            if var.spec.from_ != f"{kind}/{source}":
                raise at.error(f"'{source}.Var(\"{name}\")' can only be used by a var with `from: {kind}/{source}`")
            if name not in known and name not in _contract_columns(project, kind, source):
                raise at.error(
                    f"{'input' if kind == 'inputs' else 'sql model'} '{source}' has no input var '{name}'",
                    hint=did_you_mean(name, known) or f"its input vars: {', '.join(known) or 'none'}",
                )


def _contract_columns(project: Project, kind: str, source: str) -> list[str]:
    """Columns an input (or sql model) declares in `contract.with_columns`: pb resolves `<source>.Var("c")` to
    such a column as it resolves an input var (RudderStack's own projects read every column this way)."""
    owner = project.inputs.get(source) if kind == "inputs" else project.sql_models.get(source)
    contract = owner.spec.contract if owner is not None else None
    return [c.name for c in contract.with_columns] if contract is not None else []


def var_references(project: Project, var: Var) -> tuple[str, ...]:
    _check_input_var_references(project, var)
    names: set[str] = set()
    for key, refs in _references_by_key(project, var).items():
        for entity, name in refs:
            if entity != var.entity:
                at = var.origin.at(key)
                raise at.error(
                    f"var '{var.name}' refers to '{entity}.{name}' of another entity",
                )
            names.add(name)
    return tuple(sorted(names))


def _check_refs_defined(project: Project, pv: PlannedVar, by_name: dict[str, Var], inherited: Sequence[str]) -> None:
    for ref in pv.refs:
        if ref not in by_name and ref not in inherited:
            known = [*by_name, *inherited]
            if ref in project.disabled_vars:
                raise _error_at(
                    project,
                    pv.var,
                    ref,
                    f"var '{pv.var.name}' reads var '{ref}', which is not computed: {project.disabled_vars[ref]}",
                    hint="enable it, or disable this var too (pb would leave it out silently)",
                )
            raise _error_at(
                project,
                pv.var,
                ref,
                f"var '{pv.var.name}' refers to undefined var '{ref}'",
                hint=did_you_mean(ref, known) or f"vars here: {', '.join(known) or 'none'}",
            )


def order_vars(project: Project, own: list[Var], inherited: Sequence[str] = ()) -> list[PlannedVar]:
    """Topological order; references to `inherited` (e.g. entity vars from a cohort) are free."""
    by_name = {v.name: v for v in own}
    errors = ErrorCollector()  # each var's references are checked on its own: all problems in one pass
    planned: dict[str, PlannedVar] = {}
    for v in own:
        with errors.item(v.name):
            planned[v.name] = PlannedVar(v, var_references(project, v))
    for pv in planned.values():
        with errors.item(pv.var.name):
            _check_refs_defined(project, pv, by_name, inherited)
    errors.raise_if_any()
    order: list[PlannedVar] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            members = (*trail[trail.index(name) :], name)
            cycle = " -> ".join(members)
            raise _error_at(project, by_name[name], members[1], f"vars refer to each other in a cycle: {cycle}")
        state[name] = 1
        for ref in planned[name].refs:
            if ref in by_name:
                visit(ref, (*trail, name))
        state[name] = 2
        order.append(planned[name])

    for var in own:
        visit(var.name, ())
    return order
