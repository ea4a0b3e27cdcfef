"""Asset checks of a Profiles project, as dagster-dbt has dbt's tests: declared per step, run after it.

Which checks a step gets:
- feature table and feature views: the key column (main id, or the view's id) is not NULL and unique;
- the id stitcher, input var tables, the feature table, cohorts, views and SQL models: not empty;
- the id stitcher's health: largest profile and most ids of one type per profile, against the
  thresholds of `checks.id_stitcher` in profiles_dagster.yaml;
- input var tables: freshness, the hours from the input's newest `occurred_at_col` value to the
  run's end time, against `checks.input_freshness`;
- the user's own: `checks.custom`, a SQL condition every row of a step's table must satisfy.

A check of severity error is blocking: `definitions.py` skips the steps that depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlglot.errors
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue
from sqlglot import exp

from profiles_dagster.errors import ProfilesError, did_you_mean, summary
from profiles_dagster.plan.payloads import ViewPayload
from profiles_dagster.plan.steps import RunPlan, Step, StepKey, StepKind
from profiles_dagster.project.model import IdStitcher, Input, Project
from profiles_dagster.project.settings import SETTINGS_FILE, ProfilesDagsterSettings, Threshold
from profiles_dagster.sql import checks as sql
from profiles_dagster.sql import registry, stitcher_health
from profiles_dagster.warehouse.base import Session

Severity = Literal["warn", "error"]

# steps whose emptiness means the run went wrong (error) or may be legitimate (warn)
_NOT_EMPTY: dict[StepKind, Severity] = {
    StepKind.ID_STITCHER: "error",
    StepKind.FEATURES: "error",
    StepKind.INPUT_VARS: "warn",
    StepKind.COHORT: "warn",
    StepKind.VIEW: "warn",
    StepKind.SQL_MODEL: "warn",
}


@dataclass
class CheckTarget:
    """What a check looks at: one step's material, in an open session."""

    session: Session
    step: Step
    table: exp.Table
    end_time: datetime
    row_count: int | None = None
    stats: dict[str, Any] = field(default_factory=dict)  # the step's run statistics (the stitcher's health)
    cache: dict[str, Any] = field(default_factory=dict)  # queries shared by the checks of one step

    def fetch(self, name: str, query: exp.Query) -> list[tuple]:
        if name not in self.cache:
            self.cache[name] = self.session.query(self.session.render(query))
        return self.cache[name]

    def rows(self) -> int:
        if self.row_count is None:
            self.row_count = int(self.fetch("row_count", sql.row_count_query(self.table))[0][0])
        return self.row_count


@dataclass(frozen=True)
class Outcome:
    passed: bool
    severity: Severity
    metadata: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class ProfilesCheck:
    name: str
    step: StepKey
    severity: Severity  # the worst this check can report; "error" makes it blocking
    description: str
    run: Callable[[CheckTarget], Outcome]

    def spec(self, asset_key: AssetKey) -> AssetCheckSpec:
        return AssetCheckSpec(
            name=self.name,
            asset=asset_key,
            description=self.description,
            blocking=self.severity == "error",
            metadata={"profiles/severity": self.severity},
        )

    def evaluate(self, target: CheckTarget, asset_key: AssetKey) -> AssetCheckResult:
        try:
            outcome = self.run(target)
        except Exception as exc:  # a broken condition or a warehouse error fails the check, not the whole run
            message = summary(exc)
            outcome = Outcome(False, self.severity, {"error": message}, f"could not evaluate: {message}")
        metadata = {**outcome.metadata, "profiles/material": f"{target.table.db}.{target.table.name}"}
        return AssetCheckResult(
            asset_key=asset_key,
            check_name=self.name,
            passed=outcome.passed,
            severity=AssetCheckSeverity.ERROR if outcome.severity == "error" else AssetCheckSeverity.WARN,
            metadata=metadata,
            description=outcome.description or None,
        )


# ---- which checks -------------------------------------------------------------------------------


