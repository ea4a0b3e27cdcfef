"""In-warehouse id stitcher: connected components of the id graph, in SQL, full or incremental.

Why this shape: the identity graph can be huge, so it never leaves the warehouse (Python only
sees counts). All SQL is built as sqlglot expressions and rendered for the session's dialect: one
algorithm for every engine. Components are found by randomized contraction with pointer jumping,
so the number of rounds grows roughly with log(graph size), not with the length of the longest
chain (label propagation, what most SQL stitchers do, needs one pass per hop and stops early).

**Encoding.** The observations arrive one row per input row, its ids in slots (read in place where they
are plain projections of tables, else the input's query, filters and all, read once into a scratch table).
Distinct ``(other_id_type, other_id)`` get dense integer node numbers (the numbering is arbitrary: nothing in
the result depends on it) and their sighting count; the rows with two or more ids look each slot's id up once
(by value alone where the slot holds one id type; the lookup brings the id's first_seen_at and count along)
and become a star of edges from their hub, the id of least first-round priority (the most-seen id, a hash
among equals), a LEAST across the row's slots (same connectivity as the full clique, fewer edges; no
grouping of ids by row). From here to the
main ids, only integers move.

**One contraction round**, on an integer edge table ``E(u, v)`` (``u < v``, distinct):

1. every node gets a pseudo-random priority key (an integer hash of node and round number,
   packed with the node so that ``MIN`` picks a unique node);
2. ``m1(x)`` = min key over the closed neighbourhood of ``x``; ``m2(x)`` = min of ``m1`` over
   the neighbours of ``x`` (= min key within two hops: stars collapse in one round, chains
   shrink about 5x);
3. ``x`` points to the node of ``m2(x)``: priorities strictly decrease along pointers, so they
   form a forest; pointer jumping finds each tree's root, re-joining only the nodes whose
   parent is not a root yet;
4. edges are relabelled by root, self-loops dropped, deduplicated; the node -> root map is kept.

The first round of a full run is cheaper: each linked id points to the least-priority hub of the
rows it is on (1-hop contraction on the rows' cliques), a ``MIN`` the encoding computes anyway, so it
costs pointer jumping and a relabel but none of the round's two aggregations over the edges.

When no edges remain, the per-round maps are composed from the last round back to the first, in one
statement.

**Main ids** follow pb: the cluster member with the earliest ``first_seen_at`` (NULL last; ties:
the smaller hash) gives ``'rid' || hash``. **valid_at** is the earliest occurred_at of a row that
links the id with another one (its first_seen_at if it was never linked).

**Incremental runs.** A run can start from the previous run's stitcher table (same definition) and
its checkpoint (newest occurred_at stitched, and the look-back window start the next run re-reads
from). Only rows with an observation newer than the window start (or without occurred_at) are read
(an observation, one id named on a row, is what is counted); previous clusters touched by them are
contracted to super-nodes, components are found on the small graph of the new edges, and only the
affected clusters get their main id recomputed: the member with the earliest first_seen_at among the
old main id's member and the ids seen again or new. Everything else is copied. Because min() is
idempotent, re-reading the window is harmless, and the result equals a full recompute exactly,
provided no observation at or before the window start appeared since the previous run. That is
checked with one count (the number of observations at or before the window start, stored with the
checkpoint): if it moved, the run is a full one and says why.

What the count cannot see, and so needs a full refresh (``profiles-dagster run --full-refresh``):
a late row that replaces a deleted one of the same age (the count stays), and rows deleted from
an input (an incremental run never forgets an id; inputs are assumed to be append-only, as pb
does). Observations without occurred_at are re-read by every run (an input without
occurred_at_col is stitched in full each time). When the run vouches for the older rows and names the
rows each input var table added (it extended them), only those are read: no window, no count.

**Writing the new table.** On DuckDB (views bind to names, DDL is transactional) the previous table is
renamed to the new one and patched: the rows of profiles whose main id moved and of ids whose times moved
are deleted and added back, the new ids added; the previous name becomes a view of the previous rows (the
new table less the ids changed or added, plus their old rows, kept in an ``_undo`` table), so the stable
view reads on until the run publishes. Elsewhere the whole new table is written (the previous table stays
as it is): the previous rows get their new main ids by a join on the old main id (few rows to look up) and
the new times of ids seen again by a join on (type, id).

**Health figures** (profile size histograms, ids of a type per profile, the largest profiles) are kept with
the checkpoint and updated from the profiles the run touched (`_health_delta`), not from a scan.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from profiles_dagster.clock import now_utc
from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.steps import Step
from profiles_dagster.project.model import IdStitcher, Project
from profiles_dagster.sql import registry, stitcher_health
from profiles_dagster.sql.dialects import ByteOrderedText, EngineTraits, Sha1Hex, traits_of
from profiles_dagster.sql.literals import timestamp_literal
from profiles_dagster.sql.names import table

if TYPE_CHECKING:  # sql/ runs no SQL itself: the session is the warehouse layer's, passed in
    from profiles_dagster.warehouse.base import Session

__all__ = [
    "ChangeTables",
    "Checkpoint",
    "PreviousGraph",
    "StitcherRoundLimitError",
    "StitcherStats",
    "checkpoint_record",
    "find_previous",
    "keep_previous_readable",
    "main_id_expression",
    "parse_lookback",
    "run_stitcher",
    "run_stitcher_step",
    "stats_metadata",
]

log = logging.getLogger("profiles_dagster")

_UUID_SALT = "fe971b24-9572-4005-b22f-351e9c09274d"

# Priority hash parameters. All arithmetic stays below 2**63 so it is exact in
# every warehouse's BIGINT / INT64 / NUMBER: operands of each product are < 2**31.
_PRIME = 2147483647  # 2**31 - 1
_MUL = 1103515245
_PACK = 4294967296  # 2**32: key = priority * 2**32 + node; node ids must be < 2**32
_SEEN_BUCKETS = 1023  # first-round priority: (1023 - min(sightings, 1023)) * 2**21 + hash % 2**21 < 2**31
_SEEN_SPAN = 2097152  # 2**21


@dataclass(frozen=True)
class Checkpoint:
    """What a stitcher table remembers for the next incremental run (kept in the run registry)."""

    watermark: datetime | None  # newest occurred_at stitched (None: no observation had one)
    window_start: datetime | None  # the next run re-reads observations after this (watermark - look-back)
    rows_before: int  # observations at or before window_start: if this count moves, late rows arrived
    ids: int  # rows of the stitcher table
    clusters: int  # distinct main ids


@dataclass(frozen=True)
class PreviousGraph:
    """The latest complete stitcher table of the same definition, and its checkpoint."""

    table: exp.Table
    checkpoint: Checkpoint
    health: stitcher_health.Health | None = None  # its health figures, which an incremental run updates


@dataclass
class ChangeTables:
    """Where an incremental stitch writes what it changed, for the incremental steps after it
    (`run/incremental.py`), which would otherwise join the old and the new graph to find it: `moved` (old_main,
    new_main) for previous profiles whose main id changed, `regrouped` (main_id) for this run's profiles whose
    members changed (a new id, or the ids of a moved profile). Written only by a stitch that extends the table
    named `previous`; `written` says whether it was."""

    previous: str
    moved: exp.Table
    regrouped: exp.Table
    written: bool = False


@dataclass(frozen=True)
class StitcherStats:
    """Counts describing one stitcher run."""

    rounds: int  # contraction rounds run
    ids: int  # rows of the stitcher table (distinct ids)
    edges: int  # distinct pairs of ids seen on one input row (incremental: in the observations read)
    clusters: int  # profiles (distinct main ids)
    mode: str = "full"  # "full" or "incremental"
    internal_edges: int = 0  # edges the components start from: stars of the rows (incremental: contracted)
    reason: str = ""  # why this run is a full one
    observations: int = 0  # observations read (incremental: the new ones and the look-back window, or the added ones)
    new_ids: int = 0  # ids not in the previous table (full run: all)
    changed_main_ids: int = 0  # previous profiles whose main id changed (incremental)
    round_edges: tuple[int, ...] = ()  # edges left after each round
    seconds: tuple[tuple[str, float], ...] = field(default=(), compare=False)  # time per phase
    checkpoint: Checkpoint | None = field(default=None, compare=False)
    # the table's health, updated from the previous one (None: not known without a scan of the table)
    health: stitcher_health.Health | None = field(default=None, compare=False)


class StitcherRoundLimitError(RuntimeError):
    """Raised when edges remain after ``max_rounds`` contraction rounds."""


# --------------------------------------------------------------------------- helpers


def _num(value: int) -> exp.Expr:
    return exp.Literal.number(value)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def _eq(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return exp.EQ(this=a, expression=b)


def _as(table: exp.Table | exp.Query, alias: str) -> exp.Expr:
    """A table or query usable in FROM/JOIN under ``alias``."""
    if isinstance(table, exp.Query):
        return table.copy().subquery(alias)
    return exp.alias_(table.copy(), alias, table=True)


def _is_null(value: exp.Expr) -> exp.Expr:
    return exp.Is(this=value, expression=exp.null())


def _not_null(value: exp.Expr) -> exp.Expr:
    return exp.Not(this=_is_null(value))


def _mod(this: exp.Expr, modulus: int) -> exp.Expr:
    return exp.Mod(this=exp.paren(this, copy=False), expression=_num(modulus))


def _mul(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return exp.Mul(this=exp.paren(a, copy=False), expression=exp.paren(b, copy=False))


def _add(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return exp.Add(this=a, expression=b)


def _case_pick(cond: exp.Expr, a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return exp.Case(ifs=[exp.If(this=cond, true=a)], default=b)


def _least(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    """LEAST for non-NULL operands; CASE avoids per-dialect LEAST NULL semantics."""
    return _case_pick(exp.LT(this=a, expression=b), a, b.copy())


def _greatest(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return _case_pick(exp.GT(this=a, expression=b), a, b.copy())


def _min_present(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    """The smaller of two values ignoring NULLs (as MIN() does over a column)."""
    return exp.Case(
        ifs=[
            exp.If(this=_is_null(a.copy()), true=b.copy()),
            exp.If(this=_is_null(b.copy()), true=a.copy()),
            exp.If(this=exp.LT(this=a.copy(), expression=b.copy()), true=a.copy()),
        ],
        default=b.copy(),
    )


def _differs(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    """``a IS DISTINCT FROM b``, spelled so every engine has it."""
    same = exp.or_(_eq(a.copy(), b.copy()), exp.and_(_is_null(a.copy()), _is_null(b.copy())))
    return _eq(_case_pick(same, _num(0), _num(1)), _num(1))  # a = NULL is NULL, not false: CASE settles it


def _timestamp(value: datetime) -> exp.Expr:
    return timestamp_literal(value)


def _as_datetime(value: object) -> datetime | None:
    """A timestamp as the warehouse returned it, as naive UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):  # a date
        value = datetime(value.year, value.month, value.day)  # type: ignore[attr-defined]
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _prefix32(value: exp.Expr) -> exp.Expr:
    return exp.Substring(this=value, start=_num(1), length=_num(32))


def main_id_expression(other_id: exp.Expr, other_id_type: exp.Expr) -> exp.Expr:
    """pb-compatible main id of an id:
    ``'rid' || left(sha1(left(sha1(SALT || other_id), 32) || other_id_type), 32)``, ``sha1`` being the
    lowercase hex text of SHA-1 (`Sha1Hex`), which each engine's dialect spells its own way. Every collation
    orders such ids as their bytes (`ByteOrderedText`: the main id column sorts fast on Postgres)."""
    inner = _prefix32(Sha1Hex(this=exp.DPipe(this=exp.Literal.string(_UUID_SALT), expression=other_id, safe=True)))
    outer = _prefix32(Sha1Hex(this=exp.DPipe(this=inner, expression=other_id_type, safe=True)))
    return ByteOrderedText(this=exp.DPipe(this=exp.Literal.string("rid"), expression=outer, safe=True))


