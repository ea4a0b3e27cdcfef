"""Typed models of pb's YAML (schema_version 99). Unknown keys are errors, as they are in pb."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class PbModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        """pb's Go YAML decoder reads `key:` with no value as the key left out (`inputs:` of a macro without
        arguments, an empty `vars:`), so an optional key given as null takes its default here too."""
        if not isinstance(data, dict):
            return data
        optional = {f.alias or n for n, f in cls.model_fields.items() if not f.is_required()}
        return {k: v for k, v in data.items() if v is not None or k not in optional}


def _found(given: list[str]) -> str:
    """`, found table and view` for one-of checks that got several keys."""
    return f", found {' and '.join(given)}" if given else ""


# ---- pb_project.yaml -------------------------------------------------------------------------


class SqlFilterSource(PbModel):
    select: str
    from_: str = Field(alias="from")


class IdFilter(PbModel):
    type: Literal["include", "exclude"]
    value: str | int | None = None
    regex: str | None = None
    sql: SqlFilterSource | None = None

    @model_validator(mode="after")
    def _one_matcher(self) -> IdFilter:
        given = [k for k in ("value", "regex", "sql") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a filter needs exactly one of value, regex or sql{_found(given)}")
        return self


class IdType(PbModel):
    name: str
    filters: list[IdFilter] = []
    description: str | None = None
    extends: str | None = None
    # pb caps the edges a node of this type keeps (`- email: 2`): parsed, refused by the loader until supported
    maximum_edges: list[dict[str, int]] | None = None


class FeatureViewId(PbModel):
    id: str
    name: str | None = None


class FeatureViews(PbModel):
    using_ids: list[FeatureViewId] = []
    name: str | None = None


class EntityDef(PbModel):
    name: str
    id_types: list[str]
    id_stitcher: str | None = None
    id_column_name: str | None = None
    feature_views: FeatureViews | None = None
    description: str | None = None


class PackageDef(PbModel):
    name: str
    url: str
    inputsMap: dict[str, Any] | None = None  # noqa: N815 - pb's key
    overrides: list[dict[str, Any]] | None = None


class AvailableTag(PbModel):
    name: str
    description: str | None = None


class PbProjectFile(PbModel):
    name: str
    schema_version: int
    connection: str
    model_folders: list[str] = ["models"]
    entities: list[EntityDef] = []
    id_types: list[IdType] = []
    packages: list[PackageDef] = []
    # Keys pb tolerates; accepted and reported, never acted on silently.
    python_requirements: list[str] | None = None
    retention_period: str | int | None = None
    allow_beta: bool | None = None
    available_tags: list[str | AvailableTag] | None = None
    default_time_grain: str | None = None


# ---- inputs ----------------------------------------------------------------------------------


class InputId(PbModel):
    select: str
    type: str
    entity: str
    to_default_stitcher: bool = True


class InputAppDefaults(PbModel):
    table: str | None = None
    view: str | None = None
    s3: str | None = None
    csv: str | None = None
    occurred_at_col: str | None = None
    ids: list[InputId] = []

    @model_validator(mode="after")
    def _one_source(self) -> InputAppDefaults:
        given = [k for k in ("table", "view", "s3", "csv") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"app_defaults needs exactly one of table, view, s3 or csv{_found(given)}")
        return self

    @property
    def source(self) -> str:
        return self.table or self.view or self.s3 or self.csv or ""


class ContractColumn(PbModel):
    name: str
    datatype: str | None = None
    type: str | None = None


class Contract(PbModel):
    is_optional: bool = False
    is_event_stream: bool = False
    with_entity_ids: list[str] = []
    with_columns: list[ContractColumn] = []
    is_append_only: bool = False  # rows are only ever added: what an entity var's `merge:` requires (pb's rule)


class InputDef(PbModel):
    name: str
    app_defaults: InputAppDefaults
    contract: Contract | None = None
    source_metadata: dict[str, Any] | None = None
    where: str | None = None  # SQL condition: pb reads only the rows that pass it (for vars and stitching)


# ---- models ----------------------------------------------------------------------------------


EnableStatus = Literal["must_have", "good_to_have", "only_if_necessary", "disabled"]


class Materialization(PbModel):
    run_type: Literal["incremental", "discrete"] | None = None
    output_type: Literal["table", "view", "ephemeral"] | None = None
    # pb: disabled -> never built; only_if_necessary -> built when another model reads it; else built
    enable_status: EnableStatus | None = None


class EdgeSource(PbModel):
    from_: str = Field(alias="from")


class IdStitcherSpec(PbModel):
    entity_key: str
    edge_sources: list[EdgeSource] = []
    materialization: Materialization | None = None
    validity_time: str | None = None
    incremental_timedelta: str | None = None
    max_iterations: int | None = None


class SqlModelFeature(PbModel):
    """A column of a sql model that pb adds to its entities' feature views (`features: [{name}]`)."""

    name: str
    description: str | None = None


