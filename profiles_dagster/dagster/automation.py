"""A project's schedule and its new-rows sensor, from profiles_dagster.yaml's `schedule:` and `sensor:`.

The schedule pins each run's end time to the tick's scheduled time, so a late or retried tick
computes the same profiles. The sensor reads, per watched input, the row count and the newest
`occurred_at_col` value (one cheap aggregate) and requests a run when either grew since the
cursor; its first evaluation only records where the inputs stand.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from typing import Any

from dagster import (
    AssetKey,
    AssetSelection,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    schedule,
    sensor,
)
from sqlglot import exp

from profiles_dagster.errors import ProfilesError, did_you_mean, summary
from profiles_dagster.project.model import Project
from profiles_dagster.project.settings import SETTINGS_FILE, ScheduleSettings, SensorSettings
from profiles_dagster.sql import checks as sql
from profiles_dagster.warehouse.base import Warehouse


def run_config(op_name: str, **config: Any) -> dict[str, Any]:
    """Run config of the project's multi-asset (ProfilesRunConfig's fields)."""
    return {"ops": {op_name: {"config": {k: v for k, v in config.items() if v is not None}}}}


def build_schedule(
    name: str, settings: ScheduleSettings, keys: Sequence[AssetKey], op_name: str, description: str
) -> ScheduleDefinition:
    @schedule(
        name=name,
        cron_schedule=settings.cron,
        execution_timezone=settings.timezone,
        target=AssetSelection.assets(*keys),
        description=description,
    )
    def _schedule(context: ScheduleEvaluationContext) -> RunRequest:
        end = context.scheduled_execution_time.astimezone(UTC).replace(tzinfo=None)
        return RunRequest(
            run_config=run_config(op_name, end_time=end.isoformat()),
            tags={"profiles/trigger": "schedule"},
        )

    return _schedule


def watched_inputs(project: Project, settings: SensorSettings) -> list[str]:
    for n, name in enumerate(settings.inputs):
        if name not in project.inputs:
            raise ProfilesError(
                f"no input named '{name}' in project {project.name}",
                file=project.root / SETTINGS_FILE,
                key=f"sensor.inputs[{n}]",
                hint=did_you_mean(name, project.inputs),
            )
    return list(settings.inputs) or list(project.inputs)


def input_states(
    warehouse: Warehouse, tables: Mapping[str, exp.Expression], occurred_at: Mapping[str, str | None]
) -> dict[str, list]:
    """Per input: [row count, newest occurred_at as ISO text or None]."""
    states: dict[str, list] = {}
    with warehouse.session() as session:
        for name, table in tables.items():
            column = occurred_at.get(name)
            if column:
                count, latest = session.query(session.render(sql.latest_event_query(table, column)))[0]
            else:
                count, latest = session.query(session.render(sql.row_count_query(table)))[0][0], None
            states[name] = [int(count), None if latest is None else str(latest)]
    return states


def grown(before: Mapping[str, list], now: Mapping[str, list]) -> list[str]:
    """Inputs with more rows, or a newer event, than the cursor recorded."""
    out = []
    for name, (count, latest) in now.items():
        old = before.get(name)
        if old is None:
            continue
        old_count, old_latest = old
        if count > old_count or (latest is not None and (old_latest is None or latest > old_latest)):
            out.append(name)
    return out


def build_input_sensor(
    name: str,
    settings: SensorSettings,
    project: Project,
    input_table: Callable[[str], exp.Expression],
    keys: Sequence[AssetKey],
    resource_key: str,
    description: str,
) -> SensorDefinition:
    names = watched_inputs(project, settings)
    tables = {n: input_table(n) for n in names}
    occurred = {n: project.inputs[n].occurred_at_col for n in names}

    @sensor(
        name=name,
        minimum_interval_seconds=settings.minimum_interval_seconds,
        target=AssetSelection.assets(*keys),
        required_resource_keys={resource_key},
        description=description,
    )
    def _sensor(context: SensorEvaluationContext):
        warehouse: Warehouse = getattr(context.resources, resource_key)
        try:
            now = input_states(warehouse, tables, occurred)
        except Exception as exc:  # a missing table, or a DuckDB file another process is writing
            text = summary(exc)
            return SkipReason(f"could not read the inputs: {text}")
        before = json.loads(context.cursor) if context.cursor else None
        cursor = json.dumps(now, sort_keys=True)
        if before is None:
            context.update_cursor(cursor)
            return SkipReason(f"recorded the state of {', '.join(names)}; a run starts when they grow")
        changed = grown(before, now)
        context.update_cursor(cursor)
        if not changed:
            return SkipReason(f"no new rows in {', '.join(names)}")
        return RunRequest(
            run_key=f"{name}:{hashlib.sha1(cursor.encode()).hexdigest()[:16]}",
            asset_selection=list(keys),
            tags={"profiles/trigger": "sensor", "profiles/new_rows_in": ",".join(changed)},
        )

    return _sensor