def _priority_key(node: exp.Expr, round_no: int, seen: exp.Expr | None = None) -> exp.Expr:
    """Pseudo-random, deterministic priority of ``node`` in round ``round_no``,
    packed as ``priority * 2**32 + node`` so MIN() over keys names one node.

    A cubic polynomial mod 2**31-1 whose coefficients (all of them, including
    the leading one) change per round: an affine hash alone is a Weyl sequence
    on consecutive ids, whose regular pattern would slow down chains. In
    simulation this contracts like true random priorities, and the SQL only
    repeats the node column, not nested subexpressions.

    With ``seen`` (the first round: how many observations name the id), ids seen more often come first:
    a row's hub is its most-seen id, so a star (a shared device and its thousands of users) collapses into
    its centre in the first round, where random priorities make half its leaves hubs of their own rows
    (each a root, left for a second round as big as the star). Among ids seen as often, the hash decides.
    """
    node = exp.cast(node, "BIGINT")
    mul = (_MUL + round_no * 2246822519) % _PRIME or 1  # per round, or rounds correlate
    salt1 = (round_no * 2654435761 + 0x7F4A7C15) % _PRIME
    salt2 = (round_no * 40503 + 977) % _PRIME
    salt3 = (round_no * 69069 + 1) % _PRIME
    linear = _mod(_add(_mul(_mod(node, _PRIME), _num(mul)), _num(salt1)), _PRIME)
    square = _mod(_add(_mul(_mod(node.copy(), _PRIME), _mod(node.copy(), _PRIME)), _num(salt2)), _PRIME)
    priority = _mod(_add(_mul(linear, square), _num(salt3)), _PRIME)
    if seen is not None:  # sightings first (fewer sightings: a higher bucket), the hash within a bucket
        bucket = _case_pick(
            exp.GT(this=seen, expression=_num(_SEEN_BUCKETS)),
            _num(0),
            exp.Sub(this=_num(_SEEN_BUCKETS), expression=seen.copy()),
        )
        priority = _add(_mul(bucket, _num(_SEEN_SPAN)), _mod(priority, _SEEN_SPAN))
    return _add(_mul(priority, _num(_PACK)), node.copy())


def _decode_key(key: exp.Expr) -> exp.Expr:
    return _mod(key, _PACK)


def _numbering(traits: EngineTraits, order: list[str], offset: int = 0) -> exp.Expr:
    """Dense numbers 1.. (+ offset) for the rows of a query: without a global sort where the engine allows."""
    window = exp.Window(this=exp.RowNumber())
    if not traits.empty_over_numbering:  # the engine demands an order: id order
        window.set("order", exp.Order(expressions=[exp.Ordered(this=_col(c)) for c in order]))
    return _add(window, _num(offset)) if offset else window


_ANALYZE_MIN_ROWS = 10_000  # smaller scratch tables go without planner statistics


class _Scratch:
    """Names, creates and drops scratch tables (next to the target, or temporary); times the phases."""

    def __init__(self, session: Session, target: exp.Table, prefix: str) -> None:
        self.session = session
        self.dialect = session.dialect
        self.traits = traits_of(session.dialect)
        self.kind = self.traits.scratch_tables  # see EngineTraits.scratch_tables
        self.temporary = self.kind == "temporary"
        self.db = None if self.temporary else target.args.get("db")
        self.catalog = None if self.temporary else target.args.get("catalog")
        self.prefix = prefix
        self.live: list[str] = []
        self.written: dict[str, int] = {}  # rows each scratch table was created with, where the engine says
        self.phases: dict[str, float] = {}
        self._phase: tuple[str, float] | None = None

    def phase(self, name: str | None) -> None:
        """Start timing phase ``name`` (None: stop)."""
        now = time.perf_counter()
        if self._phase is not None:
            label, started = self._phase
            self.phases[label] = self.phases.get(label, 0.0) + now - started
        self._phase = (name, now) if name else None

    def seconds(self) -> tuple[tuple[str, float], ...]:
        self.phase(None)
        return tuple((k, round(v, 3)) for k, v in self.phases.items())

    def table(self, suffix: str) -> exp.Table:
        db = self.db.copy() if isinstance(self.db, exp.Expression) else self.db
        catalog = self.catalog.copy() if isinstance(self.catalog, exp.Expression) else self.catalog
        return exp.Table(this=exp.to_identifier(f"{self.prefix}_{suffix}", quoted=True), db=db, catalog=catalog)

    def run(self, statement: exp.Expr) -> None:
        self.session.execute(statement.sql(dialect=self.dialect))

    def row(self, query: exp.Query) -> tuple[Any, ...]:
        rows = self.session.query(query.sql(dialect=self.dialect))
        return tuple(rows[0]) if rows else ()

    def scalar(self, query: exp.Query) -> int:
        row = self.row(query)
        return int(row[0] or 0) if row else 0

    def create(self, suffix: str, query: exp.Query) -> exp.Table:
        table = self.table(suffix)
        if suffix in self.live or not self.temporary:  # a killed run may have left a table of this name
            self.drop(suffix)
        self.live.append(suffix)
        properties = None
        if self.kind != "plain":
            prop = exp.TemporaryProperty() if self.temporary else exp.UnloggedProperty()
            properties = exp.Properties(expressions=[prop])
        self.run(exp.Create(kind="TABLE", this=table, expression=query, properties=properties))
        written = self.session.written  # the CREATE's own row count, where the engine says (DuckDB, Postgres)
        if written is not None:
            self.written[table.name] = written
        # Postgres plans joins on a fresh table blind without statistics; a small one it overestimates, harmlessly
        if written is None or written >= _ANALYZE_MIN_ROWS:
            self.session.analyze(table)
        return table

    def rows(self, table: exp.Table) -> int:
        """Rows of a scratch table: from its CREATE where the engine reported them, else counted."""
        known = self.written.get(table.name)
        return known if known is not None else self.scalar(_count(table))

    def drop(self, *suffixes: str) -> None:
        for suffix in suffixes:
            self.run(exp.Drop(kind="TABLE", exists=True, tables=[self.table(suffix)]))
            if suffix in self.live:
                self.live.remove(suffix)

    def drop_all(self) -> None:
        """Best effort: a failing drop must not hide the original error."""
        for suffix in list(reversed(self.live)):
            with contextlib.suppress(Exception):
                self.drop(suffix)


def _count(table: exp.Table | exp.Query, where: exp.Expr | None = None) -> exp.Query:
    query = sqlglot.select(exp.Count(this=exp.Star())).from_(_as(table, "c"))
    return query.where(where) if where is not None else query


# ------------------------------------------------------------ connected components

# (scratch, edges table, max_rounds=) -> (labels query selecting (x, p) or None, rounds, edges left per round)
Components = Callable[..., tuple[exp.Query | None, int, tuple[int, ...]]]


def _parts(parts: list[tuple[str, bool]], scratch: _Scratch, with_flag: bool = False) -> exp.Query:
    """UNION ALL of pointer tables: (suffix, only rows with f = 0) -> columns x, p (and f)."""
    selects: list[exp.Query] = []
    for suffix, done_only in parts:
        columns = ["x", "p", "f"] if with_flag else ["x", "p"]
        query: exp.Query = sqlglot.select(*columns).from_(scratch.table(suffix))
        if done_only:
            query = query.where(_eq(_col("f"), _num(0)))
        selects.append(query)
    union = selects[0]
    for query in selects[1:]:
        union = exp.union(union, query, distinct=False)
    return union


def _pointer_jump(scratch: _Scratch, suffix: str) -> list[tuple[str, bool]]:
    """Replace each parent by its root (pointer doubling); returns the map's parts.

    Table ``suffix`` has ``(x, p, f)`` where ``f = 1`` means "p may not be a root". A jump sets
    ``p(a) := p(p(a))`` and ``f(a) := f(p(a))`` (exact: roots are fixed points). Only nodes
    with ``f = 1`` jump: each step writes the still-pending nodes to a new table and looks
    parents up in the union of what is settled and what is pending. A step writes as many rows as the
    previous table has pending ones: the step that writes none ends the jumping, with no count of its own
    (where the engine reports the rows a statement wrote).
    """
    settled: list[tuple[str, bool]] = []
    current = suffix
    step = 0
    while True:
        step += 1
        lookup = _parts([*settled, (current, False)], scratch, with_flag=True)
        pending = sqlglot.select("x", "p").from_(scratch.table(current)).where(_eq(_col("f"), _num(1)))
        nxt = f"{suffix}_j{step}"
        table = scratch.create(
            nxt,
            sqlglot.select(_col("x", "a"), _col("p", "b"), _col("f", "b"))
            .from_(_as(pending, "a"))
            .join(_as(lookup, "b"), on=_eq(_col("p", "a"), _col("x", "b"))),
        )
        if scratch.rows(table) == 0:  # nothing was pending: the empty table stays until the scratch is dropped
            return [*settled, (current, False)]
        settled.append((current, True))
        current = nxt


def _contract(scratch: _Scratch, edges: exp.Table, round_no: int, tag: str) -> list[tuple[str, bool]]:
    """One round: every node points to the node of least priority within two hops, then pointer
    jumping. Returns the parts of the node -> root map."""
    directed = exp.union(
        sqlglot.select(exp.alias_(_col("u"), "a"), exp.alias_(_col("v"), "b")).from_(edges.copy()),
        sqlglot.select(exp.alias_(_col("v"), "a"), exp.alias_(_col("u"), "b")).from_(edges.copy()),
        distinct=False,
    )
    # m1(x): min key over the closed neighbourhood of x.
    grouped = (
        sqlglot.select(
            exp.alias_(_col("a", "d"), "x"),
            exp.alias_(_priority_key(_col("a", "d"), round_no), "kx"),
            exp.alias_(exp.Min(this=_priority_key(_col("b", "d"), round_no)), "kn"),
        )
        .from_(directed.subquery("d"))
        .group_by(_col("a", "d"))
    )
    m1 = scratch.create(
        f"{tag}m1_{round_no}",
        sqlglot.select("x", exp.alias_(_least(_col("kx"), _col("kn")), "k")).from_(grouped.subquery("g")),
    )
    # m2(x) = min of m1 over the open neighbourhood: the min key within two
    # hops (m1(x) itself is never smaller, since x has a neighbour). The
    # two-hop reach collapses stars in one round and shrinks chains 5x.
    parents = f"{tag}pt_{round_no}"
    parent = _decode_key(exp.Min(this=_col("k", "m")))
    scratch.create(
        parents,
        sqlglot.select(
            exp.alias_(_col("a", "d"), "x"),
            exp.alias_(parent, "p"),
            exp.alias_(_case_pick(exp.NEQ(this=parent.copy(), expression=_col("a", "d")), _num(1), _num(0)), "f"),
        )
        .from_(directed.subquery("d"))
        .join(_as(m1, "m"), on=_eq(_col("b", "d"), _col("x", "m")))
        .group_by(_col("a", "d")),
    )
    scratch.drop(f"{tag}m1_{round_no}")
    return _pointer_jump(scratch, parents)


