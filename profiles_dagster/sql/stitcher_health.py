"""Health of an identity graph: pure SQL over a stitcher table (and its observations, for degrees).

Over-stitching (shared devices, placeholder emails, test accounts) shows as a few huge profiles,
profiles with many ids of a type that should be one per person (user_id, email), and single ids
linked to many others. The queries here are built as sqlglot trees (render them per engine); each
returns a small result (histograms, top lists), never the table. `summarize` and `degrees` turn
the rows into numbers, so the run's metadata and `profiles-dagster show idstitcher-report` agree.

- `shape_query`: one aggregation of the table: histograms of ids per profile and of ids of each
  type per profile, and the largest profiles with their ids per type. Cheap enough for every run.
- `degree_query`: the ids with the most distinct ids seen with them on an input row, among the
  ids of the largest profiles. An id's degree is at most its profile's size minus one, so an id
  with a high degree is always in a large profile; the report says when the list is provably the
  global top (its last degree >= the size of the largest profile left out, minus one). It reads
  the observations (the inputs) again, so it runs on demand (`show idstitcher-report`), not per run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from profiles_dagster.sql.dialects import traits_of

__all__ = [
    "GONE",
    "KEPT",
    "Degree",
    "Health",
    "collect",
    "degree_query",
    "format_report",
    "quantile",
    "shape_query",
    "summarize",
]

SIZE = "size"
TYPE = "type"
TOP = "top"
GONE = "gone"  # a delta's row: a profile of the previous list that this run changed (its main id in `main_id`)
KEPT = 32  # largest profiles a stitcher run keeps with its checkpoint: the next run updates the list from them


def _c(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=None)


def _main(main: str, table: str | None = None) -> exp.Column:
    return exp.column(exp.to_identifier(main), table=table)


def _count() -> exp.Expr:
    return exp.Count(this=exp.Star())


def _as(node: exp.Expr, alias: str) -> exp.Expr:
    if isinstance(node, exp.Query):
        return node.copy().subquery(alias)
    return exp.alias_(node.copy(), alias, table=True)


def shape_query(stitcher: exp.Table, main: str, *, largest: int = 5, dialect: str | None = None) -> exp.Query:
    """One scan of the stitcher table. Rows ``(kind, main_id, other_id_type, ids, profiles)``:
    kind ``size``: ``profiles`` profiles have ``ids`` ids; kind ``type``: ``profiles`` profiles have
    ``ids`` ids of ``other_id_type``; kind ``top``: the ``largest`` largest profiles (ties: the smaller
    main id), ``ids`` of each type."""
    per = (
        sqlglot.select(_main(main), _c("other_id_type"), exp.alias_(_count(), "n"))
        .from_(stitcher.copy())
        .group_by(_main(main), _c("other_id_type"))
    )
    sizes = sqlglot.select(_main(main), exp.alias_(exp.Sum(this=_c("n")), "n")).from_("per").group_by(_main(main))
    null = exp.cast(exp.null(), "VARCHAR")
    by_size = (
        sqlglot.select(
            exp.alias_(exp.Literal.string(SIZE), "kind"),
            exp.alias_(null.copy(), "main_id"),
            exp.alias_(null.copy(), "other_id_type"),
            exp.alias_(_c("n"), "ids"),
            exp.alias_(_count(), "profiles"),
        )
        .from_("sizes")
        .group_by(_c("n"))
    )
    by_type = (
        sqlglot.select(
            exp.alias_(exp.Literal.string(TYPE), "kind"),
            exp.alias_(null.copy(), "main_id"),
            _c("other_id_type"),
            exp.alias_(_c("n"), "ids"),
            exp.alias_(_count(), "profiles"),
        )
        .from_("per")
        .group_by(_c("other_id_type"), _c("n"))
    )
    top = (
        sqlglot.select(_main(main))
        .from_("sizes")
        .order_by(exp.Ordered(this=_c("n"), desc=True), _main(main))
        .limit(max(1, largest))
    )
    by_top = (
        sqlglot.select(
            exp.alias_(exp.Literal.string(TOP), "kind"),
            exp.alias_(_main(main, "p"), "main_id"),
            _c("other_id_type", "p"),
            exp.alias_(_c("n", "p"), "ids"),
            exp.alias_(exp.cast(exp.null(), "BIGINT"), "profiles"),
        )
        .from_("per AS p")
        .join(_as(top, "t"), on=exp.EQ(this=_main(main, "p"), expression=_main(main, "t")))
    )
    query = exp.union(exp.union(by_size, by_type, distinct=False), by_top, distinct=False)
    query = query.with_("per", as_=per).with_("sizes", as_=sizes)
    _materialize(query, dialect)
    return query


def _materialize(query: exp.Query, dialect: str | None) -> None:
    """Mark the query's CTEs MATERIALIZED where the engine takes it (each is read more than once)."""
    if dialect is None or not traits_of(dialect).materialized_ctes:
        return
    for cte in query.find_all(exp.CTE):
        cte.set("materialized", True)


