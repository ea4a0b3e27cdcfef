"""The one clock of the registry, the run lock and the run's time window: naive UTC datetimes.

Warehouses disagree on time zones (TIMESTAMP is zone-less on most, some drivers return aware values), so
every stored time is naive UTC and every one read back is made so (`naive_utc`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from profiles_dagster.errors import ProfilesError


def now_utc() -> datetime:
    """Now, to the microsecond: lock heartbeats are judged against `stale_after_seconds`, which may be one
    second, so a beat cut to whole seconds could look a second older than it is."""
    return datetime.now(UTC).replace(tzinfo=None)


def parse_time(text: str | None) -> datetime | None:
    """pb's --begin_time/--end_time: ISO 8601, `Z` allowed; stored as naive UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ProfilesError(f"invalid time '{text}': use ISO 8601, e.g. 2025-11-01T00:00:00Z") from exc
    return naive_utc(value)


def naive_utc(value: object) -> datetime | None:
    """A timestamp as naive UTC (engines return datetimes, some drivers text)."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_time(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value  # type: ignore[return-value]


def default_end_time() -> datetime:
    """A run's end time when none is given: now in whole seconds, as pb's `--end_time` is written; it is shown
    as such and bounds the inputs' rows in the SQL, and `--seq_no N` reads it back from the registry."""
    return now_utc().replace(microsecond=0)
