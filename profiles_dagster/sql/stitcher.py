"""In-warehouse id stitcher: connected components of the id graph, in SQL.

Why this shape: the identity graph can be huge, so it never leaves the
warehouse. All SQL is built as sqlglot expressions and rendered for the
session's dialect. Components are found by randomized contraction with pointer
jumping, so the number of rounds grows roughly with log(graph size), not with
the length of the longest chain (label propagation would need one round per hop).

One round, on an integer edge table ``E(u, v)`` (``u < v``, distinct):

1. every node gets a pseudo-random priority key (an integer hash of node id and
   round number, packed with the node id so that ``MIN`` picks a unique node);
2. ``m1(x)`` = min key over the closed neighbourhood of ``x``; ``m2(x)`` = min
   of ``m1`` over the neighbours of ``x`` (= min key within two hops);
3. ``x`` points to the node of ``m2(x)``: priorities strictly decrease along
   pointers, so they form a forest; pointer jumping finds each tree's root;
4. edges are relabelled by root, self-loops dropped, deduplicated; the
   node -> root map of the round is kept.

When no edges remain, the per-round maps are composed from the last round back
to the first, giving each original node its component root.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import sqlglot
from sqlglot import exp

__all__ = [
    "SqlSession",
    "StitcherRoundLimitError",
    "StitcherStats",
    "main_id_expression",
    "run_stitcher",
]

_UUID_SALT = "fe971b24-9572-4005-b22f-351e9c09274d"

# Priority hash parameters. All arithmetic stays below 2**63 so it is exact in
# every warehouse's BIGINT / INT64 / NUMBER: operands of each product are < 2**31.
_PRIME = 2147483647  # 2**31 - 1
_MUL = 1103515245
_PACK = 4294967296  # 2**32: key = priority * 2**32 + node; node ids must be < 2**32


class SqlSession(Protocol):
    """Minimal warehouse connection the stitcher needs."""

    dialect: str

    def execute(self, sql: str) -> None: ...

    def query(self, sql: str) -> list[tuple]: ...


@dataclass(frozen=True)
class StitcherStats:
    """Counts describing one stitcher run."""

    rounds: int  # contraction rounds run
    ids: int  # nodes
    edges: int  # distinct edges after dedupe/self-loop removal (star per row: hub -> each other id)
    clusters: int


class StitcherRoundLimitError(RuntimeError):
    """Raised when edges remain after ``max_rounds`` contraction rounds."""


# --------------------------------------------------------------------------- helpers


def _num(value: int) -> exp.Literal:
    return exp.Literal.number(value)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def _mod(this: exp.Expression, modulus: int) -> exp.Expression:
    return exp.Mod(this=exp.paren(this, copy=False), expression=_num(modulus))


def _mul(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return exp.Mul(this=exp.paren(a, copy=False), expression=exp.paren(b, copy=False))


def _add(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return exp.Add(this=a, expression=b)


def _case_pick(cond: exp.Expression, a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=cond, true=a)], default=b)


def _least(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    """LEAST for non-NULL operands; CASE avoids per-dialect LEAST NULL semantics."""
    return _case_pick(exp.LT(this=a, expression=b), a, b.copy())


def _greatest(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return _case_pick(exp.GT(this=a, expression=b), a, b.copy())


def _sha1_hex(value: exp.Expression, dialect: str | None) -> exp.Expression:
    """Lowercase hex SHA-1 of a string; the one place for per-dialect SHA-1 fixes."""
    if dialect == "bigquery":  # SHA1 returns BYTES there; TO_HEX is lowercase
        return exp.LowerHex(this=exp.SHA(this=value))
    if dialect in ("postgres",):  # no built-in SHA-1; needs the pgcrypto extension
        digest = exp.Anonymous(this="DIGEST", expressions=[value, exp.Literal.string("sha1")])
        return exp.Anonymous(this="ENCODE", expressions=[digest, exp.Literal.string("hex")])
    return exp.SHA(this=value)


def _prefix32(value: exp.Expression) -> exp.Expression:
    return exp.Substring(this=value, start=_num(1), length=_num(32))


def main_id_expression(
    other_id: exp.Expression, other_id_type: exp.Expression, *, dialect: str | None = None
) -> exp.Expression:
    """pb-compatible main id of an id:
    ``'rid' || left(sha1(left(sha1(SALT || other_id), 32) || other_id_type), 32)``.

    ``dialect`` only matters for warehouses whose SHA-1 is not hex text
    (BigQuery, Postgres); the default form is right for DuckDB, Snowflake,
    Spark/Databricks and Redshift.
    """
    inner = _prefix32(
        _sha1_hex(exp.DPipe(this=exp.Literal.string(_UUID_SALT), expression=other_id, safe=True), dialect)
    )
    outer = _prefix32(_sha1_hex(exp.DPipe(this=inner, expression=other_id_type, safe=True), dialect))
    return exp.DPipe(this=exp.Literal.string("rid"), expression=outer, safe=True)


def _priority_key(node: exp.Expression, round_no: int) -> exp.Expression:
    """Pseudo-random, deterministic priority of ``node`` in round ``round_no``,
    packed as ``priority * 2**32 + node`` so MIN() over keys names one node.

    A cubic polynomial mod 2**31-1 whose coefficients (all of them, including
    the leading one) change per round: an affine hash alone is a Weyl sequence
    on consecutive ids, whose regular pattern would slow down chains. In
    simulation this contracts like true random priorities, and the SQL only
    repeats the node column, not nested subexpressions.
    """
    node = exp.cast(node, "BIGINT")
    mul = (_MUL + round_no * 2246822519) % _PRIME or 1  # per round, or rounds correlate
    salt1 = (round_no * 2654435761 + 0x7F4A7C15) % _PRIME
    salt2 = (round_no * 40503 + 977) % _PRIME
    salt3 = (round_no * 69069 + 1) % _PRIME
    linear = _mod(_add(_mul(_mod(node, _PRIME), _num(mul)), _num(salt1)), _PRIME)
    square = _mod(_add(_mul(_mod(node.copy(), _PRIME), _mod(node.copy(), _PRIME)), _num(salt2)), _PRIME)
    priority = _mod(_add(_mul(linear, square), _num(salt3)), _PRIME)
    return _add(_mul(priority, _num(_PACK)), node.copy())


def _decode_key(key: exp.Expression) -> exp.Expression:
    return _mod(key, _PACK)


class _Scratch:
    """Names, creates and drops scratch tables next to the target."""

    def __init__(self, session: SqlSession, target: exp.Table, prefix: str) -> None:
        self.session = session
        self.db = target.args.get("db")
        self.catalog = target.args.get("catalog")
        self.prefix = prefix
        self.live: list[str] = []

    def table(self, suffix: str) -> exp.Table:
        db = self.db.copy() if isinstance(self.db, exp.Expression) else self.db
        catalog = self.catalog.copy() if isinstance(self.catalog, exp.Expression) else self.catalog
        return exp.Table(this=exp.to_identifier(f"{self.prefix}_{suffix}", quoted=True), db=db, catalog=catalog)

    def run(self, statement: exp.Expression) -> None:
        self.session.execute(statement.sql(dialect=self.session.dialect))

    def scalar(self, query: exp.Query) -> int:
        rows = self.session.query(query.sql(dialect=self.session.dialect))
        value = rows[0][0] if rows else None
        return int(value or 0)

    def create(self, suffix: str, query: exp.Query) -> exp.Table:
        table = self.table(suffix)
        self.drop(suffix)
        self.live.append(suffix)
        self.run(exp.Create(kind="TABLE", this=table, expression=query))
        return table

    def drop(self, suffix: str) -> None:
        self.run(exp.Drop(kind="TABLE", exists=True, tables=[self.table(suffix)]))
        if suffix in self.live:
            self.live.remove(suffix)

    def drop_all(self) -> None:
        """Best effort: a failing drop must not hide the original error."""
        for suffix in list(reversed(self.live)):
            with contextlib.suppress(Exception):
                self.drop(suffix)


def _count(table: exp.Table, where: exp.Expression | None = None) -> exp.Query:
    query = sqlglot.select(exp.Count(this=exp.Star())).from_(table.copy())
    return query.where(where) if where is not None else query


# ------------------------------------------------------------ connected components


def _pointer_jump(scratch: _Scratch, suffix: str) -> str:
    """Replace each parent by its root (pointer doubling).

    Table ``suffix`` has ``(x, p, f)`` where ``f = 1`` means "p may not be a
    root". A jump sets ``p(a) := p(p(a))`` and ``f(a) := f(p(a))`` (exact:
    roots are fixed points), so we stop as soon as no ``f = 1`` is left,
    without a final no-change pass. Returns the suffix of the result.
    """
    current = suffix
    step = 0
    while scratch.scalar(_count(scratch.table(current), exp.EQ(this=_col("f"), expression=_num(1)))) > 0:
        step += 1
        nxt = f"{suffix}_j{step}"
        scratch.create(
            nxt,
            sqlglot.select(_col("x", "a"), _col("p", "b"), _col("f", "b"))
            .from_(exp.alias_(scratch.table(current), "a", table=True))
            .join(
                exp.alias_(scratch.table(current), "b", table=True),
                on=exp.EQ(this=_col("p", "a"), expression=_col("x", "b")),
            ),
        )
        scratch.drop(current)
        current = nxt
    return current


def _parent_columns(node: exp.Expression, parent: exp.Expression) -> list[exp.Expression]:
    """``x, p, f`` columns of an initial parent table."""
    return [
        exp.alias_(node, "x"),
        exp.alias_(parent, "p"),
        exp.alias_(_case_pick(exp.NEQ(this=parent.copy(), expression=node.copy()), _num(1), _num(0)), "f"),
    ]


def _connected_components(
    scratch: _Scratch,
    edges: exp.Table,
    *,
    max_rounds: int,
    on_round: Callable[[int, int], None] | None = None,
) -> tuple[exp.Table | None, int]:
    """Label every node of the integer edge table ``edges(u, v)`` (u < v,
    distinct, no self-loops) with its component root.

    Returns ``(labels, rounds)``: ``labels(x, p)`` covers every node that has an
    edge (nodes without edges are their own roots), or ``None`` if there are no
    edges. ``edges`` is left in place.
    """
    remaining = scratch.scalar(_count(edges))
    if remaining == 0:
        return None, 0
    current_edges = edges
    current_suffix: str | None = None  # suffix of edges owned by this function
    maps: list[str] = []
    round_no = 0
    while remaining > 0:
        if round_no >= max_rounds:
            raise StitcherRoundLimitError(
                f"id stitcher did not converge within max_rounds={max_rounds}: "
                f"{remaining} edges left after {round_no} rounds"
            )
        round_no += 1
        directed = exp.union(
            sqlglot.select(exp.alias_(_col("u"), "a"), exp.alias_(_col("v"), "b")).from_(current_edges.copy()),
            sqlglot.select(exp.alias_(_col("v"), "a"), exp.alias_(_col("u"), "b")).from_(current_edges.copy()),
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
            f"m1_{round_no}",
            sqlglot.select("x", exp.alias_(_least(_col("kx"), _col("kn")), "k")).from_(grouped.subquery("g")),
        )
        # m2(x) = min of m1 over the open neighbourhood: the min key within two
        # hops (m1(x) itself is never smaller, since x has a neighbour). The
        # two-hop reach collapses stars in one round and shrinks chains 5x.
        parents = f"pt_{round_no}"
        scratch.create(
            parents,
            sqlglot.select(*_parent_columns(_col("a", "d"), _decode_key(exp.Min(this=_col("k", "m")))))
            .from_(directed.subquery("d"))
            .join(exp.alias_(m1.copy(), "m", table=True), on=exp.EQ(this=_col("b", "d"), expression=_col("x", "m")))
            .group_by(_col("a", "d")),
        )
        scratch.drop(f"m1_{round_no}")
        map_suffix = _pointer_jump(scratch, parents)
        maps.append(map_suffix)
        # Relabel edges by root; drop self-loops; dedupe.
        ru, rv = _col("p", "ru"), _col("p", "rv")
        map_table = scratch.table(map_suffix)
        next_suffix = f"edges_r{round_no}"
        scratch.create(
            next_suffix,
            sqlglot.select(exp.alias_(_least(ru, rv), "u"), exp.alias_(_greatest(ru.copy(), rv.copy()), "v"))
            .distinct()
            .from_(exp.alias_(current_edges.copy(), "e", table=True))
            .join(
                exp.alias_(map_table.copy(), "ru", table=True),
                on=exp.EQ(this=_col("u", "e"), expression=_col("x", "ru")),
            )
            .join(
                exp.alias_(map_table.copy(), "rv", table=True),
                on=exp.EQ(this=_col("v", "e"), expression=_col("x", "rv")),
            )
            .where(exp.NEQ(this=ru.copy(), expression=rv.copy())),
        )
        if current_suffix is not None:
            scratch.drop(current_suffix)
        current_suffix = next_suffix
        current_edges = scratch.table(next_suffix)
        remaining = scratch.scalar(_count(current_edges))
        if on_round is not None:
            on_round(round_no, remaining)
    if current_suffix is not None:
        scratch.drop(current_suffix)

    # Compose maps from the last round back: label_t(x) = label_{t+1}(map_t(x)),
    # where nodes absent from round t+1 keep map_t(x).
    label_suffix = maps[-1]
    for index in range(len(maps) - 2, -1, -1):
        step_suffix = maps[index]
        composed = f"labels_{index + 1}"
        scratch.create(
            composed,
            sqlglot.select(
                _col("x", "m"),
                exp.alias_(exp.Coalesce(this=_col("p", "l"), expressions=[_col("p", "m")]), "p"),
            )
            .from_(exp.alias_(scratch.table(step_suffix), "m", table=True))
            .join(
                exp.alias_(scratch.table(label_suffix), "l", table=True),
                on=exp.EQ(this=_col("p", "m"), expression=_col("x", "l")),
                join_type="left",
            ),
        )
        scratch.drop(label_suffix)
        scratch.drop(step_suffix)
        label_suffix = composed
    return scratch.table(label_suffix), round_no


# --------------------------------------------------------------------- public API


def run_stitcher(
    session: SqlSession,
    *,
    observations: exp.Query,
    target: exp.Table,
    main_id_column: str,
    scratch_prefix: str,
    max_rounds: int = 40,
) -> StitcherStats:
    """Stitch ids seen together on an input row into profiles and CREATE ``target``.

    ``observations`` has columns ``row_key, other_id_type, other_id, occurred_at``,
    one row per (input row, id). ``target`` gets one row per distinct
    (other_id_type, other_id): ``<main_id_column>, other_id, other_id_type,
    valid_at, first_seen_at``. Scratch tables ``<scratch_prefix>_*`` live in
    ``target``'s schema and are dropped at the end, also on error.
    """
    scratch = _Scratch(session, target, scratch_prefix)
    try:
        return _run(scratch, observations, target, main_id_column, max_rounds)
    finally:
        scratch.drop_all()


def _run(
    scratch: _Scratch, observations: exp.Query, target: exp.Table, main_id_column: str, max_rounds: int
) -> StitcherStats:
    dialect = scratch.session.dialect
    source = observations.copy().subquery("src")

    # 1. Distinct ids, numbered in a data-defined order (reproducible rounds).
    ids = scratch.create(
        "ids",
        sqlglot.select(
            exp.alias_(
                exp.Window(
                    this=exp.RowNumber(),
                    order=exp.Order(
                        expressions=[exp.Ordered(this=_col("other_id_type")), exp.Ordered(this=_col("other_id"))]
                    ),
                ),
                "node",
            ),
            "other_id_type",
            "other_id",
        ).from_(
            sqlglot.select("other_id_type", "other_id")
            .from_(source.copy())
            .group_by("other_id_type", "other_id")
            .subquery("g")
        ),
    )
    # 2. Observations with integer node ids.
    obs = scratch.create(
        "obs",
        sqlglot.select(_col("row_key", "s"), _col("node", "i"), _col("occurred_at", "s"))
        .from_(observations.copy().subquery("s"))
        .join(
            exp.alias_(ids.copy(), "i", table=True),
            on=exp.and_(
                exp.EQ(this=_col("other_id_type", "s"), expression=_col("other_id_type", "i")),
                exp.EQ(this=_col("other_id", "s"), expression=_col("other_id", "i")),
            ),
        ),
    )
    # 3. Per input row: hub (smallest node) and whether it links >= 2 distinct ids.
    rows = scratch.create(
        "rows",
        sqlglot.select(
            "row_key",
            exp.alias_(exp.Min(this=_col("node")), "hub"),
            exp.alias_(exp.Max(this=_col("node")), "hub_max"),
        )
        .from_(obs.copy())
        .group_by("row_key"),
    )
    linked = exp.NEQ(this=_col("hub", "r"), expression=_col("hub_max", "r"))
    obs_rows = (
        exp.alias_(obs.copy(), "o", table=True),
        exp.alias_(rows.copy(), "r", table=True),
        exp.EQ(this=_col("row_key", "o"), expression=_col("row_key", "r")),
    )
    # 4. Star edges per row (hub, node): same connectivity as the full clique.
    edges = scratch.create(
        "edges",
        sqlglot.select(exp.alias_(_col("hub", "r"), "u"), exp.alias_(_col("node", "o"), "v"))
        .distinct()
        .from_(obs_rows[0].copy())
        .join(obs_rows[1].copy(), on=obs_rows[2].copy())
        .where(exp.NEQ(this=_col("node", "o"), expression=_col("hub", "r"))),
    )
    # 5. Per node timestamps: first seen, and first seen together with another id.
    times = scratch.create(
        "times",
        sqlglot.select(
            _col("node", "o"),
            exp.alias_(exp.Min(this=_col("occurred_at", "o")), "first_seen_at"),
            exp.alias_(exp.Min(this=_case_pick(linked.copy(), _col("occurred_at", "o"), exp.null())), "linked_at"),
            exp.alias_(exp.Max(this=_case_pick(linked.copy(), _num(1), _num(0))), "is_linked"),
        )
        .from_(obs_rows[0].copy())
        # LEFT: an observation with a NULL row_key links nothing but is still a sighting.
        .join(obs_rows[1].copy(), on=obs_rows[2].copy(), join_type="left")
        .group_by(_col("node", "o")),
    )
    scratch.drop("obs")
    scratch.drop("rows")

    n_ids = scratch.scalar(_count(ids))
    if n_ids >= _PACK:
        raise ValueError(f"id stitcher supports fewer than {_PACK} distinct ids, got {n_ids}")
    n_edges = scratch.scalar(_count(edges))
    labels, rounds = _connected_components(scratch, edges, max_rounds=max_rounds)
    merged = 0 if labels is None else scratch.scalar(_count(labels, exp.NEQ(this=_col("x"), expression=_col("p"))))

    # 6. Members with component label and timestamps.
    comp = _col("node", "i")
    members_q = (
        sqlglot.select(
            _col("other_id", "i"),
            _col("other_id_type", "i"),
            exp.alias_(
                _case_pick(
                    exp.EQ(this=_col("is_linked", "t"), expression=_num(1)),
                    _col("linked_at", "t"),
                    _col("first_seen_at", "t"),
                ),
                "valid_at",
            ),
            _col("first_seen_at", "t"),
        )
        .from_(exp.alias_(ids.copy(), "i", table=True))
        .join(
            exp.alias_(times.copy(), "t", table=True), on=exp.EQ(this=_col("node", "i"), expression=_col("node", "t"))
        )
    )
    if labels is not None:
        comp = exp.Coalesce(this=_col("p", "l"), expressions=[_col("node", "i")])
        members_q = members_q.join(
            exp.alias_(labels.copy(), "l", table=True),
            on=exp.EQ(this=_col("node", "i"), expression=_col("x", "l")),
            join_type="left",
        )
    members = scratch.create("members", members_q.select(exp.alias_(comp, "comp")))

    # 7. Main id per component: earliest first_seen_at (NULL last), ties by smaller hash.
    earliest = exp.alias_(exp.Window(this=exp.Min(this=_col("first_seen_at")), partition_by=[_col("comp")]), "min_seen")
    ranked = (
        sqlglot.select("comp", "other_id", "other_id_type", "first_seen_at", earliest)
        .from_(members.copy())
        .subquery("c")
    )
    is_candidate = exp.or_(
        exp.EQ(this=_col("first_seen_at"), expression=_col("min_seen")),
        exp.Is(this=_col("min_seen"), expression=exp.null()),
    )
    mains = scratch.create(
        "mains",
        sqlglot.select(
            "comp",
            exp.alias_(
                exp.Min(this=main_id_expression(_col("other_id"), _col("other_id_type"), dialect=dialect)), "main_id"
            ),
        )
        .from_(ranked)
        .where(is_candidate)
        .group_by("comp"),
    )
    out = (
        sqlglot.select(
            exp.alias_(_col("main_id", "mn"), exp.to_identifier(main_id_column)),
            _col("other_id", "mb"),
            _col("other_id_type", "mb"),
            _col("valid_at", "mb"),
            _col("first_seen_at", "mb"),
        )
        .from_(exp.alias_(members.copy(), "mb", table=True))
        .join(
            exp.alias_(mains.copy(), "mn", table=True),
            on=exp.EQ(this=_col("comp", "mb"), expression=_col("comp", "mn")),
        )
    )
    scratch.run(exp.Create(kind="TABLE", this=target.copy(), expression=out))
    return StitcherStats(rounds=rounds, ids=n_ids, edges=n_edges, clusters=n_ids - merged)
