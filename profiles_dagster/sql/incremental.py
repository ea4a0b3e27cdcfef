"""The SQL of incremental steps over append-only inputs: what is re-read, what changed, and how a step's new
material is put together from its previous one. Pure: `run/incremental.py` runs it and decides.

The rule everywhere: the result equals a full recompute, cell for cell. An input var table keeps the previous
rows and adds the input's rows it has not seen (read after the look-back window start, compared as a multiset
with the previous rows there); a mapped table recomputes the rows of the profiles that new rows or this run's
stitching touched and keeps the others; a var table recomputes those profiles from all their rows, keeps the
previous values of the others, and recomputes on the whole var table the vars without `from:` that read the
run's time or rank across profiles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlglot import exp

from profiles_dagster.plan.payloads import MappedPayload, VarTablePayload
from profiles_dagster.plan.steps import Step, StepKey
from profiles_dagster.plan.vars import PlannedVar
from profiles_dagster.project.model import Input, Project
from profiles_dagster.sql.compiler import (
    INPUT_ROW_ID,
    RUDDER_ID,
    CompileContext,
    _attributed,
    _graph_key,
    _ids_of,
    _mapped,
    _row_value,
    _typed,
    _var_table,
)
from profiles_dagster.sql.fragments import bind_vars
from profiles_dagster.sql.ids import qualify
from profiles_dagster.sql.literals import timestamp_literal
from profiles_dagster.sql.names import col
from profiles_dagster.sql.stitcher import parse_lookback

_RUN_TIME = re.compile(r"\b(end_time|begin_time)", re.IGNORECASE)


def append_only(inp: Input) -> bool:
    """The input's pb contract declares that rows are only ever added (`is_append_only: true`)."""
    contract = inp.spec.contract
    return bool(contract is not None and contract.is_append_only)


def lookback(project: Project, entity: str) -> timedelta:
    """The look-back an entity's incremental steps re-read: its stitcher's `incremental_timedelta`, else the
    id stitcher setting (pb's 4 days by default), as the stitcher itself uses."""
    stitcher = project.entities[entity].stitcher
    spec = stitcher.spec if stitcher is not None else None
    return parse_lookback((spec.incremental_timedelta if spec else None) or project.settings.id_stitcher.lookback)


def reads_run_time(pv: PlannedVar) -> bool:
    """The var's SQL reads the run's end or begin time (`{{ end_time_sql }}`, `{{ end_time }}`, ...)."""
    spec = pv.var.spec
    texts = [spec.select, spec.where or ""]
    if spec.window:
        texts += [*spec.window.order_by, *spec.window.partition_by, spec.window.frame_clause or ""]
    return any(_RUN_TIME.search(t) for t in texts)


def volatile_vars(vars_: Sequence[PlannedVar]) -> tuple[set[str], str]:
    """Vars without `from:` recomputed on the whole var table every run (they read the run's time, rank across
    profiles, or read such a var), and why the table cannot be incremental at all ('' if it can): a var with
    `from:` that reads the run's time or a var recomputed that way, or a var with pb's `merge:`, whose values
    follow pb's merge rather than a recompute."""
    volatile: set[str] = set()
    for pv in vars_:  # dependency order
        spec = pv.var.spec
        if getattr(spec, "merge", None) is not None and spec.from_:  # the user's own incremental meaning wins
            return volatile, f"entity var '{pv.var.name}' has merge: (pb's merge of the new rows, applied as pb does)"
        moving = reads_run_time(pv) or any(r in volatile for r in pv.refs)
        if spec.from_:
            if moving:
                return volatile, f"entity var '{pv.var.name}' reads rows and the run's time (directly or by a var)"
            continue
        if moving or spec.window:
            volatile.add(pv.var.name)
    return volatile, ""


def reads_column(pv: PlannedVar, column: str) -> bool:
    """The var's SQL names a column (word match, any case): the mapped main id column, say."""
    spec = pv.var.spec
    texts = [spec.select, spec.where or ""]
    if spec.window:
        texts += [*spec.window.order_by, *spec.window.partition_by, spec.window.frame_clause or ""]
    pattern = re.compile(rf"\b{re.escape(column)}\b", re.IGNORECASE)
    return any(pattern.search(t) for t in texts)


