"""A Profiles project as Dagster Definitions: one subsettable multi-asset, one spec per run step.

Its asset checks (see checks.py) run right after their step inside the multi-asset. Dagster does
not stop later steps of one multi-asset when a blocking check fails, so this does: the steps that
depend on a failed check of severity error are not executed, the run fails naming the check, and
the stable views are not repointed (the runner only publishes at the end of a complete run).
"""
# No `from __future__ import annotations` here: Dagster reads the config class from the annotation.

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Config,
    Definitions,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    in_process_executor,
    multi_asset,
)
from pydantic import Field

from profiles_dagster.clock import default_end_time, parse_time
from profiles_dagster.dagster.automation import build_input_sensor, build_schedule
from profiles_dagster.dagster.checks import CheckTarget, ProfilesCheck, plan_checks
from profiles_dagster.dagster.lineage import PlanLineage, placeholder_context
from profiles_dagster.dagster.translator import ProfilesTranslator
from profiles_dagster.errors import ProfilesError
from profiles_dagster.loading import LoadedProject, load
from profiles_dagster.lock import open_session
from profiles_dagster.plan.steps import Step, StepKey
from profiles_dagster.project.settings import ProfilesDagsterSettings
from profiles_dagster.run.sql_files import write_step_sql
from profiles_dagster.runner import ProfilesRun, StepResult
from profiles_dagster.sql import registry
from profiles_dagster.sql.names import table
from profiles_dagster.warehouse.base import Session, Warehouse
from profiles_dagster.warehouse.resource import as_resource

DEFAULT_RESOURCE_KEY = "profiles_warehouse"
# what build_definitions(settings=...) and the Component may set; the rest changes plans and stays in the file
DAGSTER_SETTINGS = ("checks", "schedule", "sensor", "automation")


class ProfilesRunConfig(Config):
    """Run options, as pb's command line has them."""

    end_time: str | None = Field(default=None, description="ISO 8601; what {{ end_time_sql }} renders. Default: now")
    begin_time: str | None = Field(default=None, description="ISO 8601; what {{ begin_time_sql }} renders")
    full_refresh: bool = Field(
        default=False, description="rebuild incremental steps (the id stitcher) from all input rows"
    )


_freezing = False  # while a build keeps the heap before it frozen (builds nest: the Component's, the asset's)


@contextmanager
def _old_heap_frozen() -> Iterator[None]:
    """Keeps the garbage collector to the objects made while building Definitions.

    The build makes tens of thousands of sqlglot nodes that live a while, which sets off full
    collections, each a tenth of a second over the whole heap (mostly Dagster's modules, none of
    which the build turns into garbage). Frozen, that heap is skipped; the build's own garbage is
    still collected. Not done where someone else froze objects (unfreezing would thaw theirs) or
    turned the collector off."""
    global _freezing
    # asked in this order: counting the frozen objects walks them all
    if _freezing or not gc.isenabled() or gc.get_freeze_count():
        yield
        return
    gc.freeze()
    _freezing = True
    try:
        yield
    finally:
        _freezing = False
        gc.unfreeze()


@_old_heap_frozen()
def build_definitions(
    project_dir: str | Path,
    *,
    site_config: str | Path | None = None,
    target: str | None = None,
    translator: ProfilesTranslator | None = None,
    assets: Sequence[AssetsDefinition | AssetSpec] = (),
    warehouse: Warehouse | None = None,
    resource_key: str = DEFAULT_RESOURCE_KEY,
    settings: ProfilesDagsterSettings | Mapping[str, Any] | None = None,
    output_dir: str | Path | None = None,
    input_assets: bool = True,
) -> Definitions:
    """Load, plan and wrap a Profiles project: its assets, checks, schedule, sensor and warehouse resource.

    `assets` are the user's own (e.g. loaders of the inputs): an input whose key one of them already
    has gets no external asset of its own; `input_assets=False` declares none (when other definitions
    of the code location materialize the inputs). `settings` overrides profiles_dagster.yaml's checks,
    schedule, sensor and automation. Several projects in one code location need their own
    `resource_key`s and translator key prefixes (see `default_resource_key`). Each step's SQL is
    written under `output_dir` (default: the project's `output/`), `<target>/seq_no_<n>/`."""
    loaded = load(project_dir, site_config=site_config, target=target, warehouse=warehouse)
    translator = translator or ProfilesTranslator()
    merged = resolve_settings(loaded.project.settings, settings)
    profiles_asset = build_profiles_asset(
        loaded, translator=translator, resource_key=resource_key, settings=merged, output_dir=output_dir
    )
    own_keys = {key for a in assets for key in (a.keys if isinstance(a, AssetsDefinition) else {a.key})}
    inputs = [spec for spec in input_specs(loaded, translator) if spec.key not in own_keys] if input_assets else []
    schedules, sensors = build_automation(loaded, profiles_asset, merged, resource_key)
    return Definitions(
        assets=[*assets, *inputs, profiles_asset],
        schedules=schedules,
        sensors=sensors,
        resources={resource_key: as_resource(loaded.warehouse, loaded.connection)},
        executor=in_process_executor,  # one writer per DuckDB file; steps run in one op anyway
    )


