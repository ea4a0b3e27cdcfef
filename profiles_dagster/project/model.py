"""The loaded project: pb's definitions with the file and line each came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.schema import (
    CohortSpec,
    EntityDef,
    EntityVarDef,
    FeatureTableSpec,
    IdStitcherSpec,
    IdType,
    InputDef,
    InputId,
    InputVarDef,
    MacroDef,
    PbProjectFile,
    SqlTemplateSpec,
)
from profiles_dagster.project.settings import ProfilesDagsterSettings


@dataclass(frozen=True)
class Origin:
    file: Path
    line: int | None
    key: str
    # the line of every key path in `file` ("models[0].model_spec.extends"), shared by its origins
    lines: dict[str, int] = field(default_factory=dict, compare=False, hash=False, repr=False)
    column: int | None = field(default=None, compare=False, hash=False)
    columns: dict[str, int] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else str(self.file)

    def error(self, message: str, hint: str | None = None) -> ProfilesError:
        """A ProfilesError located here."""
        return ProfilesError(
            message, file=self.file, line=self.line, column=self.column, key=self.key or None, hint=hint
        )

    def at(self, sub: str) -> Origin:
        """The origin of a key inside this one ("from"); its line falls back to this origin's line."""
        key = f"{self.key}.{sub}" if self.key else sub
        if key in self.lines:
            return Origin(self.file, self.lines[key], key, self.lines, self.columns.get(key), self.columns)
        return Origin(self.file, self.line, key, self.lines, self.column, self.columns)


@dataclass(frozen=True)
class Input:
    name: str
    spec: InputDef
    origin: Origin

    @property
    def ids(self) -> list[InputId]:
        return self.spec.app_defaults.ids

    @property
    def occurred_at_col(self) -> str | None:
        return self.spec.app_defaults.occurred_at_col


@dataclass(frozen=True)
class IdStitcher:
    name: str
    entity: str
    edge_sources: tuple[str, ...]  # "inputs/x" or "models/x"
    spec: IdStitcherSpec | None
    origin: Origin | None
    is_default: bool = False
    # the entity whose id_stitcher model this entity names (pb lets an entity use another's stitcher)
    borrowed_from: str | None = None


@dataclass(frozen=True)
class SqlModel:
    name: str
    spec: SqlTemplateSpec
    origin: Origin
    time_grain: str | None = None  # its `time_grain` when coarser than the project's default_time_grain

    @property
    def ids(self) -> list[InputId]:
        return self.spec.ids

    @property
    def output_type(self) -> str:
        mat = self.spec.materialization
        return (mat.output_type if mat and mat.output_type else "ephemeral") or "ephemeral"


@dataclass(frozen=True)
class Cohort:
    name: str
    entity: str
    extends: str | None  # None: the entity's ALL cohort; else another cohort's name
    spec: CohortSpec
    origin: Origin


@dataclass(frozen=True)
class FeatureTable:
    name: str
    spec: FeatureTableSpec
    origin: Origin
    entity: str  # resolved from entity_key, or from the cohort entity_cohort names
    cohort: str | None = None  # None: the entity's ALL cohort


@dataclass(frozen=True)
class Var:
    """An entity_var or input_var, owned by an entity or by one of its cohorts."""

    kind: str  # "entity_var" | "input_var"
    entity: str
    cohort: str | None
    group: str
    spec: EntityVarDef | InputVarDef
    origin: Origin
    feature_of: str | None = None  # the sql model whose `features:` entry this var is (pb: MAX of its column)
    # its var_group's `time_grain` when coarser than the project's default_time_grain; None: the default's
    time_grain: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_feature(self) -> bool:
        return self.kind == "entity_var" and getattr(self.spec, "is_feature", True)


@dataclass(frozen=True)
class FeatureView:
    name: str
    entity: str
    cohort: str | None
    id_type: str | None  # None: keyed by the main id


@dataclass
class Entity:
    name: str
    spec: EntityDef
    # the listed id types, then types declared under id_types that inputs give the entity without listing
    # them there (pb stitches those ids too); `spec.id_types` keeps the listed ones (feature views use those)
    id_types: dict[str, IdType]
    stitcher: IdStitcher | None = None

    @property
    def main_id_column(self) -> str:
        return self.spec.id_column_name or f"{self.name}_main_id"


