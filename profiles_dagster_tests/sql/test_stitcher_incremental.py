"""Incremental id stitching equals a full recompute, main ids included; and the graph's health numbers.

Why: an incremental run contracts the previous clusters to super-nodes and only recomputes the
profiles new observations touch; any slip (a first_seen_at moving earlier, two old profiles
merging, late rows) would silently re-key profiles. Every step is compared with the independent
union-find model of test_stitcher.py over all rows so far.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from profiles_dagster.sql import stitcher as stitcher_module
from profiles_dagster.sql import stitcher_health as health_sql
from profiles_dagster.sql.stitcher import (
    ChangeTables,
    Checkpoint,
    PreviousGraph,
    StitcherStats,
    parse_lookback,
    run_stitcher,
)
from profiles_dagster.warehouse.duckdb import DuckDBSession
from profiles_dagster_tests.sql.test_stitcher import (
    MAIN,
    T0,
    Row,
    _sort_key,
    expected_output,
    load_observations,
    observations_query,
    py_main_id,
)

DAY = dt.timedelta(days=1)
KEPT = health_sql.KEPT
LOOKBACK = dt.timedelta(days=4)


@pytest.fixture(params=["row address", "string keys"])
def con(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """DuckDB patches the previous rows by row address; other engines join on string keys: both are checked."""
    if request.param == "string keys":
        engine_traits = stitcher_module.traits_of
        monkeypatch.setattr(
            stitcher_module, "traits_of", lambda dialect: replace(engine_traits(dialect), row_address=None)
        )
    connection = duckdb.connect(str(tmp_path / "wh.duckdb"))
    connection.execute("CREATE SCHEMA out")
    yield connection
    connection.close()


class Stitcher:
    """Runs the stitcher over a growing set of rows, each run from the previous one's table."""

    def __init__(self, con: duckdb.DuckDBPyConnection, seed: int = 0, lookback: dt.timedelta = LOOKBACK) -> None:
        self.con = con
        self.rows: list[Row] = []
        self.previous: PreviousGraph | None = None
        self.runs = 0
        self.rng = random.Random(seed)
        self.lookback = lookback
        self.got: list[tuple] = []
        self.health_scans = 0  # runs whose health was not updated from the previous one's
        self.outputs: dict[str, list[tuple]] = {}  # each run's table as it wrote it
        self.undo: list[str] = []

    def in_place(self, name: str) -> bool:
        """Whether the run extended the previous table in place (renamed it; its old name is a view now)."""
        kinds = dict(self.con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
        return any(kinds.get(earlier) == "VIEW" for earlier in self.outputs) and f"scratch_{name}_undo" in kinds

    def load(self) -> None:
        """The input as a rebuilt input var table has it: row keys renumbered, rows in another order."""
        order = list(range(len(self.rows)))
        self.rng.shuffle(order)
        renumbered: list[Row] = [(f"k{n}", self.rows[i][1], self.rows[i][2]) for n, i in enumerate(order)]
        self.con.execute("DROP TABLE IF EXISTS obs")
        load_observations(self.con, renumbered)

    def run(
        self, new_rows: Sequence[Row], *, incremental: bool = True, only_added: bool = False
    ) -> tuple[StitcherStats, list[tuple]]:
        """``only_added``: the caller vouches for the rows before and names the added ones (as a run does when
        it extended the input var tables), so the stitcher reads those alone."""
        self.rows += list(new_rows)
        self.load()
        self.runs += 1
        name = f"run_{self.runs}"
        changes = None
        if incremental and self.previous is not None:
            tables = (exp.table_(f"{name}_{s}", db="out", quoted=True) for s in ("moved", "regrouped"))
            changes = ChangeTables(self.previous.table.name, *tables)
        vouched: dict[str, object] = {}
        if only_added:
            self.con.execute("DROP TABLE IF EXISTS added")
            load_observations(self.con, list(new_rows), table="added")
            vouched = {"added": {"obs": exp.to_table("added")}, "unchanged_before": lambda instant: True}
        stats = run_stitcher(
            DuckDBSession(self.con, "out"),
            observations=observations_query(),
            target=exp.table_(name, db="out", quoted=True),
            main_id_column=MAIN,
            scratch_prefix=f"scratch_{name}",
            previous=self.previous if incremental else None,
            lookback=self.lookback,
            changes=changes,
            **vouched,  # type: ignore[arg-type]
        )
        got = sorted(self.con.execute(f'SELECT * FROM out."{name}"').fetchall(), key=_sort_key)
        assert got == expected_output(self.rows)
        if changes is not None:  # written exactly when the run extended the previous table
            assert changes.written == (stats.mode == "incremental")
        if changes is not None and changes.written:  # what changed, as a comparison of the two graphs says
            old, new = _mains(self.got), _mains(got)
            moved = {(old[k], m) for k, m in new.items() if k in old and old[k] != m}
            regrouped = {(m,) for k, m in new.items() if old.get(k) != m}
            assert set(self.con.execute(f'SELECT * FROM out."{name}_moved"').fetchall()) == moved
            assert len(moved) == len({o for o, _ in moved}) == stats.changed_main_ids  # one new main per old one
            assert set(self.con.execute(f'SELECT * FROM out."{name}_regrouped"').fetchall()) == regrouped
        self.got = got
        assert (stats.ids, stats.clusters) == (len(got), len({r[0] for r in got}))
        assert stats.checkpoint is not None
        health = self.health(name, stats)
        self.previous = PreviousGraph(exp.table_(name, db="out", quoted=True), stats.checkpoint, health)
        leftovers = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'scratch_%'"
        ).fetchall()
        # but what each in-place extension keeps for the previous table's view of its old rows
        self.undo += [f"scratch_{name}_undo"] if self.in_place(name) else []
        assert [t for (t,) in leftovers if not t.endswith("_undo")] == []
        assert set(self.undo) <= {t for (t,) in leftovers}
        self.outputs[name] = got
        for earlier, rows in self.outputs.items():  # every earlier table still reads as it was written
            assert sorted(self.con.execute(f'SELECT * FROM out."{earlier}"').fetchall(), key=_sort_key) == rows
        return stats, got

    def health(self, name: str, stats: StitcherStats) -> health_sql.Health:
        """The table's health as an incremental run updated it equals a scan of the table's (the run step keeps
        it for the next run; the first run, or one whose list of largest profiles ran short, scans)."""
        scanned = health_sql.collect(
            lambda q: self.con.execute(q.sql("duckdb")).fetchall(),
            exp.table_(name, db="out", quoted=True),
            MAIN,
            largest=health_sql.KEPT,
            dialect="duckdb",
        )
        got = stats.health
        if got is None:
            self.health_scans += 1
            return health_sql.from_state(health_sql.state_json(scanned)) or scanned
        assert (got.size_histogram, got.per_type, got.ids, got.profiles) == (
            scanned.size_histogram,
            scanned.per_type,
            scanned.ids,
            scanned.profiles,
        )
        n = min(len(got.largest), len(scanned.largest))
        assert n >= min(5, scanned.profiles) and got.largest[:n] == scanned.largest[:n]
        assert got.metadata() == scanned.metadata()
        return got


