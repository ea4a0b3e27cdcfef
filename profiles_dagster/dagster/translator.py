"""How plan steps become Dagster asset specs. Subclass and override any method, as with dagster-dbt."""

from __future__ import annotations

import warnings

from dagster import (
    AssetKey,
    AssetSpec,
    AutomationCondition,
    BetaWarning,
    CodeReferencesMetadataValue,
    LocalFileCodeReference,
)

from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.payloads import ViewPayload
from profiles_dagster.plan.steps import Step, StepKind
from profiles_dagster.project.model import Input, Project
from profiles_dagster.project.settings import SETTINGS_FILE, ProfilesDagsterSettings
from profiles_dagster.sql.names import source_table

_STITCHER_COLUMNS = {
    "other_id": "An id of the profile, after the id type's select and filters",
    "other_id_type": "The id type of other_id",
    "first_seen_at": "Earliest occurred_at_col value of any input row carrying the id",
    "valid_at": "When the id's link to its main id was last confirmed",
}


class ProfilesTranslator:
    """Default names: `<entity>/<step>` keys, one group per entity, inputs keyed by their table name."""

    def __init__(self, key_prefix: str | list[str] | None = None) -> None:
        self.key_prefix = [key_prefix] if isinstance(key_prefix, str) else list(key_prefix or [])

    def get_asset_key(self, step: Step) -> AssetKey:
        return AssetKey([*self.key_prefix, *step.key])

    def get_input_asset_key(self, inp: Input, dialect: str) -> AssetKey:
        """The input's table name split into parts, e.g. `raw.identifies` -> ["raw", "identifies"]; a `csv:`
        or `s3:` file input, whose path makes no key, is `["inputs", <input name>]`."""
        defaults = inp.spec.app_defaults
        if defaults.csv is not None or defaults.s3 is not None:
            return AssetKey(["inputs", inp.name])
        table = source_table(defaults.source, dialect)
        return AssetKey([part.name for part in table.parts])

    def get_group_name(self, step: Step) -> str:
        return step.entity or "profiles_models"

    def get_description(self, step: Step) -> str:
        return step.description

    def get_kinds(self, step: Step, warehouse_kind: str) -> set[str]:
        return {"profiles", warehouse_kind} if warehouse_kind else {"profiles"}

    def get_tags(self, step: Step) -> dict[str, str]:
        return {"profiles/step": step.kind.value}

    def get_metadata(self, step: Step, project: Project, schema: str) -> dict[str, object]:
        metadata: dict[str, object] = {"profiles/step": step.path}
        if step.view_name:
            metadata["dagster/table_name"] = f"{schema}.{step.view_name}"
        if step.origin is not None:
            with warnings.catch_warnings():  # code references are beta in Dagster 1.13; they work
                warnings.simplefilter("ignore", BetaWarning)
                metadata["dagster/code_references"] = CodeReferencesMetadataValue(
                    code_references=[
                        LocalFileCodeReference(file_path=str(step.origin.file), line_number=step.origin.line)
                    ]
                )
        return metadata

    def get_column_descriptions(self, step: Step, project: Project) -> dict[str, str]:
        """Column descriptions for the column schema: the vars' `description`s, and the columns pb adds."""
        if step.entity is None or step.entity not in project.entities:
            return {}
        main = project.entities[step.entity].main_id_column
        out = {main: f"Main id of a {step.entity} profile: 'rid' and a hash of the profile's earliest id"}
        out["input_row_id"] = (
            "Row number of the input row (scan order on DuckDB and Postgres, as pb numbers it; else by occurred_at_col)"
        )
        if step.kind is StepKind.ID_STITCHER:
            out.update(_STITCHER_COLUMNS)
        if step.kind is StepKind.VIEW:
            id_type = step.payload_as(ViewPayload).view.id_type
            if id_type:
                out[id_type] = f"A {id_type} of the {step.entity}: one row per distinct value"
        for var in project.vars:
            if var.entity == step.entity and var.spec.description:
                out.setdefault(var.name, var.spec.description)
        return out

    def get_automation_condition(self, step: Step, settings: ProfilesDagsterSettings) -> AutomationCondition | None:
        """From profiles_dagster.yaml's `automation`: eager, or on_cron with the `schedule`'s cron."""
        if settings.automation == "eager":
            return AutomationCondition.eager()
        if settings.automation == "on_cron":
            if settings.schedule is None:
                raise ProfilesError(
                    "automation: on_cron needs a schedule (cron, timezone) to take its cron from",
                    file=SETTINGS_FILE,
                    key="automation",
                )
            return AutomationCondition.on_cron(settings.schedule.cron, settings.schedule.timezone)
        return None

    def get_asset_spec(
        self, step: Step, project: Project, *, deps: list[AssetKey], schema: str, warehouse_kind: str
    ) -> AssetSpec:
        return AssetSpec(
            key=self.get_asset_key(step),
            deps=deps,
            description=self.get_description(step),
            group_name=self.get_group_name(step),
            kinds=self.get_kinds(step, warehouse_kind),
            tags=self.get_tags(step),
            metadata=self.get_metadata(step, project, schema),
            code_version=step.content_hash,
            skippable=True,
        )
