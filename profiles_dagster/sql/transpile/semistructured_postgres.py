"""Snowflake's semi-structured values (VARIANT, ARRAY, OBJECT) on Postgres, as `jsonb`, with Snowflake's meaning.

Every VARIANT, ARRAY and OBJECT value is a `jsonb` value (the var columns that hold one are `jsonb` columns):

- `PARSE_JSON(x)` is `CAST(x AS jsonb)` (invalid JSON fails on both);
- `:` paths, `GET_PATH`, `GET` and brackets are chains of `->`, which keep JSON: a text key names an object's
  field (case-sensitive; NULL on a non-object), an integer an array's 0-based element (NULL on a non-array).
  Postgres counts a negative index from the end where Snowflake gives NULL: a negative index is NULL, a
  computed one is guarded without evaluating it twice (`NULLIF(GREATEST(i, -1), -1)`);
- a VARIANT cast to text (`::string`, TO_CHAR, a string function's argument) is `#>> '{}'`: a string
  unquoted, a JSON null NULL, other values their JSON text; a cast to another type goes through that text;
- `ARRAY_SIZE` is `jsonb_array_length` for an array and NULL for anything else;
- `FLATTEN` (`TABLE(FLATTEN(..))`, `LATERAL FLATTEN(..)`) is a lateral subquery over
  `jsonb_array_elements WITH ORDINALITY` (INDEX 0-based) and `jsonb_each`, with KEY / PATH / INDEX / VALUE /
  THIS, OUTER => TRUE a LEFT JOIN giving the one row of NULLs;
- `OBJECT_CONSTRUCT` is `jsonb_build_object` of each pair whose key and value are not SQL NULL (a JSON null
  value is kept), `OBJECT_CONSTRUCT_KEEP_NULL` all pairs, `TO_VARIANT` `to_jsonb`, `ARRAY_CONSTRUCT`
  `jsonb_build_array`;
- `ARRAY_SLICE`, `ARRAY_COMPACT`, `ARRAY_CONSTRUCT_COMPACT` are subqueries over the elements (WITH
  ORDINALITY keeps their order), `ARRAY_CONTAINS` of a scalar constant jsonb containment (`@>`);
- `ARRAY_AGG` is `jsonb_agg` without the NULL inputs (FILTER), `[]` when none is left, WITHIN GROUP's order
  as the aggregate's ORDER BY;
- `FIRST_VALUE(x) IGNORE NULLS` (Postgres has no IGNORE NULLS) is the first of `array_agg(x) FILTER (WHERE x
  IS NOT NULL) OVER (..)`, the frame's non-NULL values in the window's order, over Snowflake's frame.

A rewritten aggregate a pb `window:` goes on is marked (`WINDOW_TARGET`, `DEFAULT_FRAME`) for the compiler.

Refused (`UnfaithfulError`): what the DuckDB rules refuse (FLATTEN's SEQ, RECURSIVE, `SELECT *` over FLATTEN,
OBJECT_CONSTRUCT(*)), TRY_PARSE_JSON, an index whose type is not known (Postgres' `->` must know whether it is
a key or a position), ARRAY_AGG WITHIN GROUP under a window (Postgres has no ordered window aggregate), a
TIMESTAMP put into a VARIANT (Postgres' JSON text of it differs), LAST_VALUE IGNORE NULLS in a var whose window
pb adds (with an explicit OVER: Snowflake's whole-partition frame written out, then transpile/postgres.py), TYPEOF,
ARRAY_TO_STRING, ARRAYS_OVERLAP, OBJECT_KEYS, ARRAY_CONTAINS of a non-constant (see `_NOT_WRITTEN`).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from profiles_dagster.sql.transpile import UnfaithfulError, rule
from profiles_dagster.sql.transpile.frames import whole_partition_by_default
from profiles_dagster.sql.transpile.semistructured import (
    _KEEPS_VALUE,
    _SEMI_TYPES,
    _STRING_TYPES,
    _TEXT_FUNCTIONS,
    BottomUpRewriter,
    _array_agg_top,
    _check_flatten_columns,
    _truth,
    flatten_node,
    template,
)
from profiles_dagster.sql.transpile.types import TYPE, column_type

SNOWFLAKE_POSTGRES = [("snowflake", "postgres")]

# Census names checked on the Postgres stand-in by test_semistructured_postgres.py against Snowflake's
# documented values
CHECKED: dict[tuple[str, str], frozenset[str]] = {
    ("snowflake", "postgres"): frozenset(
        {
            "FLATTEN",
            "TABLE(…)",
            "LATERAL",
            "PARSE_JSON",
            "GET",
            "GET_PATH",
            "[ ] (bracket index)",
            "ARRAY_SIZE",
            "OBJECT_CONSTRUCT",
            "Array",
            "ARRAY_AGG",
            "WITHIN GROUP",
            "IGNORE NULLS",
        }
    ),
}

VARIANT = "pd_pg_variant"  # meta flag: this (rewritten) expression is a Snowflake VARIANT/ARRAY/OBJECT as jsonb
WINDOW_TARGET = "pd_window_target"  # meta flag: a pb window goes on this node (the aggregate inside a wrapper)
T = exp.DataType.Type
_TIMESTAMPS = {T.TIMESTAMP, T.TIMESTAMPNTZ, T.TIMESTAMPTZ, T.TIMESTAMPLTZ, T.DATETIME, T.TIME}
_INTEGERS = {T.TINYINT, T.SMALLINT, T.INT, T.BIGINT}
_JSON_TYPES = _SEMI_TYPES | {T.JSONB}


def _jsonb() -> exp.DataType:
    return exp.DataType.build("jsonb", dialect="postgres")


def _variant(node: exp.Expr) -> exp.Expr:
    node.meta[VARIANT] = True
    return node


def is_variant(node: exp.Expr) -> bool:
    """Whether a rewritten expression is a VARIANT (a jsonb value)."""
    if node.meta.get(VARIANT):
        return True
    return isinstance(node, exp.Paren) and is_variant(node.this)


def holds_variant(tree: exp.Expr) -> bool:
    """A VARIANT itself, or an aggregate or window keeping one of its input values (ANY_VALUE, MAX, ...)."""
    node = tree
    while not is_variant(node) and isinstance(node, _KEEPS_VALUE):
        node = node.this
    return is_variant(node)


def text_of(node: exp.Expr) -> exp.Expr:
    """A VARIANT's value as Snowflake converts it to text: a string unquoted, a JSON null NULL, other values
    their JSON text (`#>> '{}'`, the root as text)."""
    inner = node if isinstance(node, exp.Paren) else exp.paren(node, copy=False)
    text = exp.JSONBExtractScalar(this=inner, expression=exp.Literal.string("{}"))
    return exp.paren(text, copy=False)  # `#>>` binds as loosely as `||`


def _step(base: exp.Expr, key: exp.Expr) -> exp.Expr:
    """`base -> key`: a field for a text key, a 0-based element for an integer (jsonb, NULL when absent), in
    parentheses (`->` binds looser than arithmetic on Postgres)."""
    return _variant(exp.paren(exp.JSONExtract(this=base, expression=key, only_json_types=True), copy=False))


def _null_jsonb() -> exp.Expr:
    return _variant(exp.cast(exp.null(), _jsonb()))


def _known(node: exp.Expr) -> exp.DataType | None:
    from profiles_dagster.sql.transpile.scalars import known_type

    column_type(node)  # asked: a column's type decides
    return known_type(node)


def _is_integer(key: exp.Expr) -> bool:
    from profiles_dagster.sql.transpile.semistructured import _numeric

    found = _known(key)
    if found is not None:
        return found.this in _INTEGERS | {T.DECIMAL, T.DOUBLE, T.FLOAT, T.BIGDECIMAL}
    return _numeric(key)


def _index(base: exp.Expr, key: exp.Expr, construct: str) -> exp.Expr:
    """`base[key]` / GET(base, key): a text key names an object's field, a number an array's 0-based element
    (negative: NULL, as an index outside the array)."""
    if isinstance(key, exp.Literal):
        if key.is_string:
            return _step(base, key)
        number = key.to_py()
        if not isinstance(number, int):
            raise UnfaithfulError(construct, f"index {key.sql()} is not an integer")
        return _null_jsonb() if number < 0 else _step(base, exp.Literal.number(number))
    if isinstance(key, exp.Neg) and isinstance(key.this, exp.Literal) and not key.this.is_string:
        return _null_jsonb()
    found = _known(key)
    if found is not None and found.this in _STRING_TYPES:
        return _step(base, key)
    if _is_integer(key):
        guarded = exp.func("nullif", exp.func("greatest", key, exp.Literal.number(-1)), exp.Literal.number(-1))
        return _step(base, exp.cast(guarded, exp.DataType.build("int")))
    raise UnfaithfulError(construct, "an index whose type is not known: Postgres' -> takes a key or a position")


def _path(base: exp.Expr, path: exp.JSONPath, construct: str) -> exp.Expr:
    """A `:` path / GET_PATH as a chain of `->` steps."""
    out = base
    for part in path.expressions:
        if isinstance(part, exp.JSONPathRoot):
            continue
        if isinstance(part, exp.JSONPathKey) and isinstance(part.this, str):
            out = _step(out, exp.Literal.string(part.this))
        elif isinstance(part, exp.JSONPathSubscript) and isinstance(part.this, int):
            out = _null_jsonb() if part.this < 0 else _step(out, exp.Literal.number(part.this))
        else:
            raise UnfaithfulError(construct, f"path part {part.sql()} is not a key or a constant index")
    return _variant(out)


def _element(value: exp.Expr, construct: str) -> exp.Expr:
    """A SQL value given to jsonb_build_object/_array/jsonb_agg, which convert it as Snowflake does (a jsonb
    value kept, text a string, a number a number); a TIMESTAMP's JSON text would differ: refused."""
    found = None if is_variant(value) else _known(value)
    if found is not None and found.this in _TIMESTAMPS:
        raise UnfaithfulError(construct, "a TIMESTAMP's JSON text on Postgres is not Snowflake's")
    if isinstance(value, exp.Literal) and value.is_string:
        return exp.cast(value, exp.DataType.build("text"))  # an untyped literal has no JSON type
    return value