def default_resource_key(translator: ProfilesTranslator) -> str:
    """`profiles_warehouse`, suffixed with the translator's key prefix: one resource per project."""
    prefix = "_".join(_safe(p) for p in translator.key_prefix)
    return f"{DEFAULT_RESOURCE_KEY}_{prefix}" if prefix else DEFAULT_RESOURCE_KEY


def asset_name(loaded: LoadedProject, translator: ProfilesTranslator) -> str:
    """The multi-asset's (and its op's, so the run config's) name: `profiles_[<prefix>_]<project>`."""
    parts = [*translator.key_prefix, loaded.project.name]
    return "profiles_" + "_".join(_safe(p) for p in parts)


def resolve_settings(
    base: ProfilesDagsterSettings, overrides: ProfilesDagsterSettings | Mapping[str, Any] | None
) -> ProfilesDagsterSettings:
    if overrides is None:
        return base
    if isinstance(overrides, ProfilesDagsterSettings):
        data = overrides.model_dump(exclude_unset=True)
    else:
        data = dict(overrides)
    others = sorted(set(data) - set(DAGSTER_SETTINGS))
    if others:
        raise ProfilesError(
            f"settings {', '.join(others)} change the plan; set them in profiles_dagster.yaml",
            hint=f"here only {', '.join(DAGSTER_SETTINGS)}",
        )
    parsed = ProfilesDagsterSettings.model_validate(data)
    return base.model_copy(update={key: getattr(parsed, key) for key in data})


def input_specs(loaded: LoadedProject, translator: ProfilesTranslator) -> list[AssetSpec]:
    """External assets for the inputs. They describe the table only, so that two projects reading one
    table declare the same spec and their Definitions merge."""
    kind = loaded.warehouse.kind
    specs: dict[AssetKey, AssetSpec] = {}
    for inp in loaded.project.inputs.values():
        key = translator.get_input_asset_key(inp, kind)
        source = inp.spec.app_defaults.source
        specs.setdefault(
            key,
            AssetSpec(
                key=key,
                description=f"Input table {source}, read by Profiles projects",
                group_name="profiles_inputs",
                kinds={kind},
                metadata={"dagster/table_name": source},
            ),
        )
    return list(specs.values())


def build_automation(
    loaded: LoadedProject, profiles_asset: AssetsDefinition, settings: ProfilesDagsterSettings, resource_key: str
) -> tuple[list, list]:
    """The schedule (unless automation is on_cron, which takes its cron) and the new-rows sensor."""
    project = loaded.project
    name = profiles_asset.node_def.name
    keys = sorted(profiles_asset.keys, key=lambda k: k.to_user_string())
    schedules, sensors = [], []
    if settings.schedule is not None and settings.automation != "on_cron":
        schedules.append(
            build_schedule(
                f"{name}_schedule",
                settings.schedule,
                keys,
                name,
                f"Runs Profiles project {project.name} ({settings.schedule.cron}, {settings.schedule.timezone})",
            )
        )
    if settings.sensor is not None:
        ctx = placeholder_context(project, loaded.plan, loaded.warehouse.kind, _source_dialect(loaded))
        sensors.append(
            build_input_sensor(
                f"{name}_new_rows",
                settings.sensor,
                project,
                ctx.input_table,
                keys,
                resource_key,
                f"Runs Profiles project {project.name} when its inputs get new rows",
            )
        )
    return schedules, sensors


def _source_dialect(loaded: LoadedProject) -> str:
    return loaded.project.settings.sql_dialect(loaded.warehouse.kind)


