"""Snowflake's implicit casts and its type-dependent casts, on DuckDB, from the types of the columns read.

Snowflake coerces an operand to the type an operator or function needs where DuckDB refuses or means another
thing (Snowflake's "Data type conversion: implicit casting (coercion)"):

- a VARIANT in arithmetic, in SUM/AVG, in a numeric function (ROUND, ABS, ...) or compared with a number is
  that number: DuckDB has no `*(JSON, DECIMAL)`. Its value goes through its text (`json_extract_string`, so a
  VARIANT string '12' is 12 as on Snowflake) cast to DOUBLE, which fails on a non-numeric string as
  Snowflake's cast does (never TRY_CAST, whose NULL would be another answer);
- a VARIANT compared with a DATE or TIMESTAMP is cast to that type through its text;
- a text column compared with a number is cast to a number, an exact NUMBER(38, 10) unless the other side is a
  FLOAT (DuckDB refuses `VARCHAR > INTEGER`, and compares `'012' = 12` only by chance of its literal rules);
- a text column or a VARIANT given to a date function (DATEDIFF, DATEADD, DATE_TRUNC, YEAR, EXTRACT, ...) is
  a TIMESTAMP read from its text;
- MIN/MAX of a VARIANT column or path order VARIANT values (numbers by value) where DuckDB orders JSON text
  ('10' < '9'): refused.

The text of a value cast to VARCHAR (`::string`, CAST, TO_CHAR/TO_VARCHAR with no format) depends on its type:
a DATE, BOOLEAN, integer or fixed-point NUMBER is written the same by both; a TIMESTAMP_NTZ takes Snowflake's
default TIMESTAMP_OUTPUT_FORMAT `YYYY-MM-DD HH24:MI:SS.FF3`; a VARIANT loses its JSON quotes
(semistructured.py); a FLOAT (Snowflake's own shortest form) and a TIMESTAMP with a time zone are refused, as
is a value whose type is unknown though its columns were read with types. TO_BOOLEAN takes Snowflake's
strings ('true'/'t'/'yes'/'y'/'on'/'1' and their negations, case-insensitive; anything else an error) and
numbers (0 is FALSE). ROUND of a NUMBER or a FLOAT rounds half away from zero on both (Snowflake's default
rounding mode; DuckDB's ROUND): only the HALF_TO_EVEN mode argument is rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from sqlglot import exp

from profiles_dagster.sql.transpile import UnfaithfulError, rule
from profiles_dagster.sql.transpile import semistructured_postgres as pg
from profiles_dagster.sql.transpile.scalars import _FLOATS, _INTEGER, _TEMPORAL, _TEXT, known_type
from profiles_dagster.sql.transpile.semistructured import _is_variant, _text_of
from profiles_dagster.sql.transpile.types import column_type, read_with_types

T = exp.DataType.Type
SNOWFLAKE_DUCKDB = [("snowflake", "duckdb")]
SNOWFLAKE_POSTGRES = [("snowflake", "postgres")]

# Census names (benchmarks/sql_census.py) whose meaning these rules keep, each with a test in
# profiles_dagster_tests/sql/transpile/test_types.py against Snowflake's (or Databricks') documented value.
CHECKED: dict[tuple[str, str], frozenset[str]] = {
    ("snowflake", "duckdb"): frozenset({"CAST(… AS VARCHAR)", "TO_CHAR (no format)", "TO_BOOLEAN", "ROUND"}),
    ("snowflake", "postgres"): frozenset({"CAST(… AS VARCHAR)", "TO_CHAR (no format)"}),
    ("databricks", "duckdb"): frozenset({"CAST"}),
}

_NUMERIC = _INTEGER | _FLOATS | {T.DECIMAL}
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)
_NUMERIC_FUNCTIONS = (exp.Sum, exp.Avg, exp.Round, exp.Abs, exp.Floor, exp.Ceil, exp.Neg, exp.Sqrt, exp.Ln)
# the text both engines write for a value of these types cast to VARCHAR
_SAME_TEXT = _TEXT | _INTEGER | {T.DATE, T.BOOLEAN, T.DECIMAL, T.UUID}
_DEFAULT_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%g"  # Snowflake's TIMESTAMP_OUTPUT_FORMAT YYYY-MM-DD HH24:MI:SS.FF3


@dataclass(frozen=True)
class _Json:
    """How an engine holds a VARIANT: DuckDB's JSON (semistructured.py), Postgres' jsonb
    (semistructured_postgres.py)."""

    is_variant: Callable[[exp.Expr], bool]
    text_of: Callable[[exp.Expr], exp.Expr]


_DUCKDB_JSON = _Json(_is_variant, _text_of)
_POSTGRES_JSON = _Json(pg.is_variant, pg.text_of)
# how the engine of the rule running holds a VARIANT (a context variable: translations may run in threads)
_CURRENT: ContextVar[_Json] = ContextVar("pd_variant_json", default=_DUCKDB_JSON)


def _variant_operand(value: exp.Expr) -> bool:
    """Whether an operand is a VARIANT (asking a column's type, so an untyped compile is known to depend on it)."""
    column_type(value)
    return _CURRENT.get().is_variant(value)


def _variant_text(value: exp.Expr) -> exp.Expr:
    return _CURRENT.get().text_of(value)


def _on(json: _Json, fn: Callable[[exp.Expr], exp.Expr]) -> Callable[[exp.Expr], exp.Expr]:
    """`fn` for the engine holding VARIANTs as `json`."""

    def run(node: exp.Expr) -> exp.Expr:
        token = _CURRENT.set(json)
        try:
            return fn(node)
        finally:
            _CURRENT.reset(token)

    run.__doc__ = fn.__doc__
    return run


def _double() -> exp.DataType:
    return exp.DataType.build("double")


def _as_number(value: exp.Expr) -> exp.Expr:
    """A VARIANT's value as Snowflake coerces it to a number: through its text, failing on a non-number."""
    return exp.Cast(this=_variant_text(value), to=_double())


def _is_number(node: exp.Expr) -> bool:
    if isinstance(node, exp.Literal):
        return not node.is_string
    found = known_type(node)
    return found is not None and found.this in _NUMERIC


def _may_hold_scalars(value: exp.Expr) -> bool:
    """A VARIANT column or path, which may hold numbers and strings (an OBJECT_CONSTRUCT or ARRAY_AGG holds
    compounds, whose order Snowflake does not document)."""
    inner = value.this if isinstance(value, exp.Paren) else value
    return isinstance(inner, exp.Column | exp.JSONExtract | exp.Case)


@rule(SNOWFLAKE_DUCKDB)
def variant_as_number(node: exp.Expr) -> exp.Expr:
    """A VARIANT operand of arithmetic or of a numeric function is a number (see the module's doc)."""
    if isinstance(node, _ARITHMETIC):
        for side, other in (("this", "expression"), ("expression", "this")):
            value = node.args[side]
            partner = known_type(node.args[other])
            if _variant_operand(value) and not (partner is not None and partner.this in _TEMPORAL):
                node.set(side, _as_number(value))
        return node
    if isinstance(node, _NUMERIC_FUNCTIONS) and _variant_operand(node.this):
        node.set("this", _as_number(node.this))
        return node
    if isinstance(node, exp.Min | exp.Max) and _variant_operand(node.this) and _may_hold_scalars(node.this):
        raise UnfaithfulError(
            f"{node.key.upper()} of a VARIANT",
            "Snowflake orders VARIANT values by their type and value; DuckDB would order their JSON text",
        )
    return node


@rule(SNOWFLAKE_DUCKDB)
def coerced_comparison(node: exp.Expr) -> exp.Expr:
    """A VARIANT compared with a number, DATE or TIMESTAMP is cast to it; a text column compared with a number
    is cast to a number (Snowflake casts the text side; a non-number fails there and here)."""
    if not isinstance(node, _COMPARISONS):
        return node
    for side, other in (("this", "expression"), ("expression", "this")):
        value, partner = node.args[side], node.args[other]
        partner_type = known_type(partner)
        if _variant_operand(value) and not _variant_operand(partner):
            if _is_number(partner):
                node.set(side, _as_number(value))
            elif partner_type is not None and partner_type.this in _TEMPORAL:
                node.set(side, exp.Cast(this=_variant_text(value), to=partner_type.copy()))
            return node
        value_type = known_type(value)
        if (
            not isinstance(value, exp.Literal)
            and value_type is not None
            and value_type.this in _TEXT
            and _is_number(partner)
        ):
            # to the other side's kind of number: a float, else an exact NUMBER (a long id keeps every digit)
            exact = partner_type is None or partner_type.this not in _FLOATS
            node.set(side, exp.Cast(this=value, to=exp.DataType.build("decimal(38, 10)") if exact else _double()))
            return node
    return node


_DATE_FUNCTIONS: dict[type[exp.Expr], tuple[str, ...]] = {
    exp.DateDiff: ("this", "expression"),
    exp.DateAdd: ("this",),
    exp.DateSub: ("this",),
    exp.DateTrunc: ("this",),
    exp.TimestampTrunc: ("this",),
    exp.Year: ("this",),
    exp.Month: ("this",),
    exp.Day: ("this",),
    exp.DayOfWeek: ("this",),
    exp.DayOfYear: ("this",),
    exp.Quarter: ("this",),
    exp.LastDay: ("this",),
    exp.Extract: ("expression",),
}


@rule(SNOWFLAKE_DUCKDB)
def text_in_date_functions(node: exp.Expr) -> exp.Expr:
    """A text column (or a VARIANT) given to a date function is a TIMESTAMP_NTZ on Snowflake, read from its text
    in AUTO format ('2024-01-02' is its midnight); DuckDB has no date function of VARCHAR or JSON."""
    for key in _DATE_FUNCTIONS.get(type(node), ()):
        value = node.args.get(key)
        if value is None or isinstance(value, exp.Literal):
            continue  # DuckDB casts a string literal itself
        found = known_type(value)
        if _variant_operand(value):
            node.set(key, exp.Cast(this=_variant_text(value), to=exp.DataType.build("timestamp")))
        elif found is not None and found.this in _TEXT:
            node.set(key, exp.Cast(this=value, to=exp.DataType.build("timestamp")))
    return node


def _text_cast(value: exp.Expr, construct: str) -> exp.Expr | None:
    """`value` written as Snowflake casts it to text; None to keep the cast as it is."""
    if _variant_operand(value) or isinstance(value, exp.Null):
        return None  # semistructured.py writes a VARIANT's text; NULL is NULL
    found = known_type(value)
    if found is None:
        if read_with_types(value):
            reason = f"the text of {value.sql('snowflake')} depends on its type, not known here"
            raise UnfaithfulError(construct, reason)
        return None  # compiled without types: the run compiles it again with them
    if found.this in _SAME_TEXT:
        return None
    if found.this in (T.TIMESTAMP, T.TIMESTAMPNTZ, T.DATETIME):
        if _CURRENT.get() is _POSTGRES_JSON:  # Postgres' to_char: MS is the milliseconds, zero-padded as FF3
            return exp.func("to_char", value, exp.Literal.string("YYYY-MM-DD HH24:MI:SS.MS"))
        return exp.TimeToStr(this=value, format=exp.Literal.string(_DEFAULT_TIMESTAMP_FORMAT))
    raise UnfaithfulError(
        construct, f"a {found.sql('duckdb')} is written as text differently by Snowflake (its output format)"
    )


@rule(SNOWFLAKE_DUCKDB)
def text_of_typed_value(node: exp.Expr) -> exp.Expr:
    """CAST(x AS VARCHAR) / x::string / TO_CHAR(x) / TO_VARCHAR(x): the text Snowflake writes for x's type."""
    if isinstance(node, exp.Cast | exp.TryCast) and node.to.this in _TEXT:
        written = _text_cast(node.this, "CAST(… AS VARCHAR)")
        return node if written is None else written
    if isinstance(node, exp.ToChar) and node.args.get("format") is None:
        written = _text_cast(node.this, "TO_CHAR")
        return node if written is None else written
    return node


_TRUE = ("true", "t", "yes", "y", "on", "1")
_FALSE = ("false", "f", "no", "n", "off", "0")


@rule(SNOWFLAKE_DUCKDB)
def to_boolean(node: exp.Expr) -> exp.Expr:
    """TO_BOOLEAN: Snowflake's strings (case-insensitive) or a number (0 FALSE, else TRUE); any other string an
    error, as on Snowflake. DuckDB's BOOLEAN cast reads another set of strings ('on' fails, ...)."""
    if not isinstance(node, exp.ToBoolean):
        return node
    value = node.this
    found = known_type(value)
    if isinstance(value, exp.Null):
        return exp.cast(exp.null(), exp.DataType.build("boolean"))
    if found is not None and found.this == T.BOOLEAN:
        return exp.paren(value)
    if _is_number(value):
        return exp.NEQ(this=exp.paren(value), expression=exp.Literal.number(0))
    text = _variant_text(value) if _variant_operand(value) else value
    if not _variant_operand(value) and (found is None or found.this not in _TEXT):
        raise UnfaithfulError("TO_BOOLEAN", "of a value whose type is not known: its rule depends on it")
    lowered = exp.Lower(this=text.copy())
    truths = exp.In(this=lowered.copy(), expressions=[exp.Literal.string(s) for s in _TRUE])
    falsehoods = exp.In(this=lowered, expressions=[exp.Literal.string(s) for s in _FALSE])
    return exp.Case(
        ifs=[
            exp.If(this=text.copy().is_(exp.null()), true=exp.cast(exp.null(), exp.DataType.build("boolean"))),
            exp.If(this=truths, true=exp.true()),
            exp.If(this=falsehoods, true=exp.false()),
        ],
        default=exp.func(
            "error", exp.DPipe(this=exp.Literal.string("Boolean value is not recognized: "), expression=text.copy())
        ),
    )


@rule(SNOWFLAKE_DUCKDB)
def round_mode(node: exp.Expr) -> exp.Expr:
    """ROUND(x, s, 'HALF_TO_EVEN') is DuckDB's ROUND_EVEN; 'HALF_AWAY_FROM_ZERO' (the default) its ROUND."""
    if not isinstance(node, exp.Round):
        return node
    mode = node.args.get("truncate") or node.args.get("mode")
    if mode is None:
        return node
    if not isinstance(mode, exp.Literal) or not mode.is_string:
        raise UnfaithfulError("ROUND", "a rounding mode that is not a constant")
    if mode.name.upper() == "HALF_AWAY_FROM_ZERO":
        return exp.Round(this=node.this, decimals=node.args.get("decimals"))
    if mode.name.upper() == "HALF_TO_EVEN":
        return exp.func("round_even", node.this, node.args.get("decimals") or exp.Literal.number(0))
    raise UnfaithfulError("ROUND", f"rounding mode {mode.sql()}")


@rule([("databricks", "duckdb")])
def spark_text_of_typed_value(node: exp.Expr) -> exp.Expr:
    """Databricks' CAST(x AS STRING): a DATE, BOOLEAN, integer or DECIMAL is written as DuckDB writes it; a
    TIMESTAMP drops zero fractions there (`2024-01-02 03:04:05`), DuckDB keeps them in another form: refused,
    as are FLOAT/DOUBLE (Spark's own shortest form) and a type unknown with columns read with types."""
    if not (isinstance(node, exp.Cast) and node.to.this in _TEXT) or _variant_operand(node.this):
        return node
    if isinstance(node.this, exp.Null):
        return node
    found = known_type(node.this)
    if found is None:
        if read_with_types(node.this):
            reason = f"the text of {node.this.sql('databricks')} depends on its type, not known here"
            raise UnfaithfulError("CAST", reason)
        return node
    if found.this in _SAME_TEXT:
        return node
    raise UnfaithfulError("CAST", f"a {found.sql('duckdb')} is written as text differently by Databricks")


# ---- the same rules on Postgres, a VARIANT being jsonb there (semistructured_postgres.py) ------------------------
# Postgres refuses jsonb in arithmetic, text compared with a number and a date function of text, as DuckDB does,
# and writes a TIMESTAMP's text in its own form: the DuckDB rules' rewrites, with jsonb's text of a VARIANT.
for _fn in (variant_as_number, coerced_comparison, text_in_date_functions, text_of_typed_value):
    rule(SNOWFLAKE_POSTGRES)(_on(_POSTGRES_JSON, _fn))


__all__ = ["CHECKED"]