def degree_query(
    stitcher: exp.Table,
    observations: exp.Query,
    main: str,
    *,
    profiles: int = 20,
    limit: int = 10,
    dialect: str | None = None,
) -> exp.Query:
    """Rows ``(other_id_type, other_id, main id, degree)``: the ``limit`` ids with the most distinct
    ids seen with them on an input row, among the ids of the ``profiles`` largest profiles (ties:
    by type and id). ``observations``: the stitcher's input (one row per input row, ids in slots
    ``other_id_type_<k>, other_id_<k>``).
    Costs a scan of the observations (the inputs)."""
    top = (
        sqlglot.select(_main(main))
        .from_(stitcher.copy())
        .group_by(_main(main))
        .order_by(exp.Ordered(this=_count(), desc=True), _main(main))
        .limit(profiles)
    )
    members = (
        sqlglot.select(_c("other_id_type", "t"), _c("other_id", "t"), _main(main, "t"))
        .from_(_as(stitcher, "t"))
        .join(_as(top, "b"), on=exp.EQ(this=_main(main, "t"), expression=_main(main, "b")))
    )
    names = set(observations.named_selects)
    slots = 0
    while f"other_id_{slots + 1}" in names:
        slots += 1
    slot_columns = [_c(f"{c}_{k}") for k in range(1, slots + 1) for c in ("other_id_type", "other_id")]
    number = exp.Window(this=exp.RowNumber())
    if dialect is None or not traits_of(dialect).empty_over_numbering:  # the engine demands an order
        number.set("order", exp.Order(expressions=[exp.Ordered(this=c.copy()) for c in slot_columns]))
    numbered = sqlglot.select(exp.alias_(number, "row_key"), *slot_columns).from_(_as(observations, "o"))
    seen: exp.Query | None = None
    for k in range(1, slots + 1):  # each input row's ids, one row per id, of the members only
        part = (
            sqlglot.select(
                _c("row_key", "o"),
                exp.alias_(_c(f"other_id_type_{k}", "o"), "other_id_type"),
                exp.alias_(_c(f"other_id_{k}", "o"), "other_id"),
                _main(main, "m"),
            )
            .from_("numbered AS o")
            .join(
                _as(members, "m"),
                on=exp.and_(
                    exp.EQ(this=_c(f"other_id_type_{k}", "o"), expression=_c("other_id_type", "m")),
                    exp.EQ(this=_c(f"other_id_{k}", "o"), expression=_c("other_id", "m")),
                ),
            )
        )
        seen = part if seen is None else exp.union(seen, part, distinct=False)
    assert seen is not None, "observations without id slots"
    other = exp.or_(
        exp.NEQ(this=_c("other_id_type", "a"), expression=_c("other_id_type", "b")),
        exp.NEQ(this=_c("other_id", "a"), expression=_c("other_id", "b")),
    )
    pairs = (
        sqlglot.select(
            _c("other_id_type", "a"),
            _c("other_id", "a"),
            _main(main, "a"),
            exp.alias_(_c("other_id_type", "b"), "n_type"),
            exp.alias_(_c("other_id", "b"), "n_id"),
        )
        .distinct()
        .from_("seen AS a")
        .join("seen AS b", on=exp.and_(exp.EQ(this=_c("row_key", "a"), expression=_c("row_key", "b")), other))
    )
    query = (
        sqlglot.select(_c("other_id_type"), _c("other_id"), _main(main), exp.alias_(_count(), "degree"))
        .from_(pairs.subquery("p"))
        .group_by(_c("other_id_type"), _c("other_id"), _main(main))
        .order_by(exp.Ordered(this=_c("degree"), desc=True), _c("other_id_type"), _c("other_id"))
        .limit(limit)
        .with_("numbered", as_=numbered)
        .with_("seen", as_=seen)
    )
    _materialize(query, dialect)
    return query


