"""The types of the columns a fragment reads, attached to its tree before translation.

Some of Snowflake's meanings depend on a type the SQL does not show: a VARIANT column in arithmetic is cast to a
number, a text column compared with a number is cast to it, a TIMESTAMP cast to text takes Snowflake's default
output format. Those types are the types of the tables the fragment reads (upstream materials, input tables),
known to whoever runs the SQL. They reach this pure layer as data: a mapping per table of column name to the
engine's type, attached to each `exp.Column` (`TYPE` in its meta) so the rules read them with `column_type`.

A column of a fragment read with types (`TYPED` set) whose type is still unknown makes a type-dependent
construct refused; a fragment compiled with no types at all (no connection) keeps sqlglot's rendering, and the
run compiles it again with the types.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

TYPE = "pd_type"  # meta: the column's type on the engine (exp.DataType), when known
TYPED = "pd_typed"  # meta: the column was read with types known (its TYPE may still be missing)

Columns = Mapping[str, exp.DataType]  # column name (lower case) -> the engine's type
Schema = Mapping[str, Columns]  # table name (lower case) -> its columns


def table_key(table: exp.Table) -> str:
    return table.name.lower()


_ASKED = [False]  # a rule asked the type of a column read without types since `reset_asked`


def reset_asked() -> None:
    _ASKED[0] = False


def was_asked() -> bool:
    """Whether a rule asked the type of a column read without types: then the answer may change with types."""
    return _ASKED[0]


def column_type(node: exp.Expr) -> exp.DataType | None:
    """The type attached to a column (None for another node, or a column whose type is unknown)."""
    if not isinstance(node, exp.Column):
        return None
    if not node.meta.get(TYPED):
        _ASKED[0] = True
    found = node.meta.get(TYPE)  # a type sqlglot could not read (UNKNOWN) is no type
    return found if isinstance(found, exp.DataType) and found.this != exp.DataType.Type.UNKNOWN else None


def read_with_types(node: exp.Expr) -> bool:
    """Whether the columns of `node` were all read with types known: an unknown type there is a refusal, not a
    guess (a column of a table whose types were not read leaves it as without types)."""
    columns = list(node.find_all(exp.Column))
    return bool(columns) and all(c.meta.get(TYPED) for c in columns)


def _mark(column: exp.Column, found: exp.DataType | None) -> None:
    column.meta[TYPED] = True
    if found is not None:
        column.meta[TYPE] = found


def attach_columns(tree: exp.Expr, columns: Columns) -> exp.Expr:
    """A fragment over one table's rows (an entity var's `from`, an input's `where`): each column by its name."""
    for column in tree.find_all(exp.Column):
        _mark(column, columns.get(column.name.lower()))
    return tree


def attach_vars(tree: exp.Expr, variants: set[str]) -> exp.Expr:
    """Var references (placeholder columns) of vars whose value is a VARIANT: typed JSON, as the engine holds it."""
    for column in tree.find_all(exp.Column):
        if not column.table and column.name in variants:
            _mark(column, exp.DataType.build("json"))
    return tree


def attach_schema(tree: exp.Expr, schema: Schema) -> exp.Expr:
    """A query (a sql model): each column through the scope it is read in, to the table it comes from (through
    derived tables and CTEs by the projection of that name). A query sqlglot cannot scope is left untyped."""
    try:
        scopes = list(traverse_scope(tree))
    except Exception:  # sqlglot's scoping does not cover every dialect construct: untyped, as without schema
        return tree
    for scope in scopes:  # inner scopes come first, so a derived table's columns are typed before its readers
        for column in scope.columns:
            found = _from_scope(scope, column, schema)
            if found is not False:
                _mark(column, found if isinstance(found, exp.DataType) else None)
    return tree


def _projection_type(inner: exp.Expr) -> exp.DataType | bool | None:
    """The type of a derived table's projection (its columns typed already): False when it was not read
    with types."""
    from profiles_dagster.sql.transpile.scalars import known_type  # the rules' own reading of a type

    found = known_type(inner)
    if found is not None:
        return found
    return None if read_with_types(inner) else False


def _from_scope(scope: Scope, column: exp.Column, schema: Schema) -> exp.DataType | bool | None:
    """The column's type; None when its table is typed but the type unknown; False when nothing is known."""
    name = column.name.lower()
    selected = {alias: source for alias, (_, source) in scope.selected_sources.items()}  # FROM and JOINs
    if column.table:
        source = selected.get(column.table)
        sources = [source] if source is not None else []
    else:
        sources = list(selected.values())
    found: list[exp.DataType | bool | None] = []
    for source in sources:
        if isinstance(source, exp.Table):
            columns = schema.get(table_key(source))
            if columns is None:
                found.append(False)
            elif name in columns or len(sources) == 1:
                found.append(columns.get(name))
        elif isinstance(source, Scope) and isinstance(source.expression, exp.Select):
            for projection in source.expression.selects:
                if projection.alias_or_name.lower() == name:
                    found.append(_projection_type(projection.unalias()))
    if len(found) != 1:
        return False if not found or any(f is False for f in found) else None
    return found[0]


__all__ = [
    "TYPE",
    "TYPED",
    "Columns",
    "Schema",
    "attach_columns",
    "attach_schema",
    "attach_vars",
    "column_type",
    "read_with_types",
    "reset_asked",
    "was_asked",
]