def mapped_blocker(payload: MappedPayload, main: str) -> str:
    """Why a mapped table's input vars cannot be recomputed for the touched profiles only ('' if they can)."""
    for pv in payload.vars:
        if reads_run_time(pv):
            return f"input var '{pv.var.name}' reads the run's time"
        window = pv.var.spec.window
        if window and not any(p in (RUDDER_ID, main) for p in window.partition_by):
            return f"input var '{pv.var.name}' has a window not partitioned by the main id"
    return ""


# ---- input var tables ------------------------------------------------------------------------------


def _ts(occurred: str) -> exp.Expr:
    return exp.cast(col(occurred), exp.DataType.build("timestamp"))


def _lit(value: datetime) -> exp.Expr:
    return timestamp_literal(value.replace(microsecond=0) if value.microsecond == 0 else value)


def after(occurred: str, window_start: datetime) -> exp.Expr:
    """Rows the look-back re-reads: after the window start, and those without occurred_at (as the full run
    keeps them)."""
    return exp.or_(exp.GT(this=_ts(occurred), expression=_lit(window_start)), col(occurred).is_(exp.null()))


def at_or_before(occurred: str, window_start: datetime, since: datetime | None = None) -> exp.Expr:
    cond: exp.Expr = exp.LTE(this=_ts(occurred), expression=_lit(window_start))
    if since is not None:
        cond = exp.and_(exp.GT(this=_ts(occurred), expression=_lit(since)), cond)
    return cond


def count(source: exp.Expr, where: exp.Expr | None = None) -> exp.Select:
    query = exp.select(exp.Count(this=exp.Star())).from_(source)
    return query.where(where) if where is not None else query


def input_rows(ctx: CompileContext, name: str, extra: exp.Expr | None = None) -> exp.Select:
    """The input's rows this run reads (its `where:` and time window), optionally narrowed."""
    query = exp.select(exp.Star()).from_(ctx.input_table(name))
    cond = ctx.rows_read(name)
    if extra is not None:
        cond = exp.and_(exp.paren(cond), exp.paren(extra)) if cond is not None else extra
    return query.where(cond) if cond is not None else query


def unseen_rows(
    ctx: CompileContext, name: str, previous: exp.Table, columns: Sequence[str], occurred: str, window_start: datetime
) -> exp.Query:
    """The input's rows after the window start that the previous table does not hold (as a multiset: a row
    added twice is added twice)."""
    cols = [col(c) for c in columns]
    now = exp.select(*cols).from_(input_rows(ctx, name, after(occurred, window_start)).subquery("i"))
    before = exp.select(*(c.copy() for c in cols)).from_(previous.copy()).where(after(occurred, window_start))
    return exp.except_(now, before, distinct=False)


def numbered(rows: exp.Table, offset: int, columns: Sequence[str]) -> exp.Select:
    """New rows with input_row_ids after the previous table's."""
    row_id = exp.Add(this=exp.Window(this=exp.RowNumber()), expression=exp.Literal.number(offset))
    return exp.select(exp.alias_(row_id, INPUT_ROW_ID), *(col(c) for c in columns)).from_(rows.copy())


def rename(source: exp.Table, name: str) -> exp.Alter:
    return exp.Alter(
        this=source.copy(),
        kind="TABLE",
        actions=[exp.AlterRename(this=exp.Table(this=exp.to_identifier(name, quoted=True)))],
    )


def insert(target: exp.Table, query: exp.Query) -> exp.Insert:
    return exp.Insert(this=target.copy(), expression=query)


# ---- what this run's stitching changed ------------------------------------------------------------------


def _same_id(a: str, b: str) -> exp.Expr:
    return exp.and_(
        col("other_id_type", a).eq(col("other_id_type", b)),
        col("other_id", a).eq(col("other_id", b)),
    )


def graph_changes(previous: exp.Table, graph: exp.Table, main: str) -> exp.Select:
    """This run's ids that are new or changed cluster: (new_main, old_main; NULL for a new id). One join of the
    two graphs; what the steps need is read from this small table."""
    return (
        exp.select(exp.alias_(col(main, "n"), "new_main"), exp.alias_(col(main, "p"), "old_main"))
        .from_(graph.copy().as_("n"))
        .join(previous.copy().as_("p"), on=_same_id("p", "n"), join_type="left")
        .where(exp.or_(col(main, "p").is_(exp.null()), exp.NEQ(this=col(main, "p"), expression=col(main, "n"))))
    )