def _to_jsonb(value: exp.Expr, construct: str) -> exp.Expr:
    """A SQL value as a VARIANT (jsonb)."""
    if is_variant(value):
        return value
    if isinstance(value, exp.Null):
        return exp.cast(exp.null(), _jsonb())
    return exp.func("to_jsonb", _element(value, construct))


def _object_construct(node: exp.Struct) -> exp.Expr:
    """OBJECT_CONSTRUCT: pairs whose key or value is SQL NULL are omitted (a JSON null value is kept)."""
    out: exp.Expr = exp.cast(exp.Literal.string("{}"), _jsonb())
    for prop in node.expressions:
        if not isinstance(prop, exp.PropertyEQ):
            raise UnfaithfulError("OBJECT_CONSTRUCT", f"argument {prop.sql('snowflake')} is not a key, value pair")
        key = prop.this
        if isinstance(key, exp.Identifier):
            key = exp.Literal.string(key.name)
        value = _element(prop.expression, "OBJECT_CONSTRUCT")
        if isinstance(value, exp.Null):
            continue
        missing: exp.Expr = value.copy().is_(exp.null())
        if not isinstance(key, exp.Literal):
            missing = exp.or_(key.copy().is_(exp.null()), missing)
        pair = exp.Case(
            ifs=[exp.If(this=missing, true=exp.cast(exp.Literal.string("{}"), _jsonb()))],
            default=exp.func("jsonb_build_object", key, value),
        )
        out = exp.DPipe(this=out, expression=pair)
    return _variant(exp.paren(out, copy=False))


