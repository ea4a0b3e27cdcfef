"""Scalar functions and operators of Snowflake (and BigQuery, Redshift, Databricks) SQL, kept on DuckDB.

sqlglot already writes most of them faithfully (IFF, NVL, NVL2, ZEROIFNULL, DIV0, DATEDIFF's boundary counting,
DATE_TRUNC, SPLIT_PART's 0 and negative parts, REGEXP_LIKE's anchoring, FIRST_VALUE's frame, NULL ordering,
RANDOM's 64-bit integer, ...): those are only claimed in `CHECKED`, each backed by a test in
profiles_dagster_tests/sql/transpile/test_scalars.py. The rules below fix what it writes with another meaning
or not at all, found by running the corpus's constructs on DuckDB against Snowflake's documented results:

- TO_TIMESTAMP / _NTZ / _LTZ / _TZ of an expression (not a literal) stay unknown functions on DuckDB;
- RIGHT/LEFT of a number (Snowflake casts it to text; DuckDB has no such overload);
- a string compared with a DATE or TIMESTAMP (Snowflake casts the string to the other side's type; DuckDB
  refuses VARCHAR against DATE);
- TO_CHAR/TO_VARCHAR of an expression with a format: sqlglot drops the format (a plain cast to text);
- DATEADD of a DATE by days or more is a DATE on Snowflake, a TIMESTAMP on DuckDB;
- `/` of two fixed-point numbers is rounded to Snowflake's result scale (integers: 6 decimals).

A value whose type the SQL does not show (a column) cannot be told apart: such forms are left as sqlglot writes
them, and only the typed forms are claimed. What has no faithful form is refused (`UnfaithfulError`).
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from profiles_dagster.sql.transpile import UnfaithfulError, rule
from profiles_dagster.sql.transpile.types import column_type

SNOWFLAKE_DUCKDB = [("snowflake", "duckdb")]
SNOWFLAKE_POSTGRES = [("snowflake", "postgres")]
SNOWFLAKE_ENGINES = SNOWFLAKE_DUCKDB + SNOWFLAKE_POSTGRES

# Constructs (as benchmarks/sql_census.py names them) whose translation keeps their meaning, each checked by a
# test of test_scalars.py against the source vendor's documented result (that test file asserts every name
# here has a case). A construct is named as the source dialect writes it. Not claimed: TO_CHAR with no format and
# CAST(… AS VARCHAR), whose text depends on the value's type (a TIMESTAMP's default output format, a VARIANT's
# JSON text), which the SQL does not show.
# checked on DuckDB and, with the same cases, on the Postgres stand-in (test_scalars.py::test_snowflake_on_postgres)
_SNOWFLAKE_BOTH = frozenset(
    {
        "% (modulo)",
        "/ (division)",
        "ABS",
        "ANY_VALUE",
        "ARRAY_AGG",
        "AVG",
        "CASE",
        "CAST(… AS DATE)",
        "CAST(… AS DECIMAL(12, 2))",
        "CAST(… AS DOUBLE)",
        "CAST(… AS FLOAT)",
        "CAST(… AS TIMESTAMP)",
        "CAST(… AS TIMESTAMPNTZ)",
        "CAST(… AS TIMESTAMPTZ)",
        "COALESCE",
        "CONVERT_TIMEZONE",
        "COUNT",
        "CURRENT_DATE",
        "CURRENT_TIMESTAMP",
        "DATEADD",
        "DATEDIFF",
        "DATE_PART",
        "DATE_TRUNC",
        "FIRST_VALUE",
        "FLOOR",
        "IFF",
        "IGNORE NULLS",
        "LAST_VALUE",
        "LEFT",
        "LISTAGG",
        "LOWER",
        "MAX",
        "MEDIAN",
        "MIN",
        "MODE",
        "NULLIF",
        "NULLS FIRST/LAST",
        "NVL2",
        "OVER (window)",
        "QUALIFY",
        "RANDOM",
        "RANK",
        "REGEXP_COUNT",
        "REGEXP_LIKE",
        "REPLACE",
        "RIGHT",
        "ROW_NUMBER",
        "SHA1",
        "SUM",
        "TO_CHAR",
        "TO_DATE",
        "TO_TIMESTAMP",
        "TO_TIMESTAMP_LTZ",
        "TO_TIMESTAMP_NTZ",
        "TO_TIMESTAMP_TZ",
        "UNIFORM",
    }
)
_SNOWFLAKE_DUCKDB_ONLY = frozenset(
    {
        "REGEXP_SUBSTR",
        "SPLIT_PART",
        "SYSDATE",
        "TRY_CAST(… AS INT)",
        "WITHIN GROUP",
    }
)
# Databricks, BigQuery and Redshift constructs checked on DuckDB and on the Postgres stand-in with the same cases
# (test_scalars.py::OTHERS)
_DATABRICKS = frozenset(
    {
        "% (modulo)",
        "/ (division)",
        "ADD_MONTHS",
        "ANY_VALUE",
        "CASE",
        "CAST(… AS DATE)",
        "CAST(… AS DECIMAL(16, 1))",
        "CAST(… AS FLOAT)",
        "CAST(… AS STRING)",
        "COALESCE",
        "COLLECT_LIST",
        "CONCAT_WS",
        "COUNT",
        "CURRENT_DATE",
        "DATEDIFF",
        "DATE_ADD",
        "DATE_FORMAT",
        "FIRST_VALUE",
        "GREATEST",
        "LOWER",
        "MAX",
        "MIN",
        "NTILE",
        "OVER (window)",
        "ROW_NUMBER",
        "SUBSTRING",
        "SUM",
        "TRIM",
        "UPPER",
    }
)
_BIGQUERY = frozenset({"CAST(… AS DATE)", "COUNT", "FIRST_VALUE", "MAX", "MIN"})
_REDSHIFT = frozenset({"CAST(… AS TIMESTAMP)", "FIRST_VALUE", "MAX", "MIN"})
CHECKED: dict[tuple[str, str], frozenset[str]] = {
    ("snowflake", "duckdb"): _SNOWFLAKE_BOTH | _SNOWFLAKE_DUCKDB_ONLY,
    # TO_BOOLEAN and ROUND on DuckDB: transpile/implicit.py
    ("snowflake", "postgres"): _SNOWFLAKE_BOTH | {"TO_BOOLEAN", "ROUND"},
    ("databricks", "duckdb"): _DATABRICKS,
    ("databricks", "postgres"): _DATABRICKS | {"CAST"},  # CAST(… AS TIMESTAMP) on DuckDB: transpile/implicit.py
    ("bigquery", "duckdb"): _BIGQUERY,
    ("bigquery", "postgres"): _BIGQUERY,
    ("redshift", "duckdb"): _REDSHIFT,
    ("redshift", "postgres"): _REDSHIFT,
}
T = exp.DataType.Type
_DATE = exp.DataType.build("date")
_TIMESTAMP = exp.DataType.build("timestamp")
_TIMESTAMPTZ = exp.DataType.build("timestamptz")
_VARCHAR = exp.DataType.build("varchar")
_TEMPORAL = {T.DATE, T.TIMESTAMP, T.TIMESTAMPNTZ, T.TIMESTAMPTZ, T.TIMESTAMPLTZ, T.DATETIME}
_TEXT = {T.VARCHAR, T.TEXT, T.CHAR, T.NVARCHAR, T.NCHAR}
_INTEGER = {T.TINYINT, T.SMALLINT, T.INT, T.BIGINT, T.INT128, T.UTINYINT, T.USMALLINT, T.UINT, T.UBIGINT}
_FLOATS = {T.FLOAT, T.DOUBLE}
# Snowflake's TO_TIMESTAMP_* of a value: TO_TIMESTAMP follows TIMESTAMP_TYPE_MAPPING, TIMESTAMP_NTZ by default
_TO_TIMESTAMP = {
    "TO_TIMESTAMP": _TIMESTAMP,
    "TO_TIMESTAMP_NTZ": _TIMESTAMP,
    "TO_TIMESTAMP_LTZ": _TIMESTAMPTZ,
    "TO_TIMESTAMP_TZ": _TIMESTAMPTZ,
}


# functions whose value is text whatever their arguments
_TEXT_FUNCTIONS = (
    exp.Right,
    exp.Left,
    exp.Substring,
    exp.SplitPart,
    exp.Lower,
    exp.Upper,
    exp.Trim,
    exp.Concat,
    exp.DPipe,
    exp.Replace,
    exp.ToChar,
    exp.TimeToStr,
)

# ---- what the SQL shows of a value's type ------------------------------------------------------------------


def known_type(node: exp.Expr) -> exp.DataType | None:
    """The type an expression has whatever its inputs hold, when its form shows it (a cast, a date function,
    a literal); None for a column or anything whose type depends on the data."""
    if isinstance(node, exp.Paren):
        return known_type(node.this)
    if isinstance(node, exp.Column):
        return column_type(node)  # the engine's type of a column read with types (transpile/types.py)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Cast | exp.TryCast):
        return node.to
    if isinstance(node, exp.CurrentDate | exp.TsOrDsToDate | exp.StrToDate):
        return _DATE
    if isinstance(node, exp.CurrentTimestamp):
        return _TIMESTAMPTZ  # Snowflake: TIMESTAMP_LTZ
    if isinstance(node, exp.StrToTime | exp.UnixToTime):
        target = node.args.get("target_type")
        return target if isinstance(target, exp.DataType) else _TIMESTAMP
    if isinstance(node, exp.Anonymous) and str(node.name).upper() in _TO_TIMESTAMP:
        return _TO_TIMESTAMP[str(node.name).upper()]
    if isinstance(node, exp.DateAdd | exp.DateSub | exp.DateTrunc | exp.TimestampTrunc):
        inner = known_type(node.this)
        if inner is not None and inner.this == T.DATE and isinstance(node, exp.DateAdd | exp.DateSub):
            return _DATE if unit_name(node) in _DAY_OR_MORE else _TIMESTAMP
        return inner
    if isinstance(node, _TEXT_FUNCTIONS):
        return _VARCHAR
    if isinstance(node, exp.Literal):
        if node.is_string:
            return _VARCHAR
        return exp.DataType.build("bigint") if node.is_int else exp.DataType.build("decimal")
    if isinstance(node, exp.Count):
        return exp.DataType.build("bigint")
    if isinstance(node, exp.Min | exp.Max | exp.AnyValue | exp.FirstValue | exp.LastValue | exp.Sum):
        inner = known_type(node.this)  # the value's own type (a SUM of integers is an integer, of floats a float)
        return inner if inner is None or not isinstance(node, exp.Sum) or inner.this in _INTEGER | _FLOATS else None
    if isinstance(node, exp.Window):
        return known_type(node.this)
    if isinstance(node, exp.Case):  # every branch of one known type (a missing ELSE is NULL, of any type)
        branches = [i.args.get("true") for i in node.args.get("ifs") or []] + [node.args.get("default")]
        kinds = [known_type(b) for b in branches if b is not None and not isinstance(b, exp.Null)]
        return kinds[0] if kinds and all(k is not None and k == kinds[0] for k in kinds) else None
    if isinstance(node, exp.Coalesce):
        types = [known_type(a) for a in [node.this, *node.expressions] if not isinstance(a, exp.Null)]
        return types[0] if types and all(t is not None and t == types[0] for t in types) else None
    if isinstance(node, exp.Add | exp.Sub | exp.Mul):  # integers stay integers; a float makes a float
        sides = [known_type(node.this), known_type(node.expression)]
        if all(s is not None and s.this in _INTEGER for s in sides):
            return exp.DataType.build("bigint")
        if all(s is not None and s.this in _INTEGER | _FLOATS for s in sides):
            return exp.DataType.build("double")
    return None


def _is(node: exp.Expr, types: set[Any]) -> bool:
    found = known_type(node)
    return found is not None and found.this in types


def unit_name(node: exp.Expr) -> str:
    """A date function's unit in upper case; DAY when it has none."""
    unit = node.args.get("unit")
    return str(unit.name if isinstance(unit, exp.Expr) else unit or "DAY").upper()


