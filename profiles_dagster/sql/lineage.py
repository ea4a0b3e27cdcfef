"""Column lineage: which columns of which tables each output column of a compiled step reads.

A small walk over the sqlglot trees the compiler builds (selects, subqueries, CTEs, unions, `*`
and `alias.*` pass-through), stopping at tables: a table is another step's material or an input.
No schema is needed: a column that reaches a `*` over a table is taken to come from that table
under the same name. Pure: no IO, nothing about Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from sqlglot import exp

from profiles_dagster.plan.steps import StepKind

K = TypeVar("K")
Source = tuple[str, str]  # (table key, column name)

STITCHER_COLUMNS = {"other_id": "other_id", "valid_at": "occurred_at", "first_seen_at": "occurred_at"}


def table_key(table: exp.Expression) -> str:
    """How a table is recognized wherever it appears: its parts, lower-cased, alias and quoting ignored."""
    if isinstance(table, exp.Table) and all(isinstance(p, exp.Identifier) for p in table.parts):
        return ".".join(p.name.lower() for p in table.parts)
    bare = table.copy()
    bare.set("alias", None)
    return bare.sql("duckdb").lower()


def program_query(program) -> exp.Query | None:
    """The query whose rows become the step's material (a `StepProgram` of the compiler), if there is one."""
    if getattr(program, "observations", None) is not None:
        return program.observations
    if getattr(program, "query", None) is not None:  # older compilers kept the query itself
        return program.query
    target = table_key(program.target)
    for statement in reversed(getattr(program, "statements", None) or []):
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
    return _trace(query, column.lower(), {})


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
        found = trace(query, name)
        result[column] = sorted(
            {(tables[key], col) for key, col in found if key in tables}, key=lambda d: (str(d[0]), d[1])
        )
    return result


# ---- the walk ----------------------------------------------------------------------------------------


def _with(query: exp.Expression, ctes: dict[str, exp.Expression]) -> dict[str, exp.Expression]:
    with_ = query.args.get("with_") or query.args.get("with")
    if not with_:
        return ctes
    out = dict(ctes)
    for cte in with_.expressions:
        out[cte.alias_or_name.lower()] = cte.this
    return out


def _unwrap(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Subquery | exp.Paren):
        node = node.this
    return node


def _sources(select: exp.Select) -> dict[str, exp.Expression]:
    """alias -> table or query, for the FROM clause and the joins of one select."""
    out: dict[str, exp.Expression] = {}
    from_ = select.args.get("from_") or select.args.get("from")
    nodes = [from_.this] if from_ is not None else []
    nodes += [j.this for j in select.args.get("joins") or []]
    for node in nodes:
        name = (node.alias_or_name or "").lower()
        out[name] = node
    return out


def _star_targets(projection: exp.Expression, sources: dict[str, exp.Expression]) -> list[exp.Expression] | None:
    """The sources a `*` or `alias.*` projection passes through; None for any other projection."""
    if isinstance(projection, exp.Star):
        return list(sources.values())
    if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
        found = sources.get(projection.table.lower())
        return [found] if found is not None else []
    return None


def _excluded(projection: exp.Expression) -> set[str]:
    star = projection if isinstance(projection, exp.Star) else projection.this
    names = set()
    for key in ("except_", "except"):
        for node in star.args.get(key) or []:
            names.add(node.alias_or_name.lower())
    return names


def _from_source(source: exp.Expression, column: str, ctes: dict[str, exp.Expression]) -> set[Source]:
    if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
        cte = ctes.get(source.name.lower()) if not source.db else None
        if cte is not None:
            return _trace(cte, column, {k: v for k, v in ctes.items() if k != source.name.lower()})
        return {(table_key(source), column)}
    inner = _unwrap(source)
    if isinstance(inner, exp.Query):
        return _trace(inner, column, ctes)
    if isinstance(source, exp.Table):  # a table function (e.g. read_csv): a table of its own
        return {(table_key(source), column)}
    return set()


def _provides(source: exp.Expression, column: str, ctes: dict[str, exp.Expression]) -> bool | None:
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
    for projection in inner.expressions:
        if _star_targets(projection, {}) is not None:
            return None
        if projection.alias_or_name.lower() == column:
            return True
    return False


def _columns_in(expression: exp.Expression, sources: dict[str, exp.Expression], ctes) -> set[Source]:
    out: set[Source] = set()
    for column in expression.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            continue
        name = column.name.lower()
        if column.table:
            found = sources.get(column.table.lower())
            candidates = [found] if found is not None else []
        else:
            known = [s for s in sources.values() if _provides(s, name, ctes)]
            candidates = known or [s for s in sources.values() if _provides(s, name, ctes) is None]
        for source in candidates:
            out |= _from_source(source, name, ctes)
    return out


def _trace(query: exp.Expression, column: str, ctes: dict[str, exp.Expression]) -> set[Source]:
    query = _unwrap(query)
    ctes = _with(query, ctes)
    if isinstance(query, exp.SetOperation):
        left = _unwrap(query.this)
        out = _trace(left, column, ctes)
        index = _position(left, column)
        right = _unwrap(query.expression)
        if index is not None and isinstance(right, exp.Select) and index < len(right.expressions):
            out |= _trace(right, right.expressions[index].alias_or_name.lower(), ctes)
        else:
            out |= _trace(right, column, ctes)
        return out
    if not isinstance(query, exp.Select):
        return set()
    sources = _sources(query)
    for projection in query.expressions:
        if _star_targets(projection, sources) is None and projection.alias_or_name.lower() == column:
            found = _columns_in(projection, sources, ctes)
            group = query.args.get("group")
            if not found and group is not None and projection.find(exp.AggFunc):
                # count(*): no column of its own; it counts the rows of each group
                found = _columns_in(group, sources, ctes)
            return found
    out: set[Source] = set()
    for projection in query.expressions:
        targets = _star_targets(projection, sources)
        if targets is None or column in _excluded(projection):
            continue
        for source in targets:
            if _provides(source, column, ctes) is not False:
                out |= _from_source(source, column, ctes)
    return out


def _position(query: exp.Expression, column: str) -> int | None:
    if not isinstance(query, exp.Select):
        return None
    for n, projection in enumerate(query.expressions):
        if projection.alias_or_name.lower() == column:
            return n
    return None


def _outputs(
    query: exp.Expression, known: dict[str, list[str]], ctes: dict[str, exp.Expression]
) -> tuple[list[str], bool]:
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
