"""Reads a Profiles project folder into a checked `Project`; every problem names file, line and key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from profiles_dagster.errors import ErrorCollector, FailedDependencyError, ProfilesError, did_you_mean
from profiles_dagster.project.model import (
    Cohort,
    Entity,
    FeatureTable,
    IdStitcher,
    Input,
    Origin,
    Project,
    SqlModel,
    Var,
)
from profiles_dagster.project.schema import (
    MODEL_SPECS,
    REFUSED_MODEL_TYPES,
    CohortSpec,
    EntityVarDef,
    FeatureTableSpec,
    IdStitcherSpec,
    ModelsFile,
    PackageDef,
    PbProjectFile,
    SqlTemplateSpec,
)
from profiles_dagster.project.settings import load_settings
from profiles_dagster.project.templating import TemplateContext, render
from profiles_dagster.project.timegrains import GRAINS, finer
from profiles_dagster.project.validation import validate_document
from profiles_dagster.project.yaml_source import KeyPath, YamlDocument, format_key_path, read_text, read_yaml

PROJECT_FILE = "pb_project.yaml"
SUPPORTED_SCHEMA_VERSION = 99
_TOLERATED_KEYS = ("python_requirements", "retention_period", "allow_beta", "available_tags")


def load_project(project_dir: str | Path) -> Project:
    """Every independent problem is collected (per entity, input, model, var and file) and raised together as
    one `ProfilesErrors`; a problem in pb_project.yaml itself stops the load, as everything depends on it."""
    root = Path(project_dir).resolve()
    project_path = root / PROJECT_FILE
    if not project_path.is_file():
        raise ProfilesError(f"no {PROJECT_FILE} in {root}", file=project_path)
    doc = read_yaml(project_path, _render_project_file(project_path))
    if isinstance(doc.data, dict) and "include_untimed" in doc.data:
        raise doc.error(
            "include_untimed is not a key of pb_project.yaml at schema_version 99: pb's migration removed it "
            "and pb 0.26 rejects it",
            ("include_untimed",),
            hint="delete the line; rows whose occurred_at_col is NULL are always read (pb's include_untimed: true)",
        )
    pb = validate_document(doc, PbProjectFile, doc.data, ())
    if pb.schema_version != SUPPORTED_SCHEMA_VERSION:
        raise doc.error(
            f"schema_version {pb.schema_version} is not supported",
            ("schema_version",),
            hint=f"migrate the project to schema_version {SUPPORTED_SCHEMA_VERSION} with `pb migrate auto`",
        )
    if pb.default_time_grain is not None and pb.default_time_grain not in GRAINS:
        raise doc.error(
            f"unknown time grain '{pb.default_time_grain}'",
            ("default_time_grain",),
            hint=f"pb's timegrains, finest first: {', '.join(GRAINS)}",
        )
    project = Project(root=root, file=pb, origin=Origin(project_path, 1, ""), settings=load_settings(root))
    project.notes.extend(
        f"{key} is accepted and not acted on" for key in _TOLERATED_KEYS if getattr(pb, key) is not None
    )
    errors = ErrorCollector()
    _load_entities(project, doc, errors)
    for id_type in pb.id_types:
        if id_type.extends:
            project.notes.append(
                f"id_type '{id_type.name}' extends '{id_type.extends}': only its own filters apply, as with pb 0.26 "
                "(it does not inherit the extended type's filters)"
            )
    for folder_index, folder in enumerate(pb.model_folders):
        folder_path = root / folder
        if not folder_path.is_dir():
            errors.add(doc.error(f"model folder '{folder}' does not exist", ("model_folders", folder_index)), "*")
            continue
        for path in sorted(folder_path.rglob("*.y*ml")):
            if path.suffix in (".yaml", ".yml") and not path.is_symlink():
                _load_file(project, path, errors)
    owned: list[tuple[set[str], list[Var]]] = []  # per package: the models and vars it brought
    for index, package in enumerate(pb.packages):
        models_before, vars_before = set(_model_names(project)), len(project.vars)
        with errors.item("*"):  # what a package defines is unknown until it loads
            _load_package(project, doc, package, index, errors)
        owned.append((set(_model_names(project)) - models_before, project.vars[vars_before:]))
    for index, package in enumerate(pb.packages):
        with errors.item():
            _apply_overrides(project, doc, package, index, *owned[index])
    _add_default_stitchers(project, doc, errors)
    _check_filter_sources(project, doc, errors)
    _check_references(project, errors)
    _check_contracts(project, errors)
    _check_merges(project, errors)
    errors.raise_if_any()
    project.notes.extend(_unapplied_keys(project))
    return project


def _load_file(project: Project, path: Path, errors: ErrorCollector, aliases: dict[str, str] | None = None) -> None:
    """One models file: a YAML or shape error in it stops that file only. What it would have defined is then
    unknown, so references to unknown names are not reported after it ("*")."""
    with errors.item("*"):
        doc = read_yaml(path)
        if doc.data is None:
            return  # pb ignores empty YAML files in model folders
        parsed: ModelsFile = validate_document(doc, ModelsFile, doc.data, ())
        _load_models_file(project, doc, parsed, errors, aliases)


def _unknown(errors: ErrorCollector, ref: str) -> None:
    """Before reporting that `ref` (`inputs/x`, `models/x`, `entities/x`) does not exist: if it failed to
    load, or a file that could define it failed, its error is already reported."""
    if ref in errors.failed or "*" in errors.failed:
        raise FailedDependencyError(ref)


def _unapplied_keys(project: Project) -> list[str]:
    """Keys pb accepts that a run here does not act on: each named, never ignored silently."""
    notes = []
    for entity in project.entities.values():
        spec = entity.stitcher.spec if entity.stitcher else None
        if spec is not None and spec.max_iterations is not None:
            notes.append(
                f"id_stitcher '{entity.stitcher.name}': max_iterations is accepted and not needed "
                "(the stitcher here always runs to convergence)"
            )
        if spec is not None and spec.validity_time is not None:
            notes.append(f"id_stitcher '{entity.stitcher.name}': validity_time is accepted and not acted on")
    for model in project.sql_models.values():
        if model.spec.validity_time is not None:
            notes.append(f"sql_template '{model.name}': validity_time is accepted and not acted on")
    inputs = sorted(n for n, i in project.inputs.items() if i.spec.contract and i.spec.contract.is_append_only)
    if inputs:
        notes.append(
            f"contract is_append_only on {', '.join(inputs)}: a run after a complete one reads only their new rows "
            "and recomputes only the profiles they touch, with the full recompute's values (README: Incremental runs)"
        )
    models = sorted(n for n, m in project.sql_models.items() if m.spec.contract and m.spec.contract.is_append_only)
    if models:
        notes.append(
            f"contract is_append_only on sql model(s) {', '.join(models)} is accepted: a sql model is rebuilt by "
            "every run (a var's merge: over it reads its new rows, as pb does)"
        )
    for var in project.vars:
        spec = var.spec
        if getattr(spec, "merge", None) is not None and not spec.from_:
            notes.append(
                f"entity var '{var.name}' ({var.origin}): merge: on a var without from: is ignored, as pb does; "
                "it is computed from the other vars every run"
            )
        elif getattr(spec, "merge_where", None) is not None and getattr(spec, "merge", None) is None:
            notes.append(
                f"entity var '{var.name}' ({var.origin}): merge_where: without merge: changes nothing, as with pb"
            )
    tagged = [v.name for v in project.vars if v.spec.tags]
    if tagged:
        notes.append(f"tags on var(s) {', '.join(tagged)} are accepted: labels for pb's UI, they change no value")
    optional = sorted(n for n, i in project.inputs.items() if i.spec.contract and i.spec.contract.is_optional)
    if optional:
        notes.append(
            f"contract is_optional on input(s) {', '.join(optional)}: a missing optional input stops the run "
            "naming it (pb would leave out the models that read it)"
        )
    return notes


def _check_contracts(project: Project, errors: ErrorCollector) -> None:
    """An input's `contract.with_entity_ids` names entities whose ids it declares (its columns are checked
    against the table when a run starts)."""
    for inp in project.inputs.values():
        with errors.item():
            _check_contract(project, inp, errors)


def _check_contract(project: Project, inp: Input, errors: ErrorCollector) -> None:
    contract = inp.spec.contract
    if contract:
        for j, entity in enumerate(contract.with_entity_ids):
            at = inp.origin.at(f"contract.with_entity_ids[{j}]")
            if entity not in project.entities:
                _unknown(errors, f"entities/{entity}")
                raise at.error(f"unknown entity '{entity}'", hint=did_you_mean(entity, project.entities))
            if not any(i.entity == entity for i in inp.ids):
                raise at.error(
                    f"the contract of input '{inp.name}' promises ids of entity '{entity}', but its "
                    "app_defaults.ids declare none",
                    hint=f"add an id with `entity: {entity}` or remove it from with_entity_ids",
                )


def _check_merges(project: Project, errors: ErrorCollector) -> None:
    """pb 0.26.4's rule for an entity var's `merge:` (its incremental features): the var reads an input or sql
    model whose contract says `is_append_only: true`; `is_event_stream` alone is not enough (pb refuses both at
    load). The new rows are found by the source's occurred_at_col, so a source without one is refused too."""
    for var in project.vars:
        spec = var.spec
        merge = getattr(spec, "merge", None)
        if merge is None or not spec.from_:  # pb ignores a derived var's merge (noted in _unapplied_keys)
            continue
        with errors.item():
            at = var.origin.at("merge")
            kind, _, name = spec.from_.partition("/")
            source = project.inputs.get(name) if kind == "inputs" else project.sql_models.get(name)
            if source is None and name not in _model_names(project):
                continue  # an unknown source is reported by _check_references
            contract = source.spec.contract if source is not None else None  # an id graph has no contract
            if contract is None or not contract.is_append_only:
                raise at.error(
                    f"entity var '{var.name}' has a merge: clause, so it is merged with its previous value "
                    f"over the new rows of '{spec.from_}', but '{spec.from_}' is not declared append-only "
                    "(pb refuses this too: a source whose rows can change or vanish cannot be merged)",
                    hint=f"add `contract: {{is_append_only: true}}` to '{spec.from_}' if rows are only ever "
                    f"added to it, or remove merge: from '{var.name}'",
                )
            if not project.occurred_at_col(spec.from_):
                raise at.error(
                    f"entity var '{var.name}' has a merge: clause, but '{spec.from_}' has no occurred_at_col: "
                    "the rows new since the previous run are those with a later occurred_at",
                    hint=f"set occurred_at_col on '{spec.from_}', or remove merge: from '{var.name}'",
                )


