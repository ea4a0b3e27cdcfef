"""Project folder + site configuration -> everything a run needs (shared by the CLI and Dagster)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.plan.steps import RunPlan
from profiles_dagster.project.loader import load_project
from profiles_dagster.project.model import Project
from profiles_dagster.project.siteconfig import Connection, find_site_config, load_connection
from profiles_dagster.project.yaml_source import read_yaml
from profiles_dagster.warehouse import WarehouseEngine, warehouse_for


@dataclass(frozen=True)
class LoadedProject:
    project: Project
    plan: RunPlan
    connection: Connection | None
    warehouse: WarehouseEngine  # load() resolves one when none is given


def load(
    project_dir: str | Path,
    *,
    site_config: str | Path | None = None,
    target: str | None = None,
    warehouse: WarehouseEngine | None = None,
) -> LoadedProject:
    """Load and plan; resolve the connection unless a warehouse resource is given directly."""
    project = load_project(project_dir)
    plan = build_plan(project)
    connection = None
    if warehouse is None:
        config = find_site_config(project.root, site_config)
        connection = load_connection(config, project.file.connection, target)
        try:
            warehouse = warehouse_for(connection)
        except ProfilesError as exc:
            raise _with_line(exc) from exc.__cause__
    return LoadedProject(project, plan, connection, warehouse)


def _with_line(exc: ProfilesError) -> ProfilesError:
    """An engine's error about a siteconfig key (it knows the key, not the line): add the key's line."""
    if exc.line is not None or not exc.file or not exc.key:
        return exc
    try:
        lines = read_yaml(Path(exc.file)).lines
    except ProfilesError:
        return exc
    key = exc.key
    while key and key not in lines:  # the nearest key that is in the file
        key = key.rpartition(".")[0]
    if key:
        exc = ProfilesError(exc.message, file=exc.file, line=lines[key], key=exc.key, hint=exc.hint)
    return exc