def _mains(got: list[tuple]) -> dict[tuple[str, str], str]:
    return {(r[2], r[1]): r[0] for r in got}


def random_batch(rng: random.Random, start: dt.datetime, n_rows: int, n_ids: int, tag: str) -> list[Row]:
    """Rows over 3 days from ``start``; a few without occurred_at; ids drawn from a shared pool."""
    types = ["email", "anon_id", "user_id"]
    rows: list[Row] = []
    for i in range(n_rows):
        k = rng.choice([1, 2, 2, 2, 3])
        ids = [(rng.choice(types), f"v{rng.randrange(n_ids)}") for _ in range(k)]
        ts = None if rng.random() < 0.03 else start + dt.timedelta(minutes=rng.randrange(3 * 24 * 60))
        rows.append((f"{tag}{i}", ts, ids))
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kept", [KEPT, 6])
def test_five_random_batches_equal_full_recompute(
    con: duckdb.DuckDBPyConnection, seed: int, kept: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """And the health figures, updated from the previous run's, equal a scan's (a short list of the largest
    profiles runs short after merges: a scan then)."""
    monkeypatch.setattr(health_sql, "KEPT", kept)
    rng = random.Random(seed)
    stitcher = Stitcher(con, seed)
    start = T0
    modes = []
    for batch in range(5):
        rows = random_batch(rng, start, 600, 900, f"b{batch}_")
        if batch:  # late rows, inside the look-back window of the previous run
            watermark = stitcher.previous.checkpoint.watermark
            rows += [
                (f"late{batch}_{i}", watermark - dt.timedelta(hours=rng.randrange(1, 90)), ids)
                for i, (_, _, ids) in enumerate(random_batch(rng, start, 40, 900, "x"))
            ]
        stats, _ = stitcher.run(rows)
        modes.append(stats.mode)
        start += 3 * DAY
    assert modes == ["full"] + ["incremental"] * 4
    # DuckDB extends the previous table in place (by row address), each earlier one a view of its old rows
    assert len(stitcher.undo) == (4 if stitcher_module.traits_of("duckdb").row_address else 0)
    if kept == KEPT:  # the first run scans; then a giant cluster merges the largest ones: one more
        assert stitcher.health_scans <= 2


def test_in_place_extensions_keep_the_chain_of_views_short(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each in-place run makes the previous material a view of the next: at MAX_VIEW_CHAIN views deep a run
    copies instead, so no kept material is read through more views than that (and each reads as written)."""
    monkeypatch.setattr(stitcher_module, "MAX_VIEW_CHAIN", 2)
    rng = random.Random(7)
    stitcher = Stitcher(con, 7)
    start = T0
    in_place = []
    for batch in range(6):
        stats, _ = stitcher.run(random_batch(rng, start, 200, 500, f"b{batch}_"))
        assert stats.mode == ("incremental" if batch else "full")
        in_place.append(stitcher.in_place(f"run_{batch + 1}"))
        session = DuckDBSession(con, "out")
        depths = [stitcher_module.view_chain_depth(session, exp.table_(n, db="out")) for n in stitcher.outputs]
        assert max(depths) <= 2
        start += 3 * DAY
    if stitcher_module.traits_of("duckdb").row_address:  # run 4 copies: run 3 was read through two views
        assert in_place == [False, True, True, False, True, True]
    else:
        assert not any(in_place)


@pytest.mark.parametrize("seed", [4, 5])
def test_only_the_added_rows_when_the_rest_is_vouched_for(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """A run that extended the input var tables names the rows they added and vouches for the others: the
    stitcher reads the added rows alone (no look-back window), equals a full recompute, and its checkpoint still
    counts every observation up to the window start (a later run that cannot vouch compares with it)."""
    rng = random.Random(seed)
    stitcher = Stitcher(con, seed)
    start = T0
    for batch in range(4):
        rows = random_batch(rng, start, 300, 900, f"b{batch}_")
        if batch:
            watermark = stitcher.previous.checkpoint.watermark
            rows += [
                (f"late{batch}_{i}", watermark - dt.timedelta(hours=rng.randrange(1, 90)), ids)
                for i, (_, _, ids) in enumerate(random_batch(rng, start, 30, 900, "x"))
            ]
        stats, _ = stitcher.run(rows, only_added=batch > 0)
        if batch:
            assert stats.mode == "incremental"
            assert stats.observations == sum(len(ids) for _, _, ids in rows)  # the added rows' ids alone
            session = DuckDBSession(con, "out")
            whole = stitcher_module._Shape.of(observations_query())
            point = stats.checkpoint
            assert point is not None and point.window_start is not None
            scratch = stitcher_module._Scratch(session, exp.table_("x", db="out"), "count")
            counted = stitcher_module._observation_count(scratch, whole, observations_query(), None, point.window_start)
            assert point.rows_before == counted
        start += 3 * DAY
    stats, _ = stitcher.run([], incremental=True)  # not vouched: the checkpoint's count lets it extend
    assert stats.mode == "incremental"


def test_late_rows_in_window_update_times_and_keep_main_ids(con: duckdb.DuckDBPyConnection) -> None:
    stitcher = Stitcher(con)
    a, b, c = ("email", "a"), ("user_id", "b"), ("anon_id", "c")
    _, got = stitcher.run(
        [
            ("r1", T0 + 5 * DAY, [a, b]),
            ("r2", T0 + 6 * DAY, [b, c]),
            ("r3", T0 + 9 * DAY, [("email", "other")]),
        ]
    )
    main = _mains(got)[c]
    # c seen earlier than 6d, on a row that arrives late but inside the look-back (9d - 4d = 5d)
    stats, got = stitcher.run([("late", T0 + 5 * DAY + dt.timedelta(hours=23), [c])])
    assert stats.mode == "incremental" and stats.changed_main_ids == 0
    assert {(r[2], r[1]): r[4] for r in got}[c] == T0 + 5 * DAY + dt.timedelta(hours=23)
    assert _mains(got)[c] == main
    # a new id linked late to c, inside the window: joins the profile, main id kept
    stats, got = stitcher.run([("late2", T0 + 5 * DAY + dt.timedelta(hours=1), [("anon_id", "new"), c])])
    assert stats.mode == "incremental" and stats.new_ids == 1 and stats.changed_main_ids == 0
    assert _mains(got)[("anon_id", "new")] == main
    # a profile born later joins, from inside the window: it takes the older main id
    stitcher.run([("r5", T0 + 20 * DAY, [("email", "later")])])  # watermark 20d: the window starts at 16d
    stats, got = stitcher.run([("late3", T0 + 17 * DAY, [("email", "later"), c])])
    assert stats.mode == "incremental" and stats.changed_main_ids == 1
    assert _mains(got)[("email", "later")] == main
    stats, got = stitcher.run([("late4", T0 + 16 * DAY + dt.timedelta(hours=1), [("user_id", "z"), ("email", "y")])])
    assert stats.mode == "incremental" and stats.new_ids == 2


def test_first_seen_moves_earlier_and_changes_main_id(con: duckdb.DuckDBPyConnection) -> None:
    """A late row (inside the window) carries an id of a profile earlier than its main id's member."""
    stitcher = Stitcher(con)
    x, y = ("email", "x"), ("user_id", "y")
    _, got = stitcher.run([("r0", T0 + 10 * DAY, [x]), ("r1", T0 + 11 * DAY, [x, y]), ("r2", T0 + 12 * DAY, [y])])
    assert _mains(got)[y] == py_main_id("x", "email")
    # window starts at 8d; y seen at 9d now: y becomes the earliest member
    stats, got = stitcher.run([("late", T0 + 9 * DAY, [y])])
    assert stats.mode == "incremental"
    assert stats.changed_main_ids == 1
    assert _mains(got)[x] == py_main_id("y", "user_id")
    first_seen = {(r[2], r[1]): r[4] for r in got}
    assert first_seen[y] == T0 + 9 * DAY


def test_batch_merging_two_old_profiles(con: duckdb.DuckDBPyConnection) -> None:
    stitcher = Stitcher(con)
    first = [("p1", T0 + DAY, [("email", "e1"), ("user_id", "u1")]), ("p2", T0 + 2 * DAY, [("user_id", "u1")])]
    second = [("q1", T0 + 3 * DAY, [("email", "e2"), ("anon_id", "a2")])]
    _, got = stitcher.run(first + second + [("z", T0 + 10 * DAY, [("email", "z")])])
    assert len({r[0] for r in got}) == 3
    before = _mains(got)
    stats, got = stitcher.run([("bridge", T0 + 11 * DAY, [("anon_id", "a2"), ("user_id", "u1"), ("email", "n")])])
    assert stats.mode == "incremental"
    assert stats.changed_main_ids == 1  # the later profile takes the earlier one's main id
    assert stats.new_ids == 1
    mains = _mains(got)
    assert mains[("email", "e2")] == mains[("email", "n")] == before[("email", "e1")] != before[("email", "e2")]


def test_late_rows_beyond_lookback_force_a_full_run(con: duckdb.DuckDBPyConnection) -> None:
    stitcher = Stitcher(con)
    stitcher.run([("r1", T0 + 10 * DAY, [("email", "a"), ("user_id", "b")])])
    stats, _ = stitcher.run([("old", T0 + DAY, [("email", "a"), ("anon_id", "early")])])
    assert stats.mode == "full"
    assert "late data older than the look-back" in stats.reason
    stats, _ = stitcher.run([("next", T0 + 11 * DAY, [("anon_id", "early"), ("email", "c")])])
    assert stats.mode == "incremental"


def test_rerun_without_new_rows_keeps_everything(con: duckdb.DuckDBPyConnection) -> None:
    stitcher = Stitcher(con, seed=4)
    rng = random.Random(4)
    _, first = stitcher.run(random_batch(rng, T0, 800, 600, "a"))
    stats, second = stitcher.run([])
    assert stats.mode == "incremental" and stats.new_ids == 0 and stats.changed_main_ids == 0
    assert first == second


def test_same_result_in_any_row_order_and_from_scratch(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(8)
    batches = [random_batch(rng, T0 + 3 * n * DAY, 500, 700, f"b{n}") for n in range(3)]
    one, two = Stitcher(con, seed=1), Stitcher(con, seed=2)
    two.runs = 100  # other table names
    for batch in batches:
        _, got_one = one.run(batch)
        _, got_two = two.run(list(reversed(batch)))
        assert got_one == got_two
    _, full = one.run([], incremental=False)
    assert full == got_one


def test_rows_without_occurred_at_are_always_reread(con: duckdb.DuckDBPyConnection) -> None:
    stitcher = Stitcher(con)
    stitcher.run([("n1", None, [("email", "a"), ("user_id", "b")]), ("t1", T0 + 10 * DAY, [("email", "c")])])
    stats, _ = stitcher.run([("n2", None, [("user_id", "b"), ("email", "c")])])
    assert stats.mode == "incremental"


def test_no_timestamps_at_all_means_full_runs(con: duckdb.DuckDBPyConnection) -> None:
    stitcher = Stitcher(con)
    stitcher.run([("n1", None, [("email", "a"), ("user_id", "b")])])
    stats, _ = stitcher.run([("n2", None, [("user_id", "b"), ("email", "c")])])
    assert stats.mode == "full" and "no occurred_at" in stats.reason


def test_longer_lookback_recounts(con: duckdb.DuckDBPyConnection) -> None:
    stitcher = Stitcher(con, lookback=dt.timedelta(days=1))
    rng = random.Random(5)
    stitcher.run(random_batch(rng, T0, 300, 300, "a"))
    stitcher.lookback = dt.timedelta(days=30)  # the window of the next run starts before this one's
    stats, _ = stitcher.run(random_batch(rng, T0 + 3 * DAY, 300, 300, "b"))
    assert stats.mode == "incremental"
    stats, _ = stitcher.run(random_batch(rng, T0 + 6 * DAY, 300, 300, "c"))
    assert stats.mode == "incremental"


def test_checkpoint_counts(con: duckdb.DuckDBPyConnection) -> None:
    stitcher = Stitcher(con)
    rows: list[Row] = [(f"r{d}", T0 + d * DAY, [("email", f"e{d}")]) for d in range(10)]
    stats, _ = stitcher.run(rows)
    assert stats.checkpoint == Checkpoint(T0 + 9 * DAY, T0 + 5 * DAY, 6, 10, 10)
    stats, _ = stitcher.run([("r12", T0 + 12 * DAY, [("email", "e12")])])
    assert stats.checkpoint == Checkpoint(T0 + 12 * DAY, T0 + 8 * DAY, 9, 11, 11)
    assert stats.observations == 5  # days 6..9 again, and day 12


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4d", dt.timedelta(days=4)),
        ("96h", dt.timedelta(hours=96)),
        ("1d12h", dt.timedelta(days=1, hours=12)),
        ("96h0m0s", dt.timedelta(hours=96)),
        ("2w", dt.timedelta(weeks=2)),
        ("90m", dt.timedelta(minutes=90)),
    ],
)
def test_parse_lookback(text: str, expected: dt.timedelta) -> None:
    assert parse_lookback(text) == expected


@pytest.mark.parametrize("text", ["", "4", "four days", "4x", "d4"])
def test_parse_lookback_rejects(text: str) -> None:
    from profiles_dagster.errors import ProfilesError

    with pytest.raises(ProfilesError, match="look-back"):
        parse_lookback(text)


# ------------------------------------------------------------------------------------ health


def python_health(rows: Sequence[Row], *, largest: int, degree_profiles: int, degree_limit: int) -> dict:
    """The health numbers straight from the model: sizes, per type, largest profiles, degrees."""
    out = expected_output(rows)
    main_of = {(r[2], r[1]): r[0] for r in out}
    members: dict[str, list[tuple[str, str]]] = {}
    for key, main in main_of.items():
        members.setdefault(main, []).append(key)
    sizes = sorted(len(v) for v in members.values())
    per_type: dict[str, dict[int, int]] = {}
    for keys in members.values():
        counts: dict[str, int] = {}
        for t, _ in keys:
            counts[t] = counts.get(t, 0) + 1
        for t, n in counts.items():
            per_type.setdefault(t, {})
            per_type[t][n] = per_type[t].get(n, 0) + 1
    ranked = sorted(members, key=lambda m: (-len(members[m]), m))
    neighbours: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for key, _, ids in rows:
        if key is None:
            continue
        for a in ids:
            for b in ids:
                if a != b:
                    neighbours.setdefault(a, set()).add(b)
    candidates = {k for m in ranked[:degree_profiles] for k in members[m]}
    degrees = sorted(
        ((t, i, main_of[(t, i)], len(n)) for (t, i), n in neighbours.items() if (t, i) in candidates),
        key=lambda d: (-d[3], d[0], d[1]),
    )[:degree_limit]
    return {
        "sizes": sizes,
        "ids": {t: sum(n * c for n, c in h.items()) for t, h in per_type.items()},
        "per_type": {t: sorted(h.items()) for t, h in per_type.items()},
        "largest": [(m, len(members[m])) for m in ranked[:largest]],
        "degrees": degrees,
    }


def test_health_numbers_equal_python(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(17)
    rows = random_batch(rng, T0, 1500, 1200, "h")
    # a shared device and a placeholder email: the high-degree ids
    rows += [(f"dev{i}", T0, [("anon_id", "shared-device"), ("user_id", f"v{i}")]) for i in range(40)]
    rows += [(f"na{i}", T0, [("email", "N/A"), ("user_id", f"w{i}"), ("anon_id", f"x{i}")]) for i in range(25)]
    stitcher = Stitcher(con)
    stitcher.run(rows)
    table = exp.table_("run_1", db="out", quoted=True)
    health = health_sql.collect(
        lambda q: con.execute(q.sql("duckdb")).fetchall(),
        table,
        MAIN,
        observations=observations_query(),
        largest=5,
        degree_profiles=20,
        degree_limit=8,
    )
    model = python_health(stitcher.rows, largest=5, degree_profiles=20, degree_limit=8)
    sizes = model["sizes"]
    assert health.profiles == len(sizes)
    assert health.size_max == sizes[-1]
    assert health.size_p50 == sizes[-(-len(sizes) // 2) - 1]
    assert health.size_p99 == sizes[-(-len(sizes) * 99 // 100) - 1]
    assert health.ids == model["ids"]
    assert health.per_type == model["per_type"]
    assert [(m, s) for m, s, _ in health.largest] == model["largest"]
    assert [(d.other_id_type, d.other_id, d.main_id, d.degree) for d in health.degrees] == model["degrees"]
    assert health.degrees[0].other_id == "N/A" and health.degrees[0].degree == 50
    assert health.degrees[1].other_id == "shared-device"
    # with every profile a candidate the list is the global top
    everything = health_sql.collect(
        lambda q: con.execute(q.sql("duckdb")).fetchall(),
        table,
        MAIN,
        observations=observations_query(),
        degree_profiles=10_000,
        degree_limit=8,
    )
    model = python_health(stitcher.rows, largest=5, degree_profiles=10_000, degree_limit=8)
    assert [(d.other_id_type, d.other_id, d.main_id, d.degree) for d in everything.degrees] == model["degrees"]
    assert everything.degrees_complete
    meta = health.metadata()
    assert meta["health_profile_size_max"] == sizes[-1]
    assert meta["health_ids_email"] == model["ids"]["email"]
    text = health_sql.format_report("title", health, over={"user_id": 3})
    assert "shared-device" in text and f"max {sizes[-1]:,}" in text


def test_quantile_nearest_rank() -> None:
    assert health_sql.quantile([(1, 99), (7, 1)], 0.99) == 1
    assert health_sql.quantile([(1, 98), (7, 2)], 0.99) == 7
    assert health_sql.quantile([(1, 1), (2, 1)], 0.5) == 1
    assert health_sql.quantile([], 0.5) == 0