def _render_project_file(path: Path) -> str:
    """pb templates pb_project.yaml itself (package URLs use `{{best_schema_version}}`)."""
    text = read_text(path)
    context = TemplateContext(values={"best_schema_version": SUPPORTED_SCHEMA_VERSION})
    return render(text, context, file=path, line=1, key=None, first_line=1)


def _load_package(project: Project, doc: YamlDocument, package: PackageDef, index: int, errors: ErrorCollector) -> None:
    """A package vendored on disk: its model folders load as if they were the project's own.

    `inputsMap` points the package's input names at the project's inputs; remote URLs need the
    network, so they are refused with what to do instead.
    """
    key = ("packages", index, "url")
    url = package.url.removeprefix("file://")
    folder = Path(url).expanduser()
    folder = folder if folder.is_absolute() else project.root / folder
    if "://" in url or not folder.is_dir():
        raise doc.error(
            f"package '{package.name}' is not a local folder ({package.url})",
            key,
            hint="vendor the package (git clone it next to the project) and set url to its folder",
        )
    folders = ["models"]
    if (folder / PROJECT_FILE).is_file():
        folders = read_yaml(folder / PROJECT_FILE).data.get("model_folders") or folders
    aliases = {name: str(target) for name, target in (package.inputsMap or {}).items()}
    for sub in folders:
        for path in sorted((folder / sub).rglob("*.y*ml")):
            if path.suffix in (".yaml", ".yml") and not path.is_symlink():
                _load_file(project, path, errors, aliases)