def _connected_components(
    scratch: _Scratch,
    edges: exp.Table,
    *,
    max_rounds: int,
    tag: str = "",
    on_round: Callable[[int, int], None] | None = None,
    first: str | None = None,
) -> tuple[exp.Query | None, int, tuple[int, ...]]:
    """Label every node of the integer edge table ``edges(u, v)`` (u < v,
    distinct, no self-loops) with its component root.

    ``first`` names a scratch table of pointers ``(x, p, f)`` for every node with an edge, made as
    a round makes them: it stands in for the first round's two aggregations (the encoding gets such
    pointers for free).

    Returns ``(labels, rounds, edges left per round)``: ``labels`` selects ``(x, p)`` for every
    node that has an edge (nodes without edges are their own roots), or is ``None`` if there are
    no edges. ``edges`` is left in place; the tables ``labels`` reads stay until ``drop_all``.
    """
    remaining = scratch.rows(edges)
    if remaining == 0:
        return None, 0, ()
    current_edges = edges
    current_suffix: str | None = None  # suffix of edges owned by this function
    maps: list[list[tuple[str, bool]]] = []
    left: list[int] = []
    round_no = 0
    while remaining > 0:
        if round_no >= max_rounds:
            raise StitcherRoundLimitError(
                f"id stitcher did not converge within max_rounds={max_rounds}: "
                f"{remaining} edges left after {round_no} rounds (raise id_stitcher.max_rounds in "
                "profiles_dagster.yaml)"
            )
        round_no += 1
        if round_no == 1 and first is not None:
            parts = _pointer_jump(scratch, first)
        else:
            parts = _contract(scratch, current_edges, round_no, tag)
        maps.append(parts)
        # Relabel edges by root; drop self-loops; dedupe.
        ru, rv = _col("p", "ru"), _col("p", "rv")
        next_suffix = f"{tag}edges_r{round_no}"
        scratch.create(
            next_suffix,
            sqlglot.select(exp.alias_(_least(ru, rv), "u"), exp.alias_(_greatest(ru.copy(), rv.copy()), "v"))
            .distinct()
            .from_(_as(current_edges, "e"))
            .join(_as(_parts(parts, scratch), "ru"), on=_eq(_col("u", "e"), _col("x", "ru")))
            .join(_as(_parts(parts, scratch), "rv"), on=_eq(_col("v", "e"), _col("x", "rv")))
            .where(exp.NEQ(this=ru.copy(), expression=rv.copy())),
        )
        if current_suffix is not None:
            scratch.drop(current_suffix)
        current_suffix = next_suffix
        current_edges = scratch.table(next_suffix)
        remaining = scratch.rows(current_edges)
        left.append(remaining)
        if on_round is not None:
            on_round(round_no, remaining)
    if current_suffix is not None:
        scratch.drop(current_suffix)

    # Compose the maps in one statement, from the last round back: label_t(x) = label_{t+1}(map_t(x)), where a
    # node absent from round t + 1's map (no edges left) keeps its round-t root (each map joins the smaller
    # composition of the later ones once).
    labels: exp.Query = _parts(maps[-1], scratch)
    for parts in reversed(maps[:-1]):
        labels = (
            sqlglot.select(
                _col("x", "m"), exp.alias_(exp.Coalesce(this=_col("p", "l"), expressions=[_col("p", "m")]), "p")
            )
            .from_(_as(_parts(parts, scratch), "m"))
            .join(labels.subquery("l"), on=_eq(_col("p", "m"), _col("x", "l")), join_type="left")
        )
    if len(maps) > 1:  # a table: joins plan better on it (and its statistics) than on the composition
        labels = sqlglot.select("x", "p").from_(scratch.create(f"{tag}labels", labels))
        scratch.drop(*(s for parts in maps for s, _ in parts))
    return labels, round_no, tuple(left)


# --------------------------------------------------------------------- encoding

_NO_NODE_HIGH = 9223372036854775807  # 2**63 - 1: above every node and priority key (LEAST's stand-in for NULL)


