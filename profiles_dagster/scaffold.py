"""`profiles-dagster init`: a sample project that runs as is, and siteconfig connections."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import yaml

from profiles_dagster.errors import ProfilesError

TEMPLATE = "sample_project"


def init_project(output: Path) -> Path:
    """Copy the packaged sample project; never overwrite an existing folder's files."""
    if output.exists() and any(output.iterdir()):
        raise ProfilesError(f"{output} exists and is not empty; choose a new folder")
    source = resources.files("profiles_dagster") / "templates" / TEMPLATE
    with resources.as_file(source) as folder:
        shutil.copytree(folder, output, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    return output.resolve()


def init_connection(
    site_config: Path, name: str, wh_type: str, target: str, settings: list[str], secrets: list[str]
) -> Path:
    """Add or replace one target of one connection, as pb writes it; secrets as `${ENV_VAR}` references."""
    values: dict[str, object] = {"type": wh_type}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ProfilesError(f"--set takes KEY=VALUE, got '{item}'")
        values[key] = yaml.safe_load(value) if value else ""
    for item in secrets:
        key, sep, env = item.partition("=")
        if not sep or not key or not env.isidentifier():
            raise ProfilesError(f"--secret takes KEY=ENV_VAR, got '{item}'")
        values[key] = "${" + env + "}"
    data: dict = {}
    if site_config.is_file():
        data = yaml.safe_load(site_config.read_text(encoding="utf-8")) or {}
    connections = data.setdefault("connections", {})
    connection = connections.setdefault(name, {})
    connection.setdefault("target", target)
    connection.setdefault("outputs", {})[target] = values
    site_config.parent.mkdir(parents=True, exist_ok=True)
    site_config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return site_config