_ENABLE_STATUSES = ("must_have", "good_to_have", "only_if_necessary", "disabled")


def _model_names(project: Project) -> list[str]:
    stitchers = [e.stitcher.name for e in project.entities.values() if e.stitcher]
    return [*project.sql_models, *project.cohorts, *project.feature_tables, *stitchers]


def _apply_overrides(
    project: Project, doc: YamlDocument, package: PackageDef, index: int, models: set[str], pkg_vars: list[Var]
) -> None:
    """pb's package `overrides: [{requested_enable_status, models: [paths]}]`, on the package's own models.

    `models/<name>` sets a model's enable_status (the plan then leaves it out as pb does); an entity var
    `entity/<entity>/all/<var>` (or `<entity>/all/<var>`) that is `disabled` is not computed (a var reading
    it is an error; pb would drop that var silently). `only_if_necessary`, `must_have` and `good_to_have`
    leave a var as it is: its feature view reads it, as in pb 0.26. Other override keys are named in a note."""
    for j, entry in enumerate(package.overrides or []):
        base = ("packages", index, "overrides", j)
        if not isinstance(entry, dict):
            raise doc.error("an override is a mapping with requested_enable_status and models", base)
        others = sorted(k for k in entry if k not in ("requested_enable_status", "models"))
        if others:
            project.notes.append(
                f"package '{package.name}' override {j + 1}: {', '.join(others)} accepted and not applied"
            )
        status = entry.get("requested_enable_status")
        if status is None:
            continue
        if status not in _ENABLE_STATUSES:
            raise doc.error(
                f"requested_enable_status must be one of {', '.join(_ENABLE_STATUSES)}, got '{status}'",
                (*base, "requested_enable_status"),
                hint=did_you_mean(str(status), _ENABLE_STATUSES),
            )
        for k, path in enumerate(entry.get("models") or []):
            where = _origin(doc, (*base, "models", k))
            _override_one(project, package, str(path), status, where, models, pkg_vars)


def _override_one(
    project: Project, package: PackageDef, path: str, status: str, origin: Origin, models: set[str], pkg_vars: list[Var]
) -> None:
    parts = path.strip("/").split("/")
    if parts[0] == "entity":
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "models":
        name = parts[1]
        if name not in models:
            raise origin.error(
                f"override of '{path}': package '{package.name}' has no model '{name}'",
                hint=did_you_mean(name, models) or "overrides apply to the package's own models",
            )
        project.enable_overrides[name] = (status, origin)
        return
    if len(parts) == 3 and parts[0] in project.entities and parts[1] == "all":
        entity, name = parts[0], parts[2]
        found = [v for v in pkg_vars if v.entity == entity and v.cohort is None and v.kind == "entity_var"]
        match = [v for v in found if v.name == name]
        if not match:
            raise origin.error(
                f"override of '{path}': package '{package.name}' has no entity var '{name}' of entity '{entity}'",
                hint=did_you_mean(name, [v.name for v in found]) or "overrides apply to the package's own vars",
            )
        if status == "disabled":
            project.vars.remove(match[0])
            project.disabled_vars[name] = f"package '{package.name}' disables it ({origin})"
            project.notes.append(
                f"entity var '{name}' ({match[0].origin}) is disabled by package '{package.name}' ({origin}): "
                "not computed, as with pb"
            )
        return
    raise origin.error(
        f"override of '{path}': not a model path this project has",
        hint="use models/<name> or entity/<entity>/all/<var>",
    )


def _origin(doc: YamlDocument, key_path: KeyPath) -> Origin:
    line, column = doc.locate(key_path)
    return Origin(doc.path, line, format_key_path(key_path), doc.lines, column, doc.columns)


