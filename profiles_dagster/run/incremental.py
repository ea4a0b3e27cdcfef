"""Incremental steps of a run: decide whether a step extends its previous material exactly, and do it.

Every decision falls back to the full build, with the reason in the step's stats (`incremental: false`,
`incremental_reason`), when exactness is not certain: no previous material of the same definition, an
upstream rebuilt in full, an input that is not append-only, rows at or before the look-back window that
changed (counted, as the stitcher does), a var that reads rows and the run's time.

How new materials relate to the previous ones:
- an input var table **moves** the previous table to the new material's name and appends the new rows, in one
  transaction with the registry (the previous material is recorded as dropped): nothing is copied, and no
  stable view reads an input var table, so the previous run's views stay complete. A run killed before the
  commit leaves the previous table as it was; killed after it, the next run extends the moved table (it is a
  complete material of its definition) and rebuilds in full what read the old one.
- a mapped table moves the same way, and its rows of the profiles this run's stitching changed (of the touched
  profiles, when an input var's window spans a profile's rows) are deleted and computed again, in the same
  transaction, with the new rows: the other rows are neither read nor written.
- a var table (one row per profile: small) is written anew from the previous rows of the untouched profiles
  and the recomputed ones; the previous table stays until retention drops it. The mapped rows it reads for
  the touched profiles are copied once (one filtered scan of each mapped table; the copy reports their count).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlglot import exp

from profiles_dagster.clock import naive_utc, now_utc
from profiles_dagster.plan.keys import StepKind
from profiles_dagster.plan.payloads import AllPayload, FeaturesPayload, MappedPayload, VarTablePayload
from profiles_dagster.plan.steps import Step, StepKey
from profiles_dagster.plan.vars import PlannedVar
from profiles_dagster.project.model import IdStitcher, Input, SqlModel
from profiles_dagster.run.recording import RunRecord
from profiles_dagster.sql import incremental as inc
from profiles_dagster.sql import registry
from profiles_dagster.sql.compiler import INPUT_ROW_ID, CompileContext, _attributed
from profiles_dagster.sql.dialects import traits_of
from profiles_dagster.sql.increments import Checkpoint, Previous
from profiles_dagster.sql.names import col, table
from profiles_dagster.sql.registry import Status
from profiles_dagster.sql.stitcher import ChangeTables
from profiles_dagster.warehouse.base import Session

log = logging.getLogger("profiles_dagster")

# engines whose incremental steps are checked equal to a full run (EXCEPT ALL, a renamed table in a transaction)
CHECKED_ENGINES = ("duckdb", "postgres")


@dataclass(frozen=True)
class Extended:
    """An input var table this run extended: the rows up to `prev_max` are the previous run's."""

    prev_seq_no: int
    prev_max: int
    new_rows: exp.Table  # scratch: the rows added
    occurred: str  # the input's occurred_at column


@dataclass(frozen=True)
class Patched:
    """A var table this run patched in place: the previous run's rows, less those of `redo`'s profiles and of the
    profiles no longer members, plus `redo`'s recomputed rows; the `volatile` vars set again on every row."""

    prev_seq_no: int
    redo: exp.Table
    gone: exp.Table | None  # (old_main) of the members gone, where known (an extended ALL: the moved main ids)
    base: exp.Table
    volatile: frozenset[str]


@dataclass
class Built:
    """What an incremental build did: (rows, seconds) recorded, and the step's stats."""

    recorded: tuple[int, float] | None
    stats: dict[str, object]


