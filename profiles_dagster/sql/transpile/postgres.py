"""Databricks, BigQuery, Redshift and Snowflake SQL on Postgres: what sqlglot writes there with another meaning.

sqlglot's Postgres output keeps most of what the corpus uses (NULL ordering made explicit, `/` of Spark integers
as a DOUBLE, GREATEST skipping NULLs, NTILE, ...): those are only claimed in `scalars.CHECKED`, each backed by a
case run on the Postgres stand-in (profiles_dagster_tests/sql/transpile/test_scalars.py). The rules below fix, or
refuse, what it writes differently, each against the source vendor's documented result:

- Databricks: DATE_ADD and ADD_MONTHS are DATEs; DATEDIFF counts days between dates; SUBSTRING's 0 and negative
  positions; COLLECT_LIST of no value is an empty array (on DuckDB too); CONCAT_WS joins an array's elements;
  DATE_FORMAT's Java patterns (numeric fields only); CAST(… AS STRING) of a typed value;
- any source: Postgres 15 has no ANY_VALUE; window functions cannot skip NULLs (IGNORE NULLS);
- Snowflake: DATE_PART's units and integer results, MODE (an ordered-set aggregate there), SHA1 (pgcrypto),
  TO_BOOLEAN, ROUND (Postgres rounds a double half to even, and has no ROUND(double, scale)).
"""

from __future__ import annotations

import re

from sqlglot import exp

from profiles_dagster.sql.dialects import Sha1Hex
from profiles_dagster.sql.transpile import Rule, UnfaithfulError, rule
from profiles_dagster.sql.transpile.implicit import spark_text_of_typed_value
from profiles_dagster.sql.transpile.scalars import (
    _FLOATS,
    _INTEGER,
    _TEXT,
    known_type,
    spark_date_add_is_a_date,
    unit_name,
)

T = exp.DataType.Type
SPARK_POSTGRES = [("databricks", "postgres")]
SNOWFLAKE_POSTGRES = [("snowflake", "postgres")]
ALL_POSTGRES = [(source, "postgres") for source in ("snowflake", "databricks", "bigquery", "redshift")]
_DATE = exp.DataType.build("date")
_BIGINT = exp.DataType.build("bigint")

# the Databricks rules shared with DuckDB
rule(SPARK_POSTGRES)(spark_date_add_is_a_date)
rule(SPARK_POSTGRES)(spark_text_of_typed_value)


def _as_date(node: exp.Expr) -> exp.Expr:
    typed = known_type(node)
    return node.copy() if typed is not None and typed.this == T.DATE else exp.Cast(this=node.copy(), to=_DATE.copy())


# ---- Databricks ------------------------------------------------------------------------------------------------


@rule(SPARK_POSTGRES)
def spark_datediff_on_postgres(node: exp.Expr) -> exp.Expr:
    """`datediff(end, start)`: the days from start's date to end's (Databricks: a timestamp counts by its date),
    Postgres' `date - date`. sqlglot writes whole 24-hour spans of the timestamps (23:00 to 01:00 is 0 there, 1
    on Databricks). `datediff(unit, start, end)` is TIMESTAMPDIFF (transpile/spark_timestampdiff.py)."""
    if not isinstance(node, exp.DateDiff):
        return node
    if unit_name(node) != "DAY":
        raise UnfaithfulError(
            "DATEDIFF", f"unit {unit_name(node)}: whole units elapsed are not translated for Postgres"
        )
    return exp.paren(exp.Sub(this=_as_date(node.this), expression=_as_date(node.expression)))


@rule(SPARK_POSTGRES)
def spark_add_months_on_postgres(node: exp.Expr) -> exp.Expr:
    """`add_months(d, n)` is a DATE, the day kept or clamped to the month's end (Spark 3: 2024-01-31 + 1 month
    is 2024-02-29); Postgres has no ADD_MONTHS, and its `date + interval 'n month'` clamps the same way."""
    if not isinstance(node, exp.AddMonths):
        return node
    months = exp.Mul(
        this=exp.paren(node.expression.copy()),
        expression=exp.Interval(this=exp.Literal.string("1"), unit=exp.var("MONTH")),
    )
    return exp.Cast(this=exp.paren(exp.Add(this=_as_date(node.this), expression=months)), to=_DATE.copy())