_DAY_OR_MORE = {"DAY", "WEEK", "MONTH", "QUARTER", "YEAR"}


# ---- rules ---------------------------------------------------------------------------------------------------


@rule(SNOWFLAKE_ENGINES)
def to_timestamp_of_expression(node: exp.Expr) -> exp.Expr:
    """TO_TIMESTAMP[_NTZ/_LTZ/_TZ](x): sqlglot rewrites literals only. A string, DATE or TIMESTAMP x is the cast
    to the function's type (Snowflake: TO_TIMESTAMP_* with no format reads a string in AUTO format; a DATE is
    its midnight; TIMESTAMP_TZ and _LTZ without an offset take the session's time zone, as DuckDB's TIMESTAMPTZ
    cast does). A number x means seconds since the epoch on Snowflake (or milli/micro/nanoseconds by its
    size): a numeric literal is written as such; a numeric column fails DuckDB's cast loudly, never differs.
    TIMESTAMP_TZ's own per-value offset is not kept: DuckDB's TIMESTAMPTZ is an instant, shown in the
    session's zone."""
    if isinstance(node, exp.UnixToTime) and node.args.get("scale") is None and isinstance(node.this, exp.Literal):
        if abs(float(node.this.name)) >= 31536000000:  # sqlglot reads every literal as seconds
            raise UnfaithfulError(
                "TO_TIMESTAMP", "Snowflake reads an integer this large as milli-, micro- or nanoseconds"
            )
        return node
    if not isinstance(node, exp.Anonymous) or str(node.name).upper() not in _TO_TIMESTAMP:
        return node
    name = str(node.name).upper()
    args = node.expressions
    if len(args) != 1:
        raise UnfaithfulError(name, "a scale or format argument of an expression is not translated")
    value = args[0]
    target = _TO_TIMESTAMP[name]
    if isinstance(value, exp.Literal) and not value.is_string:
        seconds = float(value.name)
        if abs(seconds) >= 31536000000:
            raise UnfaithfulError(name, "Snowflake reads an integer this large as milli-, micro- or nanoseconds")
        epoch = exp.UnixToTime(this=value.copy(), target_type=_TIMESTAMP.copy())
        if target.this == T.TIMESTAMP:
            return exp.AtTimeZone(this=epoch, zone=exp.Literal.string("UTC"))
        return epoch
    return exp.Cast(this=value.copy(), to=target.copy())