def moved_mains(changes: exp.Table) -> exp.Select:
    """Previous main id -> this run's, where it changed (clusters only grow: one new main per old one)."""
    return (
        exp.select(col("old_main"), col("new_main"))
        .distinct()
        .from_(changes.copy())
        .where(col("old_main").is_(exp.null()).not_())
    )


def regrouped_mains(changes: exp.Table) -> exp.Select:
    """This run's main ids whose members changed: a new id, or an id that was in another cluster."""
    return exp.select(exp.alias_(col("new_main"), "main_id")).distinct().from_(changes.copy())


def _in(value: exp.Expr, mains: exp.Table, column: str = "main_id") -> exp.Expr:
    return in_query(value, exp.select(col(column)).from_(mains.copy()))


def in_query(value: exp.Expr, query: exp.Query) -> exp.Expr:
    """`value IN (query)`."""
    return exp.In(this=value, query=exp.Subquery(this=query))


# ---- the ALL cohort ---------------------------------------------------------------------------------


def all_profiles(previous: exp.Table, moved: exp.Table, regrouped: exp.Table, main: str) -> exp.Query:
    """This run's main ids: the previous ones neither moved nor regrouped (their clusters kept their members
    and main id), and the regrouped ones (every cluster whose members changed, under its main id now). The
    parts are disjoint: no DISTINCT."""
    kept = (
        exp.select(col(main))
        .from_(previous.copy())
        .where(exp.and_(exp.not_(_in(col(main), moved, "old_main")), exp.not_(_in(col(main), regrouped))))
    )
    return exp.union(kept, exp.select(exp.alias_(col("main_id"), main)).from_(regrouped.copy()), distinct=False)


# ---- mapped tables ---------------------------------------------------------------------------------


def mapped_new_mains(
    ctx: CompileContext, step: Step, new_rows: exp.Table, regrouped: exp.Table, main: str
) -> exp.Query:
    """The main ids whose mapped rows are recomputed: those of the input's new rows, and the clusters this
    run's stitching changed."""
    payload = step.payload_as(MappedPayload)
    assert step.entity is not None
    rows = _attributed(ctx, new_rows.copy(), payload.input.ids, step.entity).subquery("a")
    of_rows = exp.select(exp.alias_(col(main), "main_id")).from_(rows).where(col(main).is_(exp.null()).not_())
    return exp.union(of_rows, exp.select(col("main_id")).from_(regrouped.copy()), distinct=True)


def stale(column: exp.Expr, touched: exp.Table, moved: exp.Table) -> exp.Expr:
    """A previous row's main id is stale: its profile is recomputed, or its cluster moved to another main id."""
    return exp.or_(_in(column.copy(), touched), _in(column.copy(), moved, "old_main"))


def rows_after(source: exp.Table, columns: Sequence[str], prev_max: int) -> exp.Select:
    """An input var table's rows added by this run: the last row ids (a range its storage skips to)."""
    return (
        exp.select(*(col(c) for c in columns))
        .from_(source.copy())
        .where(exp.GT(this=col(INPUT_ROW_ID), expression=exp.Literal.number(prev_max)))
    )


def rows_moved(previous: exp.Table, moved: exp.Table, main: str, row_address: str | None = None) -> exp.Select:
    """The previous mapped rows of clusters whose main id moved, as they are. `row_address` (DuckDB's rowid):
    the rows are found by their main id column alone, then read whole by address, instead of reading every
    column of every row."""
    cond = _in(col(main), moved, "old_main")
    if not row_address:
        return exp.select(exp.Star()).from_(previous.copy()).where(cond)
    found = exp.select(col(row_address)).from_(previous.copy()).where(cond)
    address = exp.alias_(col(row_address), MOVED_ROW)  # the rows' addresses too: `delete_moved` deletes by them
    return exp.select(address, exp.Star()).from_(previous.copy()).where(in_query(col(row_address), found))


MOVED_ROW = "_pd_row"  # a moved row's address in the previous table (`rows_moved` with a row address)


