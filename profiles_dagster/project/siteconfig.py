"""pb's siteconfig.yaml: named connections with targets; secrets may come from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profiles_dagster.errors import ProfilesError, did_you_mean
from profiles_dagster.project.yaml_source import read_yaml

ENV_VAR = "PROFILES_SITE_CONFIG"
_ENV_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?|\{\{\s*env\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)\s*\}\}")
# Every siteconfig key that holds a secret, as pb, the clients and this package's resources spell it.
# Matching ignores case, `_` and `-` (`privateKey` is `private_key`): see `is_secret`.
SECRET_KEYS = frozenset(
    {
        "password",
        "passcode",  # Snowflake MFA
        "access_token",  # Databricks
        "token",
        "oauth_token",
        "private_key",  # Snowflake key-pair: pb's privateKey
        "private_key_passphrase",  # pb's privateKeyPassphrase
        "private_key_password",  # dagster-snowflake's name for it
        "credentials",  # BigQuery service account key
        "credentials_json",
        "keyfile_json",
        "secret",
        "client_secret",
        "secret_access_key",  # Redshift IAM (AWS keys)
        "aws_secret_access_key",
        "session_token",
        "aws_session_token",
        "motherduck_token",
    }
)


# a secret inside another value, e.g. a MotherDuck path `md:db?motherduck_token=...`
_INLINE_SECRET = re.compile(r"((?:token|password|secret)=)[^&\s'\"]+", re.IGNORECASE)


def _norm(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


_SECRET_NORMS = frozenset(_norm(k) for k in SECRET_KEYS)


def is_secret(key: str) -> bool:
    """Whether a siteconfig key (or a resource field) holds a secret, however it is spelled."""
    return _norm(str(key)) in _SECRET_NORMS


def redact(text: str, secrets: Iterable[Any]) -> str:
    """`text` with each secret value (of 4 characters or more) replaced by `***`: for a client's error message."""
    for value in sorted({v for v in _strings(secrets) if len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def _strings(value: Any) -> Iterable[str]:
    """The text in a value: itself, or the items of a list or mapping (a key file given as a mapping)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


@dataclass(frozen=True)
class Connection:
    """One target of one connection: `type` plus the engine's own keys (secrets resolved)."""

    name: str
    target: str
    type: str
    settings: dict[str, Any]
    source: Path | None = field(default=None, compare=False)
    # key -> environment variable, for values written as exactly one reference (`${PG_PASSWORD}`): the
    # Dagster resource gets an EnvVar for a secret among them, so Dagster shows the name, never the value
    env_refs: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def schema(self) -> str:
        return str(self.settings.get("schema") or "profiles")

    def redacted(self) -> dict[str, Any]:
        return {
            k: "***" if is_secret(k) else _INLINE_SECRET.sub(r"\1***", v) if isinstance(v, str) else v
            for k, v in self.settings.items()
        }

    def secret_values(self) -> list[Any]:
        return [v for k, v in self.settings.items() if is_secret(k)]

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
    env_refs = {k: _whole_ref(v) for k, v in settings.items() if _whole_ref(v)}
    # A target's `path` is a local file (DuckDB's database; no other engine has the key): relative to this file
    if resolved.get("path") not in (None, ":memory:"):
        path = Path(str(resolved["path"])).expanduser()
        resolved["path"] = str(path if path.is_absolute() else (site_config.parent / path).resolve())
    if "attach" in resolved:
        resolved["attach"] = _attachments(
            resolved["attach"], wh_type, site_config, doc, ("connections", connection, "outputs", chosen, "attach")
        )
    return Connection(connection, chosen, wh_type, resolved, site_config, env_refs)


def _whole_ref(value: Any) -> str:
    """The variable's name when a value is exactly one environment reference, else ''."""
    match = _ENV_REF.fullmatch(value.strip()) if isinstance(value, str) else None
    return (match.group(1) or match.group(2)) if match else ""


def _resolve_env(value: Any, doc, key_path) -> Any:
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in os.environ:
            raise doc.error(f"environment variable {name} is not set", key_path)
        return os.environ[name]

    return _ENV_REF.sub(sub, value)


ATTACH_KEYS = ("path", "alias", "read_only")


def _attachments(value: Any, wh_type: str, site_config: Path, doc, key_path) -> list[dict[str, Any]]:
    """A DuckDB target's `attach:` list, as dbt-duckdb users write it: `{path, alias, read_only}` entries, each
    database then reachable as `<alias>.<schema>.<table>` (a relative path is relative to this file)."""
    if wh_type != "duckdb":
        raise doc.error(f"`attach` is a DuckDB key; a {wh_type} target reaches other databases by name", key_path)
    if not isinstance(value, list):
        raise doc.error("`attach` is a list of `{path, alias}` entries", key_path)
    out: list[dict[str, Any]] = []
    aliases: set[str] = set()
    for i, entry in enumerate(value):
        at = (*key_path, i)
        if not isinstance(entry, dict) or not entry.get("path"):
            raise doc.error("an `attach` entry is a mapping with `path` (and `alias`, `read_only`)", at)
        unknown = [k for k in entry if k not in ATTACH_KEYS]
        if unknown:
            raise doc.error(
                f"unknown key '{unknown[0]}' in an `attach` entry",
                (*at, unknown[0]),
                hint=did_you_mean(str(unknown[0]), ATTACH_KEYS) or f"keys: {', '.join(ATTACH_KEYS)}",
            )
        if not isinstance(entry.get("read_only", False), bool):
            raise doc.error("`read_only` is true or false", (*at, "read_only"))
        raw = str(entry["path"])
        path = raw if raw == ":memory:" or "://" in raw or raw.startswith("md:") else _local(raw, site_config)
        alias = str(entry.get("alias") or Path(raw).stem)
        if alias.lower() in aliases:
            raise doc.error(f"two `attach` entries use the alias '{alias}'", (*at, "alias"))
        aliases.add(alias.lower())
        out.append({"path": path, "alias": alias, "read_only": bool(entry.get("read_only", False))})
    return out


def _local(raw: str, site_config: Path) -> str:
    path = Path(raw).expanduser()
    return str(path if path.is_absolute() else (site_config.parent / path).resolve())
