"""Which columns of each input a project reads, and of what kind, found with sqlglot in the SQL a run would
send: what a var's select, where and window, an id's select, a sql_template or an id filter use, each
attributed to the input table it reads through the query's scopes."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, build_scope, traverse_scope

from profiles_dagster.offline import offline_context
from profiles_dagster.plan.payloads import MappedPayload
from profiles_dagster.plan.steps import RunPlan, StepKey, StepKind
from profiles_dagster.project.model import Input, Project, SqlModel
from profiles_dagster.sql.compiler import INPUT_ROW_ID, CompileContext, StepProgram, compile_step
from profiles_dagster.sql.dialects import DUCKDB
from profiles_dagster.sql.ids import rendered_select


class Kind(IntEnum):
    """A column's kind, from its use; where uses disagree the higher one wins (a timestamp also compared to a
    string is still a timestamp)."""

    TEXT = 0
    BOOLEAN = 1
    NUMBER = 2
    TIMESTAMP = 3
    ID = 4  # an id of an entity: text drawn from the shared pool of profiles
    JSON = 5  # text the SQL parses as JSON (Snowflake's PARSE_JSON, FLATTEN, `:` paths): objects or arrays


# A table a sql model reads by name (not through an input) is sampled like an input, under this prefix and its
# name as DuckDB writes it
NAMED_TABLE = "table:"


@dataclass
class Column:
    name: str
    kind: Kind = Kind.TEXT
    id_type: str | None = None
    strings: set[str] = field(default_factory=set)  # string literals the SQL compares it with
    joined: bool = False  # compared for equality with another column (a join key): needs many distinct values
    json_object: bool = False  # a JSON column whose keys the SQL reads directly (an object, not an array)
    json_keys: set[str] = field(default_factory=set)  # the keys JSON paths of the project read

    def use(self, kind: Kind) -> None:
        self.kind = max(self.kind, kind)


Columns = dict[str, dict[str, Column]]  # input name -> lower-case column name -> column

_NUMERIC_AGGREGATES = (exp.Sum, exp.Avg, exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.Median)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ)
_DATE_FUNCTIONS = tuple(
    getattr(exp, name)
    for name in (
        "DateDiff",
        "DateTrunc",
        "TimestampTrunc",
        "Extract",
        "DateAdd",
        "DateSub",
        "TimestampAdd",
        "TimestampSub",
        "TimestampDiff",
        "DatetimeDiff",
        "DatetimeTrunc",
        "TsOrDsToDate",
        "TsOrDsAdd",
        "TsOrDsDiff",
        "Date",
        "DayOfWeek",
        "DayOfMonth",
        "DayOfYear",
        "WeekOfYear",
        "Month",
        "Year",
        "Quarter",
        "Day",
        "StrftimeToTime",
        "TimeToStr",
    )
    if hasattr(exp, name)
)
_DATE_TYPES = {exp.DataType.Type.DATE, exp.DataType.Type.DATETIME, *exp.DataType.TEMPORAL_TYPES}
_NUMBER_TYPES = exp.DataType.NUMERIC_TYPES


def input_columns(
    project: Project,
    plan: RunPlan,
    compiled: Mapping[StepKey, StepProgram] | None = None,
    ctx: CompileContext | None = None,
) -> Columns:
    """Every column each table input is read by: ids, occurred_at, contract columns and what its SQL uses.
    `compiled`: the steps' programs already compiled with `ctx`, a DuckDB context (validate's preparation
    run); else each step is compiled offline for DuckDB here."""
    ctx = ctx or offline_context(project, plan, DUCKDB)
    raw = _input_tables(project, ctx)
    found: Columns = {name: {} for name, inp in project.inputs.items() if not _is_file(inp)}
    tables = {key: _Source(name, frozenset()) for key, name in raw.items()}
    tables.update(_input_materials(project, plan, ctx, set(found)))
    for name in found:
        _declared(project, ctx, name, found[name])
    compiled = compiled or {}
    programs = [compiled.get(step.key) or compile_step(step, ctx) for step in plan.steps]
    for program in programs:
        if program.step.kind is StepKind.SQL_MODEL and len(program.statements) == 1:
            _model_source(program.statements[0], ctx.materials[program.step.key], tables)
    nodes = [n for p in programs for n in p.nodes]
    for sql, named in named_tables(nodes, {*tables, *(table_key(t) for t in ctx.materials.values())}).items():
        found[NAMED_TABLE + sql] = {}
        tables[table_key(named)] = _Source(NAMED_TABLE + sql, frozenset())
    handed_on = _vars_handing_on(project, ctx, set(found))
    compared: list[set[tuple[str, str]]] = []
    for node in nodes:
        _scan(node, tables, found, handed_on, compared)
    _unify_compared(found, compared)
    for model in project.sql_models.values():
        _model_ids(model, ctx, tables, found)
    _share_tables(project, ctx, found)
    keys = _json_keys(nodes)
    for column in (c for columns in found.values() for c in columns.values() if c.kind is Kind.JSON):
        column.json_keys = keys
    return found


def sampled_table(name: str, ctx: CompileContext) -> exp.Table:
    """The table sample rows for `name` (an input, or a table read by name) go to."""
    if name.startswith(NAMED_TABLE):
        return exp.to_table(name[len(NAMED_TABLE) :], dialect=DUCKDB)
    return ctx.input_table(name)


def named_tables(nodes: Iterable[exp.Expr], known: Collection[tuple[str, ...]]) -> dict[str, exp.Table]:
    """The tables the SQL reads by name that are not `known` (inputs, materials; by `table_key`) nor a CTE:
    a sql model reading the warehouse directly (pb lets it), which sample data and validate's scratch
    database must hold too. Keyed by their SQL; without alias, joins or sample clause."""
    found: dict[str, exp.Table] = {}
    for node in nodes:
        root = node.expression if isinstance(node, (exp.Create, exp.Insert)) else node
        if not isinstance(root, exp.Query):
            continue
        for scope in traverse_scope(root):
            for source in scope.sources.values():
                if not isinstance(source, exp.Table) or not isinstance(source.this, exp.Identifier):
                    continue
                if table_key(source) in known:
                    continue
                parts = {k: source.args[k].copy() for k in ("this", "db", "catalog") if source.args.get(k)}
                named = exp.Table(**parts)
                found.setdefault(named.sql(DUCKDB), named)
    return found


_JSON_KEY = re.compile(r"\$\.([A-Za-z_][A-Za-z0-9_]*)|\[['\"]([^'\"]+)['\"]\]")


def _json_keys(nodes: list[exp.Expr]) -> set[str]:
    """The object keys the project's JSON paths read (`x:sku`, `value['sku']`): sample JSON objects hold them."""
    keys: set[str] = set()
    for node in nodes:
        for extract in node.find_all(exp.JSONExtract, exp.JSONExtractScalar):
            path = extract.expression
            text = path.this if isinstance(path, exp.Literal) else path.sql(DUCKDB) if path is not None else ""
            keys.update(a or b for a, b in _JSON_KEY.findall(str(text)))
    return keys