@_old_heap_frozen()
def build_profiles_asset(
    loaded: LoadedProject,
    *,
    translator: ProfilesTranslator,
    resource_key: str = DEFAULT_RESOURCE_KEY,
    settings: ProfilesDagsterSettings | None = None,
    output_dir: str | Path | None = None,
) -> AssetsDefinition:
    project, plan, warehouse = loaded.project, loaded.plan, loaded.warehouse
    settings = settings or project.settings
    kind = warehouse.kind
    input_keys = {name: translator.get_input_asset_key(inp, kind) for name, inp in project.inputs.items()}
    asset_keys = {step.key: translator.get_asset_key(step) for step in plan.steps}
    ctx = placeholder_context(project, plan, kind, _source_dialect(loaded))
    lineage = PlanLineage(ctx, asset_keys, input_keys)
    checks = plan_checks(project, plan, settings, _source_dialect(loaded))
    specs = []
    step_by_asset: dict[AssetKey, Step] = {}
    for step in plan.steps:
        deps = [asset_keys[d] for d in step.deps]
        deps += [input_keys[name] for name in step.external_inputs]
        spec = translator.get_asset_spec(step, project, deps=deps, schema=warehouse.output_schema, warehouse_kind=kind)
        extra: dict[str, Any] = {}
        column_lineage = lineage.for_step(step.key)
        if column_lineage is not None and "dagster/column_lineage" not in spec.metadata:
            extra["dagster/column_lineage"] = column_lineage
        condition = translator.get_automation_condition(step, settings)
        if extra:
            spec = spec.merge_attributes(metadata=extra)
        if condition is not None and spec.automation_condition is None:
            spec = spec.replace_attributes(automation_condition=condition)
        specs.append(spec)
        step_by_asset[spec.key] = step
    asset_keys = {step.key: key for key, step in step_by_asset.items()}
    check_specs = [c.spec(asset_keys[c.step]) for c in checks]
    target = loaded.connection.target if loaded.connection else "dagster"
    sql_root = Path(output_dir) if output_dir is not None else project.root / "output"
    name = asset_name(loaded, translator)

    @multi_asset(
        name=name,
        specs=specs,
        check_specs=check_specs,
        can_subset=True,
        required_resource_keys={resource_key},
        description=f"Profiles project {project.name}",
    )
    def _profiles(context: AssetExecutionContext, config: ProfilesRunConfig) -> Iterator[Any]:
        wh: Warehouse = getattr(context.resources, resource_key)
        selected = {step_by_asset[k].key for k in context.selected_asset_keys}
        wanted = {(c.asset_key, c.name) for c in context.selected_asset_check_keys}
        chosen = [c for c in checks if (asset_keys[c.step], c.name) in wanted]
        execution = _Execution(
            context, loaded, translator, asset_keys, chosen, lineage, sql_root / target, config, selected
        )
        # a DuckDB file in use by another run: wait up to run_lock.wait_seconds, as the CLI does
        with open_session(wh, loaded.project.settings.run_lock.wait_seconds) as session:
            yield from execution.run(session, wh.session)

    return _profiles


