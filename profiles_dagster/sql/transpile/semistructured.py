"""Snowflake's semi-structured values (VARIANT, ARRAY, OBJECT) on DuckDB, with Snowflake's meaning.

Every Snowflake VARIANT, ARRAY and OBJECT value travels as DuckDB `JSON` (an input column holding JSON text is
read the same way: DuckDB's JSON functions parse VARCHAR), so one representation serves every function:

- `:` paths, `GET`, `GET_PATH` and brackets are JSON extractions. An array index of any expression stays
  0-based (DuckDB's JSON accessors are 0-based, unlike its lists), a negative index gives NULL as an index
  outside the array does on Snowflake, and key names stay case-sensitive.
- A VARIANT cast to text gives the unquoted text (`json_extract_string`), a cast to another type goes through
  that text, as Snowflake converts a VARIANT string or number.
- `FLATTEN` (both `TABLE(FLATTEN(..))` and `LATERAL FLATTEN(..)`) becomes a lateral subquery over the JSON
  array's elements or the object's entries, with Snowflake's KEY / PATH / INDEX / VALUE / THIS columns.
- Constructors and aggregates build JSON: `OBJECT_CONSTRUCT` drops pairs whose key or value is NULL,
  `ARRAY_AGG` skips NULLs and gives `[]` for no value.

What cannot be kept raises `UnfaithfulError`: FLATTEN's SEQ (a per-input-row number a lateral subquery cannot
see), RECURSIVE => TRUE, THIS/PATH of an OUTER row, `SELECT *` over a FLATTEN (it would lack SEQ),
`OBJECT_CONSTRUCT(*)`. The same constructs on Postgres, as `jsonb`: semistructured_postgres.py.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

import sqlglot
from sqlglot import exp
from sqlglot.dialects.snowflake import Snowflake
from sqlglot.optimizer.annotate_types import annotate_types

from profiles_dagster.sql.transpile import UnfaithfulError, rule
from profiles_dagster.sql.transpile.types import TYPE, column_type

# Constructs (as benchmarks/sql_census.py names them) whose translation keeps Snowflake's meaning on DuckDB, each
# checked by test_semistructured.py against Snowflake's documented values (the census reports them "same";
# test_semistructured.py::test_checked_constructs_are_the_census_names ties each name to its tested SQL).
CHECKED: dict[tuple[str, str], frozenset[str]] = {
    ("snowflake", "duckdb"): frozenset(
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
        }
    ),
}

_VARIANT = "pd_variant"  # meta flag: this (rewritten) expression is a Snowflake VARIANT/ARRAY/OBJECT as JSON
_FLATTEN_COLUMNS = ("SEQ", "KEY", "PATH", "INDEX", "VALUE", "THIS")
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STRING_TYPES = {
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.TEXT,
    exp.DataType.Type.CHAR,
    exp.DataType.Type.NVARCHAR,
    exp.DataType.Type.NCHAR,
}
_SEMI_TYPES = {
    exp.DataType.Type.VARIANT,
    exp.DataType.Type.OBJECT,
    exp.DataType.Type.ARRAY,
    exp.DataType.Type.JSON,
}
_INPUT = "__pd_flatten_input__"
# One FLATTEN's rows: the input evaluated once (_in), its elements or entries as structs (_l), one row each.
# `lambda v, i` numbers array elements from 1 (list_transform's index), so INDEX is i - 1.
_FLATTEN_SQL = f"""
SELECT _e.e.k AS "KEY", _e.e.i AS "INDEX", _e.e.v AS "VALUE", _in._j AS "THIS"
FROM (SELECT {_INPUT} AS _j) AS _in,
  (SELECT UNNEST(CASE json_type(_in._j)
     WHEN 'ARRAY' THEN list_transform(CAST(_in._j AS JSON[]),
       lambda v, i: {{'k': CAST(NULL AS VARCHAR), 'i': CAST(i - 1 AS BIGINT), 'v': v}})
     WHEN 'OBJECT' THEN list_transform(map_entries(CAST(_in._j AS MAP(VARCHAR, JSON))),
       lambda m: {{'k': m.key, 'i': CAST(NULL AS BIGINT), 'v': m.value}})
   END) AS e) AS _e
