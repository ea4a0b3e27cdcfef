"""Python values written into SQL as literals, spelled one way for every engine."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlglot import exp


def timestamp_literal(value: datetime, dtype: exp.DataType | None = None) -> exp.Cast:
    """CAST('YYYY-MM-DD HH:MM:SS[.ffffff]' AS TIMESTAMP): the ISO form every engine parses, a fraction only
    when there is one. An aware value is written in UTC with its `+00:00` offset (for a TIMESTAMPTZ column)."""
    if value.tzinfo is not None:
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ") + "+00:00"
    else:
        text = value.isoformat(sep=" ")
    return exp.cast(exp.Literal.string(text), dtype.copy() if dtype is not None else exp.DataType.build("timestamp"))