# ------------------------------------------------------------------------ summaries (pure Python)


def quantile(histogram: Sequence[tuple[int, int]], q: float) -> int:
    """The q-quantile (nearest rank) of a histogram of (value, count) pairs sorted by value."""
    total = sum(count for _, count in histogram)
    if not total:
        return 0
    rank = max(1, math.ceil(round(q * total, 9)))  # round: 0.99 * 100 is 99.00000000000001
    seen = 0
    for value, count in histogram:
        seen += count
        if seen >= rank:
            return int(value)
    return int(histogram[-1][0])


@dataclass(frozen=True)
class Degree:
    other_id_type: str
    other_id: str
    main_id: str
    degree: int


@dataclass
class Health:
    ids: dict[str, int] = field(default_factory=dict)  # id type -> distinct ids
    profiles: int = 0
    size_histogram: list[tuple[int, int]] = field(default_factory=list)  # (ids, profiles), ascending
    per_type: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # type -> (ids of it, profiles)
    largest: list[tuple[str, int, dict[str, int]]] = field(default_factory=list)  # (main id, size, per type)
    degrees: list[Degree] = field(default_factory=list)
    degrees_complete: bool = True  # the degree list is the global top (see module docstring)
    # `largest` holds every profile ranked (size descending, then main id) at or before this (size, main id);
    # None: every profile there is (a list cut at its length by a LIMIT has its last entry here)
    largest_bound: tuple[int, str] | None = None

    @property
    def size_p50(self) -> int:
        return quantile(self.size_histogram, 0.5)

    @property
    def size_p99(self) -> int:
        return quantile(self.size_histogram, 0.99)

    @property
    def size_max(self) -> int:
        return self.size_histogram[-1][0] if self.size_histogram else 0

    def profiles_with_more_than(self, id_type: str, n: int) -> int:
        return sum(count for ids, count in self.per_type.get(id_type, []) if ids > n)

    def max_per_profile(self, id_type: str) -> int:
        histogram = self.per_type.get(id_type, [])
        return histogram[-1][0] if histogram else 0

    def metadata(self, top: int = 5) -> dict[str, object]:
        """Flat numbers and short texts for run metadata (Dagster shows them per materialization)."""
        out: dict[str, object] = {
            "health_profiles": self.profiles,
            "health_profile_size_p50": self.size_p50,
            "health_profile_size_p99": self.size_p99,
            "health_profile_size_max": self.size_max,
        }
        for id_type in sorted(self.ids):
            out[f"health_ids_{id_type}"] = self.ids[id_type]
            out[f"health_max_{id_type}_per_profile"] = self.max_per_profile(id_type)
            out[f"health_profiles_with_2plus_{id_type}"] = self.profiles_with_more_than(id_type, 1)
        if self.largest:
            main, size, _ = self.largest[0]
            out["health_largest_profile"] = f"{main} ({size} ids)"
        if self.degrees:
            out["health_top_degree_ids"] = ", ".join(
                f"{d.other_id_type}:{d.other_id} ({d.degree})" for d in self.degrees[:top]
            )
        return out


def _rank(size: int, main_id: str) -> tuple[int, str]:
    return (-size, main_id)


def state_json(health: Health) -> str:
    """What the next incremental run updates instead of scanning the table again: the histograms and the
    largest profiles (the degrees are not kept: they are read on demand)."""
    return json.dumps(
        {
            "sizes": health.size_histogram,
            "types": health.per_type,
            "largest": health.largest,
            "bound": health.largest_bound,
        },
        separators=(",", ":"),
    )