"""


_TEXT_FUNCTIONS = (
    exp.DPipe,
    exp.Concat,
    exp.Upper,
    exp.Lower,
    exp.Initcap,
    exp.Trim,
    exp.Length,
    exp.Substring,
    exp.Left,
    exp.Right,
    exp.Like,
    exp.ILike,
    exp.SplitPart,
    exp.StrPosition,
    exp.RegexpLike,
    exp.RegexpReplace,
    exp.RegexpExtract,
)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _json() -> exp.DataType:
    return exp.DataType.build("JSON")


def _variant(node: exp.Expr) -> exp.Expr:
    node.meta[_VARIANT] = True
    return node


def _is_variant(node: exp.Expr) -> bool:
    if isinstance(node, exp.Paren):
        return _is_variant(node.this)
    return bool(node.meta.get(_VARIANT))


_KEEPS_VALUE = (
    exp.Paren,
    exp.AnyValue,
    exp.Max,
    exp.Min,
    exp.ArgMax,
    exp.ArgMin,
    exp.FirstValue,
    exp.LastValue,
    exp.Window,
    exp.Coalesce,
)


def holds_variant(tree: exp.Expr) -> bool:
    """Whether a translated value is a VARIANT (JSON on DuckDB): a VARIANT itself, or an aggregate or window
    that keeps one of its input values (ANY_VALUE, MAX, FIRST_VALUE, ... of a VARIANT)."""
    node = tree
    while not _is_variant(node) and isinstance(node, _KEEPS_VALUE):
        node = node.this
    return _is_variant(node)


def _text_of(node: exp.Expr) -> exp.Expr:
    """A VARIANT's value as Snowflake converts it to text: a string unquoted, other scalars and compounds as
    JSON text, a JSON null as NULL."""
    inner = node.this if isinstance(node, exp.Paren) else node
    if isinstance(inner, exp.JSONExtract):
        return exp.JSONExtractScalar(this=inner.this, expression=inner.expression)
    root = exp.JSONPath(expressions=[exp.JSONPathRoot()])
    return exp.JSONExtractScalar(this=node, expression=root)


def _index(base: exp.Expr, key: exp.Expr, construct: str) -> exp.Expr:
    """`base[key]` / GET(base, key) on a JSON value: a key names an object's field, a number is an array's
    0-based index (an index outside the array, negative ones included, gives NULL)."""
    if isinstance(key, exp.Literal):
        if key.is_string:
            if key.this == "":
                raise UnfaithfulError(construct, "an empty key has no JSON path on DuckDB")
            path = exp.JSONPath(expressions=[exp.JSONPathRoot(), exp.JSONPathKey(this=key.this)])
            return _variant(exp.JSONExtract(this=base, expression=path))
        number = key.to_py()
        if not isinstance(number, int):
            raise UnfaithfulError(construct, f"index {key.sql()} is not an integer")
        if number < 0:
            return _variant(exp.cast(exp.null(), _json()))
        path = exp.JSONPath(expressions=[exp.JSONPathRoot(), exp.JSONPathSubscript(this=number)])
        return _variant(exp.JSONExtract(this=base, expression=path))
    if isinstance(key, exp.Neg) and isinstance(key.this, exp.Literal) and not key.this.is_string:
        return _variant(exp.cast(exp.null(), _json()))
    # DuckDB's `->` dispatches on the key's type at bind time (integer: 0-based index, text: a key), but
    # counts a negative index from the end, where Snowflake gives NULL
    if _numeric(key):
        # negative -> NULL without evaluating the index twice (it may be RANDOM()): greatest/nullif
        guarded = exp.func("nullif", exp.func("greatest", key, exp.Literal.number(-1)), exp.Literal.number(-1))
        return _variant(exp.JSONExtract(this=base, expression=exp.cast(guarded, exp.DataType.build("BIGINT"))))
    if key.find(exp.Rand, exp.Uuid):
        raise UnfaithfulError(construct, "an index of unknown type computed from a random value")
    # type unknown here (a column): NULL for a negative number, a key for text
    negative = exp.and_(
        exp.func("typeof", key.copy()).neq(exp.Literal.string("VARCHAR")),
        exp.TryCast(this=key.copy(), to=exp.DataType.build("BIGINT")) < 0,
    )
    extract = exp.JSONExtract(this=base, expression=key)
    return _variant(exp.Case(ifs=[exp.If(this=negative, true=exp.cast(exp.null(), _json()))], default=extract))


_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.Abs, exp.Floor, exp.Ceil)


def _numeric(key: exp.Expr) -> bool:
    if isinstance(key, _ARITHMETIC):
        return True
    if isinstance(key, exp.Cast) and key.to.is_type(*exp.DataType.NUMERIC_TYPES):
        return True
    typed = annotate_types(key.copy(), dialect="snowflake").type
    return typed is not None and typed.is_type(*exp.DataType.NUMERIC_TYPES)


def _to_json(value: exp.Expr) -> exp.Expr:
    if _is_variant(value):
        return value
    return exp.func("to_json", value)


def _object_construct(node: exp.Struct) -> exp.Expr:
    """OBJECT_CONSTRUCT: pairs whose key or value is SQL NULL are omitted (a JSON null value is kept)."""
    entries = []
    for prop in node.expressions:
        if not isinstance(prop, exp.PropertyEQ):
            raise UnfaithfulError("OBJECT_CONSTRUCT", f"argument {prop.sql('snowflake')} is not a key, value pair")
        key = prop.this
        if isinstance(key, exp.Identifier):
            key = exp.Literal.string(key.name)
        entries.append(
            exp.Struct(
                expressions=[
                    exp.PropertyEQ(this=exp.to_identifier("k"), expression=key),
                    exp.PropertyEQ(this=exp.to_identifier("v"), expression=_to_json(prop.expression)),
                ]
            )
        )
    filtered = sqlglot.parse_one("list_filter(x, lambda e: e.k IS NOT NULL AND e.v IS NOT NULL)", read="duckdb")
    next(filtered.find_all(exp.Column)).replace(exp.Array(expressions=entries))
    return _variant(exp.func("to_json", exp.func("map_from_entries", filtered)))


def _array_agg_top(node: exp.Expr) -> bool:
    """The outermost node of an ARRAY_AGG (itself, its WITHIN GROUP, its OVER)."""
    if isinstance(node, exp.Window):
        inner = node.this
        if isinstance(inner, exp.WithinGroup):
            inner = inner.this
        return isinstance(inner, exp.ArrayAgg)
    if isinstance(node, exp.WithinGroup):
        return isinstance(node.this, exp.ArrayAgg) and not isinstance(node.parent, exp.Window)
    if isinstance(node, exp.ArrayAgg):
        return not isinstance(node.parent, exp.WithinGroup | exp.Window)
    return False


def _template(sql: str, **parts: exp.Expr) -> exp.Expr:
    return template(sql, "duckdb", **parts)


def template(sql: str, dialect: str, **parts: exp.Expr) -> exp.Expr:
    """An engine's expression written once as text, its placeholder columns replaced by the given trees."""
    tree = sqlglot.parse_one(sql, read=dialect)
    for column in list(tree.find_all(exp.Column)):
        if not column.table and column.name in parts:
            column.replace(parts[column.name].copy())
    return tree


