"""The SQL dialect of each engine: sqlglot's generator plus product-owned fixes where its transpile is wrong.

A session's `dialect` is an `EngineDialect`: a `str` equal to sqlglot's name for the engine (so
templates (`warehouse.DatabaseType()`), settings and error messages see the plain name) that is
at the same time an instance of a sqlglot `Dialect` subclass. sqlglot accepts a Dialect instance
wherever it takes a dialect name, so every `node.sql(dialect=session.dialect)` anywhere in the product
(steps, the id stitcher, the run registry) renders through the fixes below, and parsing with it reads
the engine's SQL exactly like sqlglot's own dialect does.

Fixes are expression transforms applied to a copy of the tree before generation (`FIXES`), plus a few
generator overrides. Each fix names the sqlglot behaviour it corrects; the differential tests (the
same plan on DuckDB and on each engine's stand-in, compared value by value) are what found them.

Each dialect also carries its engine's `EngineTraits` (`dialect.traits`): every fact about the engine
that the pure layers (compiler, id stitcher, health queries) need, so they ask a trait, never an engine
name. The traits object has no defaults: an engine that forgets one fails when this module loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

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


class Sha1Hex(exp.Expression, exp.Func):
    """The lowercase hex text of a string's SHA-1 (pb's main ids): engine-neutral, each engine's `sha1_hex`
    trait writes its own form. Through a plain sqlglot dialect it renders as `SHA1(..)`, the form of the
    engines whose SHA1 returns hex text."""

    arg_types = {"this": True}
    _sql_names = ["SHA1"]


class ByteOrderedText(exp.Expression, exp.Func):
    """Text that every collation orders and compares as its bytes: the id stitcher's main ids, 'rid' and 32
    lowercase hex digits (one length, ASCII letters and digits of one case). An engine whose text sorts go
    through the locale may give it its binary collation (`EngineTraits.byte_order_collation`) without changing
    a result: on Postgres under a non-C database collation (C.UTF-8, en_US.UTF-8) every sort and GROUP BY on a
    main id (each entity var's aggregation, window vars' PARTITION BY) compares by strcoll and without
    abbreviated keys, several times slower than under "C". Elsewhere the node is just its argument."""

    arg_types = {"this": True}


ScratchTables = Literal["temporary", "unlogged", "plain"]


@dataclass(frozen=True)
class EngineTraits:
    """What the pure layers need to know about an engine. No field has a default: forgetting one is an
    error when the engine's dialect is defined (module load), not a silent fallback."""

    # ROW_NUMBER() OVER () numbers rows in the order the input is scanned (DuckDB keeps a table's insertion
    # order, Postgres its physical order with synchronized scans off), as pb numbers input rows: the
    # input_row_id needs no sort then. Elsewhere it needs an ORDER BY to be reproducible.
    scan_order_numbering: bool
    # ROW_NUMBER() accepts an empty OVER () at all (in no particular order): the id stitcher's dense node
    # numbers, whose order does not matter, skip a global sort. Snowflake, Databricks and Redshift demand
    # an ORDER BY.
    empty_over_numbering: bool
    # A stored row's integer address column, stable while the table is not modified (DuckDB's rowid), or
    # None: the incremental stitcher joins on it instead of (type, id).
    row_address: str | None
    # How the id stitcher's scratch tables are created: TEMPORARY (DuckDB: in memory, spilling if it must,
    # instead of compressed into the database file), UNLOGGED (Postgres: no WAL copy of tables dropped
    # minutes later; its temporary tables live in the small temp_buffers), or plain tables next to the
    # target (where temporary tables are tied to sessions or scripts, e.g. BigQuery).
    scratch_tables: ScratchTables
    # `WITH x AS MATERIALIZED (...)` is accepted: a CTE read twice is computed once.
    materialized_ctes: bool
    # SQL reads a local `csv:` file or `s3:` object in place (read_csv); elsewhere a run loads it into a
    # table first, and SQL compiled outside a run reads the table run 0 would load.
    reads_csv_in_place: bool
    # The engine's spelling of `Sha1Hex` (lowercase hex SHA-1 text), a fix applied before generation.
    sha1_hex: Fix
    # FIRST(x ORDER BY ...) and LAST(x ORDER BY ...) are aggregates that keep NULLs (DuckDB): a window var
    # `first_value(x)` over each main id's rows is then one aggregate in its source's pass, not a window sort.
    ordered_first_last: bool
    # Every column of a relation but one of a given name, whether or not it has that column (DuckDB's
    # `COLUMNS(lambda c: ...)`): a source's own column named like the main id gives way to the stitched one,
    # as pb drops it. Elsewhere the two names collide and the engine reports the ambiguity.
    all_columns_but: bool
    # The collation under which text compares as its bytes, given to `ByteOrderedText` (the main ids, and so
    # the main id column of the stitcher table and of every table derived from it), or None where text
    # already compares so (DuckDB, Snowflake's default) or a column collation would not speed sorts up.
    byte_order_collation: str | None