def _share_tables(project: Project, ctx: CompileContext, found: Columns) -> None:
    """Inputs that read one table read its columns together: each gets the columns of all."""
    by_table: dict[tuple[str, ...], list[str]] = {}
    for name in found:
        by_table.setdefault(table_key(sampled_table(name, ctx)), []).append(name)
    for names in (n for n in by_table.values() if len(n) > 1):
        for name in names:
            for other in names:
                for key, column in found[other].items():
                    mine = found[name].setdefault(key, Column(column.name))
                    mine.use(column.kind)
                    mine.id_type = mine.id_type or column.id_type
                    mine.strings |= column.strings
                    mine.joined = mine.joined or column.joined


@dataclass(frozen=True)
class _Source:
    """A table holding an input's rows: the input's own, or a material of the run that copies them and adds
    columns of its own (`added`), which are no columns of the input."""

    input: str
    added: frozenset[str]
    scope: Scope | None = None  # a sql model's query: a column it takes from an input through `*` is the input's


def table_key(table: exp.Table) -> tuple[str, ...]:
    """A table's name as DuckDB matches it (case-insensitively), catalog and schema included."""
    return tuple(part.lower() for part in (table.catalog, table.db, table.name))


def _input_tables(project: Project, ctx: CompileContext) -> dict[tuple[str, ...], str]:
    """The inputs that read a warehouse table or view (file inputs bring their own rows)."""
    return {
        table_key(ctx.input_table(name)): name
        for name, inp in reversed(project.inputs.items())  # several inputs on one table: the first names it
        if not _is_file(inp)
    }