@dataclass(frozen=True)
class _Shape:
    """The observations' columns: ``slots`` pairs ``other_id_type_<k>, other_id_<k>`` (k = 1..slots) and one
    ``occurred_at`` per row, or one ``occurred_at_<k>`` per slot (``slot_times``)."""

    slots: int
    slot_times: bool = False
    types: tuple[str | None, ...] = ()  # per slot, its one id type where the query says so (else None)

    @staticmethod
    def of(observations: exp.Query) -> _Shape:
        names = set(observations.named_selects)
        slots = 0
        while f"other_id_{slots + 1}" in names and f"other_id_type_{slots + 1}" in names:
            slots += 1
        slot_times = slots > 0 and all(f"occurred_at_{k}" in names for k in range(1, slots + 1))
        if not slots or not (slot_times or "occurred_at" in names):
            raise ValueError(
                "the stitcher's observations need columns other_id_type_1, other_id_1, ... and occurred_at "
                f"(or occurred_at_1, ...), got {sorted(names)}"
            )
        return _Shape(slots, slot_times, _slot_types(observations, slots))

    @property
    def ks(self) -> range:
        return range(1, self.slots + 1)

    def columns(self) -> list[str]:
        times = [f"occurred_at_{k}" for k in self.ks] if self.slot_times else ["occurred_at"]
        return [*times, *(c for k in self.ks for c in (f"other_id_type_{k}", f"other_id_{k}"))]

    def time(self, k: int, table: str | None = None) -> exp.Column:
        return _col(f"occurred_at_{k}" if self.slot_times else "occurred_at", table)

    def present(self, k: int, table: str | None = None) -> exp.Expr:
        """Slot ``k`` names an id (a NULL id or id type is no node)."""
        return exp.and_(_not_null(_col(f"other_id_{k}", table)), _not_null(_col(f"other_id_type_{k}", table)))

    def sightings(self, when: Callable[[exp.Expr], exp.Expr] | None = None) -> exp.Expr:
        """Per row: how many slots name an id (whose time passes ``when``): observations, counted as pb's
        one-row-per-id shape counts them (what a checkpoint stores)."""
        terms: list[exp.Expr] = []
        for k in self.ks:
            cond = self.present(k)
            if when is not None:
                cond = exp.and_(cond, when(self.time(k)))
            terms.append(_case_pick(cond, _num(1), _num(0)))
        total = terms[0]
        for term in terms[1:]:
            total = _add(total, term)
        return total

    def count(self, table: exp.Table | exp.Query, when: Callable[[exp.Expr], exp.Expr] | None = None) -> exp.Query:
        return sqlglot.select(exp.Sum(this=self.sightings(when))).from_(_as(table, "c"))

    def any_slot(self, when: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
        return exp.or_(*(exp.paren(exp.and_(self.present(k), when(self.time(k)))) for k in self.ks))


def _literal_text(value: exp.Expr) -> str | bool | None:
    """A projection's constant: its text for a string literal, None for NULL (through casts), else False."""
    while isinstance(value, (exp.Cast, exp.Paren, exp.Alias)):
        value = value.this
    if isinstance(value, exp.Null):
        return None
    if isinstance(value, exp.Literal) and value.is_string:
        return str(value.this)
    return False


def _slot_types(observations: exp.Query, slots: int) -> tuple[str | None, ...]:
    """Per slot, the one id type every branch of the observations' UNION ALL gives it as a literal (a branch
    leaving the slot empty gives NULL for both type and id), else None: an id in such a slot is looked up by
    value alone among that type's ids, the cheaper join, and no scan is needed to know it."""
    branches: list[exp.Expr] = []
    pending: list[exp.Expr] = [observations]
    while pending:
        node = pending.pop()
        if isinstance(node, exp.Union) and not node.args.get("distinct"):
            pending += [node.this, node.expression]
        else:
            branches.append(node)
    if not all(isinstance(b, exp.Select) for b in branches):
        return (None,) * slots
    names = observations.named_selects  # a UNION's columns are its first branch's, by position
    width = len(names)
    if any(len(b.expressions) != width or any(isinstance(e, exp.Star) for e in b.expressions) for b in branches):
        return (None,) * slots
    out: list[str | None] = []
    for k in range(1, slots + 1):
        found: set[str] = set()
        constant = True
        at_kind, at_value = names.index(f"other_id_type_{k}"), names.index(f"other_id_{k}")
        for branch in branches:
            kind, value = branch.expressions[at_kind], branch.expressions[at_value]
            text = _literal_text(kind)
            if text is False or (text is None and _literal_text(value) is not None):
                constant = False  # not a literal type, or a NULL type beside an id that may be there
            elif isinstance(text, str):
                found.add(text)
        out.append(found.pop() if constant and len(found) == 1 else None)
    return tuple(out)


@dataclass(frozen=True)
class _Encoded:
    ids: exp.Table  # node, other_id_type, other_id, first_seen_at, seen (observations naming it)
    edges: exp.Table  # u < v: star edges (hub, other id) of rows with 2+ distinct ids, distinct
    linked: exp.Table  # node, linked_at, hub, first_seen_at: ids seen on a row with another id (hub: first-round
    # pointer; first_seen_at as in ids, carried by the rows so that the main ids need no join with ids)
    star_edges: int  # rows of edges
    pairs: int  # distinct pairs of ids seen on one row: the input's edges (the stars hold fewer)


def _present(observations: exp.Query, shape: _Shape) -> exp.Query:
    """The observations' columns, nothing else. Rows naming no id stay (each use counts present slots only):
    a filter here would compute filtered ids' CASEs twice where the engine pushes it into the query."""
    return sqlglot.select(*shape.columns()).from_(observations.copy().subquery("o"))


def _rereadable(observations: exp.Query) -> bool:
    """The observations are cheap enough to read again rather than copy once: a UNION ALL of projections (and
    filters) of stored tables, with no join, aggregate, window, DISTINCT or subquery. A full run reads them four
    times (survey, ids, rows, checkpoint count), each read only the columns it needs, where a copy writes every
    column of every row (and a large copy spills). Anything costlier (e.g. another entity's graph numbered by
    windows) is copied and runs once."""
    pending: list[exp.Expr] = [observations]
    while pending:
        node = pending.pop()
        if isinstance(node, exp.Union) and not node.args.get("distinct"):
            pending += [node.this, node.expression]
            continue
        if isinstance(node, exp.Subquery):
            pending.append(node.this)
            continue
        if not isinstance(node, exp.Select) or not node.args.get("from_"):
            return False
        clauses = ("joins", "distinct", "group", "having", "qualify", "limit", "offset", "order", "with_")
        if any(node.args.get(k) for k in clauses):
            return False
        parts = [*node.expressions, *([node.args["where"]] if node.args.get("where") else [])]
        if any(p.find(exp.Window, exp.AggFunc, exp.Subquery, exp.Query) for p in parts):
            return False
        # an id filter (a regular expression, LOWER/TRIM, ...) costs more to evaluate four times than to copy once
        if any(f for p in parts for f in p.find_all(exp.Func) if not isinstance(f, exp.Cast | exp.Coalesce)):
            return False
        inner = node.args["from_"].this
        if isinstance(inner, exp.Subquery):
            pending.append(inner.this)
        elif not isinstance(inner, exp.Table) or not isinstance(inner.this, exp.Identifier):
            return False
    return True


def _encode(scratch: _Scratch, source: exp.Table | exp.Query, shape: _Shape, tag: str) -> _Encoded:
    """Integer nodes, edges and link times of ``source`` (observation rows: a scratch table, or a query cheap
    to read twice, see `_rereadable`). Each row's ids are looked up once, one join
    per slot, and only on rows naming two or more ids; a row's hub is the LEAST of its slots' keys."""
    sightings = [
        sqlglot.select(
            exp.alias_(_col(f"other_id_type_{k}"), "other_id_type"),
            exp.alias_(_col(f"other_id_{k}"), "other_id"),
            exp.alias_(shape.time(k), "occurred_at"),
        )
        .from_(_as(source, "s"))
        .where(shape.present(k))
        for k in shape.ks
    ]
    union: exp.Query = sightings[0]
    for part in sightings[1:]:
        union = exp.union(union, part, distinct=False)
    grouped = (
        sqlglot.select(
            "other_id_type",
            "other_id",
            exp.alias_(exp.Min(this=_col("occurred_at")), "first_seen_at"),
            exp.alias_(exp.Count(this=exp.Star()), "seen"),
        )
        .from_(union.subquery("u"))
        .group_by("other_id_type", "other_id")
    )
    ids = scratch.create(
        f"{tag}ids",
        sqlglot.select(
            exp.alias_(_numbering(scratch.traits, ["other_id_type", "other_id"]), "node"),
            "other_id_type",
            "other_id",
            "first_seen_at",
            "seen",
        ).from_(grouped.subquery("g")),
    )
    # Rows naming two or more distinct ids: their nodes (one lookup per slot), times and hub, the node of
    # least first-round priority as a key (priority, node).
    nodes = [_col(f"n{k}") for k in shape.ks]
    times = (
        [exp.alias_(_col(f"occurred_at_{k}", "s"), f"occurred_at_{k}") for k in shape.ks]
        if shape.slot_times
        else [_col("occurred_at", "s")]
    )
    looked_up = sqlglot.select(
        *times,
        *(exp.alias_(_col("node", f"i{k}"), f"n{k}") for k in shape.ks),
        *(exp.alias_(_col("first_seen_at", f"i{k}"), f"s{k}") for k in shape.ks),
        *(exp.alias_(_col("seen", f"i{k}"), f"c{k}") for k in shape.ks),
    ).from_(_as(source, "s"))
    constant = shape.types
    for k in shape.ks:
        same_id = _eq(_col(f"other_id_{k}", "s"), _col("other_id", f"i{k}"))
        if constant[k - 1] is not None:  # one id type in the slot: a join on the id alone, among that type's ids
            of_type = _eq(_col("other_id_type"), exp.Literal.string(constant[k - 1]))
            lookup: exp.Table | exp.Query = (
                sqlglot.select("node", "other_id", "first_seen_at", "seen").from_(ids.copy()).where(of_type)
            )
            on = same_id
        else:
            lookup, on = ids, exp.and_(_eq(_col(f"other_id_type_{k}", "s"), _col("other_id_type", f"i{k}")), same_id)
        looked_up = looked_up.join(_as(lookup, f"i{k}"), on=on, join_type="left")
    two = exp.GTE(this=exp.paren(shape.sightings()), expression=_num(2)) if shape.slots > 1 else _eq(_num(1), _num(0))
    looked_up = looked_up.where(two)  # one slot: no row links (an empty rows table, all the same)

    def lowest(values: list[exp.Expr], absent: int) -> exp.Expr:
        filled = [exp.Coalesce(this=v, expressions=[_num(absent)]) for v in values]
        return filled[0] if len(filled) == 1 else exp.Least(this=filled[0], expressions=filled[1:])

    def highest(values: list[exp.Expr], absent: int) -> exp.Expr:
        filled = [exp.Coalesce(this=v, expressions=[_num(absent)]) for v in values]
        return filled[0] if len(filled) == 1 else exp.Greatest(this=filled[0], expressions=filled[1:])

    row_times = [shape.time(k) for k in shape.ks] if shape.slot_times else [_col("occurred_at")]
    distinct_two = exp.LT(
        this=lowest([n.copy() for n in nodes], _NO_NODE_HIGH), expression=highest([n.copy() for n in nodes], -1)
    )
    # each slot's key once, as a column (NULL for an empty slot): LEAST's NULL guard, where a dialect writes
    # one, then tests columns, not the hash again
    keys = (
        sqlglot.select(
            *(n.copy() for n in nodes),
            *(t.copy() for t in row_times),
            *(_col(f"s{k}") for k in shape.ks),
            *(
                exp.alias_(_priority_key(n.copy(), 1, _col(f"c{k}")), f"k{k}")
                for k, n in zip(shape.ks, nodes, strict=True)
            ),
        )
        .from_(looked_up.subquery("j"))
        .where(distinct_two)
    )
    keyed = sqlglot.select(
        *(n.copy() for n in nodes),
        *row_times,
        *(_col(f"s{k}") for k in shape.ks),
        exp.alias_(lowest([_col(f"k{k}") for k in shape.ks], _NO_NODE_HIGH), "hub_key"),
    ).from_(keys.subquery("q"))
    rows = scratch.create(f"{tag}rows", keyed)

    def per_slot(*columns: Callable[[int], exp.Expr]) -> exp.Query:
        parts = [
            sqlglot.select(*(c(k) for c in columns)).from_(rows.copy()).where(_not_null(_col(f"n{k}")))
            for k in shape.ks
        ]
        out: exp.Query = parts[0]
        for part in parts[1:]:
            out = exp.union(out, part, distinct=False)
        return out

    hub = _decode_key(_col("hub_key"))
    star = per_slot(lambda k: exp.alias_(hub.copy(), "hub"), lambda k: exp.alias_(_col(f"n{k}"), "node"))
    h, n = _col("hub"), _col("node")
    edges = scratch.create(
        f"{tag}edges",
        sqlglot.select(exp.alias_(_least(h, n), "u"), exp.alias_(_greatest(h.copy(), n.copy()), "v"))
        .distinct()
        .from_(star.subquery("st"))
        .where(exp.NEQ(this=n.copy(), expression=h.copy())),
    )
    # Each linked id with its first link time and its hub of least priority: the pointers of a first
    # round of contraction (1-hop, on the rows' cliques), at the price of one MIN().
    seen = per_slot(
        lambda k: exp.alias_(_col(f"n{k}"), "node"),
        lambda k: exp.alias_(shape.time(k), "occurred_at"),
        lambda k: _col("hub_key"),
        lambda k: exp.alias_(_col(f"s{k}"), "first_seen_at"),
    )
    linked = scratch.create(
        f"{tag}linked",
        sqlglot.select(
            "node",
            exp.alias_(exp.Min(this=_col("occurred_at")), "linked_at"),
            exp.alias_(_decode_key(exp.Min(this=_col("hub_key"))), "hub"),
            exp.alias_(exp.Min(this=_col("first_seen_at")), "first_seen_at"),
        )
        .from_(seen.subquery("sn"))
        .group_by("node"),
    )
    n_star = scratch.rows(edges)
    pairs = n_star + _pairs_off_star(scratch, rows, shape, edges)
    scratch.drop(f"{tag}rows")
    return _Encoded(ids, edges, linked, n_star, pairs)


@dataclass(frozen=True)
class _Survey:
    """What one scan of the observation rows tells: the observations (ids named) and the newest occurred_at
    of one."""

    observations: int
    newest: datetime | None


def _survey(scratch: _Scratch, source: exp.Table | exp.Query, shape: _Shape) -> _Survey:
    if shape.slot_times:
        newest = [exp.Max(this=_case_pick(shape.present(k), shape.time(k), exp.null())) for k in shape.ks]
    else:
        named = exp.or_(*(exp.paren(shape.present(k)) for k in shape.ks))
        newest = [exp.Max(this=_case_pick(named, _col("occurred_at"), exp.null()))]
    row = scratch.row(sqlglot.select(exp.Sum(this=shape.sightings()), *newest).from_(_as(source, "s")))
    times = [t for t in (_as_datetime(v) for v in row[1:]) if t is not None] if row else []
    return _Survey(int(row[0] or 0) if row else 0, max(times) if times else None)


def _pairs_off_star(scratch: _Scratch, rows: exp.Table, shape: _Shape, edges: exp.Table) -> int:
    """Distinct pairs of ids seen on one row that no star holds. The stars hold every pair with a hub;
    the others are pairs of non-hub ids of rows with three or more ids: none with fewer than three slots."""
    if shape.slots < 3:
        return 0
    hub = _decode_key(_col("hub_key"))
    parts: list[exp.Query] = []
    for a in shape.ks:
        for b in shape.ks:
            if b <= a:
                continue
            na, nb = _col(f"n{a}"), _col(f"n{b}")
            parts.append(
                sqlglot.select(exp.alias_(_least(na, nb), "u"), exp.alias_(_greatest(na.copy(), nb.copy()), "v"))
                .from_(rows.copy())
                .where(
                    exp.and_(
                        _not_null(na.copy()),
                        _not_null(nb.copy()),
                        exp.NEQ(this=na.copy(), expression=nb.copy()),
                        exp.NEQ(this=na.copy(), expression=hub.copy()),
                        exp.NEQ(this=nb.copy(), expression=hub.copy()),
                    )
                )
            )
    union: exp.Query = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    others = sqlglot.select("u", "v").distinct().from_(union.subquery("p"))
    return scratch.scalar(
        sqlglot.select(exp.Count(this=exp.Star()))
        .from_(others.subquery("x"))
        .join(
            _as(edges, "e"),
            on=exp.and_(_eq(_col("u", "x"), _col("u", "e")), _eq(_col("v", "x"), _col("v", "e"))),
            join_type="left",
        )
        .where(_is_null(_col("u", "e")))
    )


def _earliest_and_size(members: exp.Table | exp.Query, group: str, earliest: str, size: str) -> exp.Select:
    """Per ``group`` of ``members``: the earliest first_seen_at (the main id's, NULL only if all are) and the count."""
    return (
        sqlglot.select(
            group,
            exp.alias_(exp.Min(this=_col("first_seen_at")), earliest),
            exp.alias_(exp.Count(this=exp.Star()), size),
        )
        .from_(_as(members, "m"))
        .group_by(group)
    )


def _observation_count(
    scratch: _Scratch, shape: _Shape, table: exp.Table | exp.Query, after: datetime | None, upto: datetime
) -> int:
    """Observations (ids named) of a table of observation rows with ``after < occurred_at <= upto``."""

    def when(time: exp.Expr) -> exp.Expr:
        cond: exp.Expr = exp.LTE(this=time, expression=_timestamp(upto))
        if after is not None:
            cond = exp.and_(exp.GT(this=time.copy(), expression=_timestamp(after)), cond)
        return cond

    if shape.slot_times:
        return scratch.scalar(shape.count(table, when))
    return scratch.scalar(shape.count(table).where(when(_col("occurred_at"))))  # rows in the window, then ids


# --------------------------------------------------------------------- public API


def run_stitcher(
    session: Session,
    *,
    observations: exp.Query,
    target: exp.Table,
    main_id_column: str,
    scratch_prefix: str,
    max_rounds: int = 40,
    previous: PreviousGraph | None = None,
    lookback: timedelta = timedelta(days=4),
    full_reason: str = "",
    components: Components | None = None,
    unchanged_before: Callable[[datetime], bool] | None = None,
    changes: ChangeTables | None = None,
    added: Mapping[str, exp.Table] | None = None,
) -> StitcherStats:
    """Stitch ids seen together on an input row into profiles and CREATE ``target``.

    ``observations`` has one row per input row: its ids in slots ``other_id_type_<k>, other_id_<k>``
    (k = 1, 2, ...; an empty slot is NULL) and ``occurred_at`` (or one ``occurred_at_<k>`` per slot).
    The ids of one row are linked. ``target`` gets one row per distinct
    (other_id_type, other_id): ``<main_id_column>, other_id, other_id_type,
    valid_at, first_seen_at``. Scratch tables ``<scratch_prefix>_*`` live in
    ``target``'s schema and are dropped at the end, also on error.

    With ``previous`` (the last stitcher table of the same definition and its checkpoint) the
    run is incremental when that is exact (see the module docstring), else full; the stats say
    which and why. ``lookback`` sets the window the next run re-reads. ``full_reason`` is
    reported as the reason of a full run when no ``previous`` is given. ``components`` replaces
    the connected-components phase (benchmarks compare it with in-memory and naive baselines).
    ``unchanged_before(window_start)`` may vouch that the observations at or before the window start are
    those of the previous run (the caller checked the rows they come from), which saves counting them.
    ``changes``: where an incremental run writes the profiles it changed (see `ChangeTables`).
    ``added``: with ``unchanged_before``, the rows each table the observations read added since the previous
    graph, by the table's name (its other rows are those the previous graph read): a vouched incremental run
    stitches only these, not the look-back window (see `_batch`).
    """
    scratch = _Scratch(session, target, scratch_prefix)
    shape = _Shape.of(observations)
    source = _present(observations, shape)
    with session.large_work():  # e.g. a larger work_mem on Postgres
        try:
            reason = full_reason or "no previous stitcher table"
            if previous is not None:
                scratch.phase("check")
                point = previous.checkpoint
                vouched = point.window_start is not None and unchanged_before and unchanged_before(point.window_start)
                reason = "" if vouched else _incremental_blocker(scratch, shape, source, point)
                if not reason:
                    return _incremental(
                        scratch,
                        shape,
                        source,
                        previous,
                        target,
                        main_id_column,
                        max_rounds,
                        lookback,
                        changes,
                        added if vouched else None,
                    )
            return _full(scratch, shape, source, target, main_id_column, max_rounds, lookback, reason, components)
        finally:
            scratch.drop_all()


def _incremental_blocker(scratch: _Scratch, shape: _Shape, source: exp.Query, checkpoint: Checkpoint) -> str:
    """Why the previous table cannot be extended exactly ('' if it can)."""
    if checkpoint.window_start is None:
        return "the previous run saw no occurred_at values"
    now = _observation_count(scratch, shape, source, None, checkpoint.window_start)
    if now != checkpoint.rows_before:
        return (
            f"observations at or before the look-back window ({checkpoint.window_start}) changed: "
            f"{checkpoint.rows_before} at the previous run, {now} now (late data older than the look-back)"
        )
    return ""


def _checkpoint_from(
    scratch: _Scratch, shape: _Shape, obs: exp.Table | exp.Query, watermark: datetime | None, lookback: timedelta
) -> Checkpoint:
    """The checkpoint of a full run (ids and clusters filled in at the end)."""
    if watermark is None:
        return Checkpoint(None, None, 0, 0, 0)
    window_start = watermark - lookback
    return Checkpoint(watermark, window_start, _observation_count(scratch, shape, obs, None, window_start), 0, 0)


def _full(
    scratch: _Scratch,
    shape: _Shape,
    source: exp.Query,
    target: exp.Table,
    main_id_column: str,
    max_rounds: int,
    lookback: timedelta,
    reason: str,
    components: Components | None = None,
) -> StitcherStats:
    scratch.phase("encode")
    src: exp.Table | exp.Query = source if _rereadable(source) else scratch.create("src", source)
    survey = _survey(scratch, src, shape)
    graph = _encode(scratch, src, shape, "")
    n_ids = scratch.rows(graph.ids)
    if n_ids >= _PACK:
        raise ValueError(f"id stitcher supports fewer than {_PACK} distinct ids, got {n_ids}")
    n_obs = survey.observations
    scratch.phase("checkpoint")
    watermark = survey.newest
    checkpoint = _checkpoint_from(scratch, shape, src, watermark, lookback)
    scratch.drop("src")
    scratch.phase("components")
    if components is not None:
        labels, rounds, left = components(scratch, graph.edges, max_rounds=max_rounds)
    else:
        hub = _col("hub")
        scratch.create(
            "pt_1",
            sqlglot.select(
                exp.alias_(_col("node"), "x"),
                exp.alias_(hub, "p"),
                exp.alias_(_case_pick(exp.NEQ(this=hub.copy(), expression=_col("node")), _num(1), _num(0)), "f"),
            ).from_(graph.linked.copy()),
        )
        labels, rounds, left = _connected_components(scratch, graph.edges, max_rounds=max_rounds, first="pt_1")
    scratch.phase("main ids")
    own_hash = main_id_expression(_col("other_id", "i"), _col("other_id_type", "i"))
    multi = 0
    n_mains = 0
    if labels is None:  # no links: every id is its own profile
        out = sqlglot.select(
            exp.alias_(own_hash, exp.to_identifier(main_id_column)),
            _col("other_id", "i"),
            _col("other_id_type", "i"),
            exp.alias_(_col("first_seen_at", "i"), "valid_at"),
            _col("first_seen_at", "i"),
        ).from_(_as(graph.ids, "i"))
    else:
        # Linked ids (exactly those with a component label) with their component and times.
        members = scratch.create(
            "members",
            sqlglot.select(
                exp.alias_(_col("x", "l"), "node"),
                exp.alias_(_col("p", "l"), "comp"),
                _col("first_seen_at", "k"),
                _col("linked_at", "k"),
            )
            .from_(_as(labels, "l"))
            .join(_as(graph.linked, "k"), on=_eq(_col("x", "l"), _col("node", "k"))),
        )
        # Main id per component: earliest first_seen_at (NULL last), ties by smaller hash; the
        # hash only for the earliest members.
        earliest = scratch.create("earliest", _earliest_and_size(members, "comp", "min_seen", "size"))
        first = (
            sqlglot.select(_col("comp", "m"), _col("node", "m"))
            .from_(_as(members, "m"))
            .join(_as(earliest, "e"), on=_eq(_col("comp", "m"), _col("comp", "e")))
            .where(exp.or_(_eq(_col("first_seen_at", "m"), _col("min_seen", "e")), _is_null(_col("min_seen", "e"))))
        )
        mains = scratch.create(
            "mains",
            sqlglot.select(_col("comp", "c"), exp.alias_(exp.Min(this=own_hash.copy()), "main_id"))
            .from_(first.subquery("c"))
            .join(_as(graph.ids, "i"), on=_eq(_col("node", "c"), _col("node", "i")))
            .group_by(_col("comp", "c")),
        )
        multi, n_mains = scratch.row(
            sqlglot.select(exp.Sum(this=_col("size")), exp.Count(this=exp.Star())).from_(earliest.copy())
        )
        multi, n_mains = int(multi or 0), int(n_mains or 0)
        scratch.drop("earliest", "linked")
        out = (
            sqlglot.select(
                exp.alias_(
                    _case_pick(_is_null(_col("main_id", "mn")), own_hash.copy(), _col("main_id", "mn")),
                    exp.to_identifier(main_id_column),
                ),
                _col("other_id", "i"),
                _col("other_id_type", "i"),
                exp.alias_(
                    _case_pick(_is_null(_col("node", "m")), _col("first_seen_at", "i"), _col("linked_at", "m")),
                    "valid_at",
                ),
                _col("first_seen_at", "i"),
            )
            .from_(_as(graph.ids, "i"))
            .join(_as(members, "m"), on=_eq(_col("node", "i"), _col("node", "m")), join_type="left")
            .join(_as(mains, "mn"), on=_eq(_col("comp", "m"), _col("comp", "mn")), join_type="left")
        )
    scratch.phase("write")
    scratch.run(exp.Create(kind="TABLE", this=target.copy(), expression=out))
    scratch.session.analyze(target)  # every input's mapping step joins it (Postgres: plans it blind otherwise)
    clusters = n_ids - multi + n_mains
    return StitcherStats(
        rounds=rounds,
        ids=n_ids,
        edges=graph.pairs,
        clusters=clusters,
        mode="full",
        internal_edges=graph.star_edges,
        reason=reason,
        observations=n_obs,
        new_ids=n_ids,
        round_edges=left,
        seconds=scratch.seconds(),
        checkpoint=replace(checkpoint, ids=n_ids, clusters=clusters),
    )


def _incremental(
    scratch: _Scratch,
    shape: _Shape,
    source: exp.Query,
    previous: PreviousGraph,
    target: exp.Table,
    main_id_column: str,
    max_rounds: int,
    lookback: timedelta,
    changes: ChangeTables | None = None,
    added: Mapping[str, exp.Table] | None = None,
) -> StitcherStats:
    prev = previous.table
    main = main_id_column
    window_start = previous.checkpoint.window_start
    assert window_start is not None
    scratch.phase("encode")
    only_added = _only_added(source, added)
    batch = scratch.create("batch", only_added if only_added is not None else _window(source, shape, window_start))
    survey = _survey(scratch, batch, shape)
    graph = _encode(scratch, batch, shape, "b_")
    n_batch_ids = scratch.rows(graph.ids)
    n_obs = survey.observations
    scratch.phase("checkpoint")
    batch_max = survey.newest
    # (the observations the window moves past: of every row where the batch is only the added ones)
    counted = batch if only_added is None else source
    checkpoint = _next_checkpoint(scratch, shape, source, counted, previous.checkpoint, batch_max, lookback)
    scratch.drop("batch")

    scratch.phase("previous")
    # Batch ids already in the previous table: their old profile and times.
    address = scratch.traits.row_address
    hit = scratch.create(
        "hit",
        sqlglot.select(
            _col("node", "b"),
            exp.alias_(_col(main, "p"), "old_main"),
            exp.alias_(_col("first_seen_at", "p"), "old_seen"),
            exp.alias_(_col("valid_at", "p"), "old_valid"),
            *([exp.alias_(_col(address, "p"), "rid")] if address else []),
        )
        .from_(_as(graph.ids, "b"))
        .join(
            _as(prev, "p"),
            on=exp.and_(
                _eq(_col("other_id_type", "b"), _col("other_id_type", "p")),
                _eq(_col("other_id", "b"), _col("other_id", "p")),
            ),
        ),
    )
    # Previous profiles they touch: a super-node each (numbered after the batch's nodes), with
    # their earliest first_seen_at (that of their main id's member) and size (>1: ids are linked).
    n_new = n_batch_ids - scratch.rows(hit)
    affm = scratch.create(
        "affm",
        sqlglot.select(
            exp.alias_(_numbering(scratch.traits, ["old_main"], offset=n_batch_ids), "sn"), "old_main"
        ).from_(sqlglot.select("old_main").distinct().from_(hit.copy()).subquery("t")),
    )
    n_aff = scratch.rows(affm)
    # ... per id type (the health figures' changes), read once from the previous table; where the previous
    # table is patched in place, its rows of those profiles are kept (with their address): the rows that
    # change are among them
    in_place = _can_extend_in_place(scratch, prev, target)
    member_rows = (
        sqlglot.select(
            _col("sn", "a"),
            *(_col(c, "p") for c in (main, *_OUTPUT_COLUMNS)),
            *([exp.alias_(_col(address, "p"), "rid")] if in_place and address else []),
        )
        .from_(_as(prev, "p"))
        .join(_as(affm, "a"), on=_eq(_col(main, "p"), _col("old_main", "a")))
    )
    members = scratch.create("members", member_rows) if in_place else None
    old_members: exp.Query | exp.Table = members if members is not None else member_rows
    afft = scratch.create(
        "afft",
        sqlglot.select(
            "sn",
            "other_id_type",
            exp.alias_(exp.Min(this=_col("first_seen_at")), "min_seen"),
            exp.alias_(exp.Count(this=exp.Star()), "n"),
        )
        .from_(_as(old_members, "m"))
        .group_by("sn", "other_id_type"),
    )
    aff = scratch.create(
        "aff",
        sqlglot.select(
            "sn",
            exp.alias_(exp.Min(this=_col("min_seen")), "old_min_seen"),
            exp.alias_(exp.Sum(this=_col("n")), "old_size"),
        )
        .from_(afft.copy())
        .group_by("sn"),
    )
    # Every batch id: its contracted node (its old profile's super-node, or itself when new) and
    # its times merged with the old ones (first_seen_at; valid_at from link times old and new).
    old_linked = exp.GT(this=_col("old_size", "a"), expression=_num(1))
    old_link_at = _case_pick(old_linked.copy(), _col("old_valid", "h"), exp.null())
    linked_now = exp.or_(exp.paren(old_linked.copy()), _not_null(_col("node", "k")))
    seen = _min_present(_col("first_seen_at", "b"), _col("old_seen", "h"))
    valid = _case_pick(linked_now, _min_present(old_link_at, _col("linked_at", "k")), seen.copy())
    changed = exp.or_(_differs(seen.copy(), _col("old_seen", "h")), _differs(valid.copy(), _col("old_valid", "h")))
    bnodes = scratch.create(
        "bnodes",
        sqlglot.select(
            _col("node", "b"),
            exp.alias_(exp.Coalesce(this=_col("sn", "m"), expressions=[_col("node", "b")]), "cn"),
            exp.alias_(_case_pick(_is_null(_col("node", "h")), _num(1), _num(0)), "is_new"),
            exp.alias_(_case_pick(changed, _num(1), _num(0)), "changed"),
            exp.alias_(seen, "first_seen_at"),
            exp.alias_(valid, "valid_at"),
            *([_col("rid", "h")] if address else []),
        )
        .from_(_as(graph.ids, "b"))
        .join(_as(hit, "h"), on=_eq(_col("node", "b"), _col("node", "h")), join_type="left")
        .join(_as(affm, "m"), on=_eq(_col("old_main", "h"), _col("old_main", "m")), join_type="left")
        .join(_as(aff, "a"), on=_eq(_col("sn", "m"), _col("sn", "a")), join_type="left")
        .join(_as(graph.linked, "k"), on=_eq(_col("node", "b"), _col("node", "k")), join_type="left"),
    )
    scratch.drop("hit", "b_linked")
    cu, cv = _col("cn", "x"), _col("cn", "y")
    cedges = scratch.create(
        "cedges",
        sqlglot.select(exp.alias_(_least(cu, cv), "u"), exp.alias_(_greatest(cu.copy(), cv.copy()), "v"))
        .distinct()
        .from_(_as(graph.edges, "e"))
        .join(_as(bnodes, "x"), on=_eq(_col("u", "e"), _col("node", "x")))
        .join(_as(bnodes, "y"), on=_eq(_col("v", "e"), _col("node", "y")))
        .where(exp.NEQ(this=cu.copy(), expression=cv.copy())),
    )
    scratch.drop("b_edges")
    n_edges = scratch.rows(cedges)
    scratch.phase("components")
    labels, rounds, left = _connected_components(scratch, cedges, max_rounds=max_rounds, tag="c_")
    scratch.phase("main ids")

    def component(node: exp.Expr) -> exp.Expr:
        return exp.Coalesce(this=_col("p", "l"), expressions=[node]) if labels is not None else node

    def with_labels(query: exp.Select, node: exp.Expr) -> exp.Select:
        if labels is None:
            return query
        return query.join(_as(labels, "l"), on=_eq(node, _col("x", "l")), join_type="left")

    # Batch ids and touched old profiles with their final component.
    bc = scratch.create(
        "bc",
        with_labels(
            sqlglot.select(
                _col("node", "b"),
                _col("is_new", "b"),
                _col("changed", "b"),
                _col("first_seen_at", "b"),
                _col("valid_at", "b"),
                exp.alias_(component(_col("cn", "b")), "comp"),
                *([_col("rid", "b")] if address else []),
            ).from_(_as(bnodes, "b")),
            _col("cn", "b"),
        ),
    )
    ac = scratch.create(
        "ac",
        with_labels(
            sqlglot.select(
                _col("sn", "a"),
                _col("old_main", "m"),
                _col("old_min_seen", "a"),
                exp.alias_(component(_col("sn", "a")), "comp"),
            )
            .from_(_as(aff, "a"))
            .join(_as(affm, "m"), on=_eq(_col("sn", "a"), _col("sn", "m"))),
            _col("sn", "a"),
        ),
    )
    # Main id per affected component: the earliest of every batch id and of each old profile's
    # main id with its earliest first_seen_at (the other old members cannot beat it).
    earliest = scratch.create(
        "earliest",
        sqlglot.select("comp", exp.alias_(exp.Min(this=_col("first_seen_at")), "min_seen"))
        .from_(
            exp.union(
                sqlglot.select("comp", "first_seen_at").from_(bc.copy()),
                sqlglot.select("comp", exp.alias_(_col("old_min_seen"), "first_seen_at")).from_(ac.copy()),
                distinct=False,
            ).subquery("c")
        )
        .group_by("comp"),
    )

    def is_earliest(seen: exp.Expr) -> exp.Expr:
        return exp.or_(_eq(seen, _col("min_seen", "e")), _is_null(_col("min_seen", "e")))

    candidates = exp.union(
        sqlglot.select(
            _col("comp", "c"),
            exp.alias_(main_id_expression(_col("other_id", "i"), _col("other_id_type", "i")), "m"),
        )
        .from_(_as(bc, "c"))
        .join(_as(earliest, "e"), on=_eq(_col("comp", "c"), _col("comp", "e")))
        .join(_as(graph.ids, "i"), on=_eq(_col("node", "c"), _col("node", "i")))
        # an id of a previous profile whose first_seen_at stayed cannot beat that profile's main id (it was
        # one of its earliest members, whose hash the main id is the least of): only new and changed ids count
        .where(
            exp.and_(
                is_earliest(_col("first_seen_at", "c")),
                exp.or_(_eq(_col("is_new", "c"), _num(1)), _eq(_col("changed", "c"), _num(1))),
            )
        ),
        sqlglot.select(_col("comp", "a"), exp.alias_(_col("old_main", "a"), "m"))
        .from_(_as(ac, "a"))
        .join(_as(earliest, "e"), on=_eq(_col("comp", "a"), _col("comp", "e")))
        .where(is_earliest(_col("old_min_seen", "a"))),
        distinct=False,
    )
    mains = scratch.create(
        "mains",
        sqlglot.select("comp", exp.alias_(exp.Min(this=_col("m")), "main_id"))
        .from_(candidates.subquery("c"))
        .group_by("comp"),
    )
    # Old main id -> new main id, where it changed.
    remap = scratch.create(
        "remap",
        sqlglot.select(_col("old_main", "a"), exp.alias_(_col("main_id", "mn"), "new_main"))
        .from_(_as(ac, "a"))
        .join(_as(mains, "mn"), on=_eq(_col("comp", "a"), _col("comp", "mn")))
        .where(exp.NEQ(this=_col("old_main", "a"), expression=_col("main_id", "mn"))),
    )
    n_changed = scratch.rows(remap)
    n_comps = scratch.rows(earliest)
    health = None
    if previous.health is not None:
        scratch.phase("health")
        delta = _health_delta(graph.ids, bc, ac, afft, aff, affm, mains, [m for m, _, _ in previous.health.largest])
        health = stitcher_health.updated(previous.health, scratch.session.query(delta.sql(dialect=scratch.dialect)))
    if changes is not None and changes.previous == prev.name:
        _write_changes(scratch, changes, remap, bc, mains)
    scratch.phase("write")
    # The previous rows with their new main ids (a join on the old main id: few rows to look up, even when
    # a giant cluster moves) and new times for the ids seen again whose times moved.
    moved = (_as(remap, "r"), _eq(_col(main, "p"), _col("old_main", "r"))) if n_changed else None
    retimed = _retimed(scratch, bc, graph.ids, address)
    new_rows = (
        sqlglot.select(
            exp.alias_(_col("main_id", "mn"), exp.to_identifier(main)),
            _col("other_id", "i"),
            _col("other_id_type", "i"),
            _col("valid_at", "b"),
            _col("first_seen_at", "b"),
        )
        .from_(_as(bc, "b"))
        .join(_as(graph.ids, "i"), on=_eq(_col("node", "b"), _col("node", "i")))
        .join(_as(mains, "mn"), on=_eq(_col("comp", "b"), _col("comp", "mn")))
        .where(_eq(_col("is_new", "b"), _num(1)))
    )
    if members is None or not _extend_in_place(scratch, prev, members, target, main, moved, retimed, new_rows):
        old_rows = _patched(prev, main, moved, retimed)
        union = exp.union(old_rows, new_rows, distinct=False)
        scratch.run(exp.Create(kind="TABLE", this=target.copy(), expression=union))
    scratch.session.analyze(target)
    ids = previous.checkpoint.ids + n_new
    clusters = previous.checkpoint.clusters - n_aff + n_comps
    return StitcherStats(
        rounds=rounds,
        ids=ids,
        edges=graph.pairs,
        clusters=clusters,
        mode="incremental",
        internal_edges=n_edges,
        observations=n_obs,
        new_ids=n_new,
        changed_main_ids=n_changed,
        round_edges=left,
        seconds=scratch.seconds(),
        checkpoint=replace(checkpoint, ids=ids, clusters=clusters),
        health=health,
    )


def _window(source: exp.Query, shape: _Shape, window_start: datetime) -> exp.Query:
    """Rows with an observation after the window start (or without a time): re-reading an observation the
    previous run stitched is harmless (min() is idempotent), missing one is not."""
    return source.copy().where(
        shape.any_slot(
            lambda time: exp.or_(exp.GT(this=time, expression=_timestamp(window_start)), _is_null(time.copy()))
        )
    )


def _only_added(source: exp.Query, added: Mapping[str, exp.Table] | None) -> exp.Query | None:
    """The observations of the rows added since the previous graph: ``source`` reading each table's added rows
    instead of the table (None unless ``added`` names every table it reads). Exact without re-reading a window:
    the previous graph holds every other row's links and times, and a row's ids and times merge into it as
    the window's rows do."""
    if not added:
        return None
    tables = list(source.find_all(exp.Table))
    if not tables or any(t.name not in added for t in tables):
        return None

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.name in added:
            replacement = added[node.name].copy()
            if node.alias:
                replacement.set("alias", node.args["alias"].copy())
            return replacement
        return node

    swapped = source.transform(swap)
    assert isinstance(swapped, exp.Query)
    return swapped


def _health_delta(
    ids: exp.Table,
    bc: exp.Table,
    ac: exp.Table,
    afft: exp.Table,
    aff: exp.Table,
    affm: exp.Table,
    mains: exp.Table,
    listed: list[str],
) -> exp.Query:
    """How the health figures change (`stitcher_health.updated`'s rows): the touched previous profiles leave
    the histograms and their clusters (their members and the new ids) enter them; the largest changed clusters
    and which profiles of the previous list (``listed``) were touched. Reads only this run's small tables."""
    kind = exp.Literal.string
    per_comp_type = (
        sqlglot.select(_col("comp", "a"), _col("other_id_type", "t"), _col("n", "t"))
        .from_(_as(ac, "a"))
        .join(_as(afft, "t"), on=_eq(_col("sn", "a"), _col("sn", "t")))
    )
    added = (
        sqlglot.select(_col("comp", "b"), _col("other_id_type", "i"), exp.alias_(_num(1), "n"))
        .from_(_as(bc, "b"))
        .join(_as(ids, "i"), on=_eq(_col("node", "b"), _col("node", "i")))
        .where(_eq(_col("is_new", "b"), _num(1)))
    )
    new_t = (
        sqlglot.select("comp", "other_id_type", exp.alias_(exp.Sum(this=_col("n")), "n"))
        .from_(exp.union(per_comp_type, added, distinct=False).subquery("u"))
        .group_by("comp", "other_id_type")
    )
    new_s = sqlglot.select("comp", exp.alias_(exp.Sum(this=_col("n")), "n")).from_("new_t").group_by("comp")
    null_text = exp.cast(exp.null(), "VARCHAR")

    def signed(rows: exp.Query, key: list[str], what: str) -> exp.Query:
        change = exp.Sum(this=_col("d"))
        return (
            sqlglot.select(
                exp.alias_(kind(what), "kind"),
                exp.alias_(null_text.copy(), "main_id"),
                exp.alias_(_col("other_id_type") if "other_id_type" in key else null_text.copy(), "other_id_type"),
                exp.alias_(_col("n"), "ids"),
                exp.alias_(change, "profiles"),
            )
            .from_(rows.subquery("s"))
            .group_by(*key)
            .having(exp.NEQ(this=change.copy(), expression=_num(0)))
        )

    minus, plus = exp.Neg(this=_num(1)), _num(1)
    sizes = signed(
        exp.union(
            sqlglot.select(exp.alias_(_col("old_size"), "n"), exp.alias_(minus.copy(), "d")).from_(aff.copy()),
            sqlglot.select("n", exp.alias_(plus.copy(), "d")).from_("new_s"),
            distinct=False,
        ),
        ["n"],
        stitcher_health.SIZE,
    )
    types = signed(
        exp.union(
            sqlglot.select("other_id_type", "n", exp.alias_(minus.copy(), "d")).from_(afft.copy()),
            sqlglot.select("other_id_type", "n", exp.alias_(plus.copy(), "d")).from_("new_t"),
            distinct=False,
        ),
        ["other_id_type", "n"],
        stitcher_health.TYPE,
    )
    top = (
        sqlglot.select(_col("comp", "s"), _col("main_id", "m"), _col("n", "s"))
        .from_("new_s AS s")
        .join(_as(mains, "m"), on=_eq(_col("comp", "s"), _col("comp", "m")))
        .order_by(exp.Ordered(this=_col("n", "s"), desc=True), _col("main_id", "m"))
        .limit(stitcher_health.KEPT)
    )
    largest = (
        sqlglot.select(
            exp.alias_(kind(stitcher_health.TOP), "kind"),
            _col("main_id", "b"),
            _col("other_id_type", "t"),
            exp.alias_(_col("n", "t"), "ids"),
            exp.alias_(_col("n", "b"), "profiles"),
        )
        .from_(_as(top, "b"))
        .join("new_t AS t", on=_eq(_col("comp", "b"), _col("comp", "t")))
    )
    query = exp.union(exp.union(sizes, types, distinct=False), largest, distinct=False)
    if listed:
        gone = (
            sqlglot.select(
                exp.alias_(kind(stitcher_health.GONE), "kind"),
                exp.alias_(_col("old_main"), "main_id"),
                null_text.copy(),
                exp.cast(exp.null(), "BIGINT"),
                exp.cast(exp.null(), "BIGINT"),
            )
            .from_(affm.copy())
            .where(exp.In(this=_col("old_main"), expressions=[kind(m) for m in listed]))
        )
        query = exp.union(query, gone, distinct=False)
    return query.with_("new_t", as_=new_t).with_("new_s", as_=new_s)


_Lookup = tuple[exp.Expr, exp.Expr]  # (table AS alias, ON condition) of a LEFT JOIN


def _write_changes(scratch: _Scratch, changes: ChangeTables, remap: exp.Table, bc: exp.Table, mains: exp.Table) -> None:
    """The profiles this incremental stitch changed, as `ChangeTables` defines them: the old main ids that
    moved (`remap`), and the main ids of the components holding a new id or a moved profile (every member of
    a moved profile takes its new main id; the other previous ids keep theirs)."""
    for t in (changes.moved, changes.regrouped):
        scratch.session.drop_table(t)
    scratch.run(
        exp.Create(
            kind="TABLE",
            this=changes.moved.copy(),
            expression=sqlglot.select("old_main", "new_main").from_(remap.copy()),
        )
    )
    of_new = (
        sqlglot.select(_col("main_id", "mn"))
        .from_(_as(bc, "b"))
        .join(_as(mains, "mn"), on=_eq(_col("comp", "b"), _col("comp", "mn")))
        .where(_eq(_col("is_new", "b"), _num(1)))
    )
    of_moved = sqlglot.select(exp.alias_(_col("new_main"), "main_id")).from_(remap.copy())
    regrouped = sqlglot.select("main_id").distinct().from_(exp.union(of_new, of_moved, distinct=False).subquery("g"))
    scratch.run(exp.Create(kind="TABLE", this=changes.regrouped.copy(), expression=regrouped))
    changes.written = True


def _patched(prev: exp.Table, main: str, moved: _Lookup | None, again: _Lookup | None) -> exp.Select:
    """The previous rows (alias ``p``) with new main ids (``moved``, alias ``r``: a ``new_main`` column) and
    new times (``again``, alias ``u``: ``first_seen_at``, ``valid_at`` and ``hit``, non-NULL on a match)."""
    main_id: exp.Expr = _col(main, "p")
    valid_at: exp.Expr = _col("valid_at", "p")
    first_seen_at: exp.Expr = _col("first_seen_at", "p")
    if moved is not None:
        main_id = exp.Coalesce(this=_col("new_main", "r"), expressions=[main_id])
    if again is not None:
        valid_at = _case_pick(_is_null(_col("hit", "u")), valid_at, _col("valid_at", "u"))
        first_seen_at = _case_pick(_is_null(_col("hit", "u")), first_seen_at, _col("first_seen_at", "u"))
    query = sqlglot.select(
        exp.alias_(main_id, exp.to_identifier(main)),
        _col("other_id", "p"),
        _col("other_id_type", "p"),
        exp.alias_(valid_at, "valid_at"),
        exp.alias_(first_seen_at, "first_seen_at"),
    ).from_(_as(prev, "p"))
    for lookup in (moved, again):
        if lookup is not None:
            query = query.join(lookup[0], on=lookup[1], join_type="left")
    return query


# Engines where the previous stitcher table is renamed to the new one and patched in place, its old name
# becoming a view of its old rows: views bind to names there (the stable view reads on through the old name)
# and DDL is transactional (the rename, the patch and the view commit together, or none of them).
_IN_PLACE_ENGINES = ("duckdb",)
_OUTPUT_COLUMNS = ("other_id", "other_id_type", "valid_at", "first_seen_at")  # after the main id


# Each in-place extension makes the previous material a view of the next one: kept materials (no
# `retention_runs`) would become an ever deeper chain of views, each read one join slower. At this depth the
# run copies instead, and the chain starts again from a table.
MAX_VIEW_CHAIN = 8


def _can_extend_in_place(scratch: _Scratch, prev: exp.Table, target: exp.Table) -> bool:
    return (
        scratch.dialect in _IN_PLACE_ENGINES
        and bool(scratch.traits.row_address)
        and (target.db, target.catalog) == (prev.db, prev.catalog)
        and view_chain_depth(scratch.session, prev) < MAX_VIEW_CHAIN
    )


def _in_place_views(session: Session, schema: str | None) -> dict[str, str]:
    """The schema's views an in-place extension made (each reads its ``_undo`` table): view -> its SQL."""
    return {v: sql for v, sql in session.view_definitions(schema).items() if "_undo" in (sql or "")}


def _readers(views: dict[str, str], name: str) -> list[str]:
    """The views among ``views`` whose SQL names the table ``name`` (not a longer name containing it)."""
    pattern = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])", re.IGNORECASE)
    return [v for v, sql in views.items() if v.lower() != name.lower() and pattern.search(sql)]