def _object_keep_null(node: exp.JSONObject) -> exp.Expr:
    """OBJECT_CONSTRUCT_KEEP_NULL('k', v, ...): every pair, a SQL NULL value as a JSON null (constant keys)."""
    args: list[exp.Expr] = []
    for pair in node.expressions:
        key = pair.this if isinstance(pair, exp.JSONKeyValue) else None
        if not (isinstance(key, exp.Literal) and key.is_string):
            raise UnfaithfulError("OBJECT_CONSTRUCT_KEEP_NULL", "a key that is not a constant string")
        args += [key, _element(pair.expression, "OBJECT_CONSTRUCT_KEEP_NULL")]
    return _variant(exp.func("jsonb_build_object", *args))


def _pg(sql: str, **parts: exp.Expr) -> exp.Expr:
    return template(sql, "postgres", **parts)


# the elements of an array kept by a condition on (v, o): v the element, o its 1-based position; [] for none
_KEPT = (
    "(SELECT COALESCE(jsonb_agg(_x.v ORDER BY _x.o), CAST('[]' AS JSONB)) "
    "FROM jsonb_array_elements(_a) WITH ORDINALITY AS _x(v, o) WHERE {})"
)


def _array_slice(node: exp.ArraySlice) -> exp.Expr:
    """ARRAY_SLICE(array, from, to): 0-based, `to` excluded, a negative position counts from the end (as in
    Python's slices, which Snowflake's documentation names), a NULL argument gives NULL."""
    start, end = node.args.get("start"), node.args.get("end")
    if start is None or end is None:
        raise UnfaithfulError("ARRAY_SLICE", "needs both positions")
    if start.find(exp.Rand, exp.Uuid) or end.find(exp.Rand, exp.Uuid):
        raise UnfaithfulError("ARRAY_SLICE", "a position computed from a random value")
    bound = "(CASE WHEN {0} < 0 THEN jsonb_array_length(_a) + {0} ELSE {0} END)"
    kept = _KEPT.format(f"_x.o - 1 >= {bound.format('_s')} AND _x.o - 1 < {bound.format('_e')}")
    sql = f"CASE WHEN _a IS NULL OR _s IS NULL OR _e IS NULL THEN NULL ELSE {kept} END"
    return _variant(_pg(sql, _a=node.this, _s=start, _e=end))