def _is_file(inp: Input) -> bool:
    return inp.spec.app_defaults.csv is not None or inp.spec.app_defaults.s3 is not None


def _input_materials(
    project: Project, plan: RunPlan, ctx: CompileContext, inputs: set[str]
) -> dict[tuple[str, ...], _Source]:
    """The input var tables (plain and with the main id): entity vars read an input's columns through them."""
    main_ids = {e.main_id_column.lower() for e in project.entities.values()}
    found = {}
    for step in plan.steps:
        payload = step.payload
        source = payload.input if isinstance(payload, MappedPayload) else payload
        if isinstance(source, Input) and source.name in inputs:
            own = {
                v.name.lower()
                for v in project.vars
                if v.kind == "input_var" and v.spec.from_ == f"inputs/{source.name}"
            }
            found[table_key(ctx.materials[step.key])] = _Source(source.name, frozenset({INPUT_ROW_ID, *main_ids, *own}))
    return found


def _declared(project: Project, ctx: CompileContext, name: str, into: dict[str, Column]) -> None:
    """What the input's YAML names: its ids (the columns of each id's select), occurred_at, contract columns."""
    inp = project.inputs[name]
    for contract_column in inp.spec.contract.with_columns if inp.spec.contract else []:
        _column(into, contract_column.name)
    for input_id in inp.ids:
        select: exp.Expr = exp.maybe_parse(rendered_select(input_id.select, ctx.dialect), dialect=ctx.source_dialect)
        for column in select.find_all(exp.Column):
            found = _column(into, column.name)
            if _tested(column):  # `case when is_deleted = false then id end`: is_deleted is no id
                found.use(_kind(column, found))
                continue
            found.use(Kind.ID)
            found.id_type = found.id_type or input_id.type
    if inp.occurred_at_col:
        _column(into, inp.occurred_at_col).use(Kind.TIMESTAMP)


def _tested(column: exp.Column) -> bool:
    """Whether an id's `select` only tests the column (in a comparison, a CASE's WHEN, a boolean operator)
    rather than handing on its value as the id: only the values are ids."""
    node: exp.Expr = column
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Predicate | exp.Connector | exp.Not):
            return True
        if isinstance(parent, exp.If) and node is parent.this:
            return True
        node, parent = parent, parent.parent
    return False


def _column(into: dict[str, Column], name: str) -> Column:
    return into.setdefault(name.lower(), Column(name))


def _model_source(statement: exp.Expr, material: exp.Table, tables: dict[tuple[str, ...], _Source]) -> None:
    """A sql model's material as a source: what reads it reads its inputs' columns where it selects `*`."""
    query = statement.expression if isinstance(statement, exp.Create) else None
    if isinstance(query, exp.Select | exp.SetOperation):
        scope = build_scope(query)
        if scope is not None:
            tables[table_key(material)] = _Source("", frozenset(), scope)


def _model_ids(model: SqlModel, ctx: CompileContext, tables: dict[tuple[str, ...], _Source], found: Columns) -> None:
    """A sql model's ids that are an input's columns (through its `*`) are ids there too: their values must be
    the profiles' ids, not a handful of texts that would stitch everyone together."""
    material = ctx.materials.get(StepKey.sql_model(model.name))
    source = tables.get(table_key(material)) if material is not None and model.ids else None
    if source is None or source.scope is None:
        return
    for model_id in model.ids:
        select: exp.Expr = exp.maybe_parse(rendered_select(model_id.select, ctx.dialect), dialect=ctx.source_dialect)
        for column in select.find_all(exp.Column):
            if _tested(column):
                continue  # a condition on the row, typed by its use where the run's SQL reads it
            for name, column_name in _resolve(source.scope, column.name, tables):
                into = _column(found[name], column_name)
                into.use(Kind.ID)
                into.id_type = into.id_type or model_id.type