def _elements(array: exp.Expr) -> exp.Expr:
    """A JSON array's elements as a DuckDB list of JSON (a JSON null element becomes NULL)."""
    return exp.cast(array, exp.DataType.build("JSON[]", dialect="duckdb"))


def _without_nulls(elements: exp.Expr) -> exp.Expr:
    return _template("list_filter(_l, lambda e: e IS NOT NULL)", _l=elements)


def _json_list_to_json(elements: exp.Expr) -> exp.Expr:
    return exp.func("to_json", elements)


def _typeof(value: exp.Expr) -> exp.Expr:
    """TYPEOF of a VARIANT: Snowflake's names (a number with a fraction and no exponent is DECIMAL, as
    PARSE_JSON reads it; with an exponent DOUBLE; a JSON null NULL_VALUE)."""
    if not _is_variant(value):
        raise UnfaithfulError("TYPEOF", "of a value not known to be a VARIANT: DuckDB's type names differ")
    return _template(
        "CASE json_type(_v) WHEN 'BIGINT' THEN 'INTEGER' WHEN 'UBIGINT' THEN 'INTEGER' "
        "WHEN 'DOUBLE' THEN CASE WHEN regexp_matches(CAST(_v AS VARCHAR), '[eE]') THEN 'DOUBLE' ELSE 'DECIMAL' END "
        "WHEN 'NULL' THEN 'NULL_VALUE' ELSE json_type(_v) END",
        _v=value,
    )


