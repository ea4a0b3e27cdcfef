"""pb's incremental entity vars: `merge:` and `merge_where:` over `{{rowset.<var>}}`, with pb 0.26.4's meaning.

Observed on pb 0.26.4 (Postgres): a run with a baseline (the previous complete run) computes the var's own
select over the source's *new* rows only, `occurred_at >= baseline end time` (the run's own window bounds them
above; a row with no occurred_at is never new), one value per main id. It stacks those values under the
baseline's values (main ids followed through this run's stitching) as the rows of `rowset`, keeps the rows
passing `merge_where`, and groups them by main id with the `merge` aggregate:

    SELECT main, <merge> AS x FROM (old UNION ALL new) AS rowset [WHERE <merge_where>] GROUP BY main

Without a baseline (first run, a changed definition, a full refresh) the var is computed over all rows, and
neither `merge` nor `merge_where` applies. Rows arriving late (dated before the baseline's end time) are never
merged: pb's documented drift, kept because it is pb's meaning for a user's `merge:`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from profiles_dagster.plan.vars import PlannedVar
from profiles_dagster.project.templating import EntityRefs, render
from profiles_dagster.sql.fragments import Where, parse_expression
from profiles_dagster.sql.names import col

if TYPE_CHECKING:
    from profiles_dagster.sql.compiler import CompileContext

ROWSET = "rowset"  # the alias pb's `{{rowset.x}}` renders against
_OLD_MAIN = "old_main_id"
_NEW_MAIN = "new_main_id"


@dataclass(frozen=True)
class Baseline:
    """What a merge run extends: the previous complete var table of the same definition, the id graph that
    run wrote (to follow main ids that stitching changed since), and the end time that run read up to."""

    var_table: exp.Table
    graph: exp.Table
    end_time: datetime


def merges(pv: PlannedVar) -> bool:
    """Whether pb merges this var on a run with a baseline: an entity var with `merge:` and `from:` (pb ignores
    the merge of a var without `from:`; the loader notes it)."""
    spec = pv.var.spec
    return pv.var.kind == "entity_var" and getattr(spec, "merge", None) is not None and bool(spec.from_)


def merge_clauses(ctx: CompileContext, pv: PlannedVar) -> tuple[exp.Expr, exp.Expr | None]:
    """The var's `merge` and `merge_where`, rendered with `rowset` and translated like any fragment. Checked on
    every compile (validate included), whether or not this run merges. `merge` must aggregate: pb groups the
    rowset by main id, so a bare column fails in the warehouse (pb 0.26.4: 'must appear in the GROUP BY')."""
    spec = pv.var.spec
    at = pv.var.origin.at("merge")
    merge = _clause(ctx, str(getattr(spec, "merge", "")), Where(at, pv.var.name))
    if not any(isinstance(node, exp.AggFunc) for node in merge.walk()):
        raise at.error(
            f"merge: of entity var '{pv.var.name}' is not an aggregate: pb groups the previous and the new values "
            f"(the rows of rowset) by main id and merges them with it, so the warehouse rejects a bare value "
            "(pb 0.26.4 fails the run with 'must appear in the GROUP BY clause')",
            hint=f"aggregate the rowset, e.g. `sum({{{{rowset.{pv.var.name}}}}})` for a sum or a count, "
            f"`max({{{{rowset.{pv.var.name}}}}})` for a max",
        )
    if pv.refs:
        raise at.error(
            f"merge: on entity var '{pv.var.name}', which reads other vars ({', '.join(pv.refs)}), is not supported "
            "yet: pb computes it over the new rows with those vars' values of this run, which is not built here",
            hint="merge the vars it reads and compute this one from them without merge: (a var without from:)",
        )
    main = ctx.project.entities[pv.var.entity].main_id_column
    _check_columns(merge, pv, "merge", main)
    text = getattr(spec, "merge_where", None)
    if text is None:
        return merge, None
    merge_where = _clause(ctx, str(text), Where(pv.var.origin.at("merge_where"), pv.var.name))
    _check_columns(merge_where, pv, "merge_where", main)
    return merge, merge_where


def _check_columns(clause: exp.Expr, pv: PlannedVar, key: str, main: str) -> None:
    """The rows of rowset carry the main id and the var's own value only (pb's SQL): any other column fails in
    the warehouse on the second run, so it is refused at validate instead."""
    for column in clause.find_all(exp.Column):
        if column.table not in ("", ROWSET) or column.name.lower() not in (pv.var.name.lower(), main.lower()):
            raise pv.var.origin.at(key).error(
                f"{key}: of entity var '{pv.var.name}' reads `{column.sql()}`, but the rows it merges (rowset) hold "
                f"only {main} and the var's own value: pb's SQL fails on it in the warehouse",
                hint=f"write `{{{{rowset.{pv.var.name}}}}}`",
            )


def _clause(ctx: CompileContext, text: str, where: Where) -> exp.Expr:
    base = ctx.template_context()
    rowset = EntityRefs(ROWSET, lambda _, name: f"{ROWSET}.{name}")
    context = dataclasses.replace(base, values={**base.values, ROWSET: rowset})
    origin = where.origin
    rendered = render(
        text, context, file=origin.file if origin else None, line=origin.line if origin else None, key=where.what
    )
    return ctx.translated(parse_expression(rendered, ctx.source_dialect, where), where)


def new_rows(rows: exp.Expr, occurred_at: str, since: exp.Expr) -> exp.Subquery:
    """The source's rows new since the baseline, as pb picks them: occurred_at at or after the baseline's end
    time `since` (pb's `>=`: a row dated exactly at it is merged twice); a row with no occurred_at is never new."""
    when = exp.cast(col(occurred_at), exp.DataType.build("timestamp"))
    query = exp.select(exp.Star()).from_(rows).where(when >= since)
    return query.subquery("new_rows")


def merged_vars(
    main: str,
    news: list[tuple[list[PlannedVar], exp.Query]],
    baseline: Baseline,
    current_graph: exp.Table,
    clauses: dict[str, tuple[exp.Expr, exp.Expr | None]],
) -> tuple[list[exp.CTE], list[tuple[PlannedVar, exp.Select]]]:
    """Per merge var, one row per main id: `merge` over the baseline's value and its value over the new rows
    (`news`: the vars' aggregates over the new rows, several vars of one source in one pass), pb's way. The
    CTEs they read (named once for all the table's merge vars) come first.

    The baseline's values follow their main ids through this run's stitching: an old main id whose ids now
    belong to another cluster takes that cluster's main id (the smallest, should a cluster have split), so
    two profiles merged by stitching have their rows merged by `merge` too, as pb's id_cluster_delta does."""
    moves = (
        exp.select(exp.alias_(col(main, "p"), _OLD_MAIN), exp.alias_(exp.Min(this=col(main, "c")), _NEW_MAIN))
        .from_(baseline.graph.copy().as_("p"))
        .join(
            current_graph.copy().as_("c"),
            on=exp.and_(
                col("other_id", "p").eq(col("other_id", "c")),
                col("other_id_type", "p").eq(col("other_id_type", "c")),
            ),
        )
        .where(col(main, "p").neq(col(main, "c")))
        .group_by(col(main, "p"))
    )
    names = [pv.var.name for pvs, _ in news for pv in pvs]
    old = (
        exp.select(
            exp.alias_(exp.func("coalesce", col(_NEW_MAIN, "moves"), col(main, "evt")), main),
            *(exp.alias_(col(name, "evt"), name) for name in names),
        )
        .from_(baseline.var_table.copy().as_("evt"))
        .join(_ref(_MOVES).as_("moves"), on=col(main, "evt").eq(col(_OLD_MAIN, "moves")), join_type="left")
    )
    ctes = [_cte(_MOVES, moves), _cte(_OLD, old)]
    merged: list[tuple[PlannedVar, exp.Select]] = []
    for n, (pvs, new) in enumerate(news):
        fresh_name = f"{_NEW}_{n}"
        ctes.append(_cte(fresh_name, new))
        for pv in pvs:
            name = pv.var.name
            rows = exp.union(
                exp.select(col(main), col(name)).from_(_ref(_OLD)),
                exp.select(col(main), col(name)).from_(_ref(fresh_name)).where(col(main).is_(exp.null()).not_()),
                distinct=False,
            )
            merge, merge_where = clauses[name]
            query = exp.select(col(main), exp.alias_(merge.copy(), name)).from_(rows.subquery(ROWSET))
            if merge_where is not None:
                query = query.where(merge_where.copy())
            merged.append((pv, query.group_by(col(main))))
    return ctes, merged


_MOVES, _OLD, _NEW = "merge_moved_ids", "merge_previous", "merge_new"


def _ref(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name))


def _cte(name: str, query: exp.Query) -> exp.CTE:
    return exp.CTE(this=query, alias=exp.TableAlias(this=exp.to_identifier(name)))