class EngineDialect(str):
    """Marker base: an engine's dialect, both its sqlglot name and a sqlglot Dialect instance."""

    __slots__ = ()
    traits: EngineTraits


def _engine_dialect(base: type[Dialect], name: str, fixes: list[Fix], traits: EngineTraits) -> EngineDialect:
    every_fix = [*fixes, traits.sha1_hex, _byte_ordered_as(traits.byte_order_collation)]

    class Generator(base.generator_class):  # type: ignore[name-defined,misc]
        def preprocess(self, expression: exp.Expression) -> exp.Expression:
            for fix in every_fix:
                expression = expression.transform(fix, copy=False)
            fixed: exp.Expression = super().preprocess(expression)
            return fixed

    fixed = type(f"Profiles{base.__name__}", (base,), {"Generator": Generator, "__module__": __name__})

    def __new__(cls: type[Any], value: str = name) -> Any:  # noqa: N807
        return str.__new__(cls, value)

    def __init__(self: Any, value: str = name) -> None:  # noqa: N807
        base.__init__(self)

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
            "traits": traits,
        },
    )
    engine: EngineDialect = named(name)
    return engine


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


def _sha1_hex_as(form: Callable[[exp.Expression], exp.Expression]) -> Fix:
    """A fix writing each `Sha1Hex` as `form(argument)`, nested ones included (a transform does not look
    inside the node a fix returns, so the argument is fixed first)."""

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, Sha1Hex):
            return form(node.this.transform(fix, copy=False))
        return node

    return fix


# SHA1() returns lowercase hex text: DuckDB, Snowflake, Redshift, Spark/Databricks.
sha1_hex_text = _sha1_hex_as(lambda value: exp.SHA(this=value))
# BigQuery: SHA1 returns BYTES; TO_HEX writes them as lowercase hex.
sha1_hex_of_bytes = _sha1_hex_as(lambda value: exp.LowerHex(this=exp.SHA(this=value)))
# Postgres: no built-in SHA-1; pgcrypto's DIGEST gives bytes, ENCODE(.., 'hex') lowercase hex.
sha1_hex_pgcrypto = _sha1_hex_as(
    lambda value: exp.Anonymous(
        this="ENCODE",
        expressions=[
            exp.Anonymous(this="DIGEST", expressions=[value, exp.Literal.string("sha1")]),
            exp.Literal.string("hex"),
        ],
    )
)


def _byte_ordered_as(collation: str | None) -> Fix:
    """A fix writing each `ByteOrderedText` as `(argument) COLLATE "<collation>"`, or as its argument."""

    def fix(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, ByteOrderedText):
            return node
        value: exp.Expression = node.this.transform(fix, copy=False)
        if collation is None:
            return value
        return exp.Collate(this=exp.Paren(this=value), expression=exp.to_identifier(collation, quoted=True))

    return fix


# Characters that stand for themselves in a Postgres advanced regular expression (ARE) outside brackets: no
# quantifier, anchor, group, bracket, escape or bound among them. LIKE's wildcards `%` and `_` are, so a branch
# with them is only ever compared whole (`=`), never written as a LIKE pattern.
_ARE_ORDINARY = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 @-_%:/=,;!#&<>~'\"`")
_ANY = None  # `.*` in a branch: any run of characters (newlines too: an ARE's `.` matches them by default)


