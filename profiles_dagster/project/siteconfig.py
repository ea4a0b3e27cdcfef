"""pb's siteconfig.yaml: named connections with targets; secrets may come from the environment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profiles_dagster.errors import ProfilesError, did_you_mean
from profiles_dagster.project.yaml_source import read_yaml

ENV_VAR = "PROFILES_SITE_CONFIG"
_ENV_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?|\{\{\s*env\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)\s*\}\}")
SECRET_KEYS = frozenset(
    {
        "password",
        "access_token",
        "token",
        "private_key",
        "private_key_passphrase",
        "credentials",
        "credentials_json",
        "secret",
        "client_secret",
    }
)


@dataclass(frozen=True)
class Connection:
    """One target of one connection: `type` plus the engine's own keys (secrets resolved)."""

    name: str
    target: str
    type: str
    settings: dict[str, Any]
    source: Path | None = field(default=None, compare=False)

    @property
    def schema(self) -> str:
        return str(self.settings.get("schema") or "profiles")

    def redacted(self) -> dict[str, Any]:
        return {k: ("***" if k in SECRET_KEYS else v) for k, v in self.settings.items()}

    def __repr__(self) -> str:  # never print secrets
        return f"Connection(name={self.name!r}, target={self.target!r}, type={self.type!r}, settings={self.redacted()})"


def find_site_config(project_dir: Path, explicit: str | Path | None = None) -> Path:
    """Argument or --site-config, then $PROFILES_SITE_CONFIG, then next to pb_project.yaml, then ~/.pb/."""
    candidates: list[tuple[str, Path]] = []
    if explicit:
        candidates.append(("--site-config", Path(explicit)))
    elif os.environ.get(ENV_VAR):
        candidates.append((ENV_VAR, Path(os.environ[ENV_VAR])))
    else:
        candidates.append(("project folder", project_dir / "siteconfig.yaml"))
        candidates.append(("home", Path.home() / ".pb" / "siteconfig.yaml"))
    for _, path in candidates:
        if path.expanduser().is_file():
            return path.expanduser().resolve()
    tried = ", ".join(f"{p} ({why})" for why, p in candidates)
    raise ProfilesError(
        f"no site configuration found; tried {tried}",
        file=candidates[0][1],
        hint="create one with `profiles-dagster init connection` or pass --site-config",
    )


def load_connection(site_config: Path, connection: str, target: str | None = None) -> Connection:
    doc = read_yaml(site_config)
    data = doc.data or {}
    connections = data.get("connections") if isinstance(data, dict) else None
    if not isinstance(connections, dict):
        raise doc.error("expected a `connections:` mapping", ("connections",))
    if connection not in connections:
        raise doc.error(
            f"no connection named '{connection}' (pb_project.yaml asks for it)",
            ("connections",),
            hint=did_you_mean(connection, connections) or f"connections: {', '.join(connections) or 'none'}",
        )
    conn = connections[connection] or {}
    if not isinstance(conn, dict):
        raise doc.error("a connection is a mapping with `target` and `outputs`", ("connections", connection))
    outputs = conn.get("outputs") or {}
    if not isinstance(outputs, dict):
        raise doc.error("`outputs` maps each target name to its settings", ("connections", connection, "outputs"))
    chosen = target or conn.get("target")
    if isinstance(chosen, list | dict):
        raise doc.error("`target` names one of the outputs", ("connections", connection, "target"))
    if not chosen or chosen not in outputs:
        raise doc.error(
            f"no target '{chosen}' in connection '{connection}'",
            ("connections", connection, "outputs"),
            hint=did_you_mean(str(chosen), outputs) or f"targets: {', '.join(outputs) or 'none'}",
        )
    if not isinstance(outputs[chosen] or {}, dict):
        raise doc.error(
            "a target's settings are a mapping (type, schema, ...)", ("connections", connection, "outputs", chosen)
        )
    settings = dict(outputs[chosen] or {})
    if "type" not in settings:
        raise doc.error("a target needs `type`", ("connections", connection, "outputs", chosen))
    wh_type = str(settings.pop("type")).lower()
    resolved = {k: _resolve_env(v, doc, ("connections", connection, "outputs", chosen, k)) for k, v in settings.items()}
    if wh_type == "duckdb" and resolved.get("path") not in (None, ":memory:"):
        path = Path(str(resolved["path"])).expanduser()
        resolved["path"] = str(path if path.is_absolute() else (site_config.parent / path).resolve())
    return Connection(connection, chosen, wh_type, resolved, site_config)


def _resolve_env(value: Any, doc, key_path) -> Any:
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in os.environ:
            raise doc.error(f"environment variable {name} is not set", key_path)
        return os.environ[name]

    return _ENV_REF.sub(sub, value)
