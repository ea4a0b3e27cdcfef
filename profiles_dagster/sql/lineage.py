"""Column lineage: which columns of which tables each output column of a compiled step reads.

A small walk over the sqlglot trees the compiler builds (selects, subqueries, CTEs, unions, `*`
and `alias.*` pass-through), stopping at tables: a table is another step's material or an input.
No schema is needed: a column that reaches a `*` over a table is taken to come from that table
under the same name. Pure: no IO, nothing about Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from sqlglot import exp

from profiles_dagster.plan.steps import StepKind
from profiles_dagster.sql.dialects import KEY_DIALECT

if TYPE_CHECKING:
    from profiles_dagster.sql.compiler import StepProgram

K = TypeVar("K")
Source = tuple[str, str]  # (table key, column name)

STITCHER_COLUMNS = {"other_id": "other_id", "valid_at": "occurred_at", "first_seen_at": "occurred_at"}


def table_key(table: exp.Expr) -> str:
    """How a table is recognized wherever it appears: its parts, lower-cased, alias and quoting ignored."""
    if isinstance(table, exp.Table) and all(isinstance(p, exp.Identifier) for p in table.parts):
        return ".".join(p.name.lower() for p in table.parts)
    bare = table.copy()
    bare.set("alias", None)
    return bare.sql(KEY_DIALECT).lower()


def program_query(program: StepProgram) -> exp.Query | None:
    """The query whose rows become the step's material, if there is one."""
    if program.observations is not None:
        return program.observations
    target = table_key(program.target)
    for statement in reversed(program.statements):
        if isinstance(statement, exp.Create | exp.Insert) and isinstance(statement.expression, exp.Query):
            this = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
            if isinstance(this, exp.Table) and table_key(this) == target:
                return statement.expression
    return None


def output_columns(query: exp.Query, known: Mapping[str, list[str]] | None = None) -> tuple[list[str], bool]:
    """The query's column names, expanding `*` over tables whose columns `known` has; and whether that is all."""
    return _outputs(query, dict(known or {}), {})


def trace(query: exp.Query, column: str) -> set[Source]:
    """Every (table key, column) the output `column` of `query` is computed from."""
    return _Tracer().trace(query, column.lower())


def step_lineage(
    kind: StepKind,
    query: exp.Query,
    columns: list[str],
    tables: Mapping[str, K],
    main_id_column: str | None = None,
) -> dict[str, list[tuple[K, str]]]:
    """For each output column of a step: the (table id from `tables`, column) pairs it reads.

    The id stitcher's material is not its query's output: main id and other_id come from the
    observed ids, valid_at and first_seen_at from the observations' time."""
    tracer = _Tracer()  # one per step: its columns share subqueries, CTEs and their traces
    result: dict[str, list[tuple[K, str]]] = {}
    for column in columns:
        name = column
        if kind is StepKind.ID_STITCHER:
            if column == main_id_column:
                name = "other_id"
            elif column in STITCHER_COLUMNS:
                name = STITCHER_COLUMNS[column]
            else:
                result[column] = []
                continue
        if kind is StepKind.ID_STITCHER and name == "other_id":  # the ids arrive in slots, other_id_<k>
            slots = [n for n in query.named_selects if re.fullmatch(r"other_id_\d+", n.lower())] or [name]
            found = {source for slot in slots for source in tracer.trace(query, slot.lower())}
        else:
            found = tracer.trace(query, name.lower())
        result[column] = sorted(
            {(tables[key], col) for key, col in found if key in tables}, key=lambda d: (str(d[0]), d[1])
        )
    return result


# ---- the walk ----------------------------------------------------------------------------------------


def _with(query: exp.Expr, ctes: dict[str, exp.Expr]) -> dict[str, exp.Expr]:
    with_ = query.args.get("with_") or query.args.get("with")
    if not with_:
        return ctes
    out = dict(ctes)
    for cte in with_.expressions:
        out[cte.alias_or_name.lower()] = cte.this
    return out


def _unwrap(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Subquery | exp.Paren):
        node = node.this
    return node