def under_new_main(rows: exp.Table, columns: Sequence[str], moved: exp.Table, main: str) -> exp.Select:
    """Mapped rows of moved clusters with their new main id (the table's columns in order): all their other
    values stay (they follow from the row and its main id, which no var reads)."""
    values = [exp.alias_(col("new_main", "m"), main) if c.lower() == main.lower() else col(c, "p") for c in columns]
    return (
        exp.select(*values)
        .from_(rows.copy().as_("p"))
        .join(moved.copy().as_("m"), on=col(main, "p").eq(col("old_main", "m")))
    )


def delete_moved(
    target: exp.Table, moved: exp.Table, main: str, rows: exp.Table | None = None, row_address: str | None = None
) -> exp.Delete:
    """The moved previous table's rows of clusters whose main id moved (added back under the new one). With a row
    address, by the addresses `rows_moved` read (`rows`; the table moved, unmodified since): no second scan of
    the main id column."""
    if rows is not None and row_address:
        found = in_query(col(row_address), exp.select(col(MOVED_ROW)).from_(rows.copy()))
        return exp.Delete(this=target.copy(), where=exp.Where(this=found))
    return exp.Delete(this=target.copy(), where=exp.Where(this=_in(col(main), moved, "old_main")))


def new_rows_mains(target: exp.Table, prev_max: int, regrouped: exp.Table, main: str) -> exp.Query:
    """The main ids of a mapped table's rows added by this run, and the clusters this run's stitching changed."""
    of_rows = (
        exp.select(exp.alias_(col(main), "main_id"))
        .from_(target.copy())
        .where(
            exp.and_(
                exp.GT(this=col(INPUT_ROW_ID), expression=exp.Literal.number(prev_max)),
                col(main).is_(exp.null()).not_(),
            )
        )
    )
    return exp.union(of_rows, exp.select(col("main_id")).from_(regrouped.copy()), distinct=True)


def mapped_redo_rows(
    input_vars: exp.Table,
    columns: Sequence[str],
    previous: exp.Table,
    prev_max: int,
    touched: exp.Table,
    moved: exp.Table,
    main: str,
) -> exp.Query:
    """The input var rows whose mapped row is computed again: every row of a touched profile (read back from
    the previous mapped table, which carries the input var table's columns) and the new ones (the last row
    ids of the input var table: a range its storage skips to)."""
    cols = [col(c) for c in columns]
    again = exp.select(*cols).from_(previous.copy()).where(stale(col(main), touched, moved))
    new = (
        exp.select(*(c.copy() for c in cols))
        .from_(input_vars.copy())
        .where(exp.GT(this=col(INPUT_ROW_ID), expression=exp.Literal.number(prev_max)))
    )
    return exp.union(again, new, distinct=False)


def delete_stale(target: exp.Table, touched: exp.Table, moved: exp.Table, main: str) -> exp.Delete:
    """The moved previous mapped table's rows of touched profiles (and of clusters whose main id moved)."""
    return exp.Delete(this=target.copy(), where=exp.Where(this=stale(col(main), touched, moved)))


def mapped_fresh(ctx: CompileContext, step: Step, redo: exp.Table) -> exp.Query:
    """The mapped query over the input var rows computed again."""
    payload = step.payload_as(MappedPayload)
    return _mapped(step, replace(ctx, materials={**ctx.materials, payload.input_vars: redo}))


def mapped_table(
    ctx: CompileContext, step: Step, previous: exp.Table, redo: exp.Table, touched: exp.Table, moved: exp.Table
) -> exp.Query:
    """The previous mapped rows of untouched profiles, and the mapped query over the rows computed again."""
    payload = step.payload_as(MappedPayload)
    assert step.entity is not None
    main = ctx.project.entities[step.entity].main_id_column
    narrowed = replace(ctx, materials={**ctx.materials, payload.input_vars: redo})
    fresh = _mapped(step, narrowed)
    kept = (
        exp.select(exp.Star())
        .from_(previous.copy())
        .where(exp.or_(col(main).is_(exp.null()), exp.not_(exp.paren(stale(col(main), touched, moved)))))
    )
    return exp.union(kept, fresh, distinct=False)


# ---- var tables ------------------------------------------------------------------------------------