def _are_branches(pattern: str) -> list[list[str | None]] | None:
    """The whole-subject alternatives of an anchored ARE `^(?:a|b|test.*)$` as runs of literal text and
    `_ANY`, or None when the pattern has anything else (classes, other quantifiers, flags, back references)."""
    if len(pattern) < 2 or pattern[0] != "^" or pattern[-1] != "$" or pattern.endswith("\\$"):
        return None
    body = pattern[1:-1]
    while True:  # redundant outer groups: (?:x) and (x) (no back reference can point at them: none allowed)
        opening = 3 if body.startswith("(?:") else 1 if body.startswith("(") else 0
        if not opening or not body.endswith(")") or not _balanced(body[opening:-1]):
            break
        body = body[opening:-1]
    branches: list[list[str | None]] = []
    for branch in body.split("|"):
        runs: list[str | None] = []
        i = 0
        while i < len(branch):
            char = branch[i]
            if branch.startswith(".*", i):
                if runs and runs[-1] is _ANY:
                    return None
                runs.append(_ANY)
                i += 2
                continue
            if char == "\\" and i + 1 < len(branch) and branch[i + 1] in "./+*?()[]{}|^$":
                char, i = branch[i + 1], i + 1  # an escaped special character is itself (no backslash: LIKE's escape)
            elif char not in _ARE_ORDINARY:
                return None
            if runs and isinstance(runs[-1], str):
                runs[-1] += char
            else:
                runs.append(char)
            i += 1
        branches.append(runs)
    return branches


def _balanced(text: str) -> bool:
    """No unescaped parenthesis closes before it opens: `(a)|(b)` is not one group."""
    depth = 0
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def literal_regexp_as_like(node: exp.Expression) -> exp.Expression:
    """`text ~ '^(?:null|undefined|test.*)$'` as `text IN ('null', 'undefined') OR text LIKE 'test%'`.

    pb's id filters are such patterns (a list of junk values, a prefix), tested on every input row of the id
    stitcher: Postgres runs a regular expression by converting each subject to wide characters first, several
    times the cost of a comparison or a LIKE (the example's shape at 100k people: 0.3 s of Postgres CPU on
    1.25M anonymous ids). The meaning is the same: `^...$` matches the whole subject, each branch is literal
    text with `.*` (any characters, newlines too) between, LIKE and `=` compare case-sensitively, and a NULL
    subject gives NULL either way. Only a text cast is rewritten (`~` refuses other types where `=` would cast),
    and a subject evaluated more than once only when it is a plain column."""
    if not isinstance(node, exp.RegexpLike) or node.args.get("flag") or node.args.get("full_match"):
        return node
    subject, pattern = node.this, node.expression
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        return node
    # VARCHAR and TEXT compare as their characters (CHAR's comparison ignores trailing blanks, `~` does not)
    if not (isinstance(subject, exp.Cast) and subject.to.is_type(exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT)):
        return node
    branches = _are_branches(pattern.name)
    if not branches:
        return node
    equal = [exp.Literal.string(runs[0] if runs else "") for runs in branches if _ANY not in runs]
    like: list[exp.Expression] = []
    for runs in branches:
        if _ANY not in runs:
            continue
        if any(run is not _ANY and ("%" in run or "_" in run) for run in runs):
            return node
        text = "".join("%" if run is _ANY else run for run in runs)
        like.append(exp.Like(this=subject.copy(), expression=exp.Literal.string(text)))
    terms: list[exp.Expression] = []
    if len(equal) == 1:
        terms.append(exp.EQ(this=subject.copy(), expression=equal[0]))
    elif equal:
        terms.append(exp.In(this=subject.copy(), expressions=equal))
    terms += like
    if len(terms) > 1 and not isinstance(subject.this, exp.Column):
        return node
    return exp.paren(exp.or_(*terms), copy=False) if len(terms) > 1 else terms[0]


# ---- per engine ---------------------------------------------------------------------------------

_POSTGRES_FIXES: list[Fix] = [alias_subqueries, literal_regexp_as_like]
_REDSHIFT_FIXES: list[Fix] = [alias_subqueries]
_SNOWFLAKE_FIXES: list[Fix] = [snowflake_case]
_BIGQUERY_FIXES: list[Fix] = [date_minus_date]
_DATABRICKS_FIXES: list[Fix] = [date_minus_date]