def view_chain_depth(session: Session, table_: exp.Table) -> int:
    """How many earlier stitcher materials read ``table_`` through in-place views, one through the other
    (see `_extend_in_place`); counted up to MAX_VIEW_CHAIN."""
    views = _in_place_views(session, table_.db or None)
    depth, name = 0, table_.name
    while depth < MAX_VIEW_CHAIN and (readers := _readers(views, name)):
        depth, name = depth + 1, readers[0]
    return depth


def _extend_in_place(
    scratch: _Scratch,
    prev: exp.Table,
    members: exp.Table,
    target: exp.Table,
    main: str,
    moved: _Lookup | None,
    again: _Lookup | None,
    new_rows: exp.Query,
) -> bool:
    """Make ``target`` without copying the previous rows: rename the previous table to it, delete the rows
    that change and insert their new versions and the new ids' rows; the previous name becomes a view of the
    previous rows (``target``, less the rows of the ids the run changed or added, plus their old versions,
    kept in an ``undo`` table next to it), so the stable view and anything else reading it by name still
    read the previous run's table, until a run publishes and retention drops it (the view first, then what
    it reads). All in one transaction: a run that fails leaves both. False (nothing done) where the engine
    cannot, or the previous material is no table (a view like this one): the caller copies it. ``members``:
    the previous rows of the profiles the run touched (every row that changes is one), with their address."""
    address = scratch.traits.row_address
    assert address
    session = scratch.session
    names = [main, *_OUTPUT_COLUMNS]
    chg: exp.Table | None = None
    if moved is not None or again is not None:
        if again is not None:  # by the kept address
            again = (again[0], _eq(_col("rid", "p"), _col("rid", "u")))
        patched = _patched(members, main, moved, again)
        changed = [_not_null(_col("new_main", "r"))] if moved is not None else []
        changed += [_not_null(_col("hit", "u"))] if again is not None else []
        chg = scratch.create(
            "chg",
            patched.select(
                _col("rid", "p"),
                *(exp.alias_(_col(c, "p"), f"old_{i}") for i, c in enumerate(names)),
            ).where(exp.or_(*changed)),
        )
        if not scratch.rows(chg):
            chg = None
    old_versions = (
        sqlglot.select(
            *(exp.alias_(_col(f"old_{i}"), exp.to_identifier(c)) for i, c in enumerate(names)),
            exp.alias_(_num(1), "kept"),
        ).from_(chg.copy())
        if chg is not None
        else None
    )
    added_keys = sqlglot.select(
        exp.alias_(exp.cast(exp.null(), "VARCHAR"), exp.to_identifier(main)),
        _col("other_id", "n"),
        _col("other_id_type", "n"),
        exp.alias_(exp.cast(exp.null(), "TIMESTAMP"), "valid_at"),
        exp.alias_(exp.cast(exp.null(), "TIMESTAMP"), "first_seen_at"),
        exp.alias_(_num(0), "kept"),
    ).from_(new_rows.subquery("n"))
    undo = exp.Table(
        this=exp.to_identifier(f"{scratch.prefix}_undo", quoted=True),
        db=prev.args.get("db"),
        catalog=prev.args.get("catalog"),
    )
    view = (
        sqlglot.select(*(_col(c, "t") for c in names))
        .from_(_as(target, "t"))
        .where(
            exp.Not(
                this=exp.Exists(
                    this=sqlglot.select(_num(1))
                    .from_(_as(undo, "u"))
                    .where(
                        exp.and_(
                            _eq(_col("other_id", "u"), _col("other_id", "t")),
                            _eq(_col("other_id_type", "u"), _col("other_id_type", "t")),
                        )
                    )
                )
            )
        )
    )
    previous_rows = exp.union(
        view,
        sqlglot.select(*names).from_(undo.copy()).where(_eq(_col("kept"), _num(1))),
        distinct=False,
    )
    inserted = new_rows
    if chg is not None:
        inserted = exp.union(
            sqlglot.select(*(_col(c) for c in names)).from_(chg.copy()), new_rows.copy(), distinct=False
        )
    try:
        with session.transaction():
            session.drop_table(undo)  # a killed attempt's
            rows = exp.union(old_versions, added_keys, distinct=False) if old_versions is not None else added_keys
            scratch.run(exp.Create(kind="TABLE", this=undo.copy(), expression=rows))
            scratch.run(
                exp.Alter(
                    this=prev.copy(),
                    kind="TABLE",
                    actions=[exp.AlterRename(this=exp.Table(this=exp.to_identifier(target.name, quoted=True)))],
                )
            )
            if chg is not None:
                scratch.run(
                    exp.delete(
                        target.copy(),
                        where=_col(address).isin(query=sqlglot.select("rid").from_(chg.copy())),
                    )
                )
            scratch.run(exp.Insert(this=target.copy(), expression=inserted))
            scratch.run(exp.Create(kind="VIEW", this=prev.copy(), expression=previous_rows))
    except Exception as exc:  # e.g. the previous material is itself such a view: nothing happened, copy it
        log.info("the id stitcher copies %s instead of extending it in place: %s", prev.name, exc)
        return False
    return True