def _array_contains(array: exp.Expr, value: exp.Expr) -> exp.Expr:
    """ARRAY_CONTAINS(value, array) of a string or number constant: an element equal to it as a VARIANT (a
    string is not a number; 1 = 1.0), jsonb containment of a one-element array of that scalar."""
    if not (isinstance(value, exp.Literal) and (value.is_string or isinstance(value.to_py(), int | float))):
        raise UnfaithfulError(
            "ARRAY_CONTAINS",
            "only a string or number constant is searched for: jsonb containment of compounds is not VARIANT equality",
        )
    needle = exp.func("jsonb_build_array", _element(value, "ARRAY_CONTAINS"))
    return _pg("_a @> _n", _a=array, _n=needle)


def _array_agg(node: exp.Expr) -> exp.Expr:
    """ARRAY_AGG([DISTINCT] x) [WITHIN GROUP (ORDER BY ..)] [OVER (..)]: NULLs left out, [] for none."""
    window = node if isinstance(node, exp.Window) else None
    inner = node.this if window is not None else node
    order = None
    if isinstance(inner, exp.WithinGroup):
        order = inner.expression
        inner = inner.this
        if window is not None:
            raise UnfaithfulError("ARRAY_AGG", "WITHIN GROUP under a window: Postgres has no ordered window aggregate")
    assert isinstance(inner, exp.ArrayAgg)
    value = inner.this
    argument: exp.Expr = value
    plain = value.expressions[0] if isinstance(value, exp.Distinct) and len(value.expressions) == 1 else value
    if isinstance(value, exp.Distinct) and len(value.expressions) != 1:
        raise UnfaithfulError("ARRAY_AGG", "DISTINCT of several values")
    if order is not None:
        if isinstance(value, exp.Distinct) and any(o.this != plain for o in order.expressions):
            raise UnfaithfulError("ARRAY_AGG", "DISTINCT ordered by another expression than its value")
        argument = exp.Order(this=value, expressions=order.expressions)
    _element(plain, "ARRAY_AGG")  # refuses a TIMESTAMP's JSON text
    aggregate = exp.Anonymous(this="jsonb_agg", expressions=[argument])
    kept: exp.Expr = exp.Filter(this=aggregate, expression=exp.Where(this=plain.copy().is_(exp.null()).not_()))
    kept.meta[WINDOW_TARGET] = True  # a pb window goes on the filtered aggregate
    if window is not None:
        window.set("this", kept)
        kept = window
    wrapped = exp.func("coalesce", kept, exp.cast(exp.Literal.string("[]"), _jsonb()))
    wrapped.meta["pd_window_inside"] = True
    return _variant(wrapped)


# ---- FIRST_VALUE(..) IGNORE NULLS ------------------------------------------------------------------

DEFAULT_FRAME = "pd_default_frame"  # meta: a pb window put on this node takes Snowflake's FIRST_VALUE frame


