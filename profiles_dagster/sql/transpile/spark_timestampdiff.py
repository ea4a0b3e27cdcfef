"""Databricks' TIMESTAMPDIFF and its synonyms DATEDIFF/DATE_DIFF with a unit: whole units elapsed.

Databricks documents `timestampdiff(unit, start, end)` (and `datediff(unit, start, end)`, its synonym since
Runtime 10.4) as counting *whole elapsed* units based on UTC, a DAY being 86,400 seconds; a month elapses when
the calendar month has increased and the day and time are equal or later than the start's; weeks from days,
quarters and years from months; negative when start is after end. sqlglot writes DuckDB's DATE_DIFF, which
counts unit *boundaries crossed* (23:00 to 01:00 is 1 day there, 0 on Databricks), and parses the three-argument
DATEDIFF into the tree of the two-argument one (days between dates). `parse_reader` keeps them apart: the
three-argument forms become TIMESTAMPDIFF, which the rule below writes for DuckDB and Postgres.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.databricks import Databricks
from sqlglot.dialects.dialect import Dialect
from sqlglot.parsers.databricks import DatabricksParser

from profiles_dagster.sql.transpile import UnfaithfulError, rule
from profiles_dagster.sql.transpile.scalars import unit_name
from profiles_dagster.sql.transpile.semistructured import template

# the census's name for the construct (the three-argument DATEDIFF is written TIMESTAMPDIFF, its synonym)
CHECKED: dict[tuple[str, str], frozenset[str]] = {
    ("databricks", "duckdb"): frozenset({"TIMESTAMPDIFF"}),
    ("databricks", "postgres"): frozenset({"TIMESTAMPDIFF"}),
}

_MICROSECONDS = {
    "MICROSECOND": 1,
    "MILLISECOND": 1_000,
    "SECOND": 1_000_000,
    "MINUTE": 60_000_000,
    "HOUR": 3_600_000_000,
    "DAY": 86_400_000_000,
    "WEEK": 7 * 86_400_000_000,
}
_MONTHS = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}

# microseconds from _s to _e, exact; and a timestamp's microseconds since its month began (its day and time)
_SPAN = {
    "duckdb": "epoch_us(CAST(_e AS TIMESTAMPTZ)) - epoch_us(CAST(_s AS TIMESTAMPTZ))",
    "postgres": "CAST(EXTRACT(epoch FROM CAST(_e AS TIMESTAMPTZ) - CAST(_s AS TIMESTAMPTZ)) * 1000000 AS BIGINT)",
}
_MONTH_NUMBER = {
    "duckdb": "year(CAST(_t AS TIMESTAMPTZ)) * 12 + month(CAST(_t AS TIMESTAMPTZ))",
    "postgres": (
        "CAST(EXTRACT(year FROM CAST(_t AS TIMESTAMPTZ)) * 12 + EXTRACT(month FROM CAST(_t AS TIMESTAMPTZ)) AS BIGINT)"
    ),
}
_INTO_MONTH = {
    "duckdb": "epoch_us(CAST(_t AS TIMESTAMPTZ)) - epoch_us(date_trunc('month', CAST(_t AS TIMESTAMPTZ)))",
    "postgres": (
        "CAST(EXTRACT(epoch FROM CAST(_t AS TIMESTAMPTZ) - date_trunc('month', CAST(_t AS TIMESTAMPTZ))) "
        "* 1000000 AS BIGINT)"
    ),
}
# whole months: the calendar months between, one fewer where the end's day and time come before the start's
_WHOLE_MONTHS = """CASE
    WHEN _m > 0 AND _oe < _os THEN _m - 1
    WHEN _m < 0 AND _oe > _os THEN _m + 1
    ELSE _m END"""


def _datediff(args: list[exp.Expr]) -> exp.Expr:
    """DATEDIFF/DATE_DIFF: with a unit, TIMESTAMPDIFF (whole units elapsed); without, days between dates."""
    if len(args) >= 3:
        return exp.TimestampDiff(this=args[2], expression=args[1], unit=exp.var(args[0].name.upper()))
    two_arguments: exp.Expr = _TWO_ARGUMENTS(args)
    return two_arguments


_TWO_ARGUMENTS = DatabricksParser.FUNCTIONS["DATEDIFF"]


class ProfilesDatabricks(Databricks):
    """Databricks as the project's SQL is read: only the three-argument DATEDIFF differs from sqlglot's."""

    class Parser(DatabricksParser):
        FUNCTIONS = {**DatabricksParser.FUNCTIONS, "DATEDIFF": _datediff, "DATE_DIFF": _datediff}


_READERS: dict[str, type[Dialect]] = {"databricks": ProfilesDatabricks}


def parse_reader(dialect: str) -> str | type[Dialect]:
    """The dialect the project's SQL is parsed with (sqlglot's, but for the forms above)."""
    return _READERS.get(dialect.lower(), dialect)


def _unit(node: exp.TimestampDiff) -> str:
    name = unit_name(node)  # plural units (DAYS) as their singular
    return name[:-1] if name.endswith("S") and name[:-1] in {*_MICROSECONDS, *_MONTHS} else name


def _whole_units_elapsed(node: exp.Expr, target: str) -> exp.Expr:
    if not isinstance(node, exp.TimestampDiff) or node.meta.get("pd_elapsed"):
        return node
    unit, start, end = _unit(node), node.expression, node.this
    if unit in _MICROSECONDS:
        span = template(_SPAN[target], target, _s=start, _e=end)
        result = exp.IntDiv(this=exp.paren(span), expression=exp.Literal.number(_MICROSECONDS[unit]))
    elif unit in _MONTHS:
        months = exp.paren(
            exp.Sub(
                this=exp.paren(template(_MONTH_NUMBER[target], target, _t=end)),
                expression=exp.paren(template(_MONTH_NUMBER[target], target, _t=start)),
            )
        )
        whole = template(
            _WHOLE_MONTHS,
            target,
            _m=months,
            _oe=exp.paren(template(_INTO_MONTH[target], target, _t=end)),
            _os=exp.paren(template(_INTO_MONTH[target], target, _t=start)),
        )
        result = exp.IntDiv(this=exp.paren(whole), expression=exp.Literal.number(_MONTHS[unit]))
    else:
        raise UnfaithfulError("TIMESTAMPDIFF", f"unit {unit or '?'}: Databricks' units are MICROSECOND to YEAR")
    elapsed = exp.Cast(this=exp.paren(result), to=exp.DataType.build("bigint"))
    elapsed.meta["pd_elapsed"] = True
    return elapsed


@rule([("databricks", "duckdb")])
def spark_whole_units_elapsed_on_duckdb(node: exp.Expr) -> exp.Expr:
    return _whole_units_elapsed(node, "duckdb")


@rule([("databricks", "postgres")])
def spark_whole_units_elapsed_on_postgres(node: exp.Expr) -> exp.Expr:
    return _whole_units_elapsed(node, "postgres")