def key_column(step: Step, project: Project) -> str | None:
    """The column that names a row of the step's table, if rows are keyed."""
    if step.entity is None:
        return None
    main = project.entities[step.entity].main_id_column
    if step.kind in (StepKind.FEATURES, StepKind.ALL, StepKind.ENTITY_VARS, StepKind.COHORT, StepKind.COHORT_VARS):
        return main
    if step.kind is StepKind.VIEW:
        return step.payload_as(ViewPayload).view.id_type or main
    return None


def plan_checks(
    project: Project, plan: RunPlan, settings: ProfilesDagsterSettings, dialect: str
) -> list[ProfilesCheck]:
    """Every check of the project, in plan order; errors in `checks:` settings are located in the file.
    `dialect`: the one the project's SQL (and so custom check conditions) is written in."""
    if not settings.checks.enabled:
        return []
    found: list[ProfilesCheck] = []
    freshness = getattr(settings.checks, "input_freshness", None)
    for step in plan.steps:
        key = key_column(step, project)
        if key and step.kind in (StepKind.FEATURES, StepKind.VIEW):
            found += [_not_null(step, key), _unique(step, key)]
        if step.kind in _NOT_EMPTY:
            # a coarser grain's boundary may come before any row (a project started mid-week): a warning only
            found.append(_not_empty(step, "warn" if step.grain else _NOT_EMPTY[step.kind]))
        if step.kind is StepKind.ID_STITCHER:
            found += _stitcher_checks(step, project, settings)
        # a coarser grain's copy of an input reads rows up to that grain's earlier boundary: its age is by design
        fresh = step.kind is StepKind.INPUT_VARS and step.grain is None
        if fresh and freshness is not None and _has_threshold(freshness):
            occurred = step.payload_as(Input).occurred_at_col
            if occurred:
                found.append(_freshness(step, occurred, freshness))
    found += _custom_checks(project, plan, settings, dialect)
    seen: set[tuple[StepKey, str]] = set()
    for check in found:
        if (check.step, check.name) in seen:
            raise _settings_error(
                project,
                f"two checks named '{check.name}' on step '{check.step.path}'; give the custom check another name",
                ("checks", "custom"),
            )
        seen.add((check.step, check.name))
    return found


def _not_null(step: Step, key: str) -> ProfilesCheck:
    def run(t: CheckTarget) -> Outcome:
        rows, nulls, _ = t.fetch("key", sql.key_query(t.table, key))[0]
        return Outcome(
            not nulls,
            "error",
            {"null_keys": MetadataValue.int(int(nulls)), "rows": MetadataValue.int(int(rows))},
            f"{nulls} row(s) with NULL {key}" if nulls else "",
        )

    return ProfilesCheck(f"{key}_not_null", step.key, "error", f"Every row has a {key}.", run)


def _unique(step: Step, key: str) -> ProfilesCheck:
    def run(t: CheckTarget) -> Outcome:
        rows, _, duplicates = t.fetch("key", sql.key_query(t.table, key))[0]
        return Outcome(
            not duplicates,
            "error",
            {"duplicate_keys": MetadataValue.int(int(duplicates)), "rows": MetadataValue.int(int(rows))},
            f"{duplicates} row(s) repeat a {key}" if duplicates else "",
        )

    return ProfilesCheck(f"{key}_unique", step.key, "error", f"No two rows share a {key}.", run)


def _not_empty(step: Step, severity: Severity) -> ProfilesCheck:
    def run(t: CheckTarget) -> Outcome:
        rows = t.rows()
        return Outcome(rows > 0, severity, {"rows": MetadataValue.int(rows)}, "" if rows else "the table is empty")

    return ProfilesCheck("not_empty", step.key, severity, "The table has at least one row.", run)


def _has_threshold(threshold: Threshold) -> bool:
    return threshold.warn is not None or threshold.error is not None


def judge(value: float | None, threshold: Threshold) -> tuple[bool, Severity]:
    """Over `error`: failed with severity error; over `warn`: failed with severity warn; else passed.
    A missing value (nothing to measure) fails at the worst severity the threshold has."""
    worst: Severity = "error" if threshold.error is not None else "warn"
    if value is None:
        return False, worst
    if threshold.error is not None and value > threshold.error:
        return False, "error"
    if threshold.warn is not None and value > threshold.warn:
        return False, "warn"
    return True, worst