def _ignore_nulls(node: exp.IgnoreNulls, window: exp.Window | None) -> exp.Expr:
    """FIRST_VALUE(x) IGNORE NULLS [OVER (..)]: the first non-NULL x of the frame, in the window's order. Postgres
    has no IGNORE NULLS: the frame's non-NULL values aggregated in the window's order (`array_agg(x) FILTER
    (WHERE x IS NOT NULL) OVER (..)`), then the first (`[1]`; an empty frame gives NULL, as Snowflake)."""
    function = node.this
    if isinstance(function, exp.LastValue) and window is not None:
        # Snowflake's frame made explicit; transpile/postgres.py then takes the last of the frame's non-NULL values
        whole_partition_by_default(window)
        return window
    if not isinstance(function, exp.FirstValue):
        raise UnfaithfulError("IGNORE NULLS", f"{function.key.upper()} IGNORE NULLS has no Postgres form written")
    value = function.this
    aggregate = exp.Anonymous(this="array_agg", expressions=[value])
    kept: exp.Expr = exp.Filter(this=aggregate, expression=exp.Where(this=value.copy().is_(exp.null()).not_()))
    if window is not None:
        whole_partition_by_default(window)
        window.set("this", kept)
        kept = window
    else:
        kept.meta[WINDOW_TARGET] = True
        kept.meta[DEFAULT_FRAME] = True
    first = exp.Bracket(this=exp.paren(kept, copy=False), expressions=[exp.Literal.number(1)], offset=1)
    if window is None:
        first.meta["pd_window_inside"] = True
    return first


# ---- FLATTEN ------------------------------------------------------------------------------------

_INPUT = "__pd_flatten_input__"
_FLATTEN_SQL = f"""
SELECT _e.k AS key, _e.i AS index, _e.v AS value, _in._j AS this
FROM (SELECT {_INPUT} AS _j) AS _in
JOIN LATERAL (
  SELECT CAST(NULL AS TEXT) AS k, CAST(_a.o - 1 AS BIGINT) AS i, _a.v AS v
  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(_in._j) = 'array' THEN _in._j END) WITH ORDINALITY AS _a(v, o)
  UNION ALL
  SELECT _o.key AS k, CAST(NULL AS BIGINT) AS i, _o.value AS v
  FROM jsonb_each(CASE WHEN jsonb_typeof(_in._j) = 'object' THEN _in._j END) AS _o
) AS _e ON TRUE
"""


def _flatten_query(args: dict[str, exp.Expr]) -> exp.Select:
    """The lateral subquery giving one FLATTEN's rows, its columns named as Snowflake's (lower case: Postgres
    folds the unquoted names a project writes)."""
    source = args["input"]
    path_text = ""
    if (path := args.get("path")) is not None:
        if not (isinstance(path, exp.Literal) and path.is_string):
            raise UnfaithfulError("FLATTEN", "PATH must be a constant string")
        path_text = path.this
        if path_text:
            parsed = sqlglot.parse_one(f"x:{path_text}", read="snowflake")
            if not isinstance(parsed, exp.JSONExtract) or not isinstance(parsed.expression, exp.JSONPath):
                raise UnfaithfulError("FLATTEN", f"PATH {path.sql()}")
            source = _path(source, parsed.expression, "FLATTEN")
    mode = "BOTH"
    if (mode_arg := args.get("mode")) is not None:
        if not (isinstance(mode_arg, exp.Literal) and mode_arg.is_string):
            raise UnfaithfulError("FLATTEN", "MODE must be a constant string")
        mode = mode_arg.this.upper()
        if mode not in ("OBJECT", "ARRAY", "BOTH"):
            raise UnfaithfulError("FLATTEN", f"MODE => '{mode_arg.this}'")
    query = sqlglot.parse_one(_FLATTEN_SQL, read="postgres")
    assert isinstance(query, exp.Select)
    for column in list(query.find_all(exp.Column)):
        if column.name == _INPUT:
            column.replace(source.copy())
    union = next(query.find_all(exp.Union))
    if mode == "ARRAY":
        union.replace(union.this)
    elif mode == "OBJECT":
        union.replace(union.expression)
    join = next(query.find_all(exp.Join))
    if _truth(args.get("outer"), "OUTER"):  # exactly one row (KEY, INDEX, VALUE NULL) when nothing is expanded
        join.set("side", "LEFT")
    # PATH: the input's path, then `[i]` for an element, `.key` (or `['key']`) for an entry
    dot = "." if path_text else ""
    path_sql = (
        f"CASE WHEN _e.i IS NOT NULL THEN '{path_text}' || '[' || CAST(_e.i AS TEXT) || ']' "
        f"WHEN _e.k ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN '{path_text}{dot}' || _e.k "
        f"ELSE '{path_text}' || '[''' || _e.k || ''']' END"
    )
    query.select(exp.alias_(sqlglot.parse_one(path_sql, read="postgres"), "path"), copy=False)
    return query


