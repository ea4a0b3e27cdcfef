"""How the vars of one var table depend on each other: the order to compute them, cycles refused."""

from __future__ import annotations

from dataclasses import dataclass

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.model import Project, Var
from profiles_dagster.project.templating import TemplateContext, find_references


@dataclass(frozen=True)
class PlannedVar:
    var: Var
    refs: tuple[str, ...]  # names of other vars of the same table (or the entity table) it reads


def var_context(project: Project) -> TemplateContext:
    macros = {m.name: (m.inputs, m.value) for m in project.macros.values()}
    return TemplateContext(
        entities=tuple(project.entities),
        values={"end_time_sql": "end_time_sql", "begin_time_sql": "begin_time_sql"},
        macros=macros,
    )


def var_references(project: Project, var: Var) -> tuple[str, ...]:
    ctx = var_context(project)
    names: set[str] = set()
    for key in ("select", "where"):
        text = getattr(var.spec, key)
        if text:
            found = find_references(text, ctx, file=var.origin.file, line=var.origin.line, key=f"{var.name}.{key}")
            for entity, name in found.vars:
                if entity != var.entity:
                    raise ProfilesError(
                        f"var '{var.name}' refers to '{entity}.{name}' of another entity",
                        file=var.origin.file,
                        line=var.origin.line,
                        key=var.origin.key,
                    )
                names.add(name)
    return tuple(sorted(names))


def order_vars(project: Project, own: list[Var], inherited: list[str] = ()) -> list[PlannedVar]:
    """Topological order; references to `inherited` (e.g. entity vars from a cohort) are free."""
    by_name = {v.name: v for v in own}
    planned = {v.name: PlannedVar(v, var_references(project, v)) for v in own}
    for pv in planned.values():
        for ref in pv.refs:
            if ref not in by_name and ref not in inherited:
                from profiles_dagster.errors import did_you_mean

                raise ProfilesError(
                    f"var '{pv.var.name}' refers to undefined var '{ref}'",
                    file=pv.var.origin.file,
                    line=pv.var.origin.line,
                    key=pv.var.origin.key,
                    hint=did_you_mean(ref, [*by_name, *inherited]),
                )
    order: list[PlannedVar] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join((*trail[trail.index(name) :], name))
            var = by_name[name]
            raise ProfilesError(
                f"vars refer to each other in a cycle: {cycle}",
                file=var.origin.file,
                line=var.origin.line,
                key=var.origin.key,
            )
        state[name] = 1
        for ref in planned[name].refs:
            if ref in by_name:
                visit(ref, (*trail, name))
        state[name] = 2
        order.append(planned[name])

    for var in own:
        visit(var.name, ())
    return order