@rule([("databricks", "duckdb")])
def spark_date_add_is_a_date(node: exp.Expr) -> exp.Expr:
    """Spark's `date_add(d, n)` / `date_sub(d, n)` return a DATE (Databricks docs); sqlglot writes
    `d + INTERVAL n DAY`, a TIMESTAMP on DuckDB (its text would gain ` 00:00:00`): cast back to DATE."""
    if isinstance(node, exp.TsOrDsAdd) and not node.meta.get("pd_spark_date"):
        node.meta["pd_spark_date"] = True
        return exp.Cast(this=node, to=exp.DataType.build("DATE"))
    return node


@rule(SNOWFLAKE_ENGINES)
def floats_are_doubles(node: exp.Expr) -> exp.Expr:
    """Snowflake's FLOAT, FLOAT4, REAL, ... are all one 64-bit double; sqlglot reads REAL and FLOAT4 as a 32-bit
    FLOAT, which DuckDB writes as REAL (`avg(x::real)` would lose half its digits)."""
    if isinstance(node, exp.DataType) and node.this == T.FLOAT:
        return exp.DataType.build("double")
    return node


@rule(SNOWFLAKE_ENGINES)
def text_of_number(node: exp.Expr) -> exp.Expr:
    """RIGHT/LEFT of a number: Snowflake casts it to text first (`right(random(), 1)` is its last digit);
    DuckDB has no numeric overload. Casting text to text changes nothing, so every non-string is cast."""
    if isinstance(node, exp.Right | exp.Left) and not _is(node.this, _TEXT):
        node.set("this", exp.Cast(this=node.this, to=_VARCHAR.copy()))
    return node