def _load_entities(project: Project, doc: YamlDocument, errors: ErrorCollector) -> None:
    id_types = {}
    for i, id_type in enumerate(project.file.id_types):
        with errors.item(f"id_types/{id_type.name}"):
            if id_type.name in id_types:
                raise doc.error(f"id_type '{id_type.name}' is defined twice", ("id_types", i, "name"))
            if id_type.maximum_edges is not None:
                raise _not_yet(
                    doc,
                    ("id_types", i, "maximum_edges"),
                    "an id_type",
                    "an id graph that keeps at most that many edges per id",
                )
            for j, flt in enumerate(id_type.filters):
                if flt.regex is not None:
                    try:
                        re.compile(flt.regex)
                    except re.error as exc:
                        raise doc.error(f"invalid regex: {exc}", ("id_types", i, "filters", j, "regex")) from None
            id_types[id_type.name] = id_type
    for i, ent in enumerate(project.file.entities):
        with errors.item(f"entities/{ent.name}"):
            if ent.name in project.entities:
                raise doc.error(f"entity '{ent.name}' is defined twice", ("entities", i, "name"))
            for j, name in enumerate(ent.id_types):
                if name not in id_types:
                    _unknown(errors, f"id_types/{name}")
                    raise doc.error(
                        f"id type '{name}' is not declared under id_types",
                        ("entities", i, "id_types", j),
                        hint=did_you_mean(name, id_types) or f"declared: {', '.join(id_types) or 'none'}",
                    )
            fvs = ent.feature_views.using_ids if ent.feature_views else []
            main_id = ent.id_column_name or f"{ent.name}_main_id"
            for j, fv in enumerate(fvs):
                if fv.id == main_id:
                    # pb 0.26 builds no view for it: the default feature view is the one keyed by the main id
                    project.notes.append(
                        f"entity '{ent.name}': feature view using_ids '{fv.id}' is the main id; pb builds no view "
                        "for it (the default feature view is keyed by it), and neither does a run here"
                    )
                    continue
                if fv.id not in ent.id_types:
                    raise doc.error(
                        f"feature view id '{fv.id}' is not an id type of entity '{ent.name}'",
                        ("entities", i, "feature_views", "using_ids", j, "id"),
                        hint=did_you_mean(fv.id, ent.id_types),
                    )
            project.entities[ent.name] = Entity(
                name=ent.name, spec=ent, id_types={n: id_types[n] for n in ent.id_types}
            )


def _load_models_file(
    project: Project, doc: YamlDocument, parsed: ModelsFile, errors: ErrorCollector, aliases: dict[str, str] | None
) -> None:
    """One YAML file of a model folder, item by item; `aliases` maps a package's input names to the project's."""
    if parsed.optimizations is not None:
        keys = ", ".join(parsed.optimizations) or "none"
        project.notes.append(
            f"optimizations ({doc.path.name}: {keys}) are accepted and not acted on: they tune how pb writes its "
            "SQL, not the values"
        )
    if aliases:
        parsed = _apply_input_aliases(parsed, aliases)
    for i, inp in enumerate(parsed.inputs):
        with errors.item(f"inputs/{inp.name}"):
            _unique(project.inputs, inp.name, doc, ("inputs", i, "name"), "input")
            for j, id_ in enumerate(inp.app_defaults.ids):
                _check_id(project, doc, id_.type, id_.entity, ("inputs", i, "app_defaults", "ids", j), errors)
            project.inputs[inp.name] = Input(inp.name, inp, _origin(doc, ("inputs", i)))
    for i, model in enumerate(parsed.models):
        with errors.item(f"models/{model.name}"):
            _load_model(project, doc, model, ("models", i), errors)
    for i, group in enumerate(parsed.var_groups):
        with errors.item(f"var_groups/{group.name}"):
            _load_var_group(project, doc, group, ("var_groups", i), errors)
    for i, macro in enumerate(parsed.macros):
        with errors.item():
            _unique(project.macros, macro.name, doc, ("macros", i, "name"), "macro")
            project.macros[macro.name] = macro
            project.macro_origins[macro.name] = _origin(doc, ("macros", i, "value"))


def _load_var_group(project: Project, doc: YamlDocument, group: Any, base: KeyPath, errors: ErrorCollector) -> None:
    """A var_group: an unknown owner fails the group; each var is then its own item."""
    grain = None
    if group.time_grain is not None:
        owner = f"var_group '{group.name}'"
        grain = _check_time_grain(project, doc, (*base, "time_grain"), group.time_grain, owner)
        if grain is not None and group.entity_key is None:
            raise _not_yet(doc, (*base, "time_grain"), owner, f"the cohort's vars as of the last '{grain}' boundary")
    if group.entity_key is not None:
        if group.entity_key not in project.entities:
            _unknown(errors, f"entities/{group.entity_key}")
            raise doc.error(
                f"unknown entity '{group.entity_key}'",
                (*base, "entity_key"),
                hint=did_you_mean(group.entity_key, project.entities),
            )
        entity, cohort = group.entity_key, None
    else:
        entity, cohort = _cohort_owner(project, group.entity_cohort or "")
    for j, entry in enumerate(group.vars):
        kind = "entity_var" if entry.entity_var else "input_var"
        spec = entry.entity_var or entry.input_var
        with errors.item():
            var = Var(kind, entity, cohort, group.name, spec, _origin(doc, (*base, "vars", j, kind)), time_grain=grain)
            if grain is not None and kind == "input_var":
                raise _not_yet(
                    doc,
                    (*base, "vars", j, kind),
                    f"input_var '{spec.name}' of var_group '{group.name}' (time_grain '{grain}')",
                    f"its input's rows with that var as of the last '{grain}' boundary",
                )
            if not _var_disabled(project, var):
                project.vars.append(var)