def keep_previous_readable(session: Session, schema: str, target: exp.Table) -> list[str]:
    """Before ``target``, a stitcher table an in-place extension made (see `_extend_in_place`), is dropped (a
    run started again with ``--force``): the previous tables that are views of it become tables of their rows
    again, so they and the stable view on them stay readable. Returns their names."""
    restored = []
    for view in _readers(_in_place_views(session, schema), target.name):
        original = table(view, schema)
        copy = table(f"{view}_restored"[:63], schema)
        with session.transaction():
            session.drop_table(copy)
            session.run(exp.Create(kind="TABLE", this=copy, expression=sqlglot.select("*").from_(original.copy())))
            session.run(exp.Drop(kind="VIEW", tables=[original.copy()], exists=True))
            session.run(
                exp.Alter(
                    this=copy.copy(),
                    kind="TABLE",
                    actions=[exp.AlterRename(this=exp.Table(this=exp.to_identifier(view, quoted=True)))],
                )
            )
        restored.append(view)
    return restored


def _retimed(scratch: _Scratch, bc: exp.Table, ids: exp.Table, address: str | None) -> _Lookup | None:
    """The new times of ids seen again whose times moved, looked up by the previous row's address where the
    engine has one (an integer join), else by (type, id); None when no time moved."""
    again = sqlglot.select(_col("first_seen_at", "c"), _col("valid_at", "c"), exp.alias_(_num(1), "hit")).from_(
        _as(bc, "c")
    )
    if address:
        again = again.select(_col("rid", "c"))
    else:
        again = again.select(_col("other_id_type", "i"), _col("other_id", "i")).join(
            _as(ids, "i"), on=_eq(_col("node", "c"), _col("node", "i"))
        )
    table = scratch.create("again", again.where(_eq(_col("changed", "c"), _num(1))))
    if not scratch.rows(table):
        return None
    if address:
        return _as(table, "u"), _eq(_col(address, "p"), _col("rid", "u"))
    return _as(table, "u"), exp.and_(
        _eq(_col("other_id_type", "p"), _col("other_id_type", "u")), _eq(_col("other_id", "p"), _col("other_id", "u"))
    )