def _array_slice(node: exp.ArraySlice) -> exp.Expr:
    """ARRAY_SLICE(array, from, to): 0-based, `to` excluded, a negative position counts from the end (as in
    Python), a NULL argument gives NULL. DuckDB's list_slice is 1-based with both ends included."""
    start, end = node.args.get("start"), node.args.get("end")
    if start is None or end is None:
        raise UnfaithfulError("ARRAY_SLICE", "needs both positions")
    for bound in (start, end):
        if bound.find(exp.Rand, exp.Uuid):
            raise UnfaithfulError("ARRAY_SLICE", "a position computed from a random value")
    begin = _template("CASE WHEN _f >= 0 THEN _f + 1 ELSE _f END", _f=start)
    stop = _template("CASE WHEN _t >= 0 THEN _t ELSE _t - 1 END", _t=end)
    sliced = _json_list_to_json(exp.func("list_slice", _elements(node.this), begin, stop))
    any_null = exp.or_(start.copy().is_(exp.null()), end.copy().is_(exp.null()))
    return _variant(exp.Case(ifs=[exp.If(this=any_null, true=exp.cast(exp.null(), _json()))], default=sliced))


def _array_contains(array: exp.Expr, value: exp.Expr) -> exp.Expr:
    """ARRAY_CONTAINS(value, array) for a string or integer value: an element of the same kind and value."""
    if isinstance(value, exp.Literal) and value.is_string:
        text = "CASE WHEN json_type(e) = 'VARCHAR' THEN e ->> '$' END"
    elif isinstance(value, exp.Literal) and isinstance(value.to_py(), int):
        text = "CASE WHEN json_type(e) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN CAST(e AS DOUBLE) END"
    else:
        raise UnfaithfulError(
            "ARRAY_CONTAINS", "only a string or integer constant is searched for: VARIANT equality is not JSON's"
        )
    kept = _template(f"list_transform(_l, lambda e: {text})", _l=_elements(array))
    return exp.func("list_contains", kept, value)


# ---- FLATTEN ------------------------------------------------------------------------------------


def _flatten_args(explode: exp.Explode) -> dict[str, exp.Expr]:
    args: dict[str, exp.Expr] = {}
    for position, arg in enumerate([explode.this, *explode.expressions]):
        if isinstance(arg, exp.Kwarg):
            args[arg.this.name.lower()] = arg.expression
        elif position == 0:
            args["input"] = arg
        else:
            raise UnfaithfulError("FLATTEN", f"positional argument {arg.sql('snowflake')}")
    if "input" not in args:
        raise UnfaithfulError("FLATTEN", "no INPUT")
    return args


def _truth(value: exp.Expr | None, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, exp.Boolean):
        return bool(value.this)
    raise UnfaithfulError("FLATTEN", f"{name} => {value.sql('snowflake')} is not TRUE or FALSE")


def _flatten_alias(node: exp.Expr) -> str | None:
    alias = node.args.get("alias")
    return alias.name if alias is not None and alias.name else None


def _flattens(tree: exp.Expr) -> Iterator[exp.Expr]:
    for node in tree.find_all(exp.TableFromRows, exp.Lateral):
        if isinstance(node.this, exp.Explode):
            yield node