def _check_time_grain(project: Project, doc: YamlDocument, key_path: KeyPath, grain: object, owner: str) -> str | None:
    """A model's or var_group's `time_grain`, by pb 0.26.4's rules: one of pb's grains, only with the project's
    `default_time_grain`, never finer than it. Equal to it, the model computes as the whole run does (at the
    default's boundary): None. A coarser grain is returned: pb computes the vars and what they read at that
    grain's earlier boundary within the same run (the planner's grain steps)."""
    default = project.file.default_time_grain
    if grain not in GRAINS:
        raise doc.error(f"unknown time grain '{grain}'", key_path, hint=f"pb's timegrains: {', '.join(GRAINS)}")
    if default is None:
        raise doc.error(
            f"{owner} has time_grain '{grain}' but the project has no default_time_grain (pb refuses it too)",
            key_path,
            hint=f"set default_time_grain in pb_project.yaml; pb's timegrains, finest first: {', '.join(GRAINS)}",
        )
    if finer(str(grain), default):
        raise doc.error(
            f"{owner} has time_grain '{grain}', finer than the project's default_time_grain '{default}' "
            "(pb refuses it too)",
            key_path,
            hint="make the model's grain coarser or the default finer",
        )
    return str(grain) if grain != default else None


def _not_yet(doc: YamlDocument, key_path: KeyPath, owner: str, computes: str) -> ProfilesError:
    """A key whose meaning in pb changes values and is not implemented here: refused, never ignored."""
    key = key_path[-1]
    return doc.error(
        f"{key} (on {owner}) is not supported yet: with it pb computes {computes}, so ignoring it would give "
        "different values",
        key_path,
        hint=f"without {key} the project runs here, with values that differ from pb's where {key} matters",
    )


def _var_disabled(project: Project, var: Var) -> bool:
    """An entity var's own `materialization.enable_status`: `disabled` is not computed (as with pb); the
    other statuses leave it computed, as a package override does."""
    mat = getattr(var.spec, "materialization", None)
    if mat is None or mat.enable_status != "disabled":
        return False
    project.disabled_vars[var.name] = f"its enable_status is disabled ({var.origin})"
    project.notes.append(f"entity var '{var.name}' ({var.origin}) is disabled by its enable_status: not computed")
    return True


def _apply_input_aliases(parsed: ModelsFile, aliases: dict[str, str]) -> ModelsFile:
    """A package's mapped inputs are the project's: drop their definitions, point references over."""

    def ref(value: str | None) -> str | None:
        kind, _, name = (value or "").partition("/")
        return aliases[name] if value and kind == "inputs" and name in aliases else value

    models = []
    for model in parsed.models:
        spec = dict(model.model_spec)
        if "edge_sources" in spec:
            spec["edge_sources"] = [{**e, "from": ref(e.get("from"))} for e in spec["edge_sources"]]
        models.append(model.model_copy(update={"model_spec": spec}))
    groups = []
    for group in parsed.var_groups:
        entries = []
        for entry in group.vars:
            var = entry.entity_var or entry.input_var
            moved = var.model_copy(update={"from_": ref(var.from_)})
            entries.append(entry.model_copy(update={"entity_var" if entry.entity_var else "input_var": moved}))
        groups.append(group.model_copy(update={"vars": entries}))
    inputs = [inp for inp in parsed.inputs if inp.name not in aliases]
    return parsed.model_copy(update={"inputs": inputs, "models": models, "var_groups": groups})


def _cohort_owner(project: Project, ref: str) -> tuple[str, str | None]:
    """An `entity_cohort`: `<entity>/all` is the entity itself (entity, None); `models/<cohort>` (or
    `<entity>/<cohort>`) is a cohort whose entity is resolved once every cohort is loaded ("", cohort)."""
    head, _, tail = ref.partition("/")
    if head in project.entities and tail == "all":
        return head, None
    return "", _cohort_ref(ref)


def _cohort_ref(ref: str) -> str:
    """`models/high_value` or `user/high_value` -> `high_value`."""
    return ref.rsplit("/", 1)[-1]


def _unique(existing: dict, name: str, doc: YamlDocument, path: KeyPath, what: str) -> None:
    if name in existing:
        raise doc.error(f"{what} '{name}' is defined twice", path)