# aggregates whose value is one of their argument's values: a var `max(x)` has x's type
_HANDING_ON = (exp.AnyValue, exp.Max, exp.Min, exp.FirstValue, exp.LastValue)


def _vars_handing_on(project: Project, ctx: CompileContext, inputs: set[str]) -> dict[str, set[tuple[str, str]]]:
    """Entity vars whose value is one of an input column's values (`any_value(signed_date)` from an input): a
    use of the var (`ts < {{ user.Var('signed') }}`) types that column, as it types the var."""
    found: dict[str, set[tuple[str, str]]] = {}
    for var in project.vars:
        source = var.spec.from_ or ""
        if var.kind != "entity_var" or not source.startswith("inputs/") or source[7:] not in inputs:
            continue
        try:
            select = exp.maybe_parse(rendered_select(var.spec.select, ctx.dialect), dialect=ctx.source_dialect)
        except Exception:
            continue
        if isinstance(select, _HANDING_ON) and isinstance(select.this, exp.Column):
            found.setdefault(var.name.lower(), set()).add((source[7:], select.this.name))
    return found


def _scan(
    node: exp.Expr,
    tables: dict[tuple[str, ...], _Source],
    found: Columns,
    handed_on: dict[str, set[tuple[str, str]]] | None = None,
    compared: list[set[tuple[str, str]]] | None = None,
) -> None:
    """Attribute each column of each scope to the input it reads, and note its kind from its use; the input
    columns two compared columns read go to `compared` (`ts >= signed_at`: both are of one kind)."""
    root = node.expression if isinstance(node, exp.Create) and node.expression is not None else node
    if not isinstance(root, exp.Query):
        return
    memo = _Memo(handed_on or {})
    for scope in traverse_scope(root):
        for column in scope.columns:
            if _grouped_alias(scope, column) or _lambda_parameter(column):
                continue
            pairs = _in_scope(scope, column, tables, memo)
            for name, column_name in pairs:
                into = _column(found[name], column_name)
                into.use(_kind(column, into))
            other = _compared_column(column)
            if compared is not None and pairs and other is not None:
                compared.append(pairs | _in_scope(scope, other, tables, memo))


def _compared_column(column: exp.Column) -> exp.Column | None:
    """The column on the other side of a comparison with this one, if that side is a plain column."""
    parent = column.parent
    if isinstance(parent, _COMPARISONS):
        other = parent.expression if parent.this is column else parent.this
        return other if isinstance(other, exp.Column) else None
    return None


def _unify_compared(found: Columns, compared: list[set[tuple[str, str]]]) -> None:
    """Input columns compared with each other take the most specific kind among them (a TIMESTAMP compared
    with a text-typed column makes it a TIMESTAMP too); ids keep theirs."""
    for group in compared:
        columns = [found[name][column.lower()] for name, column in group if column.lower() in found.get(name, {})]
        kind = max((c.kind for c in columns if c.kind is not Kind.ID), default=Kind.TEXT)
        if kind in (Kind.BOOLEAN, Kind.NUMBER, Kind.TIMESTAMP):
            for column in columns:
                if column.kind is not Kind.ID:
                    column.use(kind)


def _lambda_parameter(column: exp.Column) -> bool:
    """A lambda's parameter (`COLUMNS(lambda c: ...)`'s `c`), no column of any table."""
    if column.table:
        return False
    lam = column.find_ancestor(exp.Lambda)
    return lam is not None and any(p.name == column.name for p in lam.expressions)


def _grouped_alias(scope: Scope, column: exp.Column) -> bool:
    """A GROUP BY name that is an alias of the same select (`DATE_PART(...) AS session_id ... GROUP BY
    session_id`): Snowflake groups by the alias where no column has the name, so it is no column to sample
    (inventing one would make the query group by it instead)."""
    if column.table or not isinstance(scope.expression, exp.Select):
        return False
    group = column.find_ancestor(exp.Group, exp.Select)
    if not isinstance(group, exp.Group) or group.parent is not scope.expression:
        return False
    aliases = {e.alias.lower() for e in scope.expression.expressions if isinstance(e, exp.Alias)}
    return column.name.lower() in aliases