def from_state(text: str | None) -> Health | None:
    """A Health from `state_json` (None: no state, or one this version cannot read)."""
    if not text:
        return None
    try:
        state = json.loads(text)
        health = Health(
            size_histogram=[(int(n), int(c)) for n, c in state["sizes"]],
            per_type={str(t): [(int(n), int(c)) for n, c in h] for t, h in state["types"].items()},
            largest=[(str(m), int(s), {str(t): int(n) for t, n in per.items()}) for m, s, per in state["largest"]],
            largest_bound=None if state["bound"] is None else (int(state["bound"][0]), str(state["bound"][1])),
        )
    except (ValueError, KeyError, TypeError):
        return None
    _totals(health)
    return health


def _totals(health: Health) -> None:
    health.profiles = sum(c for _, c in health.size_histogram)
    health.ids = {t: sum(ids * n for ids, n in h) for t, h in health.per_type.items()}


def updated(
    previous: Health, delta_rows: Sequence[tuple[Any, ...]], *, keep: int | None = None, shown: int = 5
) -> Health | None:
    """The health after an incremental stitch, from the previous one and the changed profiles' rows
    ``(kind, main_id, other_id_type, ids, profiles)``: kinds ``size`` and ``type`` as `shape_query`'s with
    ``profiles`` a signed change (the changed profiles' old sizes out, their clusters' sizes in), ``top`` the
    largest changed clusters (``profiles``: the cluster's size) and ``gone`` the profiles of the previous list
    this run changed. Clusters only grow, so the unchanged profiles of the previous list and the largest
    changed clusters hold every profile ranked at or before the previous list's bound. None when fewer than
    ``shown`` profiles are then known to be the largest (the caller scans the table)."""
    keep = keep or KEPT
    sizes = dict(previous.size_histogram)
    per_type = {t: dict(h) for t, h in previous.per_type.items()}
    gone: set[str] = set()
    fresh: dict[str, tuple[int, dict[str, int]]] = {}
    for kind, main_id, id_type, ids, profiles in delta_rows:
        if kind == SIZE:
            sizes[int(ids)] = sizes.get(int(ids), 0) + int(profiles)
        elif kind == TYPE:
            bucket = per_type.setdefault(str(id_type), {})
            bucket[int(ids)] = bucket.get(int(ids), 0) + int(profiles)
        elif kind == GONE:
            gone.add(str(main_id))
        else:
            per = fresh.setdefault(str(main_id), (int(profiles), {}))[1]
            per[str(id_type)] = int(ids)
    if any(c < 0 for c in sizes.values()) or any(c < 0 for h in per_type.values() for c in h.values()):
        return None  # the previous figures were not this table's: scan it
    health = Health(
        size_histogram=sorted((n, c) for n, c in sizes.items() if c),
        per_type={t: sorted((n, c) for n, c in h.items() if c) for t, h in sorted(per_type.items()) if any(h.values())},
    )
    _totals(health)
    bound = previous.largest_bound
    candidates = [entry for entry in previous.largest if entry[0] not in gone]
    candidates += [(m, size, dict(sorted(per.items()))) for m, (size, per) in fresh.items()]
    candidates.sort(key=lambda e: _rank(e[1], e[0]))
    if bound is not None:
        candidates = [e for e in candidates if _rank(e[1], e[0]) <= _rank(*bound)]
    if len(candidates) >= keep:  # cut here (also when complete: the changed clusters came as their top `keep`)
        candidates = candidates[:keep]
        bound = (candidates[-1][1], candidates[-1][0])
    if bound is not None and len(candidates) < min(shown, health.profiles):
        return None
    health.largest = candidates
    health.largest_bound = bound
    return health


