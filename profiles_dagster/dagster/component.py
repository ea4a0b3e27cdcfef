"""`ProfilesProjectComponent`: a Profiles project as a `dg` component, like dagster-dbt's DbtProjectComponent.

```yaml
# defs/customer360/defs.yaml  (`dg scaffold defs profiles_dagster.ProfilesProjectComponent defs/customer360`)
type: profiles_dagster.ProfilesProjectComponent
attributes:
  project: ../../profiles          # folder with pb_project.yaml, relative to this file's folder
  site_config: ../../siteconfig.yaml
  key_prefix: crm                  # asset keys crm/user/...; resource profiles_warehouse_crm
  automation: eager                # or on_cron (with schedule), or leave out
```
"""

# No `from __future__ import annotations`: Resolvable reads the field types.

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from dagster import (
    Component,
    ComponentLoadContext,
    Definitions,
    Resolvable,
    Resolver,
    Scaffolder,
    ScaffoldRequest,
    scaffold_with,
)
from pydantic import BaseModel, Field

from profiles_dagster.dagster.definitions import build_definitions, default_resource_key
from profiles_dagster.dagster.translator import ProfilesTranslator


def _doc(text: str) -> Resolver:
    return Resolver.default(description=text)


class ProfilesScaffoldParams(BaseModel):
    project: str | None = Field(None, description="folder with pb_project.yaml, relative to the new component's folder")


class ProfilesProjectScaffolder(Scaffolder[ProfilesScaffoldParams]):
    @classmethod
    def get_scaffold_params(cls) -> type[ProfilesScaffoldParams]:
        return ProfilesScaffoldParams

    def scaffold(self, request: ScaffoldRequest[ProfilesScaffoldParams]) -> None:
        project = request.params.project if request.params else None
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(
            textwrap.dedent(
                f"""\
                type: {request.type_name}
                attributes:
                  # the folder with pb_project.yaml, relative to this file's folder
                  project: {project or "profiles"}
                  # site_config: siteconfig.yaml      # default: $PROFILES_SITE_CONFIG, the project, ~/.pb
                  # target: dev
                  # key_prefix: crm                   # needed when several projects share a code location
                  # automation: eager                 # or on_cron (uses schedule.cron)
                  # schedule: {{cron: "0 6 * * *", timezone: UTC}}
                  # sensor: {{minimum_interval_seconds: 300}}
                """
            ),
            encoding="utf-8",
        )


@scaffold_with(ProfilesProjectScaffolder)
@dataclass
class ProfilesProjectComponent(Component, Resolvable):
    """A Profiles project (pb YAML): its run steps as assets with checks, its schedule and sensor.

    Paths are relative to the folder of the component's defs.yaml. `checks`, `schedule`, `sensor`
    and `automation` override those of the project's profiles_dagster.yaml."""

    project: Annotated[str, _doc("folder with pb_project.yaml, relative to this defs.yaml's folder")]
    target: Annotated[str | None, _doc("target of the project's connection (default: its `target`)")] = None
    site_config: Annotated[
        str | None, _doc("pb-style siteconfig.yaml (default: $PROFILES_SITE_CONFIG, the project, ~/.pb)")
    ] = None
    key_prefix: Annotated[
        str | list[str] | None, _doc("asset key prefix; needed when several projects share a code location")
    ] = None
    resource_key: Annotated[
        str | None, _doc("the warehouse resource's key (default: profiles_warehouse[_<key_prefix>])")
    ] = None
    automation: Annotated[
        Literal["eager", "on_cron"] | None, _doc("AutomationCondition of every step; on_cron uses schedule.cron")
    ] = None
    schedule: Annotated[dict[str, Any] | None, _doc("{cron, timezone}: a schedule running the whole project")] = None
    sensor: Annotated[
        dict[str, Any] | None, _doc("{inputs, minimum_interval_seconds}: run when inputs get new rows")
    ] = None
    checks: Annotated[
        dict[str, Any] | None, _doc("asset check thresholds and custom checks, as in profiles_dagster.yaml")
    ] = None
    output_dir: Annotated[str | None, _doc("where each run's SQL files go (default: <project>/output)")] = None
    input_assets: Annotated[
        bool, _doc("declare the inputs as external assets; false when other defs materialize them")
    ] = True

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        base = Path(context.path)
        translator = ProfilesTranslator(key_prefix=self.key_prefix)
        overrides = {
            key: value
            for key, value in (
                ("automation", self.automation),
                ("schedule", self.schedule),
                ("sensor", self.sensor),
                ("checks", self.checks),
            )
            if value is not None
        }
        return build_definitions(
            _path(base, self.project),
            site_config=_path(base, self.site_config) if self.site_config else None,
            target=self.target,
            translator=translator,
            resource_key=self.resource_key or default_resource_key(translator),
            settings=overrides or None,
            output_dir=_path(base, self.output_dir) if self.output_dir else None,
            input_assets=self.input_assets,
        )


def _path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()