def _next_checkpoint(
    scratch: _Scratch,
    shape: _Shape,
    source: exp.Query,
    batch_obs: exp.Table | exp.Query,
    before: Checkpoint,
    batch_max: datetime | None,
    lookback: timedelta,
) -> Checkpoint:
    """The checkpoint after an incremental run, counting only the batch when the window moved forward."""
    assert before.watermark is not None and before.window_start is not None
    watermark = max(before.watermark, batch_max) if batch_max is not None else before.watermark
    window_start = watermark - lookback
    if window_start >= before.window_start:
        rows_before = before.rows_before + _observation_count(
            scratch, shape, batch_obs, before.window_start, window_start
        )
    else:  # the look-back grew: count again
        rows_before = _observation_count(scratch, shape, source, None, window_start)
    return Checkpoint(watermark, window_start, rows_before, 0, 0)


# ------------------------------------------------------------------ the stitcher step of a run

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_lookback(text: str) -> timedelta:
    """A look-back like ``4d``, ``96h``, ``1d12h``, ``90m`` or Go's ``96h0m0s``."""
    cleaned = text.strip().replace(" ", "")
    parts = _DURATION_PART.findall(cleaned)
    if not cleaned or "".join(f"{n}{u}" for n, u in parts).lower() != cleaned.lower():
        raise ProfilesError(
            f"invalid id stitcher look-back '{text}': use a number and a unit (w, d, h, m, s), e.g. 4d or 96h",
            key="id_stitcher.lookback",
        )
    return sum((timedelta(**{_UNITS[u.lower()]: float(n)}) for n, u in parts), timedelta())


