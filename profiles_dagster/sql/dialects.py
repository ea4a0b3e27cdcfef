"""The SQL dialect of each engine: sqlglot's generator plus product-owned fixes where its transpile is wrong.

A session's `dialect` is an `EngineDialect`: a `str` equal to sqlglot's name for the engine (so
templates, comparisons such as `dialect == "postgres"` and error messages see the plain name) that is
at the same time an instance of a sqlglot `Dialect` subclass. sqlglot accepts a Dialect instance
wherever it takes a dialect name, so every `node.sql(dialect=session.dialect)` anywhere in the product
(steps, the id stitcher, the run registry) renders through the fixes below, and parsing with it reads
the engine's SQL exactly like sqlglot's own dialect does.

Fixes are expression transforms applied to a copy of the tree before generation (`FIXES`), plus a few
generator overrides. Each fix names the sqlglot behaviour it corrects; the differential tests (the
same plan on DuckDB and on each engine's stand-in, compared value by value) are what found them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.dialects.databricks import Databricks
from sqlglot.dialects.dialect import Dialect
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.dialects.postgres import Postgres
from sqlglot.dialects.redshift import Redshift
from sqlglot.dialects.snowflake import Snowflake

Fix = Callable[[exp.Expression], exp.Expression]


class EngineDialect(str):
    """Marker base: an engine's dialect, both its sqlglot name and a sqlglot Dialect instance."""

    __slots__ = ()


def _engine_dialect(base: type[Dialect], name: str, fixes: list[Fix]) -> EngineDialect:
    class Generator(base.generator_class):  # type: ignore[name-defined,misc]
        def preprocess(self, expression: exp.Expression) -> exp.Expression:
            for fix in fixes:
                expression = expression.transform(fix, copy=False)
            return super().preprocess(expression)

    fixed = type(f"Profiles{base.__name__}", (base,), {"Generator": Generator, "__module__": __name__})

    def __new__(cls, value: str = name):  # noqa: N807
        return str.__new__(cls, value)

    def __init__(self, value: str = name) -> None:  # noqa: N807
        fixed.__init__(self)

    named = type(
        f"{base.__name__}Engine",
        (fixed, EngineDialect),
        {
            "__new__": __new__,
            "__init__": __init__,
            "__eq__": str.__eq__,
            "__ne__": str.__ne__,
            "__hash__": str.__hash__,
            "__str__": str.__str__,
            "__repr__": lambda self: f"EngineDialect({str.__str__(self)!r})",
            "__reduce__": lambda self: (dialect_for, (str.__str__(self),)),
            "__module__": __name__,
        },
    )
    return named(name)


# ---- fixes ---------------------------------------------------------------------------------------


def alias_subqueries(node: exp.Expression) -> exp.Expression:
    """Postgres < 16 and Redshift reject a subquery in FROM/JOIN without an alias ("subquery in FROM must
    have an alias"); DuckDB, where projects are often written first, accepts it. sqlglot leaves it bare."""
    if isinstance(node, exp.Subquery) and not node.alias and isinstance(node.parent, exp.From | exp.Join):
        holder = node.parent
        index = 0
        if isinstance(holder, exp.Join) and holder.parent is not None:
            index = 1 + next(i for i, j in enumerate(holder.parent.args.get("joins") or []) if j is holder)
        node.set("alias", exp.TableAlias(this=exp.to_identifier(f"_sq{index}")))
    return node


_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def fold_upper(name: str) -> str:
    """Snowflake's folding of an unquoted identifier."""
    return name.upper() if _SIMPLE_NAME.match(name) else name


def snowflake_case(node: exp.Expression) -> exp.Expression:
    """The product quotes names it writes for safety, not for case. On Snowflake a quoted lowercase name
    ("profiles"."user_feature_view") is unreachable as profiles.user_feature_view, which is what pb's users
    (and their dashboards) write; so quoted plain names fold to upper case, as if unquoted."""
    if isinstance(node, exp.Identifier) and node.quoted and _SIMPLE_NAME.match(node.name):
        node.set("this", node.name.upper())
    return node


def _is_date(node: exp.Expression) -> bool:
    return isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.DATE)


def date_minus_date(node: exp.Expression) -> exp.Expression:
    """DATE - DATE is whole days (an integer) on DuckDB, Postgres, Redshift and Snowflake, but an INTERVAL on
    Spark/Databricks and BigQuery; sqlglot leaves the minus as is. Where both sides are cast to DATE (the
    type is known), write the day difference."""
    if isinstance(node, exp.Sub) and _is_date(node.this) and _is_date(node.expression):
        return exp.DateDiff(this=node.this.copy(), expression=node.expression.copy(), unit=exp.var("DAY"))
    return node


# ---- per engine ---------------------------------------------------------------------------------

_POSTGRES_FIXES: list[Fix] = [alias_subqueries]
_REDSHIFT_FIXES: list[Fix] = [alias_subqueries]
_SNOWFLAKE_FIXES: list[Fix] = [snowflake_case]
_BIGQUERY_FIXES: list[Fix] = [date_minus_date]
_DATABRICKS_FIXES: list[Fix] = [date_minus_date]

DUCKDB = _engine_dialect(DuckDB, "duckdb", [])
POSTGRES = _engine_dialect(Postgres, "postgres", _POSTGRES_FIXES)
REDSHIFT = _engine_dialect(Redshift, "redshift", _REDSHIFT_FIXES)
SNOWFLAKE = _engine_dialect(Snowflake, "snowflake", _SNOWFLAKE_FIXES)
BIGQUERY = _engine_dialect(BigQuery, "bigquery", _BIGQUERY_FIXES)
DATABRICKS = _engine_dialect(Databricks, "databricks", _DATABRICKS_FIXES)

_BY_NAME = {str(d): d for d in (DUCKDB, POSTGRES, REDSHIFT, SNOWFLAKE, BIGQUERY, DATABRICKS)}


def dialect_for(name: str) -> EngineDialect:
    """The engine dialect for a sqlglot dialect name."""
    return _BY_NAME[name]


def render(node: exp.Expression, name: str, **options) -> str:
    return node.sql(dialect=dialect_for(name), **options)


def parses(sql: str, name: str) -> list[exp.Expression]:
    """Every generated statement must parse back in its dialect (sqlglot's stock parser)."""
    return [s for s in sqlglot.parse(sql, read=name) if s is not None]


__all__ = ["BIGQUERY", "DATABRICKS", "DUCKDB", "POSTGRES", "REDSHIFT", "SNOWFLAKE", "EngineDialect", "dialect_for"]