def _flatten_node(node: exp.Expr) -> exp.Expr:
    return flatten_node(node, _flatten_query)


# ---- the rewrite --------------------------------------------------------------------------------


def _cast_variant(node: exp.Cast | exp.TryCast) -> exp.Expr:
    """A VARIANT cast to a type: to text its unquoted text, to a number or date through that text (an
    integer through NUMERIC, which Postgres rounds half away from zero as Snowflake does)."""
    to = node.to
    if to.this in _JSON_TYPES:
        kept: exp.Expr = node.this
        return kept
    text = text_of(node.this)
    if to.this in _STRING_TYPES:
        return text
    if isinstance(node, exp.TryCast):
        raise UnfaithfulError("TRY_CAST of a VARIANT", "Postgres has no cast that gives NULL on a bad value")
    if to.this in _INTEGERS:
        return exp.Cast(this=exp.Cast(this=text, to=exp.DataType.build("decimal")), to=to)
    return exp.Cast(this=text, to=to)


class _Rewriter(BottomUpRewriter):
    """The Postgres form: VARIANT values as jsonb."""

    def node(self, node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            known = self.flattened(node)
            typed = node.meta.get(TYPE)
            if isinstance(typed, exp.DataType) and typed.this == T.JSON:
                # a `json` column (or a var reference typed so): jsonb for the jsonb functions (a no-op on jsonb)
                return _variant(exp.cast(node, _jsonb()))
            json = isinstance(typed, exp.DataType) and typed.this in _JSON_TYPES
            return _variant(node) if known or json else node
        if isinstance(node, exp.TableFromRows | exp.Lateral) and isinstance(node.this, exp.Explode):
            return _flatten_node(node)
        if isinstance(node, exp.ParseJSON):
            if node.args.get("safe"):
                raise UnfaithfulError("TRY_PARSE_JSON", "Postgres has no JSON parse that gives NULL on bad text")
            return _variant(exp.cast(node.this, _jsonb()))
        if isinstance(node, exp.JSONExtract) and isinstance(node.expression, exp.JSONPath):
            return _path(node.this, node.expression, ": path / GET_PATH")
        if isinstance(node, exp.GetExtract):
            return _index(node.this, node.expression, "GET")
        if isinstance(node, exp.Bracket):
            if len(node.expressions) != 1:
                raise UnfaithfulError("[...]", "a slice or several subscripts")
            return _index(node.this, node.expressions[0], "[...]")
        if isinstance(node, exp.Array):
            return _variant(exp.func("jsonb_build_array", *(_element(e, "ARRAY_CONSTRUCT") for e in node.expressions)))
        if isinstance(node, exp.StarMap):
            raise UnfaithfulError("OBJECT_CONSTRUCT(*)", "the columns a star names are not known when compiling")
        if isinstance(node, exp.Struct):
            return _object_construct(node)
        if isinstance(node, exp.JSONObject):  # OBJECT_CONSTRUCT_KEEP_NULL: a NULL value is a JSON null
            return _object_keep_null(node)
        if isinstance(node, exp.ToVariant):
            return _variant(_to_jsonb(node.this, "TO_VARIANT"))
        if isinstance(node, exp.Anonymous) and node.name.upper() == "IS_OBJECT" and len(node.expressions) == 1:
            return exp.func("jsonb_typeof", node.expressions[0]).eq(exp.Literal.string("object"))
        if isinstance(node, exp.ArraySlice):
            return _array_slice(node)
        if isinstance(node, exp.ArrayCompact):  # missing and null elements left out
            kept = _KEPT.format("_x.v <> CAST('null' AS JSONB)")
            sql = f"CASE WHEN _a IS NULL THEN NULL ELSE {kept} END"
            return _variant(_pg(sql, _a=node.this))
        if isinstance(node, exp.ArrayConstructCompact):  # the SQL NULL arguments left out
            rows = [
                exp.Tuple(expressions=[exp.Literal.number(i), _to_jsonb(e, "ARRAY_CONSTRUCT_COMPACT")])
                for i, e in enumerate(node.expressions, 1)
            ]
            if not rows:
                return _variant(exp.cast(exp.Literal.string("[]"), _jsonb()))
            values = exp.Values(expressions=rows, alias=exp.TableAlias(this=exp.to_identifier("_x"), columns=[
                exp.to_identifier("o"), exp.to_identifier("v")]))  # fmt: skip
            query = _pg(
                "(SELECT COALESCE(jsonb_agg(_x.v ORDER BY _x.o), CAST('[]' AS JSONB)) FROM t WHERE _x.v IS NOT NULL)"
            )
            next(query.find_all(exp.Table)).replace(values)
            return _variant(query)
        if isinstance(node, exp.ArrayContains):
            return _array_contains(node.this, node.expression)
        if isinstance(node, exp.IsArray):
            return exp.func("jsonb_typeof", node.this).eq(exp.Literal.string("array"))
        if isinstance(node, exp.ArraySize):
            value = node.this
            is_array = exp.func("jsonb_typeof", value.copy()).eq(exp.Literal.string("array"))
            return exp.Case(ifs=[exp.If(this=is_array, true=exp.func("jsonb_array_length", value))])
        if isinstance(node, exp.IgnoreNulls) and not isinstance(node.parent, exp.Window):
            return _ignore_nulls(node, None)
        if isinstance(node, exp.Window) and isinstance(node.this, exp.IgnoreNulls):
            return _ignore_nulls(node.this, node)
        if _array_agg_top(node):
            return _array_agg(node)
        if isinstance(node, exp.Cast | exp.TryCast) and is_variant(node.this):
            return _cast_variant(node)
        if isinstance(node, _TEXT_FUNCTIONS):
            for key in ("this", "expression", "expressions"):
                value = node.args.get(key)
                if isinstance(value, list):
                    node.set(key, [text_of(v) if is_variant(v) else v for v in value])
                elif isinstance(value, exp.Expr) and is_variant(value):
                    node.set(key, text_of(value))
            return node
        if isinstance(node, exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE) and any(
            is_variant(a) and isinstance(b, exp.Literal) and b.is_string
            for a, b in ((node.this, node.expression), (node.expression, node.this))
        ):
            raise UnfaithfulError(
                "VARIANT compared with text", "write `::string` on the VARIANT (Postgres would parse the text as JSON)"
            )
        if isinstance(node, exp.ToChar) and is_variant(node.this) and node.args.get("format") is None:
            return text_of(node.this)
        if isinstance(node, exp.Cast) and node.to.this in _SEMI_TYPES:
            return _variant(_to_jsonb(node.this, f"::{node.to.this.value}"))
        refused = _NOT_WRITTEN.get(type(node))
        if refused is not None:
            raise UnfaithfulError(refused, "not written for Postgres JSON yet")
        return node


_NOT_WRITTEN: dict[type[exp.Expr], str] = {
    exp.JSONExtract: ": path / GET_PATH",
    exp.Typeof: "TYPEOF",  # jsonb keeps no DECIMAL/DOUBLE distinction (PARSE_JSON's 1e2 is 100 there)
    exp.ArrayToString: "ARRAY_TO_STRING",  # a compound element's JSON text has spaces on Postgres
    exp.ArrayOverlaps: "ARRAYS_OVERLAP",
    exp.JSONKeys: "OBJECT_KEYS",
}


@rule(SNOWFLAKE_POSTGRES)
def semistructured_postgres(node: exp.Expr) -> exp.Expr:
    """The whole tree at once, bottom-up (the rule is handed the root first)."""
    if node.parent is not None:
        return node
    _check_flatten_columns(node)
    return _Rewriter(node).rewrite(node)


__all__ = ["CHECKED", "DEFAULT_FRAME", "VARIANT", "WINDOW_TARGET", "holds_variant", "is_variant", "text_of"]