def summarize(shape_rows: Sequence[tuple[Any, ...]]) -> Health:
    """A Health from `shape_query` rows."""
    health = Health()
    sizes: dict[int, int] = {}
    per_type: dict[str, dict[int, int]] = {}
    top: dict[str, dict[str, int]] = {}
    for kind, main_id, id_type, ids, profiles in shape_rows:
        if kind == SIZE:
            sizes[int(ids)] = sizes.get(int(ids), 0) + int(profiles)
        elif kind == TYPE:
            bucket = per_type.setdefault(str(id_type), {})
            bucket[int(ids)] = bucket.get(int(ids), 0) + int(profiles)
        else:
            top.setdefault(str(main_id), {})[str(id_type)] = int(ids)
    health.size_histogram = sorted(sizes.items())
    health.per_type = {t: sorted(h.items()) for t, h in sorted(per_type.items())}
    _totals(health)
    ranked = sorted(top.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    health.largest = [(m, sum(t.values()), dict(sorted(t.items()))) for m, t in ranked]
    return health


def collect(
    fetch: Callable[[exp.Query], list[tuple[Any, ...]]],
    stitcher: exp.Table,
    main: str,
    *,
    observations: exp.Query | None = None,
    largest: int = 5,
    degree_profiles: int = 20,
    degree_limit: int = 10,
    dialect: str | None = None,
) -> Health:
    """Run the health queries through ``fetch`` (renders and runs a query, returns its rows): one
    aggregation of the stitcher table, and with ``observations`` the degrees (a scan of the inputs)."""
    health = summarize(fetch(shape_query(stitcher, main, largest=largest, dialect=dialect)))
    if len(health.largest) >= max(1, largest):  # cut by the LIMIT: every profile ranked up to its last is there
        main_id, size, _ = health.largest[-1]
        health.largest_bound = (size, main_id)
    if observations is not None and degree_limit and health.profiles:
        query = degree_query(
            stitcher, observations, main, profiles=degree_profiles, limit=degree_limit, dialect=dialect
        )
        health.degrees = [Degree(str(t), str(i), str(m), int(d)) for t, i, m, d in fetch(query)]
        # Profiles left out have at most this many ids: their ids' degrees are below it.
        sizes = [
            size for size, count in reversed(health.size_histogram) for _ in range(min(count, degree_profiles + 1))
        ]
        left_out = sizes[degree_profiles] if len(sizes) > degree_profiles else 0
        last = health.degrees[-1].degree if len(health.degrees) >= degree_limit else 0
        health.degrees_complete = left_out == 0 or last >= left_out - 1
    return health


def format_report(title: str, health: Health, *, over: dict[str, int] | None = None, degree_profiles: int = 20) -> str:
    """The health of one stitcher table as text (``over``: id type -> a per-profile limit to count)."""
    over = over or {}
    lines = [title, ""]
    lines.append(f"profiles {health.profiles:,}   ids {sum(health.ids.values()):,}")
    lines.append(f"profile size (ids): p50 {health.size_p50:,}   p99 {health.size_p99:,}   max {health.size_max:,}")
    lines.append("")
    header = f"{'id type':<20} {'ids':>12} {'profiles':>10} {'max/profile':>12} {'p99':>6} {'profiles 2+':>12}"
    extra = any(t in over for t in health.ids)
    lines.append(header + (f" {'over limit':>14}" if extra else ""))
    for id_type, ids in health.ids.items():
        histogram = health.per_type.get(id_type, [])
        row = (
            f"{id_type:<20} {ids:>12,} {sum(n for _, n in histogram):>10,} {health.max_per_profile(id_type):>12,} "
            f"{quantile(histogram, 0.99):>6,} {health.profiles_with_more_than(id_type, 1):>12,}"
        )
        if extra:
            limit = over.get(id_type)
            text = f"{health.profiles_with_more_than(id_type, limit):,} (>{limit})" if limit is not None else "-"
            row += f" {text:>14}"
        lines.append(row)
    if health.largest:
        lines += ["", "largest profiles:"]
        for main_id, size, per_type in health.largest:
            kinds = ", ".join(f"{t} {n}" for t, n in per_type.items())
            lines.append(f"  {main_id}  {size:,} ids ({kinds})")
    if health.degrees:
        scope = "all profiles" if health.degrees_complete else f"the {degree_profiles} largest profiles"
        lines += ["", f"highest-degree ids (distinct ids seen with them on a row; among {scope}):"]
        width = max(len(f"{d.other_id_type}:{d.other_id}") for d in health.degrees)
        for d in health.degrees:
            name = f"{d.other_id_type}:{d.other_id}"
            lines.append(f"  {name:<{width}}  degree {d.degree:>6,}  profile {d.main_id}")
    return "\n".join(lines)