def var_redo_mains(
    base: exp.Table, previous: exp.Table, touched: Sequence[exp.Table], main: str, *, new_members_touched: bool = False
) -> exp.Select:
    """The base's members whose vars are computed again: touched by new rows or stitching, or not in the
    previous table (new profiles, new cohort members). `new_members_touched`: every member the previous table
    lacks is among the touched (an ALL cohort extended from the previous one's members by the regrouped
    profiles), so no anti-join with the previous table is needed."""
    parts: list[exp.Expr] = [_in(col(main, "b"), t) for t in touched]
    if not new_members_touched:
        parts.append(exp.not_(in_query(col(main, "b"), exp.select(col(main)).from_(previous.copy()))))
    return exp.select(col(main, "b")).from_(base.copy().as_("b")).where(exp.or_(*parts))


def var_table(
    ctx: CompileContext,
    step: Step,
    previous: exp.Table,
    redo: exp.Table,
    narrowed_sources: dict[StepKey, exp.Table],
    volatile: set[str],
) -> exp.Query:
    """The var table: recomputed rows for `redo`'s main ids (over their rows only), the previous rows of the
    other members, then the volatile vars computed on all rows, in the table's column order."""
    payload = step.payload_as(VarTablePayload)
    main = ctx.project.entities[payload.entity].main_id_column
    base = ctx.materials[payload.base]
    # a context of its own: the rows attributed to main ids it caches per model are those of the narrowed tables
    narrowed = replace(ctx, materials={**ctx.materials, payload.base: redo, **narrowed_sources}, _model_rows={})
    fresh = _var_table(step, narrowed)
    own = [n for n in payload.declared if n not in volatile]
    fresh_part = exp.select(col(main), *(col(n) for n in payload.inherited), *(col(n) for n in own)).from_(
        fresh.subquery("fresh")
    )
    kept = exp.select(col(main, "p")).from_(previous.copy().as_("p"))
    if payload.inherit_from is not None:  # a cohort's entity vars come from this run's entity var table
        kept = kept.select(*(col(n, "ev") for n in payload.inherited)).join(
            ctx.materials[payload.inherit_from].copy().as_("ev"),
            on=col(main, "p").eq(col(main, "ev")),
            join_type="left",
        )
    kept = kept.select(*(col(n, "p") for n in own)).where(
        exp.and_(
            in_query(col(main, "p"), exp.select(col(main)).from_(base.copy())),
            exp.not_(_in(col(main, "p"), redo, main)),
        )
    )
    query: exp.Query = exp.union(fresh_part, kept, distinct=False)
    by_name = {pv.var.name: pv for pv in payload.vars}
    for n, pv in enumerate(pv for pv in payload.vars if pv.var.name in volatile):
        value = bind_vars(_row_value(pv, ctx), lambda r: col(r))
        query = exp.select(exp.Star(), exp.alias_(value, pv.var.name)).from_(query.subquery(f"layer_{n}"))
    final = [
        col(main),
        *(col(n) for n in payload.inherited),
        *(_typed(col(n), by_name[n], ctx) if n in volatile else col(n) for n in payload.declared),
    ]
    return exp.select(*final).from_(query.subquery("vars"))


def fresh_vars(
    ctx: CompileContext, step: Step, redo: exp.Table, narrowed_sources: dict[StepKey, exp.Table]
) -> exp.Query:
    """The var table's rows of `redo`'s main ids, every var computed over their rows only (the table's columns
    in order). Exact for a var without `from:` only where it reads its own row (no window across profiles)."""
    payload = step.payload_as(VarTablePayload)
    # a context of its own: the rows attributed to main ids it caches per model are those of the narrowed tables
    narrowed = replace(ctx, materials={**ctx.materials, payload.base: redo, **narrowed_sources}, _model_rows={})
    return _var_table(step, narrowed)


def delete_redone(
    target: exp.Table, base: exp.Table, redo: exp.Table, main: str, gone: exp.Table | None = None
) -> exp.Delete:
    """A moved previous var (or feature) table's rows of the profiles computed again, and of those no longer
    members: `gone`'s old_main where the caller knows them, else those not in the base."""
    if gone is not None:
        left = _in(col(main), gone, "old_main")
    else:
        left = exp.not_(in_query(col(main), exp.select(col(main)).from_(base.copy())))
    return exp.Delete(this=target.copy(), where=exp.Where(this=exp.or_(_in(col(main), redo, main), left)))


