"""Project -> RunPlan: pb's run steps 3-12 per entity plus custom SQL models, in dependency order."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from profiles_dagster.errors import ProfilesError, did_you_mean
from profiles_dagster.plan.derefs import DerefError, contract_problems, resolve_deref
from profiles_dagster.plan.payloads import (
    AllPayload,
    CohortPayload,
    FeaturesPayload,
    MappedPayload,
    StepPayload,
    VarTablePayload,
    ViewPayload,
)
from profiles_dagster.plan.steps import RunPlan, Step, StepKey, StepKind
from profiles_dagster.plan.vars import order_vars, var_context, var_references
from profiles_dagster.project.model import Cohort, FeatureTable, FeatureView, Origin, Project, SqlModel, Var
from profiles_dagster.project.templating import References, find_references
from profiles_dagster.project.timegrains import GRAINS

PLAN_VERSION = "2"  # bump when generated SQL changes meaning, so materials are not reused across it


def _hash(*parts: Any) -> str:
    text = json.dumps([PLAN_VERSION, *parts], sort_keys=True, default=_jsonable)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__ if k not in ("origin", "payload")}
    return str(value)


class _Builder:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.steps: dict[StepKey, Step] = {}
        self.sql_model_keys: dict[str, StepKey] = {}
        self.cohort_features: dict[str, list[str]] = {}  # cohort -> features it and its ancestors add
        # entity -> its coarser-grain var tables and their features (pb's var_group time_grain)
        self.coarser: dict[str, tuple[tuple[StepKey, tuple[str, ...]], ...]] = {}

    def add(
        self,
        key: StepKey,
        kind: StepKind,
        model_name: str,
        entity: str | None,
        deps: list[StepKey],
        definition: Any,
        *,
        payload: StepPayload,
        external: tuple[str, ...] = (),
        view: str | None = None,
        origin: Origin | None = None,
        description: str = "",
    ) -> StepKey:
        dep_hashes = [self.steps[d].content_hash for d in deps]
        step = Step(
            key=key,
            kind=kind,
            model_name=model_name,
            entity=entity,
            deps=tuple(dict.fromkeys(deps)),
            external_inputs=external,
            content_hash=_hash(kind, model_name, definition, dep_hashes, external),
            view_name=view,
            origin=origin,
            description=description,
            payload=payload,
        )
        self.steps[key] = step
        return key

    # -- sources -----------------------------------------------------------------------------------

    def source_step(self, entity: str, ref: str) -> StepKey:
        """The step whose material holds rows of `ref` attributed to a main id."""
        kind, _, name = ref.partition("/")
        if kind == "inputs":
            return StepKey.input_vars_mapped(entity, name)
        if name in self.project.sql_models and self.project.sql_models[name].time_grain:
            return self.grain_model_rows(entity, name)
        if StepKey.input_vars_mapped(entity, name) in self.steps:  # a sql model with input vars
            return StepKey.input_vars_mapped(entity, name)
        if name in self.project.sql_models:
            if name not in self.sql_model_keys:
                raise self.project.sql_models[name].origin.error(
                    f"sql model '{name}' reads the id graph of an entity planned after '{entity}', whose vars read it",
                )
            return self.sql_model_keys[name]
        return StepKey.id_stitcher(entity)

    def filter_deps(self, entity: str) -> list[StepKey]:
        """The sql models id_type `sql` filters of the entity read: every step that filters ids reads them."""
        deps = []
        for name in self.project.filter_models(entity):
            if name not in self.sql_model_keys:
                raise self.project.sql_models[name].origin.error(
                    f"sql model '{name}' is read by an id_type sql filter of '{entity}' but reads that id graph itself",
                )
            deps.append(self.sql_model_keys[name])
        return deps

    def sql_models(self) -> None:
        """Plan the sql models whose reads are planned. A model that reads an id stitcher (`DeRef("models/
        user_id_stitcher")`, an input's var table or a feature table, directly or through another model)
        waits for it: this runs again after each entity's stitcher, var tables and feature tables."""
        for model in _sql_models_in_order(self.project):
            if model.name in self.sql_model_keys:
                continue
            deps: list[StepKey] = []
            external: list[str] = []
            found = _references(self.project, model)
            for path in sorted(found.paths):
                try:
                    target = resolve_deref(self.project, path)
                except DerefError as exc:
                    raise _sql_origin(model).error(exc.message, hint=exc.hint) from None
                read = self.project.sql_models.get(path.split("/")[1]) if path.startswith("models/") else None
                if read is not None and read.time_grain is not None:
                    raise _sql_origin(model).error(
                        f"DeRef('{path}'): sql model '{read.name}' has time_grain '{read.time_grain}': a sql model "
                        "reading a coarser-grain model is not supported yet",
                        hint=f"read it through entity vars (`from: models/{read.name}`), or drop its time_grain",
                    )
                if target.input is not None:
                    external.append(target.input)
                elif target.step is not None:
                    deps.append(target.step)
            for path, contract in found.contracts:
                problems = contract_problems(resolve_deref(self.project, path), contract)
                if problems:
                    raise _sql_origin(model).error(
                        f"DeRef('{path}', contract=...): the contract is not met: {'; '.join(problems)}",
                    )
            if any(d not in self.steps for d in deps):
                continue  # planned once what it reads is (after the entity whose id graph it reads)
            key = self.add(
                StepKey.sql_model(model.name),
                StepKind.SQL_MODEL,
                model.name,
                None,
                deps,
                model.spec,
                external=tuple(dict.fromkeys(external)),
                origin=model.origin,
                view=model.name if model.output_type in ("table", "view") else None,
                description=f"Custom SQL model {model.name}",
                payload=model,
            )
            if model.time_grain is not None:  # pb builds it only as of its grain's boundary: that copy alone
                view = self.steps[key].view_name
                grained = self.at_grain(key, model.time_grain)
                del self.steps[key]
                self.steps[grained] = replace(self.steps[grained], view_name=view)
                key = grained
            self.sql_model_keys[model.name] = key

    # -- one entity ----------------------------------------------------------------------------------

    def entity(self, name: str) -> None:
        project = self.project
        entity = project.entities[name]
        stitcher = entity.stitcher
        assert stitcher is not None
        inputs_with_ids = [i for i in project.inputs.values() if any(x.entity == name for x in i.ids)]
        id_types = {n: t for n, t in entity.id_types.items()}
        for inp in inputs_with_ids:
            self.add(
                StepKey.input_vars(name, inp.name),
                StepKind.INPUT_VARS,
                f"{name}_{inp.name}_input_vars",
                name,
                [],
                (inp.spec, [id_types[i.type] for i in inp.ids if i.entity == name and i.type in id_types]),
                external=(inp.name,),
                origin=inp.origin,
                description=f"Input var table of {inp.name}: its rows with a stable row id",
                payload=inp,
            )
        if stitcher.is_default:
            stitcher = replace(stitcher, edge_sources=(*stitcher.edge_sources, *self.default_model_sources(name)))
        self.check_grain_models(name, stitcher.edge_sources)
        edge_deps = []
        for src in stitcher.edge_sources:
            kind, _, sname = src.partition("/")
            if kind != "inputs" and sname not in self.sql_model_keys:
                raise project.sql_models[sname].origin.error(
                    f"sql model '{sname}' is an edge source of id stitcher '{stitcher.name}' and reads an id graph "
                    "that is not built before it (a stitcher cannot read its own output)",
                )
            edge_deps.append(StepKey.input_vars(name, sname) if kind == "inputs" else self.sql_model_keys[sname])
        if stitcher.borrowed_from is not None:  # re-stitches the lender's graph; the view is the lender's
            edge_deps.append(StepKey.id_stitcher(stitcher.borrowed_from))
        edge_deps += self.filter_deps(name)
        stitch_key = self.add(
            StepKey.id_stitcher(name),
            StepKind.ID_STITCHER,
            stitcher.name,
            name,
            edge_deps,
            (stitcher.spec, stitcher.edge_sources, entity.main_id_column, id_types)
            + ((stitcher.borrowed_from,) if stitcher.borrowed_from else ()),
            view=stitcher.name if stitcher.borrowed_from is None else None,
            origin=stitcher.origin,
            description=f"Identity graph of {name}: one row per id with its {entity.main_id_column}",
            external=project.filter_inputs(name),
            payload=stitcher,
        )
        self.sql_models()  # the models that read this id graph
        all_key = self.add(
            StepKey.all(name),
            StepKind.ALL,
            f"{name}_all",
            name,
            [stitch_key],
            entity.main_id_column,
            view=f"{name}_all",
            description=f"ALL cohort: one row per {name}",
            payload=AllPayload(stitch_key),
        )
        for inp in inputs_with_ids:
            ivars = project.input_vars(name, f"inputs/{inp.name}")
            planned = order_vars(project, ivars)
            rows_key = StepKey.input_vars(name, inp.name)
            self.add(
                StepKey.input_vars_mapped(name, inp.name),
                StepKind.INPUT_VARS_MAPPED,
                f"{name}_{inp.name}_mapped",
                name,
                [rows_key, stitch_key, *self.filter_deps(name)],
                [pv.var.spec for pv in planned],
                origin=inp.origin,
                description=f"{inp.name} rows with {entity.main_id_column} and input vars",
                external=project.filter_inputs(name),
                payload=MappedPayload(inp, rows_key, stitch_key, tuple(planned)),
            )
        self.sql_models()  # the models that read an input's var table (`inputs/<input>/var_table`)
        for model in project.sql_models.values():  # pb allows input_vars on a sql model with ids of the entity
            ivars = project.input_vars(name, f"models/{model.name}")
            if not ivars:
                continue
            if model.name not in self.sql_model_keys:
                raise (
                    ivars[0]
                    .origin.at("from")
                    .error(
                        f"input_var on sql model '{model.name}', which reads an id graph built after {name}'s",
                    )
                )
            planned = order_vars(project, ivars)
            rows_key = self.sql_model_keys[model.name]
            self.add(
                StepKey.input_vars_mapped(name, model.name),
                StepKind.INPUT_VARS_MAPPED,
                f"{name}_{model.name}_mapped",
                name,
                [rows_key, stitch_key, *self.filter_deps(name)],
                [pv.var.spec for pv in planned],
                origin=model.origin,
                description=f"{model.name} rows with {entity.main_id_column} and input vars",
                external=project.filter_inputs(name),
                payload=MappedPayload(model, rows_key, stitch_key, tuple(planned)),
            )
        for var in project.vars:
            source = var.spec.from_ or ""
            on_graph = source.partition("/")[2] not in project.sql_models and not source.startswith("inputs/")
            if var.entity == name and var.kind == "input_var" and on_graph:
                raise var.origin.at("from").error(
                    "an input_var reads an input or a sql model; an id stitcher's graph has no rows of its own",
                )
        entity_vars = [v for v in project.entity_vars(name) if v.time_grain is None]
        grained = _by_grain(project.entity_vars(name))
        self.check_grains(name, entity_vars, grained)
        var_key = self.var_table(
            StepKey.entity_vars(name), f"{name}_var_table", name, None, entity_vars, all_key, [stitch_key]
        )
        features = [pv.var.name for pv in self.var_payload(var_key).vars if pv.var.is_feature]
        # pb: a var_group of a coarser time_grain is its own var table, computed with everything it reads as
        # of that grain's last boundary; the feature table LEFT JOINs it on the main id
        coarser: list[tuple[StepKey, tuple[str, ...]]] = []
        for grain, own in grained.items():
            key = self.var_table(
                StepKey.entity_vars(name), f"{name}_var_table", name, None, own, all_key, [stitch_key], grain=grain
            )
            coarser.append((key, tuple(pv.var.name for pv in self.var_payload(key).vars if pv.var.is_feature)))
        grain_features = [f for _, names in coarser for f in names]
        self.coarser[name] = tuple(coarser)
        feat_key = self.add(
            StepKey.features(name),
            StepKind.FEATURES,
            f"{name}_feature_table",
            name,
            [var_key, *(key for key, _ in coarser)],
            (features, coarser) if coarser else features,
            description=f"Feature table of {name}: its is_feature vars",
            payload=FeaturesPayload(var_key, tuple(features), tuple(coarser)),
        )
        features = [*features, *grain_features]
        cohort_views = [self.cohort(c, all_key, var_key, stitch_key) for c in _cohorts_in_order(project, name)]
        for view in project.feature_views(name):  # step 12 comes after the cohorts (10, 11)
            self.view(view, feat_key, stitch_key, self.view_order(name, features), [])
        for add_views in cohort_views:
            add_views(self.view_order(name, features))
        for table in project.feature_tables.values():
            if table.entity == name and table.cohort is None:
                self.feature_table(table, var_key)
        self.sql_models()  # the models that read a feature table of the entity

    def grain_model_rows(self, entity: str, name: str) -> StepKey:
        """The rows of a sql model of a coarser grain with the entity's main id, as pb attributes them: by the id
        graph of that grain's boundary (pb's `models/<m>/var_table` at the model's grain). Vars of the default
        grain read them; a profile that graph does not know gets none of the model's rows."""
        model = self.project.sql_models[name]
        grain = model.time_grain
        assert grain is not None
        key = StepKey.input_vars_mapped(entity, name).at(grain)
        if key not in self.steps:
            stitch = self.at_grain(StepKey.id_stitcher(entity), grain)
            filters = [self.at_grain(d, grain) for d in self.filter_deps(entity)]
            self.add(
                key,
                StepKind.INPUT_VARS_MAPPED,
                f"{entity}_{name}_mapped",
                entity,
                [self.sql_model_keys[name], stitch, *filters],
                (grain, name),
                origin=model.origin,
                description=f"{name} rows with {self.project.entities[entity].main_id_column} as of the last "
                f"{grain} boundary",
                external=self.project.filter_inputs(entity),
                payload=MappedPayload(model, StepKey.sql_model(name), StepKey.id_stitcher(entity), ()),
            )
        return key

    def check_grain_models(self, entity: str, edge_sources: Iterable[str]) -> None:
        """How a sql model of a coarser grain may be read here: by entity vars (`from:`) of the default grain or
        of its own grain. As an id graph's edge source, an id_type filter's table, or with input_vars on it,
        pb's meaning was not observed: refused."""
        models = self.project.sql_models

        def refuse(name: str, how: str) -> ProfilesError:
            model = models[name]
            return model.origin.at("model_spec.time_grain").error(
                f"sql model '{name}' has time_grain '{model.time_grain}' and {how}: not supported yet",
                hint="drop its time_grain, or read it only through entity vars",
            )

        for ref in edge_sources:
            kind, _, name = ref.partition("/")
            if kind == "models" and models[name].time_grain:
                raise refuse(name, f"is an edge source of {entity}'s id stitcher (set `to_default_stitcher: false`)")
        for name in self.project.filter_models(entity):
            if models[name].time_grain:
                raise refuse(name, f"an id_type sql filter of {entity} reads it")
        for var in self.project.vars:
            kind, _, name = (var.spec.from_ or "").partition("/")
            if var.entity != entity or kind != "models" or name not in models or not models[name].time_grain:
                continue
            if var.kind == "input_var":
                raise refuse(name, f"input_var '{var.name}' is computed on its rows")
            if var.cohort is not None:
                raise refuse(name, f"cohort var '{var.name}' reads it")
            if var.time_grain not in (None, models[name].time_grain):
                raise refuse(name, f"var '{var.name}' of time_grain '{var.time_grain}' reads it")

    def check_grains(self, entity: str, default: list[Var], grained: dict[str, list[Var]]) -> None:
        """What pb's coarser var_group grain cannot be given its meaning here: refused, naming the var.

        pb computes a coarser group's vars in their own var table as of the grain's boundary, so a var may read
        only the vars of its own table."""
        grain_of = {v.name: v.time_grain for vars_ in grained.values() for v in vars_}
        if not grain_of:
            return
        for var in [*default, *(v for vars_ in grained.values() for v in vars_)]:
            for ref in var_references(self.project, var):
                if (ref in grain_of and grain_of[ref] != var.time_grain) or (ref not in grain_of and var.time_grain):
                    mine = f"time_grain '{var.time_grain}'" if var.time_grain else "the default time grain"
                    theirs = f"time_grain '{grain_of[ref]}'" if ref in grain_of else "the default time grain"
                    raise var.origin.at("select").error(
                        f"var '{var.name}' ({mine}) refers to '{ref}' ({theirs}): pb computes each time grain's "
                        "vars in their own var table, as of its own boundary; a var reading another grain's var "
                        "is not supported",
                        hint="put both vars in var_groups of the same time_grain",
                    )

    def at_grain(self, key: StepKey, grain: str) -> StepKey:
        """The step `key` computed as of `grain`'s last boundary, and so everything it reads: a copy keyed
        `<key>/at_<grain>` reading the copies of its own reads (built once per grain, whoever reads it). Its
        payload keeps the default grain's keys: the compiler reads them through the grain (sql/compiler.py)."""
        gkey = key.at(grain)
        if gkey in self.steps:
            return gkey
        step = self.steps[key]
        deps = tuple(self.at_grain(d, grain) for d in step.deps)
        self.steps[gkey] = replace(
            step,
            key=gkey,
            deps=deps,
            view_name=None,  # the stable views show the default grain's steps
            content_hash=_hash("time_grain", grain, step.content_hash, [self.steps[d].content_hash for d in deps]),
            description=f"{step.description} (as of the last {grain} boundary)",
        )
        return gkey

    def default_model_sources(self, entity: str) -> list[str]:
        """pb's default stitcher reads the sql models with ids of the entity too (pb 0.26.4: its dependencies
        are every input and sql model with such ids; a model that reads the entity's graph is a cycle there).
        Those planned before the graph (reading no id graph) are its edge sources here; a disabled one is left
        out, as pb leaves it (an `only_if_necessary` one is then built: the graph reads it, as in pb)."""

        def disabled(model: SqlModel) -> bool:
            if model.name in self.project.enable_overrides:
                return self.project.enable_overrides[model.name][0] == "disabled"
            mat = model.spec.materialization
            return mat is not None and mat.enable_status == "disabled"

        return [
            f"models/{name}"
            for name, model in self.project.sql_models.items()
            if name in self.sql_model_keys
            and not disabled(model)
            and any(i.entity == entity and i.type != "rudder_id" and i.to_default_stitcher for i in model.ids)
        ]

    def view_order(self, entity: str, features: Iterable[str]) -> list[str]:
        """pb's order of features in a view: by the path of what computes them (`models/<m>` for a sql
        model's `features:`, `<entity>/all/var_table` for entity vars), then by name."""
        source = {v.name: f"models/{v.feature_of}" for v in self.project.vars if v.entity == entity and v.feature_of}
        return sorted(set(features), key=lambda n: (source.get(n, f"{entity}/all/var_table"), n))

    def var_payload(self, key: StepKey) -> VarTablePayload:
        return self.steps[key].payload_as(VarTablePayload)

    def var_columns(self, key: StepKey) -> list[str]:
        """Every var column of a var table: inherited ones first, then its own."""
        payload = self.var_payload(key)
        return [*payload.inherited, *(n for _, names in payload.coarser for n in names), *payload.declared]

    def var_table(
        self,
        key: StepKey,
        model_name: str,
        entity: str,
        cohort: str | None,
        own: list[Var],
        base: StepKey,
        extra_deps: list[StepKey],
        inherit_from: StepKey | None = None,
        grain: str | None = None,
        coarser: tuple[tuple[StepKey, tuple[str, ...]], ...] = (),
    ) -> StepKey:
        """A var table; with `grain`, the one of a coarser var_group's vars, as of that grain's boundary."""
        inherited = self.var_columns(inherit_from) if inherit_from else []
        planned = order_vars(self.project, own, inherited)
        deps = [base, *extra_deps]
        for pv in planned:
            if pv.var.spec.from_:
                deps.append(self.source_step(entity, pv.var.spec.from_))
        payload = VarTablePayload(
            entity, cohort, tuple(planned), tuple(inherited), tuple(v.name for v in own), inherit_from, coarser
        )
        what = f"cohort {cohort}" if cohort else entity
        deps = [*deps, *(d for d in self.filter_deps(entity) if d not in deps), *(k for k, _ in coarser)]
        definition: Any = [pv.var.spec for pv in planned]
        if coarser:
            definition = (definition, coarser)
        if grain is not None:
            key, deps, definition = key.at(grain), [self.at_grain(d, grain) for d in deps], (grain, definition)
            what += f", vars of time_grain {grain} as of its last boundary"
        return self.add(
            key,
            StepKind.COHORT_VARS if cohort else StepKind.ENTITY_VARS,
            model_name,
            entity,
            deps,
            definition,
            description=f"Entity var table of {what}",
            external=self.project.filter_inputs(entity),
            payload=payload,
        )

    def cohort(
        self, cohort: Cohort, all_key: StepKey, var_key: StepKey, stitch_key: StepKey
    ) -> Callable[[list[str]], None]:
        """Add the cohort and its var table; return what adds its feature views (step 12, added later).

        A cohort filters its parent's members on the parent's vars (the entity's for `<entity>/all`),
        and its var table carries every var of the parent's along with its own.
        """
        name = cohort.entity
        if cohort.extends is None:
            parent, parent_vars = all_key, var_key
        else:
            parent, parent_vars = StepKey.cohort(name, cohort.extends), StepKey.cohort_vars(name, cohort.extends)
        known = self.var_columns(parent_vars)
        grained = {n: k.grain for k, names in self.coarser.get(name, ()) for n in names}
        for n, text in enumerate(_cohort_filter_texts(cohort)):
            at = cohort.origin.at("model_spec")
            found = find_references(text, var_context(self.project), file=at.file, line=at.line, key=at.key)
            for entity, var in sorted(found.vars):
                if entity == name and var in grained:
                    raise at.error(
                        f"cohort filter {n + 1} refers to '{entity}.{var}', of time_grain '{grained[var]}': a cohort "
                        "filtered on a coarser grain's var is not supported yet (pb's cohorts filter the default "
                        "grain's var table)",
                        hint="filter on a var of the default time grain",
                    )
                if entity != name or var not in known:
                    raise at.error(
                        f"cohort filter {n + 1} refers to '{entity}.{var}', which is not a var of "
                        f"{'the ' + name + ' entity' if cohort.extends is None else 'cohort ' + cohort.extends}",
                        hint=did_you_mean(var, known),
                    )
        key = self.add(
            StepKey.cohort(name, cohort.name),
            StepKind.COHORT,
            f"{name}_{cohort.name}",
            name,
            [parent, parent_vars],
            cohort.spec,
            view=f"{name}_{cohort.name}",
            origin=cohort.origin,
            description=f"Members of cohort {cohort.name}",
            payload=CohortPayload(cohort, parent, parent_vars),
        )
        own = self.project.entity_vars(name, cohort.name)
        cvars = self.var_table(
            StepKey.cohort_vars(name, cohort.name),
            f"{cohort.name}_var_table",
            name,
            cohort.name,
            own,
            key,
            [parent_vars, stitch_key],
            inherit_from=parent_vars,
            coarser=self.coarser.get(name, ()) if cohort.extends is None else (),
        )
        for table in self.project.feature_tables.values():
            if table.cohort == cohort.name:
                self.feature_table(table, cvars)
        own_features = [pv.var.name for pv in self.var_payload(cvars).vars if pv.var.is_feature]
        # a derived cohort's views carry the features its ancestors added too
        inherited_features = list(self.cohort_features.get(cohort.extends or "", []))
        self.cohort_features[cohort.name] = [*inherited_features, *own_features]

        def add_views(entity_features: list[str]) -> None:
            rest = self.view_order(name, [*entity_features, *inherited_features])
            for view in self.project.cohort_feature_views(cohort.name):
                self.view(view, cvars, stitch_key, own_features, rest)

        return add_views

    def view(
        self,
        view: FeatureView,
        source: StepKey,
        stitch_key: StepKey,
        first: list[str],
        rest: list[str],
        origin: Origin | None = None,
        coarser: tuple[tuple[StepKey, tuple[str, ...]], ...] = (),
        valid_at: bool = False,
    ) -> None:
        columns = [*first, *(c for c in rest if c not in first)]
        deps = [source] + ([stitch_key] if view.id_type else []) + [k for k, _ in coarser]
        entity = view.entity
        self.add(
            StepKey.view(entity, view.name),
            StepKind.VIEW,
            view.name,
            entity,
            deps,
            (view, columns, coarser, *(["valid_at"] if valid_at else [])) if coarser or valid_at else (view, columns),
            view=view.name,
            origin=origin,
            description=f"Feature view keyed by {view.id_type or 'the main id'}",
            payload=ViewPayload(view, tuple(columns), source, stitch_key if view.id_type else None, coarser, valid_at),
        )

    def feature_table(self, table: FeatureTable, var_key: StepKey) -> None:
        """pb's feature_table_model: the main id, the run's end time as `valid_at` and the listed vars, in the
        listed order. A var of a coarser
        var_group comes from its own var table, LEFT JOINed on the main id (pb 0.26.4, observed)."""
        known = [pv.var.name for pv in self.var_payload(var_key).vars]
        owner = f"cohort '{table.cohort}'" if table.cohort else f"'{table.entity}'"
        in_grain: dict[str, StepKey] = {}  # a coarser var -> its var table
        if table.cohort is None:
            for key, _ in self.coarser.get(table.entity, ()):
                in_grain.update({pv.var.name: key for pv in self.var_payload(key).vars})
        coarser = {v.name: v.time_grain for v in self.project.vars if v.entity == table.entity and v.time_grain}
        for n, name in enumerate(table.spec.features):
            if name in coarser and name not in in_grain:
                raise table.origin.at(f"model_spec.features[{n}]").error(
                    f"feature '{name}' has time_grain '{coarser[name]}': a cohort's feature_table_model over a "
                    "coarser grain's vars is not supported yet",
                    hint="list it in the entity's feature table instead, or drop its var_group's time_grain",
                )
            if name not in known and name not in in_grain:
                at = table.origin.at(f"model_spec.features[{n}]")
                raise at.error(
                    f"feature '{name}' is not an entity var of {owner}",
                    hint=did_you_mean(name, known),
                )
        joins: dict[StepKey, list[str]] = {}
        for name in table.spec.features:
            if name in in_grain:
                joins.setdefault(in_grain[name], []).append(name)
        view = FeatureView(table.name, table.entity, table.cohort, None)
        grained = tuple((key, tuple(names)) for key, names in joins.items())
        self.view(
            view, var_key, var_key, list(table.spec.features), [], origin=table.origin, coarser=grained, valid_at=True
        )


def _by_grain(vars_: list[Var]) -> dict[str, list[Var]]:
    """The vars of coarser var_groups by their grain, finest grain first."""
    found: dict[str, list[Var]] = {}
    for var in vars_:
        if var.time_grain is not None:
            found.setdefault(var.time_grain, []).append(var)
    return {g: found[g] for g in GRAINS if g in found}


def _cohort_filter_texts(cohort: Cohort) -> list[str]:
    """Every SQL condition of a cohort: filter_pipeline values and filter_expression leaves."""
    texts = [f.value if f.value is not None else (f.sql or "") for f in cohort.spec.filter_pipeline]

    def leaves(node: object) -> None:
        if isinstance(node, str):
            texts.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                leaves(value)
        elif isinstance(node, list):
            for value in node:
                leaves(value)

    leaves(cohort.spec.filter_expression)
    return texts


def _sql_origin(model: SqlModel) -> Origin:
    return model.origin.at("model_spec.single_sql" if model.spec.single_sql else "model_spec.multi_sql")


def _references(project: Project, model: SqlModel) -> References:
    text = model.spec.single_sql or model.spec.multi_sql or ""
    at = _sql_origin(model)
    return find_references(text, var_context(project), file=at.file, line=at.line, key=at.key)


def _derefs(project: Project, model: SqlModel) -> list[str]:
    return sorted(_references(project, model).paths)


def _entities_in_order(project: Project) -> list[str]:
    """A lent stitcher's entity first; an entity whose vars or ids come from a sql model after the entities
    whose steps that model reads (`DeRef("models/session_features")` in a model user's vars read)."""
    lenders = {e.stitcher.borrowed_from for e in project.entities.values() if e.stitcher}
    reads: dict[str, set[str]] = {}  # sql model -> entities whose steps it reads, through other models too

    def entities_read(model: str, trail: tuple[str, ...] = ()) -> set[str]:
        if model not in reads:
            reads[model] = set()
            for path in _derefs(project, project.sql_models[model]):
                try:
                    target = resolve_deref(project, path)
                except DerefError:
                    continue  # reported where the model is planned
                if target.step == StepKey.sql_model(path.split("/")[1]) and model not in trail:
                    reads[model] |= entities_read(path.split("/")[1], (*trail, model))
                elif target.step is not None:
                    reads[model] |= set(target.entities)
        return reads[model]

    needs: dict[str, set[str]] = {name: set() for name in project.entities}
    for var in project.vars:
        kind, _, source = (var.spec.from_ or "").partition("/")
        if kind == "models" and source in project.sql_models and var.entity in needs:
            needs[var.entity] |= entities_read(source) - {var.entity}
    for model in project.sql_models.values():
        for entity in {i.entity for i in model.ids} & set(needs):
            needs[entity] |= entities_read(model.name) - {entity}
    order: list[str] = []
    pending = sorted(project.entities, key=lambda n: n not in lenders)
    while pending:
        ready = next((n for n in pending if needs[n] <= set(order)), pending[0])  # a cycle: reported later
        order.append(ready)
        pending.remove(ready)
    return order


def _sql_models_in_order(project: Project) -> list[SqlModel]:
    order: list[SqlModel] = []
    seen: dict[str, int] = {}

    def visit(model: SqlModel, trail: tuple[str, ...]) -> None:
        if seen.get(model.name) == 2:
            return
        if seen.get(model.name) == 1:
            raise model.origin.error(
                f"sql models read each other in a cycle: {' -> '.join((*trail, model.name))}",
            )
        seen[model.name] = 1
        for path in _derefs(project, model):
            kind, _, name = path.partition("/")
            if kind == "models" and name in project.sql_models:
                visit(project.sql_models[name], (*trail, model.name))
        seen[model.name] = 2
        order.append(model)

    for model in project.sql_models.values():
        visit(model, ())
    return order


def _cohorts_in_order(project: Project, entity: str) -> list[Cohort]:
    mine = [c for c in project.cohorts.values() if c.entity == entity]
    order: list[Cohort] = []
    placed: set[str] = set()
    while len(order) < len(mine):
        for c in mine:
            if c.name not in placed and (c.extends is None or c.extends in placed):
                order.append(c)
                placed.add(c.name)
    return order


def build_plan(project: Project) -> RunPlan:
    builder = _Builder(project)
    builder.sql_models()  # those that read no id graph
    for name in _entities_in_order(project):
        builder.entity(name)
    for model in project.sql_models.values():
        if model.name not in builder.sql_model_keys:  # it reads a model that waits for it: a cycle
            raise _sql_origin(model).error(
                f"sql model '{model.name}' cannot be planned: what it reads depends on it (through an id stitcher)",
            )
    for table in project.feature_tables.values():
        if table.entity not in project.entities:
            at = table.origin.at("model_spec.entity_key")
            raise at.error(
                f"unknown entity '{table.entity}'",
                hint=did_you_mean(table.entity, project.entities),
            )
    steps = list(builder.steps.values())  # insertion order is a topological order
    steps, notes = _apply_enable_status(project, steps)
    return RunPlan(project.name, steps, notes)


@dataclass(frozen=True)
class _Enabled:
    name: str
    status: str
    origin: Origin
    keys: tuple[StepKey, ...]  # the model's own step first, then the steps that are part of it


def _enable_statuses(project: Project) -> list[_Enabled]:
    """Models whose `materialization.enable_status` leaves them out of a run (pb's disabled, only_if_necessary)."""
    found: list[tuple[str, Any, Origin, tuple[StepKey, ...]]] = []

    def status_of(name: str, spec: Any, origin: Origin) -> tuple[str | None, Origin]:
        """A package override's status (and where it is set), else the model's own enable_status."""
        if name in project.enable_overrides:
            return project.enable_overrides[name]
        mat = getattr(spec, "materialization", None)
        return (mat.enable_status if mat is not None else None), origin.at("model_spec.materialization.enable_status")

    for model in project.sql_models.values():
        found.append((model.name, model.spec, model.origin, (StepKey.sql_model(model.name),)))
    for cohort in project.cohorts.values():
        own = StepKey.cohort(cohort.entity, cohort.name)
        views = tuple(StepKey.view(cohort.entity, v.name) for v in project.cohort_feature_views(cohort.name))
        found.append(
            (cohort.name, cohort.spec, cohort.origin, (own, StepKey.cohort_vars(cohort.entity, cohort.name), *views))
        )
    for ft in project.feature_tables.values():
        found.append((ft.name, ft.spec, ft.origin, (StepKey.view(ft.entity, ft.name),)))
    for entity in project.entities.values():
        stitcher = entity.stitcher
        if stitcher is not None and stitcher.spec is not None and stitcher.origin is not None:
            found.append((stitcher.name, stitcher.spec, stitcher.origin, (StepKey.id_stitcher(entity.name),)))
    out = []
    for name, spec, origin, keys in found:
        status, where = status_of(name, spec, origin)
        if status in ("disabled", "only_if_necessary"):
            out.append(_Enabled(name, status, where, keys))
    return out


def _apply_enable_status(project: Project, steps: list[Step]) -> tuple[list[Step], list[str]]:
    """pb's enable_status: a `disabled` model is not built, and an `only_if_necessary` one only when a
    model that is built reads it. A built step reading a disabled model is an error (pb would quietly
    leave the reader out too), and every model left out is named in a note."""
    statuses = _enable_statuses(project)
    if not statuses:
        return steps, []
    notes: list[str] = []
    removed: set[StepKey] = set()
    for item in statuses:
        if item.status == "disabled":
            removed.update(item.keys)
            notes.append(f"model '{item.name}' ({item.origin}) has enable_status: disabled: not built, as with pb")
    for step in steps:
        if step.key in removed:
            continue
        for dep in step.deps:
            if dep in removed:
                owner = next(i for i in statuses if dep in i.keys)
                raise owner.origin.error(
                    f"model '{owner.name}' is disabled, but {step.path} reads it",
                    hint="enable it (must_have, good_to_have or only_if_necessary) or disable what reads it too",
                )
    optional = [i for i in statuses if i.status == "only_if_necessary"]
    changed = True
    while changed:
        changed = False
        read = {dep for s in steps if s.key not in removed for dep in s.deps}
        for item in optional:
            if item.keys[0] not in removed and not any(k in read for k in item.keys):
                removed.update(item.keys)
                changed = True
                notes.append(
                    f"model '{item.name}' ({item.origin}) has enable_status: only_if_necessary and no built model "
                    "reads it: not built, as with pb"
                )
    return [s for s in steps if s.key not in removed], notes


def model_refs(plan: RunPlan) -> dict[str, set[StepKey]]:
    """pb's model references (`pb show models` paths, as `--model_refs` takes them) -> the steps they stand for.

    `models/<name>` for sql models, id stitchers, cohorts, feature tables and feature views; pb's own
    paths (`<entity>/all`, `<entity>/all/<var>`, `<entity>/all/<view>`, `inputs/<name>`); and each step's path.
    """
    refs: dict[str, set[StepKey]] = {}

    def add(ref: str, *keys: StepKey) -> None:
        refs.setdefault(ref, set()).update(keys)

    for step in plan.steps:
        add(step.path, step.key)
        entity = step.entity or ""
        if step.kind is StepKind.SQL_MODEL:
            add(f"models/{step.model_name}", step.key)
        elif step.kind is StepKind.ID_STITCHER:
            add(f"models/{step.model_name}", step.key)
            add(f"{entity}/{step.model_name}", step.key)
        elif step.kind is StepKind.ALL:
            add(f"{entity}/all", step.key)
        elif step.kind is StepKind.INPUT_VARS:
            add(f"inputs/{step.key.name}", step.key)
        elif step.kind is StepKind.INPUT_VARS_MAPPED:
            owner = "models" if isinstance(step.payload_as(MappedPayload).input, SqlModel) else "inputs"
            add(f"{owner}/{step.key.name}/var_table", step.key)
        elif step.kind is StepKind.ENTITY_VARS:
            add(f"{entity}/all/var_table", step.key)
            for pv in step.payload_as(VarTablePayload).vars:
                add(f"{entity}/all/{pv.var.name}", step.key)
        elif step.kind is StepKind.COHORT:
            add(f"models/{step.key.name}", step.key)
            add(f"{entity}/{step.key.name}", step.key)
        elif step.kind is StepKind.COHORT_VARS:
            add(f"models/{step.key.name}/var_table", step.key)
        elif step.kind is StepKind.VIEW:
            add(f"models/{step.model_name}", step.key)
            add(f"{entity}/all/{step.model_name}", step.key)
    return refs