def _flatten_query(args: dict[str, exp.Expr]) -> exp.Select:
    """The lateral subquery giving one FLATTEN's rows, its columns named as Snowflake's."""
    source = args["input"]
    path_text = ""
    if (path := args.get("path")) is not None:
        if not (isinstance(path, exp.Literal) and path.is_string):
            raise UnfaithfulError("FLATTEN", "PATH must be a constant string")
        path_text = path.this
        if path_text:
            source = exp.JSONExtract(this=source, expression=Snowflake().to_json_path(path))
    mode = "BOTH"
    if (mode_arg := args.get("mode")) is not None:
        if not (isinstance(mode_arg, exp.Literal) and mode_arg.is_string):
            raise UnfaithfulError("FLATTEN", "MODE must be a constant string")
        mode = mode_arg.this.upper()
        if mode not in ("OBJECT", "ARRAY", "BOTH"):
            raise UnfaithfulError("FLATTEN", f"MODE => '{mode_arg.this}'")
    query = sqlglot.parse_one(_FLATTEN_SQL, read="duckdb")
    assert isinstance(query, exp.Select)
    for column in list(query.find_all(exp.Column)):
        if column.name == _INPUT:
            column.replace(source.copy())
    if mode != "BOTH":  # only arrays, or only objects, are expanded
        case = next(c for c in query.find_all(exp.Case))
        case.set("ifs", [i for i in case.args["ifs"] if i.this.name != ("OBJECT" if mode == "ARRAY" else "ARRAY")])
    if _truth(args.get("outer"), "OUTER"):
        # exactly one row (KEY, INDEX, VALUE NULL) when nothing is expanded
        unnest = next(u for u in query.find_all(exp.Explode))
        entries = unnest.this
        listed = exp.select(exp.alias_(entries, "l")).subquery("_l")
        outer_list = sqlglot.parse_one("CASE WHEN len(_l.l) > 0 THEN _l.l ELSE [NULL] END", read="duckdb")
        unnest.set("this", outer_list)
        inner = unnest.find_ancestor(exp.Select)
        assert inner is not None
        inner.from_(listed, copy=False)
    # PATH: the input's path, then `[i]` for an element, `.key` (or `['key']`) for an entry
    prefix = exp.Literal.string(path_text)
    element = sqlglot.parse_one("concat(p, '[', CAST(_e.e.i AS VARCHAR), ']')", read="duckdb")
    key_path = sqlglot.parse_one(
        "CASE WHEN regexp_full_match(_e.e.k, '[A-Za-z_][A-Za-z0-9_]*') THEN concat(p, d, _e.e.k) "
        "ELSE concat(p, '[''', _e.e.k, ''']') END",
        read="duckdb",
    )
    for tree, dot in ((element, ""), (key_path, "." if path_text else "")):
        for column in list(tree.find_all(exp.Column)):
            if column.name == "p":
                column.replace(prefix.copy())
            elif column.name == "d":
                column.replace(exp.Literal.string(dot))
    path_column = sqlglot.parse_one("CASE WHEN _e.e.i IS NOT NULL THEN a ELSE b END", read="duckdb")
    assert isinstance(path_column, exp.Case)
    path_column.args["ifs"][0].set("true", element)
    path_column.set("default", key_path)
    query.select(exp.alias_(path_column, exp.to_identifier("PATH", quoted=True)), copy=False)
    return query


def _check_flatten_columns(tree: exp.Expr) -> None:
    """Refuse references to FLATTEN columns that cannot be kept, and stars that would miss SEQ."""
    for node in list(_flattens(tree)):
        args = _flatten_args(node.this)
        if _truth(args.get("recursive"), "RECURSIVE"):
            raise UnfaithfulError("FLATTEN(RECURSIVE => TRUE)", "recursive expansion is not written")
        outer = _truth(args.get("outer"), "OUTER")
        alias = _flatten_alias(node)
        select = node.find_ancestor(exp.Select)
        if select is None:
            continue
        refused = {"seq"} | ({"this", "path"} if outer else set())
        for column in select.find_all(exp.Column):
            if column.find_ancestor(exp.Select) is not select:  # a subquery's own columns
                continue
            table = column.table.lower() if column.table else None
            if column.name.lower() in refused and (table is None or (alias and table == alias.lower())):
                name = column.name.upper()
                reason = (
                    "a unique number per input row, which a lateral subquery cannot see"
                    if name == "SEQ"
                    else "its value on a row OUTER => TRUE adds is not defined by Snowflake's documentation"
                )
                raise UnfaithfulError(f"FLATTEN column {name}", reason)
        for star in select.expressions:
            target = star.this if isinstance(star, exp.Column) and isinstance(star.this, exp.Star) else star
            if isinstance(star, exp.Star) or (
                isinstance(star, exp.Column) and isinstance(target, exp.Star) and alias and star.table == alias
            ):
                raise UnfaithfulError("SELECT * over FLATTEN", "the SEQ column has no faithful value")