class _Execution:
    """One execution of the multi-asset: the selected steps, each followed by its selected checks."""

    def __init__(
        self,
        context: AssetExecutionContext,
        loaded: LoadedProject,
        translator: ProfilesTranslator,
        asset_keys: dict[StepKey, AssetKey],
        checks: list[ProfilesCheck],
        lineage: PlanLineage,
        sql_dir: Path,
        config: ProfilesRunConfig,
        selected: set[StepKey],
    ) -> None:
        self.context = context
        self.project = loaded.project
        self.plan = loaded.plan
        self.translator = translator
        self.asset_keys = asset_keys
        self.checks: dict[StepKey, list[ProfilesCheck]] = {}
        for check in checks:
            self.checks.setdefault(check.step, []).append(check)
        self.lineage = lineage
        self.sql_dir = sql_dir
        self.config = config
        self.selected = selected

    def run(self, session: Session, beat_sessions: Callable[[], AbstractContextManager[Session]]) -> Iterator[Any]:
        config = self.config
        end_time = parse_time(config.end_time)
        # checks selected without their step (e.g. "Execute checks" in the UI) look at the latest material
        for key in [k for k in self.checks if k not in self.selected]:
            yield from self._check_latest(session, self.plan[key], end_time or default_end_time())
        if not self.selected:
            return
        run = ProfilesRun(
            self.project,
            self.plan,
            session,
            selected=self.selected,
            end_time=end_time,
            begin_time=parse_time(config.begin_time),
            full_refresh=config.full_refresh,
            beat_sessions=beat_sessions,
        )
        try:
            yield from self._steps(run)
        except BaseException as exc:
            run.fail(exc)
            raise

    def _steps(self, run: ProfilesRun) -> Iterator[Any]:
        log_ = self.context.log
        run.start()
        folder = self.sql_dir / f"seq_no_{run.seq_no}"
        log_.info(
            f"Profiles run seq_no {run.seq_no} of {self.project.name}: {len(run.steps)} step(s), "
            f"end_time {run.end_time:%Y-%m-%d %H:%M:%S}; SQL in {folder}"
        )
        blocked: dict[StepKey, str] = {}  # step -> the failed blocking check it waits on
        failed: list[str] = []
        skipped: list[str] = []
        for n, step in enumerate(run.steps, start=1):
            waits = sorted({blocked[d] for d in step.deps if d in blocked})
            if waits:
                blocked[step.key] = waits[0]
                skipped.append(step.path)
                log_.warning(f"{step.path}: not run, it depends on the failed blocking check {waits[0]}")
                continue
            sql_file = self._write_sql(run, step, folder, n)
            log_.info(f"{step.path}: running {sql_file or '(SQL file not written)'}")
            result = run.execute_step(step)
            target = CheckTarget(run.session, step, result.table, run.end_time, result.row_count, dict(result.stats))
            metadata = self._metadata(result, run.seq_no, sql_file)
            check_results = [c.evaluate(target, self.asset_keys[step.key]) for c in self.checks.get(step.key, [])]
            log_.info(
                f"{step.path}: {result.row_count} rows in {result.seconds:.2f}s -> "
                f"{result.table.db}.{result.table.name}"
                + "".join(f"; check {r.check_name} {'passed' if r.passed else 'FAILED'}" for r in check_results)
            )
            yield MaterializeResult(asset_key=self.asset_keys[step.key], metadata=metadata, check_results=check_results)
            for r in check_results:
                if not r.passed and r.severity == AssetCheckSeverity.ERROR:
                    label = f"{self.asset_keys[step.key].to_user_string()}:{r.check_name}"
                    failed.append(f"{label} ({r.description})" if r.description else label)
                    blocked.setdefault(step.key, label)
            if step.key in blocked:
                run.reject(step)  # a later subset must not read this material as its upstream
        if failed:
            raise Failure(
                description=(
                    f"blocking check(s) failed: {'; '.join(failed)}. "
                    + (f"Not run: {', '.join(skipped)}. " if skipped else "")
                    + "The stable views still show the previous complete run."
                ),
                metadata={"failed_checks": MetadataValue.json(failed), "skipped_steps": MetadataValue.json(skipped)},
            )
        views = run.publish()
        log_.info(f"Published views: {', '.join(views) or 'none'}")

    def _write_sql(self, run: ProfilesRun, step: Step, folder: Path, position: int) -> Path | None:
        """The step's SQL as it runs, in the file `profiles-dagster compile` and `run` write: for logs and debugging."""
        try:
            return write_step_sql(folder, position, step, run.compiled_sql(step))
        except OSError as exc:  # a read-only project folder must not fail the run
            self.context.log.warning(f"{step.path}: could not write its SQL under {folder}: {exc}")
            return None

    def _metadata(self, result: StepResult, seq_no: int, sql_file: Path | None) -> dict[str, Any]:
        step = result.step
        descriptions = self.translator.get_column_descriptions(step, self.project)
        metadata = materialization_metadata(result, seq_no, descriptions=descriptions)
        column_lineage = self.lineage.for_step(step.key, [name for name, _ in result.columns])
        if column_lineage is not None:
            metadata["dagster/column_lineage"] = column_lineage
        if sql_file is not None:
            metadata["profiles/sql_file"] = MetadataValue.path(str(sql_file))
        if step.view_name:
            metadata["profiles/view"] = MetadataValue.text(f"{result.table.db}.{step.view_name}")
        return metadata

    def _check_latest(self, session: Session, step: Step, end_time) -> Iterator[AssetCheckResult]:
        key = self.asset_keys[step.key]
        schema = session.schema
        try:
            latest = registry.latest_material_row(session, schema, self.project.name, step.path, step.content_hash)
        except Exception:  # no registry yet: nothing ever ran here
            latest = None
        for check in self.checks[step.key]:
            if latest is None:
                yield AssetCheckResult(
                    asset_key=key,
                    check_name=check.name,
                    passed=False,
                    severity=AssetCheckSeverity.ERROR if check.severity == "error" else AssetCheckSeverity.WARN,
                    description=f"{step.path} was never materialized with its current definition",
                )
                continue
            target = CheckTarget(session, step, table(latest.table_name, schema), end_time)
            yield check.evaluate(target, key)


def materialization_metadata(
    result: StepResult, seq_no: int, *, descriptions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    table_ = result.table
    descriptions = descriptions or {}
    columns = [TableColumn(name=n, type=t, description=descriptions.get(n)) for n, t in result.columns]
    return {
        "dagster/row_count": MetadataValue.int(result.row_count),
        "dagster/table_name": MetadataValue.text(f"{table_.db}.{table_.name}"),
        "dagster/column_schema": MetadataValue.table_schema(TableSchema(columns=columns)),
        "profiles/seq_no": MetadataValue.int(seq_no),
        "profiles/seconds": MetadataValue.float(round(result.seconds, 4)),
        "profiles/sql": MetadataValue.md(f"```sql\n{result.sql}\n```"),
        **{f"profiles/{k}": v for k, v in result.stats.items()},
    }


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