DUCKDB = _engine_dialect(
    DuckDB,
    "duckdb",
    [],
    EngineTraits(
        scan_order_numbering=True,
        empty_over_numbering=True,
        row_address="rowid",
        scratch_tables="temporary",
        materialized_ctes=True,
        reads_csv_in_place=True,
        sha1_hex=sha1_hex_text,
        ordered_first_last=True,
        all_columns_but=True,
        byte_order_collation=None,
    ),
)
POSTGRES = _engine_dialect(
    Postgres,
    "postgres",
    _POSTGRES_FIXES,
    EngineTraits(
        scan_order_numbering=True,
        empty_over_numbering=True,
        row_address=None,
        scratch_tables="unlogged",
        materialized_ctes=True,
        reads_csv_in_place=False,
        sha1_hex=sha1_hex_pgcrypto,
        ordered_first_last=False,
        all_columns_but=False,
        byte_order_collation="C",
    ),
)
REDSHIFT = _engine_dialect(
    Redshift,
    "redshift",
    _REDSHIFT_FIXES,
    EngineTraits(
        scan_order_numbering=False,
        empty_over_numbering=False,
        row_address=None,
        scratch_tables="plain",
        materialized_ctes=False,
        reads_csv_in_place=False,
        sha1_hex=sha1_hex_text,
        ordered_first_last=False,
        all_columns_but=False,
        byte_order_collation=None,
    ),
)
SNOWFLAKE = _engine_dialect(
    Snowflake,
    "snowflake",
    _SNOWFLAKE_FIXES,
    EngineTraits(
        scan_order_numbering=False,
        empty_over_numbering=False,
        row_address=None,
        scratch_tables="plain",
        materialized_ctes=False,
        reads_csv_in_place=False,
        sha1_hex=sha1_hex_text,
        ordered_first_last=False,
        all_columns_but=False,
        byte_order_collation=None,
    ),
)
BIGQUERY = _engine_dialect(
    BigQuery,
    "bigquery",
    _BIGQUERY_FIXES,
    EngineTraits(
        scan_order_numbering=False,
        empty_over_numbering=True,
        row_address=None,
        scratch_tables="plain",
        materialized_ctes=False,
        reads_csv_in_place=False,
        sha1_hex=sha1_hex_of_bytes,
        ordered_first_last=False,
        all_columns_but=False,
        byte_order_collation=None,
    ),
)
DATABRICKS = _engine_dialect(
    Databricks,
    "databricks",
    _DATABRICKS_FIXES,
    EngineTraits(
        scan_order_numbering=False,
        empty_over_numbering=False,
        row_address=None,
        scratch_tables="plain",
        materialized_ctes=False,
        reads_csv_in_place=False,
        sha1_hex=sha1_hex_text,
        ordered_first_last=False,
        all_columns_but=False,
        byte_order_collation=None,
    ),
)

_BY_NAME = {str(d): d for d in (DUCKDB, POSTGRES, REDSHIFT, SNOWFLAKE, BIGQUERY, DATABRICKS)}


def dialect_for(name: str) -> EngineDialect:
    """The engine dialect for a sqlglot dialect name."""
    return _BY_NAME[name]


def traits_of(dialect: str) -> EngineTraits:
    """The traits of an engine, from its dialect (or the dialect's name)."""
    if isinstance(dialect, EngineDialect):
        return dialect.traits
    return dialect_for(dialect).traits


# The dialect in which the product writes a table reference as a neutral key (lineage's table_key): any
# one fixed dialect would do; DuckDB's keeps names as written.
KEY_DIALECT = DUCKDB


def render(node: exp.Expression, name: str, **options: Any) -> str:
    return node.sql(dialect=dialect_for(name), **options)


def parses(sql: str, name: str) -> list[exp.Expr]:
    """Every generated statement must parse back in its dialect (sqlglot's stock parser)."""
    return [s for s in sqlglot.parse(sql, read=name) if s is not None]


__all__ = [
    "BIGQUERY",
    "DATABRICKS",
    "DUCKDB",
    "KEY_DIALECT",
    "POSTGRES",
    "REDSHIFT",
    "SNOWFLAKE",
    "ByteOrderedText",
    "EngineDialect",
    "EngineTraits",
    "Sha1Hex",
    "dialect_for",
    "traits_of",
]