def _flatten_node(node: exp.Expr) -> exp.Expr:
    return flatten_node(node, _flatten_query)


def flatten_node(node: exp.Expr, build: Callable[[dict[str, exp.Expr]], exp.Query]) -> exp.Expr:
    """FLATTEN(...) in FROM or a LATERAL as the engine's query (`build` of its arguments), under its alias."""
    query = build(_flatten_args(node.this))
    alias_name = _flatten_alias(node)
    alias = exp.TableAlias(this=exp.to_identifier(alias_name)) if alias_name else None
    if isinstance(node.parent, exp.From):
        return exp.Subquery(this=query, alias=alias)
    return exp.Lateral(this=exp.Subquery(this=query), alias=alias)


# ---- the rewrite --------------------------------------------------------------------------------


class BottomUpRewriter(ABC):
    """Rewrites a tree bottom-up, so each node sees its children already in the engine's form (and whether
    they are VARIANTs); engines differ only in `node`. FLATTEN's VALUE/THIS columns are VARIANTs."""

    def __init__(self, tree: exp.Expr) -> None:
        self.variant_columns: set[tuple[str, str]] = set()
        self.flatten_selects: set[int] = set()  # unqualified VALUE/THIS name FLATTEN's columns in these
        for node in _flattens(tree):
            alias = _flatten_alias(node)
            if alias:
                self.variant_columns.update((alias.lower(), name) for name in ("value", "this"))
            if (select := node.find_ancestor(exp.Select)) is not None:
                self.flatten_selects.add(id(select))

    def rewrite(self, node: exp.Expr) -> exp.Expr:
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expr):
                node.set(key, self.rewrite(value))
            elif isinstance(value, list):
                node.set(key, [self.rewrite(v) if isinstance(v, exp.Expr) else v for v in value])
        return self.node(node)

    def flattened(self, column: exp.Column) -> bool:
        """A column FLATTEN produces (VALUE or THIS of a FLATTEN in the query)."""
        name = column.name.lower()
        if column.table:
            return (column.table.lower(), name) in self.variant_columns
        select = column.find_ancestor(exp.Select)
        return name in ("value", "this") and select is not None and id(select) in self.flatten_selects

    @abstractmethod
    def node(self, node: exp.Expr) -> exp.Expr:
        """One node, its children already rewritten, in the engine's form."""


