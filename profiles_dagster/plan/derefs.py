"""What a sql_template's `this.DeRef(path)` names, as pb resolves the path, and the step that holds it.

pb's paths: `inputs/<input>` (the input's table), `models/<sql model>`, `models/<id stitcher>` (its graph),
`models/<feature table>` (its view), `models/<cohort>` and `models/<cohort>/var_table`, `user/all` (the
ALL cohort) and `user/all/var_table` (the entity var table; `entity/user/...` too),
`inputs/<input>/var_table` (the input's var table: its rows with the entity's main id and input vars)
and `inputs/<input>/var_table/<column>` (one column of it, rendered as the column's name; the var table
holds the input's own columns too, so any name is one). Knowing the step lets the planner run the model
after it and the compiler name its material; the columns known of it let a `contract=` be checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiles_dagster.errors import did_you_mean
from profiles_dagster.plan.keys import StepKey
from profiles_dagster.project.model import Project
from profiles_dagster.project.templating import Contract


class DerefError(ValueError):
    """A DeRef path pb would not resolve here; `hint` suggests a close name."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class DerefTarget:
    """An input's own table (`input`) or a planned step's material (`step`); `column` when the path names
    one column of it. `entities` and `columns` are what is known of it (None: not known before a run)."""

    input: str | None = None
    step: StepKey | None = None
    column: str | None = None
    entities: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = None


def stitcher_entities(project: Project) -> dict[str, str]:
    """Id stitcher model name -> the entity whose graph it builds (a lent stitcher is its lender's)."""
    found = {}
    for entity in project.entities.values():
        if entity.stitcher is not None:
            found[entity.stitcher.name] = entity.stitcher.borrowed_from or entity.name
    return found


def resolve_deref(project: Project, path: str) -> DerefTarget:
    parts = path.split("/")
    if parts[0] == "entity" and len(parts) > 1 and parts[1] in project.entities:
        parts = parts[1:]  # pb's `entity/user/all/var_table` is `user/all/var_table`
    if parts[0] in project.entities:
        return _entity(project, path, parts)
    kind, name = parts[0], parts[1] if len(parts) > 1 else ""
    if kind not in ("inputs", "models") or not name or len(parts) > 4 or (len(parts) > 2 and parts[2] != "var_table"):
        raise DerefError(
            f"DeRef('{path}'): a sql_template reads inputs/<input>, models/<model> "
            "or inputs/<input>/var_table[/<column>]"
        )
    if kind == "inputs" and name not in project.inputs:
        raise DerefError(f"DeRef('{path}'): no input named '{name}'", did_you_mean(name, project.inputs))
    if len(parts) > 2:
        return _var_table(project, path, kind, name, parts[3] if len(parts) == 4 else None)
    if kind == "inputs":
        inp = project.inputs[name]
        return DerefTarget(input=name, entities=tuple(dict.fromkeys(i.entity for i in inp.ids)))
    if name in project.sql_models:
        ids = project.sql_models[name].ids
        return DerefTarget(step=StepKey.sql_model(name), entities=tuple(dict.fromkeys(i.entity for i in ids)))
    graphs = stitcher_entities(project)
    if name in graphs:
        entity = project.entities[graphs[name]]
        return DerefTarget(
            step=StepKey.id_stitcher(entity.name),
            entities=(entity.name,),
            columns=(entity.main_id_column, "other_id", "other_id_type", "valid_at"),
        )
    if name in project.cohorts:
        cohort = project.cohorts[name]
        return DerefTarget(step=StepKey.cohort(cohort.entity, name), entities=(cohort.entity,))
    if name in project.feature_tables:
        table = project.feature_tables[name]
        main = project.entities[table.entity].main_id_column if table.entity in project.entities else ""
        return DerefTarget(
            step=StepKey.view(table.entity, name),
            entities=(table.entity,),
            columns=(main, *table.spec.features),
        )
    known = [*project.sql_models, *graphs, *project.feature_tables, *project.cohorts]
    raise DerefError(
        f"DeRef('{path}'): no sql_template, id stitcher, cohort or feature table named '{name}'",
        did_you_mean(name, known),
    )


def _entity(project: Project, path: str, parts: list[str]) -> DerefTarget:
    """`user/all`: the ALL cohort's members; `user/all/var_table`: the entity var table (main id and vars)."""
    entity = project.entities[parts[0]]
    if parts[1:] == ["all"]:
        return DerefTarget(step=StepKey.all(entity.name), entities=(entity.name,), columns=(entity.main_id_column,))
    if parts[1:] == ["all", "var_table"]:
        # the default grain's var table: a coarser var_group's vars are in their own (pb's time_grain)
        names = [v.name for v in project.entity_vars(entity.name) if v.time_grain is None]
        return DerefTarget(
            step=StepKey.entity_vars(entity.name), entities=(entity.name,), columns=(entity.main_id_column, *names)
        )
    raise DerefError(
        f"DeRef('{path}'): of entity '{entity.name}' a sql_template reads {entity.name}/all or "
        f"{entity.name}/all/var_table"
    )


def _var_table(project: Project, path: str, kind: str, name: str, column: str | None) -> DerefTarget:
    """`<source>/var_table`: the source's rows with its entity's main id, planned once its id graph is;
    a cohort's: its var table."""
    if kind == "models" and name in project.cohorts and column is None:
        cohort = project.cohorts[name]
        return DerefTarget(step=StepKey.cohort_vars(cohort.entity, name), entities=(cohort.entity,))
    source = project.inputs.get(name) if kind == "inputs" else project.sql_models.get(name)
    if source is None:
        raise DerefError(f"DeRef('{path}'): no sql_template named '{name}'", did_you_mean(name, project.sql_models))
    entities = list(dict.fromkeys(i.entity for i in source.ids))
    if len(entities) != 1:
        which = f"ids of {len(entities)} entities ({', '.join(entities)})" if entities else "no ids"
        raise DerefError(f"DeRef('{path}'): '{name}' has {which}; its var table belongs to the entity of its ids")
    entity = project.entities[entities[0]]
    ivars = [v.name for v in project.input_vars(entity.name, f"{kind}/{name}")]
    if kind == "models" and not ivars:
        raise DerefError(
            f"DeRef('{path}'): sql model '{name}' has no input_vars, so no var table is built for it",
        )
    return DerefTarget(
        step=StepKey.input_vars_mapped(entity.name, name),
        column=column,
        entities=(entity.name,),
    )


def contract_problems(target: DerefTarget, contract: Contract) -> list[str]:
    """What the referenced material is known not to give of what the contract asks."""
    problems = []
    for entity in contract.with_entity_ids:
        if target.entities and entity not in target.entities:
            problems.append(f"it has no ids of entity '{entity}' (it has {', '.join(target.entities)})")
    if target.columns is not None:
        have = {c.lower() for c in target.columns}
        missing = [c for c in contract.with_columns if c.lower() not in have]
        if missing:
            problems.append(f"it has no column(s) {', '.join(missing)} (it has {', '.join(target.columns)})")
    return problems