@dataclass
class _Memo:
    """One query's walk: what `_resolve` found for a (source, column) and each select's column names (a var
    table's layers of `SELECT *` would otherwise be walked again for every column of every layer), and the
    vars that hand on an input column's values (`_vars_handing_on`)."""

    handed_on: Mapping[str, set[tuple[str, str]]] = field(default_factory=dict)
    resolved: dict[tuple[int, str], set[tuple[str, str]]] = field(default_factory=dict)
    names: dict[int, list[str]] = field(default_factory=dict)


def _in_scope(
    scope: Scope, column: exp.Column, tables: dict[tuple[str, ...], _Source], memo: _Memo
) -> set[tuple[str, str]]:
    """The (input, column) pairs a column of a scope reads, through the sources it may come from; a var's
    column that no source hands on is the input column the var hands on (`_vars_handing_on`)."""
    # an unqualified column comes from what the scope selects from, not from every CTE in reach
    sources = [scope.sources.get(column.table)] if column.table else [s for _, s in scope.selected_sources.values()]
    pairs = {found for source in sources for found in _resolve(source, column.name, tables, memo)}
    if not pairs:  # a var's column (`cur.v`, or `v` of the var table) is what the var hands on, if anything
        return set(memo.handed_on.get(column.name.lower(), ()))
    return pairs


def _resolve(
    source: object, name: str, tables: dict[tuple[str, ...], _Source], memo: _Memo | None = None
) -> set[tuple[str, str]]:
    """The (input, column) pairs whose value a source hands on as its column `name`: an input's table, a
    subquery (or a sql model's query) that selects `*` from one, or that selects an input's column under
    that name (`oi.item_count`, `o.customer_id AS user_id`), so the use of a sql model's column types the
    input column it copies. A column a subquery computes (`count(*) AS n`) is its own: its scope types what
    it reads."""
    memo = _Memo() if memo is None else memo
    key = (id(source), name.lower())
    if key in memo.resolved:
        return set(memo.resolved[key])
    memo.resolved[key] = set()  # a source that reaches itself hands nothing on
    found = _resolve_once(source, name, tables, memo)
    memo.resolved[key] = found
    return set(found)


def _resolve_once(
    source: object, name: str, tables: dict[tuple[str, ...], _Source], memo: _Memo
) -> set[tuple[str, str]]:
    if isinstance(source, exp.Table):
        own = tables.get(table_key(source))
        if own is not None and own.scope is not None:
            return _resolve(own.scope, name, tables, memo)
        return {(own.input, name)} if own and name.lower() not in own.added else set()
    if isinstance(source, Scope) and isinstance(source.expression, exp.SetOperation):
        branches = _branches(source)  # a union's columns are its first branch's names, by position in each
        names = _names(branches[0], memo) if branches else []
        if name.lower() not in names:
            return {pair for branch in branches for pair in _resolve(branch, name, tables, memo)}  # `*`
        at = names.index(name.lower())
        return {pair for branch in branches for pair in _selected(branch, at, tables, memo)}
    if isinstance(source, Scope) and isinstance(source.expression, exp.Select):
        names = _names(source, memo)
        if name.lower() in names:
            return _selected(source, names.index(name.lower()), tables, memo)
        return {pair for inner in _star_sources(source) for pair in _resolve(inner, name, tables, memo)}
    return set()


def _names(scope: Scope, memo: _Memo) -> list[str]:
    key = id(scope.expression)
    if key not in memo.names:
        memo.names[key] = [e.alias_or_name.lower() for e in scope.expression.expressions]
    return memo.names[key]


def _branches(scope: Scope) -> list[Scope]:
    """The selects of a union (nested unions flattened), in order."""
    if not isinstance(scope.expression, exp.SetOperation):
        return [scope] if isinstance(scope.expression, exp.Select) else []
    return [b for inner in scope.set_operation_scopes for b in _branches(inner)]


def _selected(scope: Scope, at: int, tables: dict[tuple[str, ...], _Source], memo: _Memo) -> set[tuple[str, str]]:
    """What the select's column number `at` copies: an input's column when it is a plain column, or an
    aggregate that hands on one of its values (`MAX(cal.trading_date) AS cy_start` is a trading date)."""
    selects = scope.expression.expressions
    if at >= len(selects):
        return set()
    value = selects[at].unalias() if isinstance(selects[at], exp.Alias) else selects[at]
    if isinstance(value, _HANDING_ON) and isinstance(value.this, exp.Column):
        value = value.this
    return _in_scope(scope, value, tables, memo) if isinstance(value, exp.Column) else set()


