"""The SQL of asset checks and of the input sensor: pure functions from a material (or input) table to a query.

The id stitcher's health (profile sizes, ids of a type per profile) is `sql/stitcher_health.py`'s.

Every query is a sqlglot tree; callers render it for their engine with `Session.render`. Each query
returns one small result: counts or a histogram, never the rows of the table it checks.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from profiles_dagster.sql.names import col


def _count() -> exp.Expr:
    return exp.func("count", exp.Star())


def key_query(material: exp.Table, key: str) -> exp.Query:
    """One row: (rows, rows whose key is NULL, rows beyond the first of each key value)."""
    column = col(key)
    return exp.select(
        exp.alias_(_count(), "row_count"),
        exp.alias_(exp.Sub(this=_count(), expression=exp.func("count", column.copy())), "null_keys"),
        exp.alias_(
            exp.Sub(
                this=exp.func("count", column.copy()),
                expression=exp.Count(this=exp.Distinct(expressions=[column.copy()])),
            ),
            "duplicate_keys",
        ),
    ).from_(material.copy())


def latest_event_query(table: exp.Expr, occurred_at: str) -> exp.Query:
    """One row: (rows, newest occurred_at value as a timestamp). Cheap on every engine: one scan of a column."""
    newest = exp.Max(this=exp.cast(col(occurred_at), exp.DataType.build("timestamp")))
    return exp.select(exp.alias_(_count(), "row_count"), exp.alias_(newest, "latest")).from_(table.copy())


def row_count_query(table: exp.Expr) -> exp.Query:
    return exp.select(exp.alias_(_count(), "row_count")).from_(table.copy())


def parse_condition(condition: str, dialect: str) -> exp.Expr:
    """A user's check condition, in the project's SQL dialect. Raises sqlglot's ParseError."""
    return sqlglot.parse_one(condition, read=dialect)


def failing_rows_query(material: exp.Table, condition: exp.Expr) -> exp.Query:
    """One row: how many rows do not satisfy the condition (NULL counts as passing, as SQL's WHERE NOT has it)."""
    return (
        exp.select(exp.alias_(_count(), "failing_rows"))
        .from_(material.copy())
        .where(exp.not_(exp.paren(condition.copy())))
    )


def failing_sample_query(material: exp.Table, condition: exp.Expr, key: str | None, limit: int = 5) -> exp.Query:
    """A few key values of the rows that do not satisfy the condition, to name them in the check's metadata."""
    select = exp.select(col(key) if key else exp.Star()).from_(material.copy())
    select = select.where(exp.not_(exp.paren(condition.copy())))
    if key:
        select = select.order_by(col(key))
    return select.limit(limit)