def find_previous(
    session: Session,
    schema: str,
    project: str,
    step_path: str,
    content_hash: str,
    table_exists: Callable[[exp.Table], bool],
) -> tuple[PreviousGraph | None, str]:
    """The latest complete stitcher table of this definition and its checkpoint, or why there is none."""
    latest = registry.latest_material_row(session, schema, project, step_path, content_hash)
    if latest is None:
        return None, "no previous stitcher table with this definition"
    name = latest.table_name
    previous = table(name, schema)
    if not table_exists(previous):
        return None, f"the previous stitcher table {name} no longer exists"
    if session.dialect in _IN_PLACE_ENGINES:  # a view of a later table (`_extend_in_place`) that was dropped since
        try:
            session.query(sqlglot.select(_num(1)).from_(previous.copy()).limit(0).sql(session.dialect))
        except Exception as exc:
            with contextlib.suppress(Exception):
                session.execute("ROLLBACK")
            return None, f"the previous stitcher table {name} cannot be read: {str(exc).splitlines()[0]}"
    state = session.query(registry.stitcher_checkpoint(schema, name).sql(session.dialect))
    if not state:
        return None, f"the previous stitcher table {name} has no checkpoint"
    watermark, window_start, rows_before, ids, clusters, health = state[0]
    checkpoint = Checkpoint(
        _as_datetime(watermark), _as_datetime(window_start), int(rows_before or 0), int(ids or 0), int(clusters or 0)
    )
    return PreviousGraph(previous, checkpoint, stitcher_health.from_state(health)), ""


def checkpoint_record(
    schema: str,
    *,
    table_name: str,
    seq_no: int,
    project: str,
    step_path: str,
    content_hash: str,
    stats: StitcherStats,
    health: stitcher_health.Health | None = None,
) -> exp.Expr:
    """The registry row that lets the next run continue from this stitcher table."""
    point = stats.checkpoint or Checkpoint(None, None, 0, stats.ids, stats.clusters)
    return registry.insert(
        schema,
        registry.STITCHER_STATE,
        {
            "table_name": table_name,
            "seq_no": seq_no,
            "project": project,
            "step": step_path,
            "content_hash": content_hash,
            "mode": stats.mode,
            "watermark": point.watermark,
            "window_start": point.window_start,
            "rows_before": point.rows_before,
            "ids": point.ids,
            "clusters": point.clusters,
            "recorded_at": now_utc(),
            "health": stitcher_health.state_json(health) if health is not None else None,
        },
    )


def _short(n: int) -> str:
    for size, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def stats_metadata(stats: StitcherStats) -> dict[str, object]:
    """A stitcher run as flat run metadata."""
    out: dict[str, object] = {
        "stitcher_mode": stats.mode,
        "stitcher_rounds": stats.rounds,
        "stitcher_ids": stats.ids,
        "stitcher_edges": stats.edges,
        "stitcher_internal_edges": stats.internal_edges,
        "stitcher_clusters": stats.clusters,
        "stitcher_observations_read": stats.observations,
        "stitcher_new_ids": stats.new_ids,
    }
    if stats.mode == "incremental":
        out["stitcher_changed_main_ids"] = stats.changed_main_ids
    else:
        out["stitcher_full_reason"] = stats.reason
    if stats.round_edges:
        out["stitcher_edges_left_per_round"] = " > ".join(_short(n) for n in stats.round_edges)
    if stats.seconds:
        out["stitcher_seconds"] = ", ".join(f"{k} {v:.2f}" for k, v in stats.seconds)
    if stats.checkpoint is not None and stats.checkpoint.watermark is not None:
        out["stitcher_watermark"] = str(stats.checkpoint.watermark)
    return out


def run_stitcher_step(
    session: Session,
    project: Project,
    step: Step,
    *,
    observations: exp.Query,
    target: exp.Table,
    schema: str,
    seq_no: int,
    full_refresh: bool = False,
    table_exists: Callable[[exp.Table], bool] | None = None,
    unchanged_before: Callable[[datetime], bool] | None = None,
    changes: ChangeTables | None = None,
    added: Mapping[str, exp.Table] | None = None,
) -> dict[str, object]:
    """The id-stitcher step of a run: incremental from the previous table when allowed and exact,
    its checkpoint recorded in the registry, and run metadata (counts, health)."""
    settings = project.settings.id_stitcher
    spec = step.payload_as(IdStitcher).spec
    lookback = parse_lookback((spec.incremental_timedelta if spec else None) or settings.lookback)
    discrete = bool(spec and spec.materialization and spec.materialization.run_type == "discrete")
    previous: PreviousGraph | None = None
    if full_refresh:
        reason = "full refresh requested"
    elif not settings.incremental:
        reason = "id_stitcher.incremental is false in profiles_dagster.yaml"
    elif discrete:
        reason = "the stitcher's materialization.run_type is discrete"
    else:
        exists = table_exists or (lambda t: True)
        previous, reason = find_previous(session, schema, project.name, step.path, step.content_hash, exists)
    assert step.entity is not None, step.path  # a stitcher step belongs to an entity
    main = project.entities[step.entity].main_id_column
    stats = run_stitcher(
        session,
        observations=observations,
        target=target,
        main_id_column=main,
        scratch_prefix=f"_pd_{step.content_hash}_{seq_no}",
        max_rounds=settings.max_rounds,
        previous=previous,
        lookback=lookback,
        full_reason=reason,
        unchanged_before=unchanged_before if previous is not None else None,
        changes=changes,
        added=added,
    )
    out = stats_metadata(stats)
    started = time.perf_counter()
    health = stats.health  # updated from the previous figures by an incremental run, else one aggregation:
    if health is None:  # (degrees: show idstitcher-report)
        health = stitcher_health.collect(
            lambda q: session.query(q.sql(session.dialect)),
            target,
            main,
            largest=stitcher_health.KEPT,
            dialect=session.dialect,
        )
    out.update(health.metadata())
    out["health_seconds"] = round(time.perf_counter() - started, 3)
    session.execute(
        checkpoint_record(
            schema,
            table_name=target.name,
            seq_no=seq_no,
            project=project.name,
            step_path=step.path,
            content_hash=step.content_hash,
            stats=stats,
            health=health,
        ).sql(session.dialect)
    )
    return out