def _star_sources(scope: Scope) -> list[object]:
    """The sources a select hands on whole: all of them for `*`, one for `alias.*`."""
    found: list[object] = []
    for e in scope.expression.expressions:
        if isinstance(e, exp.Star) or (isinstance(e, exp.Anonymous) and e.name.upper() == "COLUMNS"):
            return list(scope.sources.values())  # COLUMNS(lambda ...): every column but the main id's name
        if isinstance(e, exp.Column) and isinstance(e.this, exp.Star) and e.table in scope.sources:
            found.append(scope.sources[e.table])
    return found


def _kind(column: exp.Column, into: Column) -> Kind:
    """The kind a column's use implies; string literals it is compared with become its sample values."""
    node: exp.Expr = column
    parent = node.parent
    while parent is not None and _hands_on(parent, node):
        node, parent = parent, parent.parent
    if parent is None:
        return Kind.TEXT
    if isinstance(parent, (exp.JSONExtract, exp.JSONExtractScalar)) and parent.this is node:
        into.json_object = True  # a path read on the column itself: an object
        return Kind.JSON
    if isinstance(parent, (exp.Cast, exp.TryCast)) and parent.to.is_type(exp.DataType.Type.JSON):
        return Kind.JSON  # parsed (PARSE_JSON, FLATTEN's input): an array unless a path reads it directly
    if isinstance(parent, (exp.Cast, exp.TryCast)):
        to = parent.to
        if to.this in _DATE_TYPES:
            return Kind.TIMESTAMP
        if to.this in _NUMBER_TYPES:
            return Kind.NUMBER
        return Kind.TEXT
    if isinstance(parent, _DATE_FUNCTIONS):
        return Kind.TIMESTAMP
    if isinstance(parent, _NUMERIC_AGGREGATES):
        return Kind.NUMBER
    others = [e for e in parent.iter_expressions() if e is not node]
    if isinstance(parent, exp.EQ) and any(isinstance(o, exp.Column) for o in others):
        into.joined = True
    if isinstance(parent, (*_COMPARISONS, exp.Between, exp.In, *_ARITHMETIC)):
        return _from_others(others, into, arithmetic=isinstance(parent, _ARITHMETIC))
    if isinstance(parent, (exp.Where, exp.And, exp.Or, exp.Not)) or (
        isinstance(parent, exp.If) and node is parent.this
    ):
        return Kind.BOOLEAN
    return Kind.TEXT


def _hands_on(parent: exp.Expr, node: exp.Expr) -> bool:
    """Whether `parent` passes `node`'s value on as its own (so the use of `parent` types the column): a
    parenthesis, COALESCE, NULLIF, a CASE branch's value (the compiler writes a var's `where` as one), an
    aggregate that returns one of its values (`any_value(x) > 0`: x is a number)."""
    if isinstance(parent, (exp.AnyValue, exp.Min, exp.Max)):
        return parent.this is node
    if isinstance(parent, (exp.Paren, exp.Coalesce, exp.Nullif, exp.Case)):
        return parent.args.get("this") is not node or not isinstance(parent, exp.Case)
    if isinstance(parent, exp.If):
        return node is parent.args.get("true") or node is parent.args.get("false")
    return False


def _from_others(others: list[exp.Expr], into: Column, *, arithmetic: bool) -> Kind:
    kind = Kind.NUMBER if arithmetic else Kind.TEXT
    for other in others:
        if isinstance(other, exp.Interval):
            return Kind.TIMESTAMP
        if isinstance(other, exp.Boolean):
            return Kind.BOOLEAN
        if isinstance(other, exp.Literal):
            if other.is_number:
                return Kind.NUMBER
            into.strings.add(other.this)
        if isinstance(other, (exp.Cast, exp.TryCast)) and other.to.this in _DATE_TYPES:
            return Kind.TIMESTAMP
        if isinstance(other, (exp.CurrentDate, exp.CurrentTimestamp)):
            return Kind.TIMESTAMP
    return kind