def _random_bits(bits: int) -> exp.Expr:
    """FLOOR(RANDOM() * 2^bits) as a BIGINT: `bits` uniform random bits (DuckDB's RANDOM() draws 32 at a time)."""
    scaled = exp.Mul(this=exp.Rand(), expression=exp.Literal.number(2**bits))
    return exp.Cast(this=exp.Floor(this=scaled), to=exp.DataType.build("bigint"))


@rule(SNOWFLAKE_DUCKDB)
def epoch_second_is_whole(node: exp.Expr) -> exp.Expr:
    """DATE_PART(EPOCH_SECOND, ts) counts whole seconds (the fraction is EPOCH_MILLISECOND's and finer);
    sqlglot casts DuckDB's fractional EPOCH to BIGINT, which rounds 1.75 up to 2: floored first."""
    if isinstance(node, exp.Extract) and str(node.this.name).upper() in ("EPOCH_SECOND", "EPOCH"):
        seconds = exp.Floor(this=exp.Anonymous(this="EPOCH", expressions=[node.expression.copy()]))
        return exp.Cast(this=seconds, to=exp.DataType.build("bigint"))
    return node


@rule(SNOWFLAKE_POSTGRES)
def uniform_on_postgres(node: exp.Expr) -> exp.Expr:
    """UNIFORM(min, max, RANDOM()): a uniformly distributed number in [min, max]: an integer when both bounds are
    integers (scale 0), else a float (Snowflake; sqlglot's DuckDB form reads NUMBER(p, s) bounds as floats too).
    Postgres has no UNIFORM: min + RANDOM() * the range (integers: its floor over max - min + 1 values).
    Applied before RANDOM() becomes 64 bits (the rule below). A generator other than an unseeded RANDOM() maps
    its value to the range in Snowflake's own way, and bounds of a type the SQL does not show: refused."""
    if not isinstance(node, exp.Uniform):
        return node
    gen = node.args.get("gen")
    if not isinstance(gen, exp.Rand) or gen.this is not None:
        raise UnfaithfulError(
            "UNIFORM", "a generator other than RANDOM() is mapped to the range by Snowflake's own rule"
        )
    low, high = node.this, node.expression
    if _fixed_scale(low) == 0 and _fixed_scale(high) == 0:
        count = exp.Add(this=exp.Sub(this=high.copy(), expression=low.copy()), expression=exp.Literal.number(1))
        drawn = exp.Floor(this=exp.Mul(this=exp.Rand(), expression=exp.paren(count)))
        return exp.paren(
            exp.Add(this=exp.paren(low.copy()), expression=exp.Cast(this=drawn, to=exp.DataType.build("bigint")))
        )
    if all(_fixed_scale(b) is not None or _is(b, _FLOATS) for b in (low, high)):
        double = exp.DataType.build("double")
        lo, hi = exp.Cast(this=low.copy(), to=double.copy()), exp.Cast(this=high.copy(), to=double.copy())
        span = exp.Sub(this=hi, expression=lo.copy())
        return exp.paren(exp.Add(this=lo, expression=exp.Mul(this=exp.Rand(), expression=exp.paren(span))))
    raise UnfaithfulError("UNIFORM", "bounds whose type the SQL does not show")


