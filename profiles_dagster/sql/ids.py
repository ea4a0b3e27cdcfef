"""An input's declared id after pb's id_type filters: NULL when filtered out, else the text value."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.model import Origin
from profiles_dagster.project.schema import IdType, InputId
from profiles_dagster.project.templating import TemplateContext, render
from profiles_dagster.sql.fragments import Where, parse_expression


def filtered_id(
    id_: InputId,
    id_type: IdType,
    dialect: str,
    origin: Origin | None,
    source_table: Callable[[str], exp.Table] | None = None,
) -> exp.Expr:
    """CASE WHEN <dropped> THEN NULL ELSE CAST(<select> AS VARCHAR) END, filters applied after select.

    NULL and '' are always dropped; include regexes are anchored; a value must pass every include filter and
    match no exclude filter.
    """
    key = None
    if not any(flt.sql is not None for flt in id_type.filters):  # a sql filter reads a context's table
        key = repr((id_.select, dialect, [(f.type, f.value, f.regex) for f in id_type.filters]))
        if (known := _FILTERED.get(key)) is not None:
            return known.copy()
    built = _filtered_id(id_, id_type, dialect, origin, source_table)
    if key is not None and len(_FILTERED) < 10_000:
        _FILTERED[key] = built.copy()  # our own copy: callers attach and change theirs
    return built


# every step of a run (and the lineage of Definitions) filters the same ids: parse each once
_FILTERED: dict[str, exp.Expr] = {}


def _filtered_id(
    id_: InputId,
    id_type: IdType,
    dialect: str,
    origin: Origin | None,
    source_table: Callable[[str], exp.Table] | None,
) -> exp.Expr:
    where = Where(origin, f"ids.{id_.type}.select")
    value = exp.cast(
        parse_expression(rendered_select(id_.select, dialect, where), dialect, where), exp.DataType.build("varchar")
    )
    # no `value IS NULL` test: a NULL value makes every test below NULL (not true), and the CASE then gives
    # its ELSE, the NULL value itself; one evaluation of the select per row fewer (LOWER(TRIM(email)) on
    # every input row of the id stitcher)
    dropped: list[exp.Expr] = [value.copy().eq("")]
    for flt in id_type.filters:
        if flt.value is not None:
            match: exp.Expr = value.copy().eq(exp.Literal.string(str(flt.value)))
        elif flt.regex is not None:
            match = exp.RegexpLike(this=value.copy(), expression=exp.Literal.string(f"^(?:{flt.regex})$"))
        elif flt.sql is not None and source_table is not None:
            # pb's `sql: {select, from}`: the value is (not) among the ids a query lists
            listed = parse_expression(flt.sql.select, dialect, Where(origin, f"id_types.{id_type.name}.filters"))
            values = exp.select(exp.cast(listed, exp.DataType.build("varchar"))).from_(source_table(flt.sql.from_))
            match = exp.In(this=value.copy(), query=values.subquery())
        else:
            raise ProfilesError(
                f"id_type '{id_type.name}': a sql filter needs a source", file=origin.file if origin else None
            )
        dropped.append(exp.not_(exp.paren(match)) if flt.type == "include" else exp.paren(match))
    return exp.Case(ifs=[exp.If(this=exp.or_(*dropped), true=exp.null())], default=value)


def rendered_select(select: str, dialect: str, where: Where | None = None) -> str:
    """pb renders an id's select as a template: `CAST(x AS {{warehouse.DataType('text')}})`."""
    if "{{" not in select and "{%" not in select:
        return select
    at = where.origin if where else None
    return render(
        select,
        TemplateContext(database_type=dialect),
        file=at.file if at else None,
        line=at.line if at else None,
        key=where.what if where else None,
    )


def qualify(tree: exp.Expr, alias: str) -> exp.Expr:
    """Point unqualified column references at one table alias (joins would make them ambiguous)."""

    def fix(node: exp.Expr) -> exp.Expr:
        # columns inside a subquery (an id_type sql filter) belong to that subquery
        if isinstance(node, exp.Column) and not node.table and node.find_ancestor(exp.Select) is None:
            return exp.column(node.this.copy(), table=exp.to_identifier(alias))
        return node

    return tree.transform(fix)  # transform copies the tree first: the caller's stays as it was