def _limits(threshold: Threshold) -> str:
    pairs = (("warn", threshold.warn), ("error", threshold.error))
    return "; ".join(f"{name} above {value:g}" for name, value in pairs if value is not None)


def _limit_metadata(threshold: Threshold) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if threshold.warn is not None:
        out["warn_above"] = MetadataValue.float(float(threshold.warn))
    if threshold.error is not None:
        out["error_above"] = MetadataValue.float(float(threshold.error))
    return out


def health(t: CheckTarget, main: str) -> stitcher_health.Health:
    """The identity graph's shape, shared by the stitcher's checks: as its run kept it with the checkpoint (the
    same figures, without reading the graph), else one scan of the stitcher table."""
    if "health" not in t.cache:
        kept = None
        schema = t.table.db
        if schema and t.session.table_exists(exp.table_(registry.STITCHER_STATE, db=schema)):
            state = t.session.query(t.session.render(registry.stitcher_checkpoint(schema, t.table.name)))
            kept = stitcher_health.from_state(state[0][-1]) if state else None
        if kept is None:
            rows = t.session.query(t.session.render(stitcher_health.shape_query(t.table, main)))
            kept = stitcher_health.summarize(rows)
        t.cache["health"] = kept
    return t.cache["health"]


def _largest(t: CheckTarget, main: str) -> str:
    """The largest profile, as the run's health names it, else as the table's shape (already read) has it."""
    if t.stats.get("health_largest_profile"):
        return str(t.stats["health_largest_profile"])
    largest = health(t, main).largest
    if not largest:
        return ""
    main_id, size, _ = largest[0]
    return f"{main_id} ({size} ids)"


def _stitcher_checks(step: Step, project: Project, settings: ProfilesDagsterSettings) -> list[ProfilesCheck]:
    entity = project.entities[step.payload_as(IdStitcher).entity]
    main = entity.main_id_column
    limits = settings.checks.id_stitcher
    out: list[ProfilesCheck] = []
    size = limits.max_cluster_size
    if size is not None and _has_threshold(size):

        def run_size(t: CheckTarget) -> Outcome:
            shape = health(t, main)
            biggest = shape.size_max
            passed, severity = judge(biggest, size)
            metadata = {
                "profiles": MetadataValue.int(shape.profiles),
                "size_p50": MetadataValue.int(shape.size_p50),
                "size_p99": MetadataValue.int(shape.size_p99),
                "size_max": MetadataValue.int(biggest),
                "largest_profile": MetadataValue.text(_largest(t, main)),
                **_limit_metadata(size),
            }
            text = "" if passed else f"a profile has {biggest} ids: {metadata['largest_profile'].value}"
            return Outcome(passed, severity, metadata, text)

        out.append(
            ProfilesCheck(
                "max_cluster_size",
                step.key,
                "error" if size.error is not None else "warn",
                f"Ids in the largest profile ({_limits(size)}): over-stitching shows up here first.",
                run_size,
            )
        )
    id_types = entity.id_types
    for id_type, threshold in limits.max_ids_per_profile.items():
        if id_type not in id_types:
            raise _settings_error(
                project,
                f"'{id_type}' is not an id type of entity '{step.entity}'",
                ("checks", "id_stitcher", "max_ids_per_profile", id_type),
                did_you_mean(id_type, id_types),
            )
        if _has_threshold(threshold):
            out.append(_ids_per_profile(step, main, id_type, threshold))
    return out