def _check_id(
    project: Project, doc: YamlDocument, id_type: str, entity: str, path: KeyPath, errors: ErrorCollector
) -> None:
    if entity not in project.entities:
        _unknown(errors, f"entities/{entity}")
        raise doc.error(f"unknown entity '{entity}'", (*path, "entity"), hint=did_you_mean(entity, project.entities))
    ent = project.entities[entity]
    declared = {t.name: t for t in project.file.id_types}
    if id_type == "rudder_id" and id_type not in declared:
        # pb's name for the entity's main id: a column holding main ids, read by joining on it (pb 0.26.4 writes
        # `ON <select> = <main id>`), not stitched
        return
    if id_type not in ent.id_types and id_type in declared:
        # pb 0.26 loads an id whose type is declared under id_types but not listed on the entity: its default
        # stitcher reads the input and maps its rows to main ids, so such ids are nodes of the id graph (with
        # their type's filters); the entity's own id types (feature views) stay as listed.
        ent.id_types[id_type] = declared[id_type]
        project.notes.append(
            f"id type '{id_type}' ({doc.path.name}:{doc.locate((*path, 'type'))[0]}) is not listed on entity "
            f"'{entity}': its ids are stitched into {entity} profiles, as pb does"
        )
    if id_type not in ent.id_types:
        known = ent.spec.id_types
        raise doc.error(
            f"id type '{id_type}' is not an id type of entity '{entity}'",
            (*path, "type"),
            hint=did_you_mean(id_type, known) or f"id types of {entity}: {', '.join(known)}",
        )


def _load_model(project: Project, doc: YamlDocument, model: Any, path: KeyPath, errors: ErrorCollector) -> None:
    mtype = model.model_type
    if mtype in REFUSED_MODEL_TYPES or mtype.startswith("llm"):
        reason = REFUSED_MODEL_TYPES.get(mtype, "it needs an LLM service")
        raise doc.error(f"model type '{mtype}' is not supported: {reason}", (*path, "model_type"))
    spec_model = MODEL_SPECS.get(mtype)
    if spec_model is None:
        raise doc.error(
            f"unknown model_type '{mtype}'",
            (*path, "model_type"),
            hint=did_you_mean(mtype, MODEL_SPECS) or f"known: {', '.join(MODEL_SPECS)}",
        )
    raw_spec = model.model_spec
    model_grain = None
    if isinstance(raw_spec, dict) and raw_spec.get("time_grain") is not None:
        grain = raw_spec["time_grain"]
        owner = f"model '{model.name}'"
        model_grain = _check_time_grain(project, doc, (*path, "model_spec", "time_grain"), grain, owner)
        if model_grain is not None and mtype != "sql_template":
            # a var_group's and a sql_template's coarser grain are built (grain steps); other models' not yet
            raise _not_yet(
                doc,
                (*path, "model_spec", "time_grain"),
                owner,
                f"it and the models it reads as of the last '{grain}' boundary",
            )
        raw_spec = {k: v for k, v in raw_spec.items() if k != "time_grain"}
    spec = validate_document(doc, spec_model, raw_spec, (*path, "model_spec"))
    origin = _origin(doc, path)
    names = {**project.sql_models, **project.cohorts, **project.feature_tables}
    names.update({e.stitcher.name: e for e in project.entities.values() if e.stitcher})
    _unique(names, model.name, doc, (*path, "name"), "model")
    if isinstance(spec, IdStitcherSpec):
        entity = project.entities.get(spec.entity_key)
        if entity is None:
            _unknown(errors, f"entities/{spec.entity_key}")
            raise doc.error(
                f"unknown entity '{spec.entity_key}'",
                (*path, "model_spec", "entity_key"),
                hint=did_you_mean(spec.entity_key, project.entities),
            )
        sources = tuple(s.from_ for s in spec.edge_sources)
        entity.stitcher = IdStitcher(model.name, entity.name, sources, spec, origin)
    elif isinstance(spec, SqlTemplateSpec):
        for j, id_ in enumerate(spec.ids):
            _check_id(project, doc, id_.type, id_.entity, (*path, "model_spec", "ids", j), errors)
        project.sql_models[model.name] = SqlModel(model.name, spec, origin, time_grain=model_grain)
        _add_model_features(project, doc, model.name, spec, path)
    elif isinstance(spec, CohortSpec):
        extends = spec.extends or ""
        head, _, tail = extends.partition("/")
        if head in project.entities and tail == "all":
            entity, parent = head, None
        elif extends:
            entity, parent = "", _cohort_ref(extends)
        else:
            raise doc.error("a cohort needs `extends` (e.g. user/all)", (*path, "model_spec"))
        project.cohorts[model.name] = Cohort(model.name, entity, parent, spec, origin)
    elif isinstance(spec, FeatureTableSpec):
        if spec.entity_key is not None:
            table = FeatureTable(model.name, spec, origin, spec.entity_key)
        else:
            entity, cohort = _cohort_owner(project, spec.entity_cohort or "")
            table = FeatureTable(model.name, spec, origin, entity, cohort)
        project.feature_tables[model.name] = table


def _add_model_features(project: Project, doc: YamlDocument, name: str, spec: SqlTemplateSpec, path: KeyPath) -> None:
    """A sql_template's `features:` as pb computes them (pb 0.26.4's SQL, read from `pb compile`): each column
    joins every feature view of each entity the model has ids of, as the MAX of the column over the model's
    rows whose ids stitch to the main id (NULL for a main id with none). That is an entity var `max(<column>)`
    `from: models/<model>`, which is what each becomes here."""
    if not spec.features:
        return
    entities = list(dict.fromkeys(i.entity for i in spec.ids))
    if not entities:
        raise doc.error(
            f"sql_template '{name}' has features but no ids: pb gives each feature to the main ids the model's "
            "rows stitch to through its ids",
            (*path, "model_spec", "features"),
            hint="add `ids:` naming the model's id columns",
        )
    for n, feature in enumerate(spec.features):
        var_spec = EntityVarDef.model_validate(
            {
                "name": feature.name,
                "select": f"max({feature.name})",
                "from": f"models/{name}",
                "description": feature.description,
            }
        )
        origin = _origin(doc, (*path, "model_spec", "features", n))
        for entity in entities:
            project.vars.append(Var("entity_var", entity, None, f"{name}.features", var_spec, origin, feature_of=name))