def projected_rows(source: exp.Table, main: str, columns: Sequence[str], redo: exp.Table) -> exp.Select:
    """Some columns of a var table's rows of the recomputed profiles (a feature table's new rows)."""
    return exp.select(col(main), *(col(c) for c in columns)).from_(source.copy()).where(_in(col(main), redo, main))


def volatile_update(ctx: CompileContext, target: exp.Table, pv: PlannedVar) -> exp.Update:
    """A var without `from:` that reads the run's time, set again on every row from the row's other vars."""
    value = bind_vars(_row_value(pv, ctx), lambda r: col(r))
    typed = _typed(value, pv, ctx)
    if isinstance(typed, exp.Alias):
        typed = typed.this
    return exp.Update(this=target.copy(), expressions=[exp.EQ(this=col(pv.var.name), expression=typed)])


def volatile_rewrite(ctx: CompileContext, target: exp.Table, pv: PlannedVar, column_type: exp.DataType) -> exp.Alter:
    """The same as `volatile_update`, as DuckDB rewrites a column: `ALTER COLUMN ... SET DATA TYPE <its type>
    USING <value>` writes the column anew, where an UPDATE of every row keeps each row's old and new value
    until the commit and makes the next checkpoint rewrite the table (measured: 15 times the checkpoint of
    the column rewrite after the rows of the recomputed profiles were replaced)."""
    value = bind_vars(_row_value(pv, ctx), lambda r: col(r))
    typed = _typed(value, pv, ctx)
    if isinstance(typed, exp.Alias):
        typed = typed.this
    action = exp.AlterColumn(this=col(pv.var.name).this.copy(), dtype=column_type, using=typed)
    return exp.Alter(this=target.copy(), kind="TABLE", actions=[action])


def symmetric_difference(a: exp.Table, b: exp.Table, columns: Sequence[str]) -> exp.Query:
    """The distinct rows whose count differs between `a` and `b` (in one but not the other, or more often in
    one): one aggregation over both, several times faster than two EXCEPT ALL on DuckDB."""
    side = "_pd_side"
    cols = [col(c) for c in columns]

    def rows(t: exp.Table, sign: int) -> exp.Select:
        return exp.select(*(c.copy() for c in cols), exp.alias_(exp.Literal.number(sign), side)).from_(t.copy())

    both = exp.union(rows(a, 1), rows(b, -1), distinct=False).subquery("both_sides")
    return (
        exp.select(*(c.copy() for c in cols))
        .from_(both)
        .group_by(*(c.copy() for c in cols))
        .having(exp.NEQ(this=exp.Sum(this=col(side)), expression=exp.Literal.number(0)))
    )


def ids_of_mains(graph: exp.Table, redo: exp.Table, main: str) -> exp.Select:
    """The ids (type, value) of the profiles computed again."""
    return exp.select(col("other_id_type"), col("other_id")).from_(graph.copy()).where(_in(col(main), redo, main))


def narrowed_model_rows(ctx: CompileContext, name: str, entity: str, ids: exp.Table) -> exp.Select | None:
    """A sql model's rows that belong to the profiles computed again, found by their ids (all of a row's ids
    share one cluster): a scan with a small lookup instead of attributing every row. None: a model whose rows
    name their main id themselves (a rudder_id id)."""
    model = ctx.project.sql_models[name]
    if any(i.entity == entity and i.type == RUDDER_ID for i in model.ids):
        return None
    parts: list[exp.Expr] = []
    for id_, expr in _ids_of(ctx, model.ids, entity):
        value = qualify(_graph_key(ctx, id_, expr, entity), "src")
        known = (
            exp.select(col("other_id")).from_(ids.copy()).where(col("other_id_type").eq(exp.Literal.string(id_.type)))
        )
        parts.append(in_query(value, known))
    if not parts:
        return None
    source = ctx.materials[StepKey.sql_model(name)]
    return exp.select(exp.column(exp.Star(), table="src")).from_(source.copy().as_("src")).where(exp.or_(*parts))


def narrowed_rows(source: exp.Table, redo: exp.Table, main: str) -> exp.Select:
    """A mapped table's rows of the profiles computed again."""
    return exp.select(exp.Star()).from_(source.copy()).where(_in(col(main), redo, main))