def _sources(select: exp.Select) -> dict[str, exp.Expr]:
    """alias -> table or query, for the FROM clause and the joins of one select."""
    out: dict[str, exp.Expr] = {}
    from_ = select.args.get("from_") or select.args.get("from")
    nodes = [from_.this] if from_ is not None else []
    nodes += [j.this for j in select.args.get("joins") or []]
    for node in nodes:
        name = (node.alias_or_name or "").lower()
        out[name] = node
    return out


def _star_targets(projection: exp.Expr, sources: dict[str, exp.Expr]) -> list[exp.Expr] | None:
    """The sources a `*` or `alias.*` projection passes through; None for any other projection."""
    if isinstance(projection, exp.Star) or _columns_but(projection):
        return list(sources.values())
    if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
        found = sources.get(projection.table.lower())
        return [found] if found is not None else []
    return None


def _columns_but(projection: exp.Expr) -> bool:
    """DuckDB's `COLUMNS(lambda c: NOT lower(c) IN (...))`: every column but the named ones (compiler's
    `_stitched_in_place`)."""
    return isinstance(projection, exp.Anonymous) and projection.name.upper() == "COLUMNS"


def _excluded(projection: exp.Expr) -> set[str]:
    if _columns_but(projection):
        return {lit.name.lower() for lit in projection.find_all(exp.Literal) if lit.is_string}
    star = projection if isinstance(projection, exp.Star) else projection.this
    names = set()
    for key in ("except_", "except"):
        for node in star.args.get(key) or []:
            names.add(node.alias_or_name.lower())
    return names


class _Select:
    """One select's parts, looked up by column: computed once, whatever the number of columns traced."""

    def __init__(self, select: exp.Select) -> None:
        self.sources = _sources(select)
        self.named: dict[str, exp.Expr] = {}
        self.stars: list[tuple[list[exp.Expr], set[str]]] = []
        self.names: list[str] = []
        for projection in select.expressions:
            targets = _star_targets(projection, self.sources)
            if targets is None:
                name = projection.alias_or_name.lower()
                self.named.setdefault(name, projection)
                self.names.append(name)
            else:
                self.stars.append((targets, _excluded(projection)))
        self.group = select.args.get("group")
        # a `*` anywhere: which columns it has cannot be told without a schema
        self.provided: frozenset[str] | None = None if self.stars else frozenset(self.named)
        self.through = _passed_through(select, self.stars)


def _passed_through(select: exp.Select, stars: list[tuple[list[exp.Expr], set[str]]]) -> exp.Query | None:
    """The subquery of `SELECT *, <named> FROM (<subquery>)`, which passes every other column on unchanged
    (each var layered on the ones before it is one); None for any other select."""
    if len(stars) != 1 or select.args.get("with_") or select.args.get("with"):
        return None
    (targets, excluded) = stars[0]
    if len(targets) != 1 or excluded or isinstance(targets[0], exp.Table):
        return None
    inner = _unwrap(targets[0])
    return inner if isinstance(inner, exp.Query) else None


def _cte_through(select: _Select, ctes: dict[str, exp.Expr]) -> str | None:
    """The CTE a select passes on with one `*` (vars layered on a CTE of the vars before them), if it does."""
    if len(select.stars) != 1:
        return None
    (targets, excluded) = select.stars[0]
    if len(targets) != 1 or excluded or not isinstance(targets[0], exp.Table):
        return None
    source = targets[0]
    if source.db or not isinstance(source.this, exp.Identifier):
        return None
    name = source.name.lower()
    return name if name in ctes else None