def _add_default_stitchers(project: Project, doc: YamlDocument, errors: ErrorCollector) -> None:
    """pb stitches an entity without `id_stitcher` over all its inputs: `<entity>_default_id_stitcher`."""
    for i, entity in enumerate(project.entities.values()):
        with errors.item(f"entities/{entity.name}"):
            _add_stitcher(project, doc, i, entity, errors)


def _add_stitcher(project: Project, doc: YamlDocument, i: int, entity: Entity, errors: ErrorCollector) -> None:
    if entity.spec.id_stitcher:
        ref = entity.spec.id_stitcher.rsplit("/", 1)[-1]
        lender = _stitcher_lender(project, entity.name, ref)
        if entity.stitcher is None and lender is not None:
            _borrow_stitcher(project, entity, lender)
            return
        if entity.stitcher is None or entity.stitcher.name != ref:
            _unknown(errors, f"models/{ref}")
            found = entity.stitcher
            raise doc.error(
                f"entity '{entity.name}' names id_stitcher '{entity.spec.id_stitcher}' but no id_stitcher model "
                f"with that name has entity_key '{entity.name}'",
                ("entities", i, "id_stitcher"),
                hint=f"did you mean 'models/{found.name}'?"
                if found
                else "add that id_stitcher model, or remove `id_stitcher` to use the default stitcher",
            )
        if not entity.stitcher.edge_sources:
            sources = _default_edge_sources(project, entity.name)
            entity.stitcher = IdStitcher(
                entity.stitcher.name, entity.name, sources, entity.stitcher.spec, entity.stitcher.origin
            )
    elif entity.stitcher is None:
        sources = _default_edge_sources(project, entity.name)
        entity.stitcher = IdStitcher(
            f"{entity.name}_default_id_stitcher", entity.name, sources, None, None, is_default=True
        )
    if not entity.stitcher.edge_sources:  # the stitcher would have nothing to read; say so now
        if any(f == "*" or f.startswith(("inputs/", "models/")) for f in errors.failed):
            raise FailedDependencyError(f"ids of {entity.name}")  # they may be on the input or model that failed
        raise doc.error(
            f"no input or sql model has ids of entity '{entity.name}', so there is nothing to stitch",
            ("entities", i),
            hint=f"add ids with `entity: {entity.name}` to an input's app_defaults.ids",
        )


def _stitcher_lender(project: Project, entity: str, ref: str) -> str | None:
    """The other entity whose own id_stitcher model is named `ref`, if any."""
    for other in project.entities.values():
        stitcher = other.stitcher
        if other.name != entity and stitcher is not None and stitcher.name == ref and stitcher.spec is not None:
            return other.name
    return None


def _borrow_stitcher(project: Project, entity: Entity, lender: str) -> None:
    """pb 0.26 loads an entity that names another entity's id_stitcher model (`id_model_ref` is that model):
    its profiles are that stitcher's clusters, its main id column its own (`product_main_id`). Here its
    stitcher step re-stitches the lender's id graph, which gives the same clusters and main ids."""
    other = project.entities[lender].stitcher
    assert other is not None
    entity.stitcher = IdStitcher(other.name, entity.name, (), other.spec, other.origin, borrowed_from=lender)
    project.notes.append(
        f"entity '{entity.name}' names the id_stitcher of entity '{lender}' ({entity.spec.id_stitcher}): its "
        f"profiles are {lender}'s clusters, keyed by {entity.main_id_column}, as pb builds them"
    )


def _default_edge_sources(project: Project, entity: str) -> tuple[str, ...]:
    return tuple(
        f"inputs/{inp.name}"
        for inp in project.inputs.values()
        if any(i.entity == entity and i.to_default_stitcher for i in inp.ids)
    )


def _check_filter_sources(project: Project, doc: YamlDocument, errors: ErrorCollector) -> None:
    """An id_type `sql` filter lists ids from an input's table."""
    for i, id_type in enumerate(project.file.id_types):
        for j, flt in enumerate(id_type.filters):
            if flt.sql is None:
                continue
            kind, _, name = flt.sql.from_.partition("/")
            known = project.inputs if kind == "inputs" else project.sql_models
            if kind not in ("inputs", "models") or name not in known:
                if kind in ("inputs", "models") and (flt.sql.from_ in errors.failed or "*" in errors.failed):
                    continue
                errors.add(
                    doc.error(
                        f"sql filter reads '{flt.sql.from_}': it must name an input or a sql model (inputs/<name>, "
                        "models/<name>)",
                        ("id_types", i, "filters", j, "sql", "from"),
                        hint=did_you_mean(name, [*project.inputs, *project.sql_models]),
                    )
                )