@rule(SNOWFLAKE_ENGINES)
def random_64_bits(node: exp.Expr) -> exp.Expr:
    """Snowflake's RANDOM() is a uniform 64-bit signed integer. sqlglot scales DuckDB's RANDOM() (a double)
    to that range, which leaves it 53 significant bits: every value a multiple of 1024, so `mod(random(), 2)`
    is always 0 and `right(random(), 1)` never odd. Two 32-bit draws make the 64 bits: high (signed) * 2^32 +
    low. RANDOM(seed) repeats Snowflake's own sequence, which no engine reproduces: refused."""
    if not isinstance(node, exp.Rand) or node.args.get("lower") is None:
        return node
    if node.this is not None:
        raise UnfaithfulError("RANDOM", "a seeded RANDOM(seed) is Snowflake's own sequence")
    high = exp.Sub(this=_random_bits(32), expression=exp.Literal.number(2**31))
    value = exp.Add(
        this=exp.Mul(this=exp.paren(high), expression=exp.Literal.number(2**32)), expression=_random_bits(32)
    )
    return exp.paren(value)


_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)


@rule(SNOWFLAKE_DUCKDB)
def string_against_datetime(node: exp.Expr) -> exp.Expr:
    """A value compared with a DATE or TIMESTAMP: Snowflake casts a string side to the other side's type (and
    promotes a DATE to a TIMESTAMP against one); DuckDB refuses VARCHAR against DATE. A side whose type the
    SQL does not show is cast so that each type it may hold compares as on Snowflake:
    - against a TIMESTAMP[TZ]: cast to it (a string parsed, a DATE at midnight, as Snowflake);
    - against a DATE: a string is cast to DATE (Snowflake truncates a timestamp string's time), anything
      else compared as a TIMESTAMP (a TIMESTAMP keeps its time, as Snowflake promotes the DATE)."""
    if not isinstance(node, _COMPARISONS):
        return node
    for known_side, other_side in (("this", "expression"), ("expression", "this")):
        typed = known_type(node.args[known_side])
        other = node.args[other_side]
        if typed is None or typed.this not in _TEMPORAL:
            continue
        other_type = known_type(other)
        if isinstance(other, exp.Literal) or (other_type is not None and other_type.this not in _TEXT):
            continue  # DuckDB casts a string literal itself; a typed value compares as on Snowflake
        if other_type is not None:  # text: cast to the other side's type, as Snowflake
            node.set(other_side, exp.Cast(this=other.copy(), to=typed.copy()))
            break
        if typed.this == T.DATE:
            string_as_date = exp.Cast(this=exp.Cast(this=other.copy(), to=_DATE.copy()), to=_TIMESTAMP.copy())
            is_text = exp.EQ(this=exp.func("typeof", other.copy()), expression=exp.Literal.string("VARCHAR"))
            cast: exp.Expr = exp.Case(
                ifs=[exp.If(this=is_text, true=string_as_date)],
                default=exp.Cast(this=other.copy(), to=_TIMESTAMP.copy()),
            )
        else:
            cast = exp.Cast(this=other.copy(), to=typed.copy())
        node.set(other_side, cast)
        break
    return node