class _Tracer:
    """The walk, memoised by node: a 300-var step traces each subquery, CTE and column once.

    Nodes are keyed by id() and kept alive by the caches, and the trees are not changed while a
    tracer lives (one tracer per step_lineage call)."""

    _NO_CTES: dict[str, exp.Expr] = {}  # never changed: the top level's CTE scope

    def __init__(self) -> None:
        self._selects: dict[int, tuple[exp.Select, _Select]] = {}
        self._traces: dict[tuple[int, str, int], set[Source]] = {}
        self._withs: dict[tuple[int, int], tuple[exp.Expr, dict[str, exp.Expr]]] = {}
        self._without: dict[tuple[int, str], dict[str, exp.Expr]] = {}
        self._columns: dict[int, tuple[exp.Expr, list[tuple[str, str]]]] = {}
        self._tables: dict[int, tuple[exp.Expr, str]] = {}
        self._keep: list[object] = []  # keeps every CTE scope alive, so its id() stays unique

    def trace(self, query: exp.Expr, column: str) -> set[Source]:
        return self._trace(query, column, self._NO_CTES)

    # -- memoised pieces

    def _select(self, select: exp.Select) -> _Select:
        found = self._selects.get(id(select))
        if found is None:
            found = self._selects[id(select)] = (select, _Select(select))
        return found[1]

    def _scope(self, query: exp.Expr, ctes: dict[str, exp.Expr]) -> dict[str, exp.Expr]:
        key = (id(query), id(ctes))
        found = self._withs.get(key)
        if found is None:
            scope = _with(query, ctes)
            self._keep.append(scope)
            found = self._withs[key] = (query, scope)
        return found[1]

    def _minus(self, ctes: dict[str, exp.Expr], name: str) -> dict[str, exp.Expr]:
        key = (id(ctes), name)
        found = self._without.get(key)
        if found is None:
            found = self._without[key] = {k: v for k, v in ctes.items() if k != name}
            self._keep.append(found)
        return found

    def _column_refs(self, expression: exp.Expr) -> list[tuple[str, str]]:
        """(table alias or '', column) of every column an expression reads, `alias.*` left out."""
        found = self._columns.get(id(expression))
        if found is None:
            found = self._columns[id(expression)] = (expression, _column_refs(expression))
        return found[1]

    def _table_key(self, source: exp.Expr) -> str:
        found = self._tables.get(id(source))
        if found is None:
            found = self._tables[id(source)] = (source, table_key(source))
        return found[1]

    # -- the walk

    def _from_source(self, source: exp.Expr, column: str, ctes: dict[str, exp.Expr]) -> set[Source]:
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
            name = source.name.lower()
            cte = ctes.get(name) if not source.db else None
            if cte is not None:
                return self._trace(cte, column, self._minus(ctes, name))
            return {(self._table_key(source), column)}
        inner = _unwrap(source)
        if isinstance(inner, exp.Query):
            return self._trace(inner, column, ctes)
        if isinstance(source, exp.Table):  # a table function (e.g. read_csv): a table of its own
            return {(self._table_key(source), column)}
        return set()

    def _provides(self, source: exp.Expr, column: str, ctes: dict[str, exp.Expr]) -> bool | None:
        """Whether a source has the column: True, False, or None when it cannot be told (a table, a `*`)."""
        inner = _unwrap(source)
        if isinstance(inner, exp.Table):
            cte = ctes.get(inner.name.lower()) if not inner.db else None
            if cte is None:
                return None
            inner = _unwrap(cte)
        if isinstance(inner, exp.SetOperation):
            inner = _unwrap(inner.this)
        if not isinstance(inner, exp.Select):
            return None
        select = self._select(inner)
        if column in select.named and (not select.stars or _first_is_named(inner, column)):
            return True
        return None if select.provided is None else False

    def _columns_in(self, expression: exp.Expr, sources: dict[str, exp.Expr], ctes: dict[str, exp.Expr]) -> set[Source]:
        out: set[Source] = set()
        for qualifier, name in self._column_refs(expression):
            if qualifier:
                found = sources.get(qualifier)
                candidates = [found] if found is not None else []
            else:
                provides = [(s, self._provides(s, name, ctes)) for s in sources.values()]
                candidates = [s for s, p in provides if p] or [s for s, p in provides if p is None]
            for source in candidates:
                out |= self._from_source(source, name, ctes)
        return out

    def _trace(self, query: exp.Expr, column: str, ctes: dict[str, exp.Expr]) -> set[Source]:
        key = (id(query), column, id(ctes))
        found = self._traces.get(key)
        if found is None:
            self._keep.append(query)
            found = self._traces[key] = self._walk(query, column, ctes)
        return found

    def _walk(self, query: exp.Expr, column: str, ctes: dict[str, exp.Expr]) -> set[Source]:
        while True:  # down a chain of pass-through layers in a loop: 300 layered vars are no 300-deep recursion
            query = _unwrap(query)
            ctes = self._scope(query, ctes)
            if isinstance(query, exp.SetOperation):
                return self._union(query, column, ctes)
            if not isinstance(query, exp.Select):
                return set()
            select = self._select(query)
            projection = select.named.get(column)
            if projection is not None:
                found = self._columns_in(projection, select.sources, ctes)
                if not found and select.group is not None and projection.find(exp.AggFunc):
                    # count(*): no column of its own; it counts the rows of each group
                    found = self._columns_in(select.group, select.sources, ctes)
                return found
            through: exp.Expr | None = select.through
            scope = ctes
            if through is None:  # `SELECT prev.*, <named> FROM <cte> AS prev ...`: the layer's input is a CTE
                name = _cte_through(select, ctes)
                if name is None:
                    break
                through, scope = ctes[name], self._minus(ctes, name)
            if self._provides(through, column, scope) is False:
                return set()
            query, ctes = through, scope
        out: set[Source] = set()
        for targets, excluded in select.stars:
            if column in excluded:
                continue
            for source in targets:
                if self._provides(source, column, ctes) is not False:
                    out |= self._from_source(source, column, ctes)
        return out

    def _union(self, query: exp.SetOperation, column: str, ctes: dict[str, exp.Expr]) -> set[Source]:
        """A union's column: the left side's by name, the right side's by position."""
        left = _unwrap(query.this)
        out = set(self._trace(left, column, ctes))
        index = _position(left, column)
        right = _unwrap(query.expression)
        if index is not None and isinstance(right, exp.Select) and index < len(right.expressions):
            out |= self._trace(right, right.expressions[index].alias_or_name.lower(), ctes)
        else:
            out |= self._trace(right, column, ctes)
        return out


