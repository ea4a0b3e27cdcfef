"""profiles-dagster's own settings, kept in `profiles_dagster.yaml` beside pb_project.yaml.

pb rejects unknown keys, so nothing pb does not know goes into pb's files: the dialect the
project's SQL is written in, stitcher and check thresholds, schedules, sensors and automation
live here (or in `build_definitions` arguments, which take the same model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from profiles_dagster.project.validation import validate_document
from profiles_dagster.project.yaml_source import read_yaml

SETTINGS_FILE = "profiles_dagster.yaml"

Dialect = Literal["duckdb", "snowflake", "bigquery", "redshift", "databricks", "postgres"]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StitcherSettings(_Settings):
    incremental: bool = Field(True, description="merge only new input rows into the previous graph")
    lookback: str = Field(
        "4d",
        description="how far behind the previous run's checkpoint new rows are read "
        "(late data); pb's incremental_timedelta default is 4 days",
    )
    max_rounds: int = Field(40, ge=1, description="contraction rounds before the stitcher stops with an error")


class Threshold(_Settings):
    warn: float | None = None
    error: float | None = None


class StitcherChecks(_Settings):
    max_cluster_size: Threshold | None = None
    max_ids_per_profile: dict[str, Threshold] = {}  # id type -> threshold, e.g. user_id: {warn: 3}


class CustomCheck(_Settings):
    name: str
    step: str  # e.g. "user/features" or "user/views/user_feature_view"
    condition: str  # SQL over the step's table that every row must satisfy
    severity: Literal["warn", "error"] = "error"


class ChecksSettings(_Settings):
    enabled: bool = True
    id_stitcher: StitcherChecks = StitcherChecks()
    input_freshness: Threshold | None = Field(
        None, description="hours from an input's newest occurred_at_col value to the run's end time"
    )
    custom: list[CustomCheck] = []


class ScheduleSettings(_Settings):
    cron: str
    timezone: str = "UTC"


class SensorSettings(_Settings):
    inputs: list[str] = []  # empty: every input
    minimum_interval_seconds: int = 300


class RunLockSettings(_Settings):
    wait_seconds: float = Field(
        0, ge=0, description="how long a run waits for another run on the same output schema before refusing"
    )
    stale_after_seconds: float = Field(
        3600,
        gt=0,
        description="a run lock held from another machine without a heartbeat (written every tenth of this, "
        "at most every minute, by a thread of the run) for this long is taken over; on the same machine a dead "
        "holder is detected at once",
    )


class ProfilesDagsterSettings(_Settings):
    dialect: Dialect | None = Field(None, description="dialect of the project's SQL; default: the connection's type")
    id_stitcher: StitcherSettings = StitcherSettings()
    checks: ChecksSettings = ChecksSettings()
    schedule: ScheduleSettings | None = None
    sensor: SensorSettings | None = None
    automation: Literal["eager", "on_cron"] | None = None
    retention_runs: int | None = Field(
        None,
        ge=1,
        description="after each complete run, drop materials older than the last N complete runs "
        "(`profiles-dagster cleanup` does it on demand, default --keep 3); unset: keep everything, as pb does",
    )
    run_lock: RunLockSettings = RunLockSettings()

    def sql_dialect(self, engine: str) -> str:
        """The dialect the project's SQL is written in: `dialect:` when set, else the engine's own."""
        return self.dialect or engine


def load_settings(project_dir: Path) -> ProfilesDagsterSettings:
    """The settings file if present, else defaults; errors are located like pb's own."""
    path = project_dir / SETTINGS_FILE
    if not path.is_file():
        return ProfilesDagsterSettings()
    doc = read_yaml(path)
    if doc.data is None:
        return ProfilesDagsterSettings()
    return validate_document(doc, ProfilesDagsterSettings, doc.data, ())