@rule(SNOWFLAKE_ENGINES)
def date_plus_days_is_a_date(node: exp.Expr) -> exp.Expr:
    """DATEADD(day|week|month|quarter|year, n, <DATE>) is a DATE on Snowflake; DuckDB's DATE + INTERVAL is a
    TIMESTAMP (its text, and what a table column stores, differ). Smaller units give a TIMESTAMP on both."""
    if (
        isinstance(node, exp.DateAdd | exp.DateSub)
        and _is(node.this, {T.DATE})
        and unit_name(node) in _DAY_OR_MORE
        and not (isinstance(node.parent, exp.Cast) and node.parent.to.is_type(T.DATE))
    ):
        return exp.Cast(this=node.copy(), to=_DATE.copy())
    return node


# Snowflake's date and time format elements, as DuckDB's strftime writes the same text
_FORMAT_ELEMENTS = [
    ("YYYY", "%Y"),
    ("MMMM", "%B"),
    ("HH24", "%H"),
    ("HH12", "%I"),
    ("FF3", "%g"),
    ("FF6", "%f"),
    ("MON", "%b"),
    ("YY", "%y"),
    ("MM", "%m"),
    ("DD", "%d"),
    ("DY", "%a"),
    ("MI", "%M"),
    ("SS", "%S"),
    ("AM", "%p"),
    ("PM", "%p"),
]
_LITERAL_TEXT = re.compile(r"[-/:.,_ ]")


def strftime_format(snowflake: str) -> str:
    """A Snowflake date/time format as a DuckDB strftime format, or UnfaithfulError for an element whose text
    would differ (or a number format)."""
    out: list[str] = []
    rest = snowflake
    while rest:
        if rest[0] == '"':
            end = rest.find('"', 1)
            if end < 0:
                raise UnfaithfulError("TO_CHAR", f"unclosed quote in format '{snowflake}'")
            out.append(rest[1:end].replace("%", "%%"))
            rest = rest[end + 1 :]
            continue
        for element, directive in _FORMAT_ELEMENTS:
            if rest[: len(element)].upper() == element:
                out.append(directive)
                rest = rest[len(element) :]
                break
        else:
            if not _LITERAL_TEXT.match(rest[0]):
                raise UnfaithfulError("TO_CHAR", f"format element at '{rest}' of '{snowflake}' has no DuckDB twin")
            out.append(rest[0])
            rest = rest[1:]
    return "".join(out)