def _column_refs(expression: exp.Expr) -> list[tuple[str, str]]:
    # most projections are `alias.column [AS name]`: no tree search for those
    node = expression.this if isinstance(expression, exp.Alias) else expression
    columns = [node] if isinstance(node, exp.Column) else expression.find_all(exp.Column)
    return [(c.table.lower(), c.name.lower()) for c in columns if not isinstance(c.this, exp.Star)]


def _first_is_named(select: exp.Select, column: str) -> bool:
    """Whether the first projection that could be `column` names it (not a `*` before it)."""
    for projection in select.expressions:
        if _star_targets(projection, {}) is not None:
            return False
        if projection.alias_or_name.lower() == column:
            return True
    return False


def _position(query: exp.Expr, column: str) -> int | None:
    if not isinstance(query, exp.Select):
        return None
    for n, projection in enumerate(query.expressions):
        if projection.alias_or_name.lower() == column:
            return n
    return None


def _outputs(query: exp.Expr, known: dict[str, list[str]], ctes: dict[str, exp.Expr]) -> tuple[list[str], bool]:
    query = _unwrap(query)
    ctes = _with(query, ctes)
    if isinstance(query, exp.SetOperation):
        return _outputs(query.this, known, ctes)
    if not isinstance(query, exp.Select):
        return [], False
    sources = _sources(query)
    names: list[str] = []
    complete = True
    for projection in query.expressions:
        targets = _star_targets(projection, sources)
        if targets is None:
            names.append(projection.alias_or_name)
            continue
        skip = _excluded(projection)
        for source in targets:
            inner = _unwrap(source)
            if isinstance(inner, exp.Table) and (inner.db or inner.name.lower() not in ctes):
                cols = known.get(table_key(inner))
                found, ok = (cols, True) if cols is not None else ([], False)
            else:
                sub = ctes[inner.name.lower()] if isinstance(inner, exp.Table) else inner
                found, ok = _outputs(sub, known, ctes)
            complete = complete and ok
            names.extend(c for c in found if c.lower() not in skip)
    return list(dict.fromkeys(names)), complete