class SqlTemplateSpec(PbModel):
    single_sql: str | None = None
    multi_sql: str | None = None
    materialization: Materialization | None = None
    occurred_at_col: str | None = None
    ids: list[InputId] = []
    contract: Contract | None = None
    validity_time: str | None = None
    features: list[SqlModelFeature] = []

    @model_validator(mode="after")
    def _one_sql(self) -> SqlTemplateSpec:
        if bool(self.single_sql) == bool(self.multi_sql):
            raise ValueError("a sql_template needs exactly one of single_sql or multi_sql")
        return self


class CohortFilter(PbModel):
    type: Literal["include", "exclude"]
    value: str | None = None
    sql: str | None = None


class CohortSpec(PbModel):
    extends: str | None = None
    materialization: Materialization | None = None
    filter_pipeline: list[CohortFilter] = []
    filter_expression: str | dict[str, Any] | None = None
    feature_views: FeatureViews | list[FeatureViewId] | None = None


class FeatureTableSpec(PbModel):
    entity_key: str | None = None
    entity_cohort: str | None = None  # `models/<cohort>` (or `<entity>/all`): a table of the cohort's members
    features: list[str] = []
    materialization: Materialization | None = None
    # pb 0.26 accepts it (`linear_dependency_of_vars`) and the table's columns do not depend on it
    compatibility_mode: dict[str, Any] | None = None

    @field_validator("features", mode="after")
    @classmethod
    def _relative_names(cls, features: list[str]) -> list[str]:
        """pb resolves `./x` and `../x` to the var `x` of the table's entity (or cohort)."""
        return [f.split("/", 1)[1] if f.startswith(("./", "../")) and f.count("/") == 1 else f for f in features]

    @model_validator(mode="after")
    def _one_owner(self) -> FeatureTableSpec:
        if (self.entity_key is None) == (self.entity_cohort is None):
            raise ValueError("a feature_table_model needs exactly one of entity_key or entity_cohort")
        return self


class Window(PbModel):
    partition_by: list[str] = []
    order_by: list[str] = []
    frame_clause: str | None = None


class VarDef(PbModel):
    name: str
    select: str
    from_: str | None = Field(default=None, alias="from")
    where: str | None = None
    default_value: Any = None
    description: str | None = None
    window: Window | None = None
    column_data_type: str | None = None  # may be templated: `{{ warehouse.DataType("float") }}`
    tags: list[str] = []  # labels pb shows beside a feature; they change no value

    @field_validator("select", mode="before")
    @classmethod
    def _number_is_sql(cls, value: Any) -> Any:
        """`select: 12.347` is a YAML number; pb reads it as the SQL text of that number."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value


class EntityVarDef(VarDef):
    is_feature: bool = True
    materialization: Materialization | None = None  # pb reads its enable_status
    # pb's incremental features: an aggregate over `{{rowset.<name>}}` (the previous value and the value over
    # the source's new rows, per main id) and a condition on those rows (sql/merges.py)
    merge: str | None = None
    merge_where: str | None = None


class InputVarDef(VarDef):
    pass


class VarEntry(PbModel):
    entity_var: EntityVarDef | None = None
    input_var: InputVarDef | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> VarEntry:
        if (self.entity_var is None) == (self.input_var is None):
            raise ValueError("each var is either an entity_var or an input_var")
        return self


class VarGroupDef(PbModel):
    name: str
    entity_key: str | None = None
    entity_cohort: str | None = None
    vars: list[VarEntry] = []
    description: str | None = None
    time_grain: str | None = None  # pb's timegrains: checked by the loader (project/timegrains.py)

    @model_validator(mode="after")
    def _one_owner(self) -> VarGroupDef:
        if (self.entity_key is None) == (self.entity_cohort is None):
            raise ValueError("a var_group needs exactly one of entity_key or entity_cohort")
        return self


class MacroDef(PbModel):
    name: str
    inputs: list[str] = []
    value: str


class ModelEntry(PbModel):
    name: str
    model_type: str
    model_spec: dict[str, Any] = {}


class ModelsFile(PbModel):
    inputs: list[InputDef] = []
    models: list[ModelEntry] = []
    var_groups: list[VarGroupDef] = []
    macros: list[MacroDef] = []
    # pb's switches for how it writes its SQL (main_id_addition_approach, bundle_entity_vars, ...): they
    # change pb's statements, not the tables' values; accepted and named in a note
    optimizations: dict[str, Any] | None = None


MODEL_SPECS: dict[str, type[PbModel]] = {
    "id_stitcher": IdStitcherSpec,
    "sql_template": SqlTemplateSpec,
    "entity_cohort": CohortSpec,
    "feature_table_model": FeatureTableSpec,
}

# Model types pb itself dropped or that need ML packages: refused by name, never skipped.
REFUSED_MODEL_TYPES = {
    "python_model": "pb removed python_model",
    "propensity": "it needs ML training packages",
    "attribution": "it needs ML packages",
    "training_model": "it needs ML training packages",
    "prediction_model": "it needs ML packages",
    "report_model": "it renders reports outside the warehouse",
}