@rule(SNOWFLAKE_DUCKDB)
def to_char_with_format(node: exp.Expr) -> exp.Expr:
    """TO_CHAR/TO_VARCHAR(x, 'format') of an expression: sqlglot writes a plain cast to text, dropping the
    format. A date/time format becomes DuckDB's strftime; a number format ('999.99') or a format that is not
    a literal is refused."""
    if not isinstance(node, exp.ToChar) or node.args.get("format") is None:
        return node
    fmt = node.args["format"]
    if not isinstance(fmt, exp.Literal) or not fmt.is_string:
        raise UnfaithfulError("TO_CHAR", "a format that is not a literal cannot be translated")
    if _is(node.this, {T.VARCHAR, T.TEXT}) or re.fullmatch(r"[09.,$SMIDGXLVB\s]+", fmt.name, re.IGNORECASE):
        raise UnfaithfulError("TO_CHAR", f"number format '{fmt.name}': DuckDB has no TO_CHAR for numbers")
    return exp.TimeToStr(this=node.this, format=exp.Literal.string(strftime_format(fmt.name)))


@rule(SNOWFLAKE_ENGINES)
def text_in_arithmetic(node: exp.Expr) -> exp.Expr:
    """Text in arithmetic (`right(random(), 2) / 100`): Snowflake casts the string to a number; DuckDB has no
    `/(VARCHAR, INTEGER)`. A string literal DuckDB casts itself; the value of a text function is cast to
    DOUBLE (for the integer text such expressions hold, the same number)."""
    if not isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
        return node
    for side in ("this", "expression"):
        value = node.args[side]
        if not isinstance(value, exp.Literal) and _is(value, _TEXT):
            node.set(side, exp.Cast(this=value, to=exp.DataType.build("double")))
    return node


