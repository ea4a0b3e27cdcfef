"""How plan steps become Dagster asset specs. Subclass and override any method, as with dagster-dbt."""

from __future__ import annotations

from dagster import AssetKey, AssetSpec, CodeReferencesMetadataValue, LocalFileCodeReference

from profiles_dagster.plan.steps import Step
from profiles_dagster.project.model import Input, Project
from profiles_dagster.sql.names import source_table


class ProfilesTranslator:
    """Default names: `<entity>/<step>` keys, one group per entity, inputs keyed by their table name."""

    def __init__(self, key_prefix: str | list[str] | None = None) -> None:
        self.key_prefix = [key_prefix] if isinstance(key_prefix, str) else list(key_prefix or [])

    def get_asset_key(self, step: Step) -> AssetKey:
        return AssetKey([*self.key_prefix, *step.key])

    def get_input_asset_key(self, inp: Input, dialect: str) -> AssetKey:
        """The input's table name split into parts, e.g. `raw.identifies` -> ["raw", "identifies"]."""
        table = source_table(inp.spec.app_defaults.source, dialect)
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
            metadata["dagster/code_references"] = CodeReferencesMetadataValue(
                code_references=[LocalFileCodeReference(file_path=str(step.origin.file), line_number=step.origin.line)]
            )
        return metadata

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