@dataclass
class Project:
    root: Path
    file: PbProjectFile
    origin: Origin
    entities: dict[str, Entity] = field(default_factory=dict)
    inputs: dict[str, Input] = field(default_factory=dict)
    sql_models: dict[str, SqlModel] = field(default_factory=dict)
    cohorts: dict[str, Cohort] = field(default_factory=dict)
    feature_tables: dict[str, FeatureTable] = field(default_factory=dict)
    vars: list[Var] = field(default_factory=list)
    macros: dict[str, MacroDef] = field(default_factory=dict)
    macro_origins: dict[str, Origin] = field(default_factory=dict)  # where each macro's value is written
    settings: ProfilesDagsterSettings = field(default_factory=ProfilesDagsterSettings)
    notes: list[str] = field(default_factory=list)  # accepted keys pb tolerates but we do not act on
    # a package's `overrides: [{requested_enable_status, models}]` for models: name -> (status, where set)
    enable_overrides: dict[str, tuple[str, Origin]] = field(default_factory=dict)
    disabled_vars: dict[str, str] = field(default_factory=dict)  # var name -> what disabled it (a package)

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def time_grain(self) -> str:
        """pb's default_time_grain: the whole run computes as of its last boundary (`tick`: the end time)."""
        return self.file.default_time_grain or "tick"

    def entity_vars(self, entity: str, cohort: str | None = None) -> list[Var]:
        return [v for v in self.vars if v.entity == entity and v.cohort == cohort and v.kind == "entity_var"]

    def input_vars(self, entity: str, source: str) -> list[Var]:
        return [v for v in self.vars if v.entity == entity and v.kind == "input_var" and v.spec.from_ == source]

    def feature_views(self, entity: str) -> list[FeatureView]:
        """The default view keyed by the main id, then one per `using_ids` entry."""
        ent = self.entities[entity]
        # pb: the entity's `feature_views.name` names its default view (else `<entity>_feature_view`)
        default = (ent.spec.feature_views.name if ent.spec.feature_views else None) or f"{entity}_feature_view"
        views = [FeatureView(default, entity, None, None)]
        for fv in ent.spec.feature_views.using_ids if ent.spec.feature_views else []:
            if fv.id != ent.main_id_column:  # pb builds no view keyed by the main id beside the default one
                views.append(FeatureView(fv.name or f"{default}_with_{fv.id}", entity, None, fv.id))
        return views

    def cohort_feature_views(self, cohort: str) -> list[FeatureView]:
        """pb gives a cohort `<c>_feature_view` and one view per entity or cohort view id."""
        c = self.cohorts[cohort]
        views = [FeatureView(f"{cohort}_feature_view", c.entity, cohort, None)]
        named: dict[str, str | None] = {}
        ent = self.entities[c.entity]
        for fv in ent.spec.feature_views.using_ids if ent.spec.feature_views else []:
            if fv.id != ent.main_id_column:
                named.setdefault(fv.id, None)
        own = c.spec.feature_views
        own_ids = own.using_ids if hasattr(own, "using_ids") else (own or [])
        for fv in own_ids:
            if fv.id != ent.main_id_column:
                named[fv.id] = fv.name
        for id_type, name in named.items():
            views.append(FeatureView(name or f"{cohort}_feature_view_with_{id_type}", c.entity, cohort, id_type))
        return views

    def filter_inputs(self, entity: str) -> tuple[str, ...]:
        """Inputs that id_type `sql` filters of the entity read (they gate which ids count)."""
        return self._filter_sources(entity, "inputs")

    def filter_models(self, entity: str) -> tuple[str, ...]:
        """Sql models that id_type `sql` filters of the entity read (pb allows `from: models/<sql model>`)."""
        return self._filter_sources(entity, "models")

    def _filter_sources(self, entity: str, kind: str) -> tuple[str, ...]:
        names = [
            f.sql.from_.partition("/")[2]
            for id_type in self.entities[entity].id_types.values()
            for f in id_type.filters
            if f.sql is not None and f.sql.from_.partition("/")[0] == kind
        ]
        return tuple(dict.fromkeys(names))

    def source_ids(self, path: str, entity: str) -> list[InputId]:
        """The declared ids of an input or sql model for one entity."""
        kind, _, name = path.partition("/")
        if kind == "inputs":
            return [i for i in self.inputs[name].ids if i.entity == entity]
        if kind == "models" and name in self.sql_models:
            return [i for i in self.sql_models[name].ids if i.entity == entity]
        return []

    def occurred_at_col(self, path: str) -> str | None:
        kind, _, name = path.partition("/")
        if kind == "inputs":
            return self.inputs[name].occurred_at_col
        if kind == "models" and name in self.sql_models:
            return self.sql_models[name].spec.occurred_at_col
        return None


def describe(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else value