def _fixed_scale(node: exp.Expr) -> int | None:
    """The scale of a fixed-point value whose type the SQL shows (an integer 0), else None."""
    if isinstance(node, exp.Paren):
        return _fixed_scale(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        text = node.name
        if "e" in text.lower():
            return None
        return len(text.split(".", 1)[1]) if "." in text else 0
    if isinstance(node, exp.Neg):
        return _fixed_scale(node.this)
    typed = known_type(node)
    if typed is None:
        return None
    if typed.this in _INTEGER:
        return 0
    if typed.this == T.DECIMAL:
        params = typed.expressions
        if len(params) == 2:
            return int(params[1].name)
        return 0 if not params or len(params) == 1 else None  # NUMBER / NUMBER(p): scale 0
    return None


@rule(SNOWFLAKE_DUCKDB)
def fixed_point_division(node: exp.Expr) -> exp.Expr:
    """`a / b` of two fixed-point numbers (integers too) is a NUMBER on Snowflake with scale
    max(S1, min(S1 + 6, 12)) (S1: the dividend's scale), rounded: 1/3 is 0.333333. DuckDB divides in
    floating point. Where both scales show in the SQL, the quotient is rounded to Snowflake's scale; a float
    operand makes Snowflake divide in floating point too."""
    if not isinstance(node, exp.Div) or isinstance(node.parent, exp.Round):
        return node
    s1, s2 = _fixed_scale(node.this), _fixed_scale(node.expression)
    if s1 is None or s2 is None:
        return node
    scale = max(s1, min(s1 + 6, 12))
    return exp.Round(this=node.copy(), decimals=exp.Literal.number(scale))


# ---- Snowflake -> Postgres: what sqlglot writes with another meaning there ------------------------------------


@rule(SNOWFLAKE_POSTGRES)
def anchored_regexp_on_postgres(node: exp.Expr) -> exp.Expr:
    """REGEXP_LIKE/RLIKE match the whole subject on Snowflake; sqlglot writes Postgres' `~`, which matches
    anywhere. The pattern is anchored: `^(?:pattern)$`."""
    if not isinstance(node, exp.RegexpLike) or not node.args.get("full_match"):
        return node
    pattern = node.expression
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        anchored: exp.Expr = exp.Literal.string(f"^(?:{pattern.name})$")
    else:
        anchored = exp.DPipe(
            this=exp.DPipe(this=exp.Literal.string("^(?:"), expression=pattern.copy()),
            expression=exp.Literal.string(")$"),
        )
    return exp.RegexpLike(this=node.this.copy(), expression=anchored)


@rule(SNOWFLAKE_POSTGRES)
def date_trunc_of_a_date_on_postgres(node: exp.Expr) -> exp.Expr:
    """DATE_TRUNC of a DATE is a DATE on Snowflake; Postgres' date_trunc returns a timestamp with time zone."""
    if (
        isinstance(node, exp.DateTrunc | exp.TimestampTrunc)
        and _is(node.this, {T.DATE})
        and not (isinstance(node.parent, exp.Cast) and node.parent.to.is_type(T.DATE))
    ):
        return exp.Cast(this=node.copy(), to=_DATE.copy())
    return node


@rule(SNOWFLAKE_POSTGRES)
def refused_on_postgres(node: exp.Expr) -> exp.Expr:
    """What sqlglot writes for Postgres with another meaning, and no rewrite here keeps."""
    if isinstance(node, exp.DateDiff) and unit_name(node) == "WEEK":
        raise UnfaithfulError("DATEDIFF", "week boundaries: Postgres' form counts whole 7-day spans")
    if isinstance(node, exp.DataType) and node.this == T.FLOAT:
        return exp.DataType.build("double")
    return node


@rule(SNOWFLAKE_POSTGRES)
def epoch_seconds_on_postgres(node: exp.Expr) -> exp.Expr:
    """TO_TIMESTAMP(<integer>) is a TIMESTAMP_NTZ (the UTC wall clock) on Snowflake; Postgres' to_timestamp
    gives a timestamp with time zone: read in UTC, as sqlglot does for DuckDB."""
    if (
        isinstance(node, exp.UnixToTime)
        and node.args.get("scale") is None
        and _is(node, {T.TIMESTAMP})
        and not isinstance(node.parent, exp.AtTimeZone)
    ):
        return exp.AtTimeZone(this=node.copy(), zone=exp.Literal.string("UTC"))
    return node


@rule(SNOWFLAKE_POSTGRES)
def parse_format_on_postgres(node: exp.Expr) -> exp.Expr:
    """TO_DATE/TO_TIMESTAMP with a format: sqlglot drops the quotes of literal text ('"T"'), which Postgres'
    to_timestamp then reads as a format element or skips: refused when the format has literal letters."""
    if isinstance(node, exp.StrToTime | exp.StrToDate | exp.TsOrDsToDate) and node.args.get("format") is not None:
        fmt = node.args["format"]
        text = fmt.name if isinstance(fmt, exp.Literal) else ""
        if not isinstance(fmt, exp.Literal) or re.search(r"[A-Za-z]", re.sub(r"%[-:]?[A-Za-z]", "", text)):
            raise UnfaithfulError("TO_TIMESTAMP", f"format {fmt.sql()} is read differently by Postgres")
    return node


@rule(SNOWFLAKE_POSTGRES)
def fixed_point_division_on_postgres(node: exp.Expr) -> exp.Expr:
    """As `fixed_point_division`, in Postgres' exact NUMERIC (its ROUND takes no double precision)."""
    if not isinstance(node, exp.Div) or isinstance(node.parent, exp.Round):
        return node
    s1, s2 = _fixed_scale(node.this), _fixed_scale(node.expression)
    if s1 is None or s2 is None:
        return node
    exact = exp.Div(
        this=exp.Cast(this=node.this.copy(), to=exp.DataType.build("decimal")),
        expression=node.expression.copy(),
        typed=True,
        safe=node.args.get("safe"),
    )
    return exp.Round(this=exact, decimals=exp.Literal.number(max(s1, min(s1 + 6, 12))))


# Snowflake's format elements Postgres' to_char writes as the same text (DY, MON, ... differ in case there)
_POSTGRES_FORMAT = re.compile(r'(YYYY|YY|MM|DD|HH24|HH12|MI|SS|FF3|FF6|AM|PM|"[^"]*"|[-/:.,_ ])*', re.IGNORECASE)


@rule(SNOWFLAKE_POSTGRES)
def to_char_on_postgres(node: exp.Expr) -> exp.Expr:
    """TO_CHAR(x, 'format'): Postgres' to_char reads the same numeric elements (YYYY, MM, DD, HH24, MI, SS, FF3)
    the same way; names (DY, MON, MMMM) come out in another case there, and number formats differ: refused."""
    if not isinstance(node, exp.ToChar) or node.args.get("format") is None:
        return node
    fmt = node.args["format"]
    if not isinstance(fmt, exp.Literal) or not fmt.is_string or not _POSTGRES_FORMAT.fullmatch(fmt.name):
        raise UnfaithfulError("TO_CHAR", f"format {fmt.sql()} is written differently by Postgres' to_char")
    return node


__all__ = ["CHECKED", "known_type", "strftime_format"]