@dataclass
class IncrementalRun:
    """The incremental part of one run (`ProfilesRun` asks it before building each step)."""

    session: Session
    record: RunRecord
    ctx: CompileContext
    seq_no: int
    extended: dict[StepKey, Extended] = field(default_factory=dict)
    touched: dict[StepKey, exp.Table] = field(default_factory=dict)  # mapped step -> its recomputed main ids
    graphs: dict[str, tuple[exp.Table, exp.Table] | None] = field(default_factory=dict)  # (moved, regrouped)
    scratch: list[tuple[exp.Table, bool]] = field(default_factory=list)  # (table or view, is a view)
    written: dict[str, int] = field(default_factory=dict)  # rows of each scratch table, where the engine says
    # ALL cohorts this run extended (its previous members, less the moved, plus the regrouped): -> previous seq_no
    extended_all: dict[StepKey, int] = field(default_factory=dict)
    patched: dict[StepKey, Patched] = field(default_factory=dict)  # var tables this run patched in place

    @property
    def schema(self) -> str:
        return self.record.schema

    # -- helpers --------------------------------------------------------------------------------------

    def _scratch(self, step: Step, suffix: str, query: exp.Query, *, view: bool = False) -> exp.Table:
        """A scratch table (or view) of this run. Where the engine has session-local temporary tables (DuckDB)
        it is one: never written to the database file or its WAL, gone with the session if the run is killed;
        where it has unlogged tables (Postgres) one next to the materials, named as the run's scratch tables so
        cleanup finds a killed run's. A view is temporary wherever the engine has them (DuckDB, Postgres)."""
        name = f"_pd_{step.content_hash}_{self.seq_no}_inc_{suffix}"[:63]
        kind = traits_of(self.session.dialect).scratch_tables
        temporary = kind == "temporary" or (view and kind == "unlogged")
        target = table(name) if temporary else table(name, self.schema)
        # one statement where the engine replaces a leftover itself, else drop it first
        replace = self.session.dialect == "duckdb"
        if not replace:
            self._drop(target, view)
        properties = None
        if kind != "plain":
            prop = exp.TemporaryProperty() if temporary else exp.UnloggedProperty()
            properties = exp.Properties(expressions=[prop])
        create = exp.Create(
            kind="VIEW" if view else "TABLE",
            this=target.copy(),
            expression=query,
            replace=replace,
            properties=properties,
        )
        written = self.session.run_count(create)
        if written is not None and not view:
            self.written[target.name] = written
        self.scratch.append((target, view))
        return target

    def _drop(self, target: exp.Table, view: bool) -> None:
        if view:
            self.session.run(exp.Drop(tables=[target.copy()], kind="VIEW", exists=True))
        else:
            self.session.drop_table(target)

    def _rows(self, scratch: exp.Table) -> int:
        """A scratch table's rows: as its CREATE reported them, else counted."""
        known = self.written.get(scratch.name)
        return known if known is not None else self.session.row_count(scratch)

    def _total_rows(self, scratch: list[exp.Table]) -> int:
        """The rows of scratch tables and views together: those their CREATE reported, the others counted in one
        statement (a view's count reads only the column it filters on)."""
        known = [self.written[t.name] for t in scratch if t.name in self.written]
        counted = [exp.Subquery(this=inc.count(t.copy())) for t in scratch if t.name not in self.written]
        if not counted:
            return sum(known)
        row = self.session.query(self.session.render(exp.select(*counted)))[0]
        return sum(known) + sum(int(v or 0) for v in row)

    def _scalar(self, query: exp.Query) -> object:
        return self.session.query(self.session.render(query))[0][0]

    def _count(self, query: exp.Query) -> int:
        return int(self._scalar(query) or 0)  # type: ignore[call-overload]

    def _counts(self, source: exp.Expr, *wheres: exp.Expr, also: exp.Expr | None = None) -> list[object]:
        """Rows of `source` meeting each condition, in one scan (and `also`, an aggregate, last)."""
        counts = [exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=w)) for w in wheres]
        row = self.session.query(self.session.render(exp.select(*counts, *([also] if also else [])).from_(source)))[0]
        return [int(v or 0) for v in row[: len(wheres)]] + list(row[len(wheres) :])

    def drop_scratch(self) -> None:
        for t, view in reversed(self.scratch):  # views first: they read the tables
            try:
                self._drop(t, view)
            except Exception as exc:  # cleanup drops the run's scratch tables later
                log.warning("could not drop %s: %s", t.name, exc)
        self.scratch.clear()

    def previous(self, key: StepKey) -> Previous | None:
        return self.ctx.increments.of(key)

    # -- entry points ---------------------------------------------------------------------------------

    def build(self, step: Step, target: exp.Table, start: float) -> Built:
        """Build the step incrementally if that is exact (`recorded` set), else say why (`recorded` None)."""
        if self.ctx.increments.full_refresh:
            return Built(None, {"incremental": False, "incremental_reason": "full refresh requested"})
        if self.previous(step.key) is None:
            return Built(None, {"incremental": False, "incremental_reason": "no previous material of this definition"})
        if self.session.dialect not in CHECKED_ENGINES:
            checked = ", ".join(CHECKED_ENGINES)
            reason = f"incremental steps are checked on {checked} so far, not on {self.session.dialect}"
            return Built(None, {"incremental": False, "incremental_reason": reason})
        try:
            if step.kind is StepKind.INPUT_VARS:
                return self._input_vars(step, target, start)
            if step.kind is StepKind.INPUT_VARS_MAPPED:
                return self._mapped(step, target, start)
            if step.kind in (StepKind.ENTITY_VARS, StepKind.COHORT_VARS):
                return self._var_table(step, target, start)
            if step.kind is StepKind.ALL:
                return self._all(step, target, start)
            if step.kind is StepKind.FEATURES:
                return self._features(step, target, start)
        except _InFullError as full:
            return Built(None, {"incremental": False, "incremental_reason": str(full)})
        return Built(None, {"incremental": False, "incremental_reason": "rebuilt from the updated tables it reads"})

    def after_full(self, step: Step, target: exp.Table) -> None:
        """A full input var table of an append-only input records its checkpoint, so the next run can extend."""
        if step.kind is not StepKind.INPUT_VARS:
            return
        inp = step.payload_as(Input)
        occurred = inp.occurred_at_col
        if not (inc.append_only(inp) and occurred and step.entity):
            return
        wm = self._scalar(exp.select(exp.Max(this=inc._ts(occurred))).from_(target.copy()))
        if wm is None:
            return
        watermark = _instant(wm)
        window_start = watermark - inc.lookback(self.ctx.project, step.entity)
        before = self._count(inc.count(target.copy(), inc.at_or_before(occurred, window_start)))
        self._checkpoint(step, target, "full", Checkpoint(watermark, window_start, before, 0, 0))

    def _checkpoint(self, step: Step, target: exp.Table, mode: str, point: Checkpoint) -> None:
        self.session.run(
            registry.insert(
                self.schema,
                registry.STITCHER_STATE,
                {
                    "table_name": target.name,
                    "seq_no": self.seq_no,
                    "project": self.record.project,
                    "step": step.path,
                    "content_hash": step.content_hash,
                    "mode": mode,
                    "watermark": point.watermark,
                    "window_start": point.window_start,
                    "rows_before": point.rows_before,
                    "ids": 0,
                    "clusters": 0,
                    "recorded_at": None,
                },
            )
        )

    # -- input var tables -----------------------------------------------------------------------------

    def _input_vars(self, step: Step, target: exp.Table, start: float) -> Built:
        inp = step.payload_as(Input)
        prev = self.previous(step.key)
        assert prev is not None and step.entity is not None
        occurred = inp.occurred_at_col
        if not inc.append_only(inp):
            raise _InFullError(f"input '{inp.name}' is not declared append-only (contract is_append_only)")
        if not occurred:
            raise _InFullError(f"input '{inp.name}' has no occurred_at_col")
        if inp.spec.app_defaults.csv is not None or inp.spec.app_defaults.s3 is not None:
            raise _InFullError(f"input '{inp.name}' is a file, loaded anew by every run")
        _same_window(self.ctx, prev)
        point = prev.checkpoint
        if point is None or point.window_start is None or point.watermark is None:
            raise _InFullError("the previous table has no checkpoint (or no occurred_at values)")
        source = self.ctx.input_table(inp.name)
        columns = [c for c, _ in self.session.columns(prev.table) if c.lower() != INPUT_ROW_ID]
        now_columns = [c for c, _ in self.session.columns(source)]
        if [c.lower() for c in columns] != [c.lower() for c in now_columns]:
            raise _InFullError(f"the columns of input '{inp.name}' changed since the previous run")
        ws = point.window_start
        # the input's rows at or before the window start and after it, in one scan
        before, read = self._counts(
            inc.input_rows(self.ctx, inp.name).subquery(), inc.at_or_before(occurred, ws), inc.after(occurred, ws)
        )
        if before != point.rows_before:
            raise _InFullError(
                f"rows at or before the look-back window ({ws}) changed: {point.rows_before} at the previous run, "
                f"{before} now (late data older than the look-back, or rows deleted)"
            )
        new_rows = self._scratch(step, "new", inc.unseen_rows(self.ctx, inp.name, prev.table, columns, occurred, ws))
        added = self._rows(new_rows)
        kept_after, top = self._counts(prev.table.copy(), inc.after(occurred, ws), also=exp.Max(this=col(INPUT_ROW_ID)))
        if read != kept_after + added:
            raise _InFullError(f"rows of input '{inp.name}' after the look-back window start were deleted or changed")
        prev_max = int(top or 0)  # type: ignore[call-overload]
        session = self.session
        with session.transaction():
            session.run(inc.rename(prev.table, target.name))
            if added:
                session.run(inc.insert(target, inc.numbered(new_rows, prev_max, columns)))
            session.run(registry.mark_dropped(self.schema, prev.table.name, now_utc()))
            rows = self._count(inc.count(target.copy()))
            new_max = self._scalar(exp.select(exp.Max(this=inc._ts(occurred))).from_(new_rows.copy()))
            watermark = max(point.watermark, _instant(new_max)) if new_max is not None else point.watermark
            window_start = watermark - inc.lookback(self.ctx.project, step.entity)
            if window_start >= ws:
                rows_before = point.rows_before + self._count(
                    inc.count(target.copy(), inc.at_or_before(occurred, window_start, since=ws))
                )
            else:
                rows_before = self._count(inc.count(target.copy(), inc.at_or_before(occurred, window_start)))
            self._checkpoint(step, target, "incremental", Checkpoint(watermark, window_start, rows_before, 0, 0))
            self.record.finish_material(step, Status.COMPLETE, rows, time.perf_counter() - start)
        self.extended[step.key] = Extended(prev.seq_no, prev_max, new_rows, occurred)
        return Built(
            (rows, time.perf_counter() - start),
            {"incremental": True, "rows_read": read, "rows_added": added, "window_start": str(ws)},
        )

    def vouch(self, step: Step) -> Callable[[datetime], bool] | None:
        """For an id stitcher whose edge sources are all input var tables this run extended from the tables its
        previous graph read: whether no row added at or before an instant (so the observations there are the
        previous run's; each input's older rows were counted and its later ones compared row by row)."""
        stitcher = step.payload_as(IdStitcher)
        prev = self.previous(step.key)
        assert step.entity is not None
        extended = [
            self.extended.get(StepKey.input_vars(step.entity, ref.partition("/")[2])) for ref in stitcher.edge_sources
        ]
        if prev is None or stitcher.borrowed_from is not None or not extended:
            return None
        if any(e is None or e.prev_seq_no != prev.seq_no or not e.occurred for e in extended):
            return None

        def unchanged(instant: datetime) -> bool:
            return all(
                self._count(inc.count(e.new_rows.copy(), inc.at_or_before(e.occurred, instant))) == 0
                for e in extended
                if e is not None
            )

        return unchanged

    def added(self, step: Step) -> dict[str, exp.Table] | None:
        """Where `vouch` can vouch: the rows each of the id stitcher's input var tables added in this run, by the
        table's name (its other rows are those its previous graph read): the stitcher reads only these."""
        if self.vouch(step) is None:
            return None
        stitcher = step.payload_as(IdStitcher)
        assert step.entity is not None
        keys = [StepKey.input_vars(step.entity, ref.partition("/")[2]) for ref in stitcher.edge_sources]
        return {self.ctx.materials[key].name: self.extended[key].new_rows for key in keys}

    def change_tables(self, step: Step) -> ChangeTables | None:
        """Where the id stitcher, when it extends the previous graph of this step's definition, writes the
        profiles it changed: the steps after it read them instead of joining the old and the new graph."""
        prev = self.previous(step.key)
        if prev is None or step.entity is None:
            return None
        names = (f"_pd_{step.content_hash}_{self.seq_no}_inc_{s}"[:63] for s in ("moved", "regrouped"))
        moved, regrouped = (table(n, self.schema) for n in names)
        return ChangeTables(prev.table.name, moved, regrouped)

    def stitched(self, step: Step, changes: ChangeTables | None) -> None:
        """The id stitcher ran: the tables of what it changed, if it wrote them, are this run's graph changes."""
        if changes is None or not changes.written or step.entity is None:
            return
        self.scratch += [(changes.moved, False), (changes.regrouped, False)]
        self.graphs[step.entity] = (changes.moved, changes.regrouped)

    # -- the ALL cohort ---------------------------------------------------------------------------------

    def _all(self, step: Step, target: exp.Table, start: float) -> Built:
        """Every main id: the previous ones that did not move, and those of the clusters the stitching changed
        (one read of the previous ALL table instead of a DISTINCT over the whole id graph)."""
        payload = step.payload_as(AllPayload)
        prev = self.previous(step.key)
        assert prev is not None and step.entity is not None
        entity = step.entity
        if payload.id_stitcher != StepKey.id_stitcher(entity) or self._stitcher_prev_seq(entity) != prev.seq_no:
            raise _InFullError("the previous id graph is not the one its previous material read")
        found = self.graphs.get(entity)
        if found is None:
            raise _InFullError("this run's stitching was not incremental: it did not say which profiles changed")
        moved, regrouped = found
        main = self.ctx.project.entities[entity].main_id_column
        query = inc.all_profiles(prev.table, moved, regrouped, main)
        written = self.session.run_count(exp.Create(kind="TABLE", this=target.copy(), expression=query))
        rows = written if written is not None else self.session.row_count(target)
        self.record.finish_material(step, Status.COMPLETE, rows, time.perf_counter() - start)
        self.extended_all[step.key] = prev.seq_no
        return Built(
            (rows, time.perf_counter() - start),
            {"incremental": True, "profiles_changed": self.session.row_count(regrouped)},
        )

    # -- mapped tables --------------------------------------------------------------------------------

    def _graph(self, entity: str) -> tuple[exp.Table, exp.Table]:
        """(moved old->new main ids, regrouped main ids) of this run's stitching against the previous graph."""
        if entity not in self.graphs:
            key = StepKey.id_stitcher(entity)
            prev = self.previous(key)
            found = None
            if prev is not None and key in self.ctx.materials:
                graph = self.ctx.materials[key]
                main = self.ctx.project.entities[entity].main_id_column
                step = self.ctx.plan[key]
                changes = self._scratch(step, "changes", inc.graph_changes(prev.table, graph, main))
                moved = self._scratch(step, "moved", inc.moved_mains(changes))
                regrouped = self._scratch(step, "regrouped", inc.regrouped_mains(changes))
                found = (moved, regrouped)
            self.graphs[entity] = found
        found = self.graphs[entity]
        if found is None:
            raise _InFullError("no previous id graph to compare this run's with")
        return found

    def _stitcher_prev_seq(self, entity: str) -> int | None:
        prev = self.previous(StepKey.id_stitcher(entity))
        return prev.seq_no if prev is not None else None

    def _mapped(self, step: Step, target: exp.Table, start: float) -> Built:
        payload = step.payload_as(MappedPayload)
        prev = self.previous(step.key)
        assert prev is not None and step.entity is not None
        entity = step.entity
        main = self.ctx.project.entities[entity].main_id_column
        if isinstance(payload.input, SqlModel):
            raise _InFullError("a sql model's rows are rebuilt by every run")
        extended = self.extended.get(payload.input_vars)
        if extended is None:
            raise _InFullError(f"its input var table {payload.input_vars.path} was rebuilt in full")
        if extended.prev_seq_no != prev.seq_no or self._stitcher_prev_seq(entity) != prev.seq_no:
            raise _InFullError("the previous tables it read are not those of its previous material")
        blocker = inc.mapped_blocker(payload, main)
        if blocker:
            raise _InFullError(blocker)
        stitcher = self.ctx.project.entities[entity].stitcher
        if stitcher is None or f"inputs/{payload.input.name}" not in stitcher.edge_sources:
            raise _InFullError("its input is not stitched: an old row's id may join the graph in this run")
        moved, regrouped = self._graph(entity)
        iv = self.ctx.materials[payload.input_vars]
        columns = [c for c, _ in self.session.columns(iv)]
        # A previous row's ids are all in the graph (the input is stitched) and share one cluster: its main id
        # changes only when its cluster's main id moved, and its mapped values only with its main id, unless a
        # window spans the profile's rows (which the new rows join) or a var reads the main id column.
        if any(pv.var.spec.window or inc.reads_column(pv, main) for pv in payload.vars):
            return self._mapped_again(step, target, start, prev, extended, iv, columns, moved, regrouped)
        new = self._scratch(step, "new", inc.rows_after(iv, columns, extended.prev_max))
        # the previous rows of clusters whose main id moved, under the new one: deleted and added back rather than
        # updated (DuckDB commits an UPDATE of a text column of a large table by rewriting it: seconds at 10M)
        mapped_columns = [c for c, _ in self.session.columns(prev.table)]
        address = traits_of(self.session.dialect).row_address
        again = self._scratch(step, "moved_rows", inc.rows_moved(prev.table, moved, main, address))
        session = self.session
        with session.transaction():  # the previous table moves here: moved rows replaced, the new rows added
            session.run(inc.rename(prev.table, target.name))
            if self._rows(again):
                session.run(inc.delete_moved(target, moved, main, again, address))
                session.run(inc.insert(target, inc.under_new_main(again, mapped_columns, moved, main)))
            session.run(inc.insert(target, inc.mapped_fresh(self.ctx, step, new)))
            session.run(registry.mark_dropped(self.schema, prev.table.name, now_utc()))
            rows = self._count(inc.count(target.copy()))
            self.record.finish_material(step, Status.COMPLETE, rows, time.perf_counter() - start)
        # the profiles whose vars read other rows now: those of the new rows, and those the stitching regrouped
        touched = self._scratch(step, "touched", inc.new_rows_mains(target, extended.prev_max, regrouped, main))
        self.touched[step.key] = touched
        stats: dict[str, object] = {
            "incremental": True,
            "rows_read": self._rows(new),
            "rows_moved": self._rows(again),  # previous rows whose cluster's main id moved
            "profiles_changed": self._rows(touched),
        }
        return Built((rows, time.perf_counter() - start), stats)

    def _mapped_again(
        self,
        step: Step,
        target: exp.Table,
        start: float,
        prev: Previous,
        extended: Extended,
        iv: exp.Table,
        columns: list[str],
        moved: exp.Table,
        regrouped: exp.Table,
    ) -> Built:
        """A mapped table whose vars read other rows of the profile (a window) or its main id: the rows of the
        touched profiles (those of the new rows, and those this run's stitching changed) are computed again."""
        assert step.entity is not None
        main = self.ctx.project.entities[step.entity].main_id_column
        touched = self._scratch(
            step, "touched", inc.mapped_new_mains(self.ctx, step, extended.new_rows, regrouped, main)
        )
        redo = self._scratch(
            step, "redo", inc.mapped_redo_rows(iv, columns, prev.table, extended.prev_max, touched, moved, main)
        )
        read = self._rows(redo)
        session = self.session
        with session.transaction():  # the previous table moves here: its stale rows replaced by recomputed ones
            session.run(inc.rename(prev.table, target.name))
            session.run(inc.delete_stale(target, touched, moved, main))
            session.run(inc.insert(target, inc.mapped_fresh(self.ctx, step, redo)))
            session.run(registry.mark_dropped(self.schema, prev.table.name, now_utc()))
            rows = self._count(inc.count(target.copy()))
            self.record.finish_material(step, Status.COMPLETE, rows, time.perf_counter() - start)
        self.touched[step.key] = touched
        return Built(
            (rows, time.perf_counter() - start),
            {"incremental": True, "rows_read": read, "profiles_changed": self._rows(touched)},
        )

    # -- var tables -----------------------------------------------------------------------------------

    def _var_table(self, step: Step, target: exp.Table, start: float) -> Built:
        payload = step.payload_as(VarTablePayload)
        prev = self.previous(step.key)
        assert prev is not None
        entity = payload.entity
        main = self.ctx.project.entities[entity].main_id_column
        if self._stitcher_prev_seq(entity) != prev.seq_no:
            raise _InFullError("the previous id graph is not the one its previous material read")
        volatile, blocker = inc.volatile_vars(payload.vars)
        if blocker:
            raise _InFullError(blocker)
        _, regrouped = self._graph(entity)  # old main ids that moved are no members of this run's base
        touched: list[exp.Table] = [regrouped]
        narrowed_keys: list[StepKey] = []
        sources = sorted({pv.var.spec.from_ for pv in payload.vars if pv.var.spec.from_})
        for ref in sources:
            kind, _, name = ref.partition("/")
            mapped_key = StepKey.input_vars_mapped(entity, name)
            if mapped_key in self.touched:
                touched.append(self.touched[mapped_key])
                narrowed_keys.append(mapped_key)
            elif kind == "models" and name in self.ctx.project.sql_models:
                touched.append(self._model_changes(step, name, entity, prev))
            else:
                raise _InFullError(f"it reads {ref}, which was rebuilt in full")
        base = self.ctx.materials[payload.base]
        # the members of an ALL cohort extended from the run the previous var table read are its previous rows
        # and the regrouped profiles (touched): none other is new
        new_touched = self.extended_all.get(payload.base) == prev.seq_no
        redo = self._scratch(
            step, "redo", inc.var_redo_mains(base, prev.table, touched, main, new_members_touched=new_touched)
        )
        # views: the var table's query reads only the columns its vars use, where a copy would write them all
        narrowed = {
            k: self._scratch(step, f"rows_{n}", inc.narrowed_rows(self.ctx.materials[k], redo, main), view=True)
            for n, k in enumerate(narrowed_keys)
        }
        models = [name for kind, _, name in (r.partition("/") for r in sources) if kind == "models"]
        graph = self.ctx.materials.get(StepKey.id_stitcher(entity))
        if models and graph is not None:  # a model's rows of the touched profiles, found by their ids
            ids = self._scratch(step, "ids", inc.ids_of_mains(graph, redo, main))
            for name in models:
                rows = inc.narrowed_model_rows(self.ctx, name, entity, ids)
                key = StepKey.sql_model(name)
                if rows is not None and StepKey.input_vars_mapped(entity, name) not in self.ctx.materials:
                    narrowed[key] = self._scratch(step, f"model_rows_{name}", rows)
        read = self._total_rows(list(narrowed.values()))
        by_name = {pv.var.name: pv for pv in payload.vars}
        patched = payload.inherit_from is None and not any(by_name[n].var.spec.window for n in volatile)
        if patched:
            # Patched in place: the previous table moves here (no stable view reads a var table), the rows of the
            # recomputed profiles and of those no longer members replaced, the vars that read the run's time
            # set again row by row. A cohort's var table inherits the entity's (changed) values on every row,
            # and a var ranking across profiles needs every row: those are written anew.
            session = self.session
            gone = self._graph(entity)[0] if new_touched else None  # the moved main ids left an extended ALL
            with session.transaction():
                session.run(inc.rename(prev.table, target.name))
                session.run(inc.delete_redone(target, base, redo, main, gone))
                session.run(inc.insert(target, inc.fresh_vars(self.ctx, step, redo, narrowed)))
                self._set_volatile(target, payload.vars, volatile)
                session.run(registry.mark_dropped(self.schema, prev.table.name, now_utc()))
                rows = self._count(inc.count(target.copy()))
                self.record.finish_material(step, Status.COMPLETE, rows, time.perf_counter() - start)
            self.patched[step.key] = Patched(prev.seq_no, redo, gone, base, frozenset(volatile))
        else:
            query = inc.var_table(self.ctx, step, prev.table, redo, narrowed, volatile)
            written = self.session.run_count(exp.Create(kind="TABLE", this=target.copy(), expression=query))
            rows = written if written is not None else self.session.row_count(target)
            self.record.finish_material(step, Status.COMPLETE, rows, time.perf_counter() - start)
        return Built(
            (rows, time.perf_counter() - start),
            {
                "incremental": True,
                "rows_read": read,
                "profiles_changed": self._rows(redo),
                "recomputed_on_all_profiles": ", ".join(sorted(volatile)) or "none",
                "patched_in_place": patched,
            },
        )

    def _set_volatile(self, target: exp.Table, vars_: Sequence[PlannedVar], volatile: set[str]) -> None:
        """Set the vars that read the run's time again on every row, in dependency order: on DuckDB each
        column is written anew (an UPDATE of every row costs its checkpoint a rewrite of the table)."""
        if not volatile:
            return
        rewrite = self.session.dialect == "duckdb"
        types = {c.lower(): t for c, t in self.session.columns(target)} if rewrite else {}
        for pv in vars_:
            if pv.var.name not in volatile:
                continue
            if rewrite:
                column_type = exp.DataType.build(types[pv.var.name.lower()], dialect="duckdb")
                self.session.run(inc.volatile_rewrite(self.ctx, target, pv, column_type))
            else:
                self.session.run(inc.volatile_update(self.ctx, target, pv))

    # -- feature tables -------------------------------------------------------------------------------

    def _features(self, step: Step, target: exp.Table, start: float) -> Built:
        """The is_feature columns of a var table this run patched, patched the same way: the previous table moves
        here (no stable view reads a feature table) and the recomputed profiles' rows are replaced. A feature
        that reads the run's time changes on every row: the table is then written anew from the var table."""
        payload = step.payload_as(FeaturesPayload)
        prev = self.previous(step.key)
        assert prev is not None and step.entity is not None
        patch = self.patched.get(payload.entity_vars)
        if patch is None or patch.prev_seq_no != prev.seq_no:
            raise _InFullError("its var table was written anew: rebuilt from it")
        main = self.ctx.project.entities[step.entity].main_id_column
        var_table = self.ctx.materials[payload.entity_vars]
        moving = [f for f in payload.features if f in patch.volatile]
        if moving:
            # every row changes: copying the var table's columns into each row (an UPDATE of every row) costs
            # more than writing the table anew from the var table, and its checkpoint rewrites the table
            raise _InFullError(
                f"features reading the run's time ({', '.join(moving)}) change on every row: written anew from "
                "the patched var table"
            )
        session = self.session
        with session.transaction():
            session.run(inc.rename(prev.table, target.name))
            session.run(inc.delete_redone(target, patch.base, patch.redo, main, patch.gone))
            session.run(inc.insert(target, inc.projected_rows(var_table, main, payload.features, patch.redo)))
            session.run(registry.mark_dropped(self.schema, prev.table.name, now_utc()))
            rows = self._count(inc.count(target.copy()))
            self.record.finish_material(step, Status.COMPLETE, rows, time.perf_counter() - start)
        return Built(
            (rows, time.perf_counter() - start),
            {"incremental": True, "profiles_changed": self._rows(patch.redo), "patched_in_place": True},
        )

    def _model_changes(self, step: Step, name: str, entity: str, prev_vars: Previous) -> exp.Table:
        """Main ids (this run's graph) of the sql model's rows that differ from the previous run's model table."""
        key = StepKey.sql_model(name)
        prev = self.previous(key)
        if prev is None or prev.seq_no != prev_vars.seq_no or key not in self.ctx.materials:
            raise _InFullError(f"no previous table of sql model '{name}' to compare with")
        now = self.ctx.materials[key]
        columns = [c for c, _ in self.session.columns(now)]
        if [c.lower() for c in columns] != [c.lower() for c, _ in self.session.columns(prev.table)]:
            raise _InFullError(f"the columns of sql model '{name}' changed since the previous run")
        diff = inc.symmetric_difference(now, prev.table, columns)
        model = self.ctx.project.sql_models[name]
        main = self.ctx.project.entities[entity].main_id_column
        rows = _attributed(self.ctx, diff.subquery("src"), model.ids, entity).subquery("a")
        return self._scratch(
            step,
            f"model_{name}",
            exp.select(exp.alias_(col(main), "main_id")).distinct().from_(rows).where(col(main).is_(exp.null()).not_()),
        )


class _InFullError(Exception):
    """The step is built in full; the message says why."""


def _same_window(ctx: CompileContext, prev: Previous) -> None:
    if ctx.begin_time is not None or prev.begin_time is not None:
        raise _InFullError("a run with a begin time reads another window of rows")
    if prev.end_time is None or prev.end_time > ctx.end_time:
        raise _InFullError("the previous run read up to a later end time")


def _instant(value: object) -> datetime:
    """A timestamp the warehouse returned (never NULL here), as the registry keeps times: naive UTC."""
    instant = naive_utc(value)
    assert instant is not None
    return instant