def _ids_per_profile(step: Step, main: str, id_type: str, threshold: Threshold) -> ProfilesCheck:
    def run(t: CheckTarget) -> Outcome:
        shape = health(t, main)
        most = shape.max_per_profile(id_type)
        passed, severity = judge(most, threshold)
        metadata = {
            "max": MetadataValue.int(most),
            "p99": MetadataValue.int(stitcher_health.quantile(shape.per_type.get(id_type, []), 0.99)),
            "profiles_with_more_than_one": MetadataValue.int(shape.profiles_with_more_than(id_type, 1)),
            **_limit_metadata(threshold),
        }
        return Outcome(passed, severity, metadata, "" if passed else f"a profile has {most} {id_type} ids")

    return ProfilesCheck(
        f"max_{id_type}_per_profile",
        step.key,
        "error" if threshold.error is not None else "warn",
        f"Distinct {id_type} ids in one profile ({_limits(threshold)}).",
        run,
    )


def _freshness(step: Step, occurred_at: str, threshold: Threshold) -> ProfilesCheck:
    def run(t: CheckTarget) -> Outcome:
        rows, latest = t.fetch("latest", sql.latest_event_query(t.table, occurred_at))[0]
        hours = None if latest is None else (t.end_time - _naive(latest)).total_seconds() / 3600
        passed, severity = judge(hours, threshold)
        metadata = {
            "latest": MetadataValue.text(str(latest)),
            "end_time": MetadataValue.text(str(t.end_time)),
            "rows": MetadataValue.int(int(rows)),
            **_limit_metadata(threshold),
        }
        if hours is not None:
            metadata["age_hours"] = MetadataValue.float(round(hours, 2))
        text = "" if passed else ("no rows" if hours is None else f"newest row is {hours:.1f} hours old")
        return Outcome(passed, severity, metadata, text)

    return ProfilesCheck(
        "freshness",
        step.key,
        "error" if threshold.error is not None else "warn",
        f"Hours from the newest {occurred_at} to the run's end time ({_limits(threshold)}).",
        run,
    )


def _naive(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if getattr(value, "tzinfo", None) is not None:
        from datetime import UTC

        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _custom_checks(
    project: Project, plan: RunPlan, settings: ProfilesDagsterSettings, dialect: str
) -> list[ProfilesCheck]:
    out = []
    paths = {s.path: s for s in plan.steps}
    for n, custom in enumerate(settings.checks.custom):
        step = paths.get(custom.step)
        if step is None:
            raise _settings_error(
                project,
                f"no step '{custom.step}' in project {project.name}",
                ("checks", "custom", n, "step"),
                did_you_mean(custom.step, paths),
            )
        try:
            condition = sql.parse_condition(custom.condition, dialect)
        except sqlglot.errors.SqlglotError as exc:
            raise _settings_error(
                project, f"the condition does not parse: {exc}", ("checks", "custom", n, "condition")
            ) from exc
        if not custom.name.isidentifier():
            raise _settings_error(
                project, f"'{custom.name}' is not a valid check name (letters, digits, _)", ("checks", "custom", n)
            )
        out.append(_custom(step, project, custom.name, custom.condition, condition, custom.severity))
    return out


def _custom(
    step: Step, project: Project, name: str, text: str, condition: exp.Expr, severity: Severity
) -> ProfilesCheck:
    key = key_column(step, project)

    def run(t: CheckTarget) -> Outcome:
        failing = int(t.fetch(f"custom:{name}", sql.failing_rows_query(t.table, condition))[0][0])
        metadata: dict[str, Any] = {"failing_rows": MetadataValue.int(failing), "condition": MetadataValue.text(text)}
        if failing:
            sample = t.session.query(t.session.render(sql.failing_sample_query(t.table, condition, key)))
            if key:
                metadata[f"failing_{key}"] = MetadataValue.text(", ".join(str(r[0]) for r in sample))
        return Outcome(not failing, severity, metadata, f"{failing} row(s) fail: {text}" if failing else "")

    return ProfilesCheck(name, step.key, severity, f"Every row satisfies: {text}", run)


def _settings_error(
    project: Project, message: str, key_path: tuple[str | int, ...], hint: str | None = None
) -> ProfilesError:
    path = Path(project.root) / SETTINGS_FILE
    if path.is_file():
        from profiles_dagster.project.yaml_source import read_yaml

        return read_yaml(path).error(message, key_path, hint)
    from profiles_dagster.project.yaml_source import format_key_path

    return ProfilesError(message, key=format_key_path(key_path), hint=hint)