def _int_literal(node: exp.Expr) -> int | None:
    """The value of an integer literal, negative ones (`-3`, parsed as a negation) included."""
    if isinstance(node, exp.Neg):
        inner = _int_literal(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and node.is_int:
        return int(node.name)
    return None


def _spark_start(value: exp.Expr, start: exp.Expr) -> exp.Expr:
    """Spark's 1-based position (0 read as 1, a negative one counted from the end) as Postgres' position."""
    n = _int_literal(start)
    if n is not None:
        if n > 0:
            return start
        if n == 0:
            return exp.Literal.number(1)
        return exp.Add(this=exp.Length(this=value.copy()), expression=exp.Literal.number(n + 1))
    from_end = exp.Add(
        this=exp.Add(this=exp.Length(this=value.copy()), expression=start.copy()), expression=exp.Literal.number(1)
    )
    return exp.Case(
        ifs=[
            exp.If(this=exp.GT(this=start.copy(), expression=exp.Literal.number(0)), true=start.copy()),
            exp.If(this=exp.LT(this=start.copy(), expression=exp.Literal.number(0)), true=from_end),
        ],
        default=exp.Literal.number(1),
    )


@rule(SPARK_POSTGRES)
def spark_substring_on_postgres(node: exp.Expr) -> exp.Expr:
    """`substring(s, pos, len)`: Spark reads pos 0 as 1 and a negative pos from the end (`substring('hello', -3,
    2)` is 'll'); Postgres' SUBSTRING(s FROM pos FOR len) counts a position below 1 as characters before the
    string. A negative length is '' on Spark, an error on Postgres: clamped to 0."""
    if not isinstance(node, exp.Substring) or node.meta.get("pd_spark_substring"):
        return node
    start = node.args.get("start")
    length = node.args.get("length")
    out = exp.Substring(this=node.this.copy())
    out.meta["pd_spark_substring"] = True
    out.set("start", _spark_start(node.this, start) if start is not None else exp.Literal.number(1))
    if length is not None:
        count = _int_literal(length)
        if count is not None:
            out.set("length", exp.Literal.number(max(count, 0)))
        else:
            out.set("length", exp.Greatest(this=length.copy(), expressions=[exp.Literal.number(0)]))
    return out


def _is_array(node: exp.Expr) -> bool:
    """Whether a value is an array by its form (an aggregate into one, a literal one, or COALESCE of those)."""
    if isinstance(node, exp.Paren | exp.Window):
        return _is_array(node.this)
    if isinstance(node, exp.Coalesce):
        return _is_array(node.this)
    return isinstance(node, exp.ArrayAgg | exp.Array)


def _empty_array_for(target: str) -> exp.Expr:
    return exp.Literal.string("{}") if target == "postgres" else exp.Array()


def _collect_list_rule(target: str) -> Rule:
    def collect_list_is_never_null(node: exp.Expr) -> exp.Expr:
        """`collect_list(x)` leaves NULLs out and is an empty array for a group (or window frame) with no value
        (Databricks); ARRAY_AGG of no row is NULL on Postgres and DuckDB: COALESCE'd with an empty array. On
        Postgres, CONCAT_WS of an array joins its elements (Spark) where Postgres' CONCAT_WS would write the
        array's text ('{a,b}'): ARRAY_TO_STRING joins them, skipping NULLs."""
        if isinstance(node, exp.ConcatWs) and target == "postgres":
            sep, *values = node.expressions
            if not any(_is_array(v) for v in values):
                return node
            if len(values) != 1:
                raise UnfaithfulError("CONCAT_WS", "an array joined with other values is not translated for Postgres")
            array = values[0].transform(collect_list_is_never_null)
            if not isinstance(array, exp.Coalesce):
                array = exp.Coalesce(this=array, expressions=[_empty_array_for(target)])
            return exp.Anonymous(this="ARRAY_TO_STRING", expressions=[array, sep.copy()])
        if isinstance(node, exp.Window) and isinstance(node.this, exp.ArrayAgg):  # an empty frame: [] too
            return exp.Coalesce(this=node.copy(), expressions=[_empty_array_for(target)])
        if isinstance(node, exp.ArrayAgg) and not isinstance(node.parent, exp.Window):
            return exp.Coalesce(this=node.copy(), expressions=[_empty_array_for(target)])
        return node

    return collect_list_is_never_null


rule(SPARK_POSTGRES)(_collect_list_rule("postgres"))
rule([("databricks", "duckdb")])(_collect_list_rule("duckdb"))


# Spark's datetime pattern fields (as sqlglot reads them) Postgres' to_char writes as the same digits
_SPARK_FORMAT = re.compile(r"(%Y|%y|%m(strict)?|%d(strict)?|%-m|%-d|%H(strict)?|%M(strict)?|%S(strict)?|[-/:._ ])*")


@rule(SPARK_POSTGRES)
def spark_date_format_on_postgres(node: exp.Expr) -> exp.Expr:
    """`date_format(x, pattern)`: the numeric fields (yyyy, yy, MM, M, dd, d, HH, mm, ss) come out the same from
    Postgres' to_char; month and day names (MMM, EEE) depend on the server's locale there: refused, as is a
    pattern that is not a literal."""
    if not isinstance(node, exp.TimeToStr):
        return node
    fmt = node.args.get("format")
    if not isinstance(fmt, exp.Literal) or not fmt.is_string or not _SPARK_FORMAT.fullmatch(fmt.name):
        shown = fmt.sql("databricks") if isinstance(fmt, exp.Expr) else "?"
        raise UnfaithfulError("DATE_FORMAT", f"pattern {shown} is written differently by Postgres' to_char")
    return node


# ---- any source ------------------------------------------------------------------------------------------------


def _non_null_values(value: exp.Expr, window: exp.Window | None) -> exp.Expr:
    """The non-NULL values of the group, or of the window's frame in the window's order, as an array:
    ARRAY_AGG(value) FILTER (WHERE value IS NOT NULL) [OVER window]."""
    kept: exp.Expr = exp.Filter(
        this=exp.ArrayAgg(this=value.copy()),
        expression=exp.Where(this=exp.not_(exp.Is(this=value.copy(), expression=exp.Null()))),
    )
    if window is not None:
        over = window.copy()
        over.set("this", kept)
        kept = over
    return exp.paren(kept)


def _non_null_values_for_pb_window(value: exp.Expr) -> exp.Expr:
    """As `_non_null_values`, for a var's select whose pb `window:` the compiler adds after translation, on the
    ARRAY_AGG inside (compiler._windowed): ARRAY_REMOVE(ARRAY_AGG(value), NULL), as a FILTER would have to go
    between the aggregate and its OVER."""
    return exp.paren(exp.Anonymous(this="ARRAY_REMOVE", expressions=[exp.ArrayAgg(this=value.copy()), exp.Null()]))


@rule(ALL_POSTGRES)
def any_value_on_postgres(node: exp.Expr) -> exp.Expr:
    """ANY_VALUE(x) is some value of the group (Snowflake, Databricks: non-deterministic): Postgres 15 has no
    ANY_VALUE. The first non-NULL element of the group's ARRAY_AGG is one of its values, of any type (MIN has no
    boolean or JSON form), NULL when all are, as DuckDB's ANY_VALUE. (ARRAY_REMOVE needs an equality: a `json`
    value fails loudly; `jsonb` has one.)"""
    if isinstance(node, exp.Window) and isinstance(node.this, exp.AnyValue):
        return exp.Bracket(this=_non_null_values(node.this.this, node), expressions=[exp.Literal.number(0)])
    if isinstance(node, exp.AnyValue):  # a var's pb `window:` may be added on the ARRAY_AGG (compiler._windowed)
        first = exp.Bracket(this=_non_null_values_for_pb_window(node.this), expressions=[exp.Literal.number(0)])
        first.meta["pd_window_inside"] = True
        return first
    return node


@rule(ALL_POSTGRES)
def first_last_value_ignore_nulls_on_postgres(node: exp.Expr) -> exp.Expr:
    """FIRST_VALUE/LAST_VALUE(x) IGNORE NULLS OVER (w): the first/last non-NULL value of the frame (NULL if it
    has none). Postgres' window functions cannot skip NULLs, but an aggregate over the same window can:
    ARRAY_AGG(x) FILTER (WHERE x IS NOT NULL) OVER (w) holds the frame's non-NULL values in the window's order,
    and its first or last element is the value (a literal index is written 1-based for Postgres). A FIRST_VALUE
    whose window pb's `window:` adds later (a var's select) is marked so the compiler puts that window on the
    ARRAY_AGG inside; such a LAST_VALUE (its array read twice) is refused."""
    window = node if isinstance(node, exp.Window) else None
    ignored = node.this if window is not None else node
    if not (isinstance(ignored, exp.IgnoreNulls) and isinstance(ignored.this, exp.FirstValue | exp.LastValue)):
        return node
    if window is None and isinstance(node.parent, exp.Window):
        return node  # rewritten with its window
    function = ignored.this
    value = function.this
    if isinstance(function, exp.FirstValue):
        if window is None:
            first = exp.Bracket(this=_non_null_values_for_pb_window(value), expressions=[exp.Literal.number(0)])
            first.meta["pd_window_inside"] = True  # compiler._windowed puts pb's window on the ARRAY_AGG
            return first
        return exp.Bracket(this=_non_null_values(value, window), expressions=[exp.Literal.number(0)])
    if window is None:
        raise UnfaithfulError("IGNORE NULLS", "LAST_VALUE(… IGNORE NULLS) without its window is not translated")
    # an index that is an expression is written as it is: Postgres' 1-based position of the last element
    last = exp.Anonymous(this="ARRAY_LENGTH", expressions=[_non_null_values(value, window), exp.Literal.number(1)])
    return exp.Bracket(this=_non_null_values(value, window), expressions=[last])


@rule(ALL_POSTGRES)
def ignore_nulls_on_postgres(node: exp.Expr) -> exp.Expr:
    """Postgres' window functions cannot skip NULLs (sqlglot drops IGNORE NULLS with a warning): what the rule
    above does not rewrite (LAG, LEAD, NTH_VALUE ... IGNORE NULLS) is refused."""
    if isinstance(node, exp.IgnoreNulls):
        raise UnfaithfulError("IGNORE NULLS", "Postgres' window functions cannot skip NULLs (sqlglot drops it)")
    return node


@rule(ALL_POSTGRES)
def float_remainder_on_postgres(node: exp.Expr) -> exp.Expr:
    """`a % b` of a FLOAT/DOUBLE is the IEEE remainder on Databricks and Snowflake (19.99 % 10 is
    9.989999999999998); Postgres has no % for double precision, and its NUMERIC % works on a 15-digit copy of
    the double (0.3 % 0.1 is 0 there, 0.09999999999999998 on the source): refused where the SQL shows a float
    (a column of unknown type fails in the warehouse)."""
    if isinstance(node, exp.Mod) and any(_is_float(side) for side in (node.this, node.expression)):
        raise UnfaithfulError("% (modulo)", "the remainder of a FLOAT/DOUBLE has no exact form on Postgres")
    return node


def _is_float(node: exp.Expr) -> bool:
    typed = known_type(node)
    return typed is not None and typed.this in _FLOATS


# ---- Snowflake -------------------------------------------------------------------------------------------------

# DATE_PART units Postgres' EXTRACT has under another name, or with a fraction Snowflake does not give
_DATE_PART = {
    "YEAR": "YEAR",
    "QUARTER": "QUARTER",
    "MONTH": "MONTH",
    "DAY": "DAY",
    "DAYOFMONTH": "DAY",
    "DAYOFYEAR": "DOY",
    "DAYOFWEEK": "DOW",  # Sunday 0 (WEEK_START 0, the default)
    "DAYOFWEEKISO": "ISODOW",
    "HOUR": "HOUR",
    "MINUTE": "MINUTE",
    "SECOND": "SECOND",  # Postgres adds the fraction: floored below
    "EPOCH_SECOND": "EPOCH",  # Postgres' is fractional: floored below
    "EPOCH": "EPOCH",  # Snowflake's abbreviation of EPOCH_SECOND
}


@rule(SNOWFLAKE_POSTGRES)
def date_part_on_postgres(node: exp.Expr) -> exp.Expr:
    """DATE_PART/EXTRACT: Snowflake's value is an integer (EPOCH_SECOND and SECOND drop the fraction); Postgres'
    EXTRACT is a NUMERIC with the fraction, and names DAYOFWEEK `dow`. Week numbers (WEEK_OF_YEAR_POLICY) and
    other units: refused."""
    if not isinstance(node, exp.Extract) or node.meta.get("pd_part"):
        return node
    unit = str(node.this.name).upper()
    if unit not in _DATE_PART:
        raise UnfaithfulError("DATE_PART", f"unit {unit} is not translated for Postgres")
    extract = exp.Extract(this=exp.var(_DATE_PART[unit]), expression=node.expression.copy())
    extract.meta["pd_part"] = True
    return exp.Cast(this=exp.Floor(this=extract), to=_BIGINT.copy())


@rule(SNOWFLAKE_POSTGRES)
def mode_on_postgres(node: exp.Expr) -> exp.Expr:
    """MODE(x): the most frequent non-NULL value (Snowflake; any of tied values); Postgres writes it as the
    ordered-set aggregate `mode() WITHIN GROUP (ORDER BY x)`, which takes the first of tied values and cannot
    be a window function (refused there)."""
    if not isinstance(node, exp.Mode) or node.this is None:
        return node
    if isinstance(node.parent, exp.Window):
        raise UnfaithfulError("MODE", "Postgres' mode() is not a window function")
    order = exp.Order(expressions=[exp.Ordered(this=node.this.copy(), nulls_first=False)])
    return exp.WithinGroup(this=exp.Mode(), expression=order)


@rule(SNOWFLAKE_POSTGRES)
def sha1_on_postgres(node: exp.Expr) -> exp.Expr:
    """SHA1(x) is the 40-character lowercase hex text of the digest (Snowflake); Postgres has no SHA1: the
    engine's own form (pgcrypto's DIGEST, as for main ids)."""
    if isinstance(node, exp.SHA) and not isinstance(node, Sha1Hex):
        return Sha1Hex(this=node.this.copy())
    return node


_TRUE_TEXT = ("true", "t", "yes", "y", "on", "1")
_FALSE_TEXT = ("false", "f", "no", "n", "off", "0")


@rule(SNOWFLAKE_POSTGRES)
def to_boolean_on_postgres(node: exp.Expr) -> exp.Expr:
    """TO_BOOLEAN(x): a number is TRUE unless 0; a string is TRUE for 'true', 't', 'yes', 'y', 'on', '1' and
    FALSE for 'false', 'f', 'no', 'n', 'off', '0' (any case), an error otherwise (Snowflake). Postgres' boolean
    cast also takes prefixes ('tr'): the other strings fail through a cast of an impossible text. A value whose
    type the SQL does not show is refused."""
    if not isinstance(node, exp.ToBoolean):
        return node
    value: exp.Expr = node.this
    typed = known_type(value)
    if typed is None:
        raise UnfaithfulError("TO_BOOLEAN", f"whether {value.sql('snowflake')} is text or a number is not known")
    if typed.this == T.BOOLEAN:
        return value.copy()
    if typed.this in _INTEGER | _FLOATS | {T.DECIMAL}:
        return exp.paren(exp.NEQ(this=exp.paren(value.copy()), expression=exp.Literal.number(0)))
    if typed.this not in _TEXT:
        raise UnfaithfulError("TO_BOOLEAN", f"a {typed.sql('snowflake')} value")
    lowered = exp.Lower(this=value.copy())

    def among(words: tuple[str, ...]) -> exp.Expr:
        return exp.In(this=lowered.copy(), expressions=[exp.Literal.string(w) for w in words])

    invalid = exp.DPipe(this=exp.Literal.string("not a boolean: "), expression=value.copy())
    return exp.Case(
        ifs=[
            exp.If(this=among(_TRUE_TEXT), true=exp.true()),
            exp.If(this=among(_FALSE_TEXT), true=exp.false()),
            exp.If(this=exp.Is(this=value.copy(), expression=exp.Null()), true=exp.Null()),
        ],
        default=exp.Cast(this=invalid, to=exp.DataType.build("boolean")),
    )


@rule(SNOWFLAKE_POSTGRES)
def round_on_postgres(node: exp.Expr) -> exp.Expr:
    """ROUND(x[, scale]) rounds half away from zero (Snowflake's default mode); Postgres does so for NUMERIC, but
    rounds a double half to even and has no ROUND(double, scale): a value not known to be fixed-point is
    rounded as NUMERIC (a FLOAT's result cast back to DOUBLE). Another rounding mode is refused."""
    if not isinstance(node, exp.Round) or node.meta.get("pd_round"):
        return node
    mode = node.args.get("truncate") or node.args.get("mode")
    if mode is not None and not (
        isinstance(mode, exp.Literal) and mode.is_string and mode.name.upper() == "HALF_AWAY_FROM_ZERO"
    ):
        raise UnfaithfulError("ROUND", f"rounding mode {mode.sql('snowflake')} is not translated for Postgres")
    typed = known_type(node.this)
    if typed is not None and typed.this in _INTEGER | {T.DECIMAL}:
        out = exp.Round(this=node.this.copy(), decimals=node.args.get("decimals"))
        out.meta["pd_round"] = True
        return out
    exact = exp.Round(
        this=exp.Cast(this=node.this.copy(), to=exp.DataType.build("decimal")),
        decimals=node.args["decimals"].copy() if node.args.get("decimals") else None,
    )
    exact.meta["pd_round"] = True
    if typed is not None and typed.this in _FLOATS:
        return exp.Cast(this=exact, to=exp.DataType.build("double"))
    return exact


__all__: list[str] = []