def _check_references(project: Project, errors: ErrorCollector) -> None:
    """Every `from`, edge source and cohort parent points at something that exists; each item on its own."""
    for entity in list(project.entities.values()):
        if entity.stitcher is None:  # its entity failed above
            continue
        for k, source in enumerate(entity.stitcher.edge_sources):
            with errors.item():
                stitcher_origin = entity.stitcher.origin or project.origin
                origin = stitcher_origin.at(f"model_spec.edge_sources[{k}].from")
                _resolve_source(project, source, origin, "edge_sources", errors)
                if not project.source_ids(source, entity.name):
                    raise origin.error(f"edge source '{source}' has no ids of entity '{entity.name}'")
    for cohort in list(project.cohorts.values()):
        with errors.item(f"models/{cohort.name}"):
            _resolve_cohort_entity(project, cohort, errors)
    for name, table in list(project.feature_tables.items()):
        with errors.item(f"models/{name}"):
            _check_feature_table(project, name, table, errors)
    for i, var in enumerate(project.vars):
        with errors.item():
            _check_var(project, i, var, errors)
    seen: dict[tuple[str, str | None, str], Var] = {}
    for var in project.vars:
        key = (var.entity, var.cohort, var.name)
        if var.kind == "input_var":
            key = (var.entity, var.spec.from_, var.name)
        if key in seen:
            errors.add(var.origin.at("name").error(f"var '{var.name}' is defined twice (first at {seen[key].origin})"))
        seen[key] = var


def _require_cohort(project: Project, cohort: str, origin: Origin, what: str, errors: ErrorCollector) -> None:
    """A cohort a model or var group is keyed by: skipped when the cohort itself failed, else it must exist."""
    if f"models/{cohort}" in errors.failed:
        raise FailedDependencyError(cohort)
    if cohort not in project.cohorts:
        _unknown(errors, f"models/{cohort}")
        raise origin.error(f"{what} is not a cohort model", hint=did_you_mean(cohort, project.cohorts))


def _check_feature_table(project: Project, name: str, table: FeatureTable, errors: ErrorCollector) -> None:
    if table.cohort is not None:
        _require_cohort(
            project,
            table.cohort,
            table.origin.at("model_spec.entity_cohort"),
            f"entity_cohort '{table.spec.entity_cohort}'",
            errors,
        )
        entity = project.cohorts[table.cohort].entity
        project.feature_tables[name] = FeatureTable(table.name, table.spec, table.origin, entity, table.cohort)
    if table.spec.compatibility_mode is not None:
        project.notes.append(
            f"feature_table_model '{table.name}': compatibility_mode is accepted and not acted on "
            "(it does not change the table's columns or values)"
        )


def _check_var(project: Project, i: int, var: Var, errors: ErrorCollector) -> None:
    if var.cohort is not None:
        _require_cohort(project, var.cohort, var.origin, f"var_group's entity_cohort '{var.cohort}'", errors)
        project.vars[i] = var = Var(
            var.kind, project.cohorts[var.cohort].entity, var.cohort, var.group, var.spec, var.origin
        )
    if var.spec.from_:
        _resolve_source(project, var.spec.from_, var.origin.at("from"), "from", errors)
        stitcher = project.entities[var.entity].stitcher
        if stitcher is None:  # its entity failed: reported there
            raise FailedDependencyError(var.entity)
        reads_id_graph = var.spec.from_ == f"models/{stitcher.name}"
        if not reads_id_graph and not project.source_ids(var.spec.from_, var.entity):
            raise var.origin.at("from").error(
                f"'{var.spec.from_}' has no ids of entity '{var.entity}', so its rows cannot be attributed",
            )
    elif var.kind == "input_var":
        raise var.origin.error("an input_var needs `from`")


def _resolve_cohort_entity(
    project: Project, cohort: Cohort, errors: ErrorCollector, trail: tuple[str, ...] = ()
) -> str:
    if cohort.entity:
        return cohort.entity
    if cohort.name in trail:
        raise cohort.origin.at("model_spec.extends").error(
            f"cohorts extend each other in a cycle: {' -> '.join((*trail, cohort.name))}",
        )
    if f"models/{cohort.extends}" in errors.failed:
        raise FailedDependencyError(cohort.extends)
    parent = project.cohorts.get(cohort.extends or "")
    if parent is None:
        _unknown(errors, f"models/{cohort.extends}")
        raise cohort.origin.at("model_spec.extends").error(
            f"cohort extends unknown '{cohort.spec.extends}'",
            hint=did_you_mean(cohort.extends or "", project.cohorts) or "extend <entity>/all or models/<cohort>",
        )
    entity = _resolve_cohort_entity(project, parent, errors, (*trail, cohort.name))
    project.cohorts[cohort.name] = Cohort(cohort.name, entity, cohort.extends, cohort.spec, cohort.origin)
    return entity


def _resolve_source(project: Project, ref: str, origin: Origin, key: str, errors: ErrorCollector) -> None:
    kind, _, name = ref.partition("/")
    if kind in ("inputs", "models") and name not in (*project.inputs, *project.sql_models, *project.cohorts):
        _unknown(errors, f"{kind}/{name}")
    if kind == "inputs":
        if name not in project.inputs:
            hint = did_you_mean(name, project.inputs) or f"inputs: {', '.join(project.inputs) or 'none'}"
            raise origin.error(f"{key} '{ref}': no input named '{name}'", hint=hint)
        return
    if kind == "models":
        stitchers = {e.stitcher.name for e in project.entities.values() if e.stitcher}
        known = {*project.sql_models, *stitchers}
        if name not in known:
            raise origin.error(f"{key} '{ref}': no model named '{name}'", hint=did_you_mean(name, known))
        return
    raise origin.error(f"{key} '{ref}' must start with inputs/ or models/")