class _Rewriter(BottomUpRewriter):
    def node(self, node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            typed = node.meta.get(TYPE)  # a JSON column of a table read is a VARIANT (transpile/types.py)
            json = isinstance(typed, exp.DataType) and typed.this in _SEMI_TYPES
            return _variant(node) if self.flattened(node) or json else node
        if isinstance(node, exp.TableFromRows | exp.Lateral) and isinstance(node.this, exp.Explode):
            return _flatten_node(node)
        if isinstance(node, exp.ParseJSON):
            if node.args.get("safe"):
                return _variant(node)  # sqlglot: CASE WHEN json_valid(x) THEN CAST(x AS JSON) END
            return _variant(exp.cast(node.this, _json()))
        if isinstance(node, exp.ToVariant):
            return _variant(_to_json(node.this))
        if isinstance(node, exp.JSONExtract):
            return _variant(node)
        if isinstance(node, exp.GetExtract):
            return _index(node.this, node.expression, "GET")
        if isinstance(node, exp.Bracket):
            if len(node.expressions) != 1:
                raise UnfaithfulError("[...]", "a slice or several subscripts")
            return _index(node.this, node.expressions[0], "[...]")
        if isinstance(node, exp.Array):
            return _variant(exp.func("json_array", *(_to_json(e) for e in node.expressions)))
        if isinstance(node, exp.StarMap):
            raise UnfaithfulError("OBJECT_CONSTRUCT(*)", "the columns a star names are not known when compiling")
        if isinstance(node, exp.Struct):
            return _object_construct(node)
        if isinstance(node, exp.JSONObject):  # OBJECT_CONSTRUCT_KEEP_NULL: sqlglot's JSON_OBJECT keeps NULLs
            return _variant(node)
        if isinstance(node, exp.ArrayConstructCompact):
            return _variant(
                _json_list_to_json(_without_nulls(exp.Array(expressions=[_to_json(e) for e in node.expressions])))
            )
        if isinstance(node, exp.IsArray):
            return exp.func("json_type", node.this).eq(exp.Literal.string("ARRAY"))
        if isinstance(node, exp.Anonymous) and node.name.upper() == "IS_OBJECT" and len(node.expressions) == 1:
            return exp.func("json_type", node.expressions[0]).eq(exp.Literal.string("OBJECT"))
        if isinstance(node, exp.Typeof):
            return _typeof(node.this)
        if isinstance(node, exp.ArrayToString):
            return _template(
                "array_to_string(list_transform(CAST(_a AS JSON[]), lambda e: coalesce(e ->> '$', '')), _s)",
                _a=node.this,
                _s=node.expression,
            )
        if isinstance(node, exp.ArrayCompact):
            return _variant(_json_list_to_json(_without_nulls(_elements(node.this))))
        if isinstance(node, exp.ArraySlice):
            return _array_slice(node)
        if isinstance(node, exp.ArrayContains):
            return _array_contains(node.this, node.expression)
        if isinstance(node, exp.ArrayOverlaps):
            raise UnfaithfulError(
                "ARRAYS_OVERLAP", "Snowflake compares elements as VARIANTs (1 = 1.0); JSON text equality would not"
            )
        if isinstance(node, exp.JSONKeys):
            raise UnfaithfulError("OBJECT_KEYS", "the order of the keys in Snowflake's array is not documented")
        if isinstance(node, exp.ArraySize):
            value = node.this
            is_array = exp.func("json_type", value.copy()).eq(exp.Literal.string("ARRAY"))
            return exp.Case(ifs=[exp.If(this=is_array, true=exp.func("json_array_length", value))])
        if _array_agg_top(node):
            aggregated = exp.func("to_json", node)
            empty = exp.cast(exp.Literal.string("[]"), _json())
            wrapped = exp.func("coalesce", aggregated, empty)
            wrapped.meta["pd_window_inside"] = True  # a pb window goes on the ARRAY_AGG inside
            return _variant(wrapped)
        if isinstance(node, exp.Cast | exp.TryCast) and _is_variant(node.this):
            to = node.to
            inner: exp.Expr = node.this
            if to.this in _SEMI_TYPES:
                return inner
            if to.this in _STRING_TYPES:
                return _text_of(node.this)
            return node.__class__(this=_text_of(node.this), to=to)
        if isinstance(node, _TEXT_FUNCTIONS):
            # a VARIANT argument of a string function is converted to VARCHAR as `::string` converts it
            for key in ("this", "expression", "expressions"):
                value = node.args.get(key)
                for arg in value if isinstance(value, list) else [value]:
                    if isinstance(arg, exp.Expr):
                        column_type(arg)  # asked: a column's type decides (transpile/types.py)
                if isinstance(value, list):
                    node.set(key, [_text_of(v) if _is_variant(v) else v for v in value])
                elif isinstance(value, exp.Expr) and _is_variant(value):
                    node.set(key, _text_of(value))
            return node
        if isinstance(node, _COMPARISONS) and any(
            _is_variant(a) and isinstance(b, exp.Literal) and b.is_string
            for a, b in ((node.this, node.expression), (node.expression, node.this))
        ):
            raise UnfaithfulError(
                "VARIANT compared with text",
                "write `::string` on the VARIANT (DuckDB would parse the text as JSON)",
            )
        if isinstance(node, exp.ToChar) and _is_variant(node.this) and node.args.get("format") is None:
            return _text_of(node.this)
        if isinstance(node, exp.Cast) and node.to.this in _SEMI_TYPES:
            return _variant(_to_json(node.this))
        return node


@rule([("snowflake", "duckdb")])
def semistructured(node: exp.Expr) -> exp.Expr:
    """The whole tree at once, bottom-up (the rule is handed the root first)."""
    if node.parent is not None:
        return node
    _check_flatten_columns(node)
    return _Rewriter(node).rewrite(node)
