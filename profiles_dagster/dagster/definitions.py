"""A Profiles project as Dagster Definitions: one subsettable multi-asset, one spec per run step."""
# No `from __future__ import annotations` here: Dagster reads the config class from the annotation.

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Config,
    Definitions,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    in_process_executor,
    multi_asset,
)
from pydantic import Field

from profiles_dagster.dagster.translator import ProfilesTranslator
from profiles_dagster.loading import LoadedProject, load
from profiles_dagster.runner import ProfilesRun, StepResult, parse_time
from profiles_dagster.warehouse.base import Warehouse

DEFAULT_RESOURCE_KEY = "profiles_warehouse"


class ProfilesRunConfig(Config):
    """Run options, as pb's command line has them."""

    end_time: str | None = Field(default=None, description="ISO 8601; what {{ end_time_sql }} renders. Default: now")
    begin_time: str | None = Field(default=None, description="ISO 8601; what {{ begin_time_sql }} renders")


def build_definitions(
    project_dir: str | Path,
    *,
    site_config: str | Path | None = None,
    target: str | None = None,
    translator: ProfilesTranslator | None = None,
    assets: Sequence[AssetsDefinition | AssetSpec] = (),
    warehouse: Warehouse | None = None,
    resource_key: str = DEFAULT_RESOURCE_KEY,
) -> Definitions:
    """Load, plan and wrap a Profiles project. `assets` are the user's own (e.g. loaders of the inputs):
    an input whose key one of them already has gets no external asset of its own."""
    loaded = load(project_dir, site_config=site_config, target=target, warehouse=warehouse)
    translator = translator or ProfilesTranslator()
    profiles_asset = build_profiles_asset(loaded, translator=translator, resource_key=resource_key)
    own_keys = {key for a in assets for key in (a.keys if isinstance(a, AssetsDefinition) else {a.key})}
    inputs = [spec for spec in input_specs(loaded, translator) if spec.key not in own_keys]
    return Definitions(
        assets=[*assets, *inputs, profiles_asset],
        resources={resource_key: loaded.warehouse},
        executor=in_process_executor,  # one writer per DuckDB file; steps run in one op anyway
    )


def input_specs(loaded: LoadedProject, translator: ProfilesTranslator) -> list[AssetSpec]:
    kind = loaded.warehouse.kind
    return [
        AssetSpec(
            key=translator.get_input_asset_key(inp, kind),
            description=f"Profiles input '{inp.name}' ({inp.spec.app_defaults.source})",
            group_name="profiles_inputs",
            kinds={kind},
            metadata={"dagster/table_name": inp.spec.app_defaults.source},
        )
        for inp in loaded.project.inputs.values()
    ]


def build_profiles_asset(
    loaded: LoadedProject, *, translator: ProfilesTranslator, resource_key: str = DEFAULT_RESOURCE_KEY
) -> AssetsDefinition:
    project, plan, warehouse = loaded.project, loaded.plan, loaded.warehouse
    kind = warehouse.kind
    input_keys = {name: translator.get_input_asset_key(inp, kind) for name, inp in project.inputs.items()}
    specs = []
    step_by_asset: dict[AssetKey, Any] = {}
    for step in plan.steps:
        deps = [translator.get_asset_key(plan[d]) for d in step.deps]
        deps += [input_keys[name] for name in step.external_inputs]
        spec = translator.get_asset_spec(step, project, deps=deps, schema=warehouse.output_schema, warehouse_kind=kind)
        specs.append(spec)
        step_by_asset[spec.key] = step

    @multi_asset(
        name=f"profiles_{_safe(project.name)}",
        specs=specs,
        can_subset=True,
        required_resource_keys={resource_key},
        description=f"Profiles project {project.name}",
    )
    def _profiles(context: AssetExecutionContext, config: ProfilesRunConfig) -> Iterator[MaterializeResult]:
        wh: Warehouse = getattr(context.resources, resource_key)
        selected = [step_by_asset[k].key for k in context.selected_asset_keys]
        with wh.session() as session:
            run = ProfilesRun(
                project,
                plan,
                session,
                selected=selected,
                end_time=parse_time(config.end_time),
                begin_time=parse_time(config.begin_time),
            )
            try:
                run.start()
                context.log.info(f"Profiles run seq_no {run.seq_no}: {len(run.steps)} step(s)")
                for result in run.execute():
                    context.log.info(f"{result.step.path}: {result.row_count} rows in {result.seconds:.2f}s")
                    yield MaterializeResult(
                        asset_key=translator.get_asset_key(result.step),
                        metadata=materialization_metadata(result, run.seq_no),
                    )
                views = run.publish()
                context.log.info(f"Published views: {', '.join(views) or 'none'}")
            except BaseException:
                run.fail()
                raise

    return _profiles


def materialization_metadata(result: StepResult, seq_no: int) -> dict[str, Any]:
    table = result.table
    return {
        "dagster/row_count": MetadataValue.int(result.row_count),
        "dagster/table_name": MetadataValue.text(f"{table.db}.{table.name}"),
        "dagster/column_schema": MetadataValue.table_schema(
            TableSchema(columns=[TableColumn(name=n, type=t) for n, t in result.columns])
        ),
        "profiles/seq_no": MetadataValue.int(seq_no),
        "profiles/seconds": MetadataValue.float(round(result.seconds, 4)),
        "profiles/sql": MetadataValue.md(f"```sql\n{result.sql}\n```"),
        **{f"profiles/{k}": v for k, v in result.stats.items()},
    }


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
