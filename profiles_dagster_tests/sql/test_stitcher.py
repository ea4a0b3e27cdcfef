"""Tests for the in-warehouse id stitcher against an independent Python model.

Why: the SQL contraction algorithm is intricate; every case compares the whole
output table with a plain union-find plus a direct reading of the main-id,
first_seen_at and valid_at rules.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import random
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from profiles_dagster.sql.dialects import DUCKDB, dialect_for
from profiles_dagster.sql.stitcher import (
    Checkpoint,
    PreviousGraph,
    StitcherRoundLimitError,
    StitcherStats,
    main_id_expression,
    run_stitcher,
)
from profiles_dagster.warehouse.base import Session
from profiles_dagster.warehouse.duckdb import DuckDBSession

SALT = "fe971b24-9572-4005-b22f-351e9c09274d"
MAIN = "user_main_id"
T0 = dt.datetime(2024, 1, 1)

IdKey = tuple[str, str]  # (other_id_type, other_id)
Row = tuple[str | None, dt.datetime | None, list[IdKey]]  # (row_key, occurred_at, ids)


class RecordingSession(Session):
    """The one fake session of the stitcher's tests: the real `Session` (every method the stitcher may
    call), rendering for any engine's dialect, recording each statement and hook call in order. Statements
    run on a DuckDB connection when one is given (without reporting rows written, so every scratch table
    gets its `analyze` call), else `answer` scripts the replies to queries."""

    def __init__(
        self,
        dialect: str = DUCKDB,
        connection: duckdb.DuckDBPyConnection | None = None,
        answer: Callable[[str], list[tuple]] | None = None,
    ) -> None:
        super().__init__(connection, "out")
        self.dialect = dialect  # type: ignore[misc]
        self.answer = answer
        self.statements: list[str] = []  # SQL only
        self.events: list[str] = []  # SQL and hook calls

    def execute(self, sql: str) -> None:
        self.statements.append(sql)
        self.events.append(sql)
        if self.connection is not None:
            self.connection.execute(sql)
        else:  # scripted: a run that does not stop fails here
            assert len(self.statements) < 800

    def query(self, sql: str) -> list[tuple]:
        self.statements.append(sql)
        self.events.append(sql)
        if self.answer is not None:
            return self.answer(sql)
        return self.connection.execute(sql).fetchall()

    def analyze(self, target: exp.Table) -> None:
        self.events.append(f"analyze {target.name}")

    @contextlib.contextmanager
    def large_work(self) -> Iterator[None]:
        self.events.append("large_work on")
        try:
            yield
        finally:
            self.events.append("large_work off")


# ----------------------------------------------------------------- independent model


def py_main_id(other_id: str, other_id_type: str) -> str:
    inner = hashlib.sha1((SALT + other_id).encode()).hexdigest()[:32]
    return "rid" + hashlib.sha1((inner + other_id_type).encode()).hexdigest()[:32]


def _min_ts(values: Iterator[dt.datetime | None]) -> dt.datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def expected_output(rows: Sequence[Row]) -> list[tuple]:
    """Union-find over ids on the same row, then the main-id and time rules."""
    parent: dict[IdKey, IdKey] = {}

    def find(key: IdKey) -> IdKey:
        parent.setdefault(key, key)
        root = key
        while parent[root] != root:
            root = parent[root]
        while parent[key] != root:
            parent[key], key = root, parent[key]
        return root

    seen: dict[IdKey, list[dt.datetime | None]] = {}
    linked: dict[IdKey, list[dt.datetime | None]] = {}
    for _, ts, ids in rows:
        distinct = set(ids)
        for key in ids:
            find(key)
            seen.setdefault(key, []).append(ts)
            if len(distinct) > 1:
                linked.setdefault(key, []).append(ts)
        first = ids[0]
        for key in ids[1:]:
            ra, rb = find(first), find(key)
            if ra != rb:
                parent[ra] = rb

    first_seen = {key: _min_ts(iter(v)) for key, v in seen.items()}
    members: dict[IdKey, list[IdKey]] = {}
    for key in seen:
        members.setdefault(find(key), []).append(key)
    out = []
    for group in members.values():

        def rank(key: IdKey) -> tuple:
            ts = first_seen[key]
            return (ts is None, ts or T0, py_main_id(key[1], key[0]))

        best = min(group, key=rank)
        main = py_main_id(best[1], best[0])
        for key in group:
            valid = _min_ts(iter(linked[key])) if key in linked else first_seen[key]
            out.append((main, key[1], key[0], valid, first_seen[key]))
    return sorted(out, key=_sort_key)


def expected_pairs(rows: Sequence[Row]) -> int:
    """Distinct pairs of distinct ids seen on one row (rows grouped by key; a NULL key links nothing)."""
    by_key: dict[str, set[IdKey]] = {}
    for key, _, ids in rows:
        if key is not None:
            by_key.setdefault(key, set()).update(ids)
    return len({(a, b) for ids in by_key.values() for a in ids for b in ids if a < b})


def expected_clusters(rows: Sequence[Row]) -> int:
    return len({r[0] for r in expected_output(rows)})


def _sort_key(row: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in row)


# --------------------------------------------------------------------- harness


SLOTS = 6  # id slots of the test observations: rows name up to this many ids


def wide_rows(rows: Sequence[Row]) -> list[tuple]:
    """The stitcher's input shape: one row per input row, its ids in slots (a row without a key: each of
    its ids alone, linking nothing)."""
    out: list[tuple] = []
    for key, at, ids in rows:
        groups = [ids] if key is not None else [[i] for i in ids]
        for group in groups:
            assert len(group) <= SLOTS, group
            slots = [v for typ, val in group for v in (typ, val)] + [None, None] * (SLOTS - len(group))
            out.append((at, *slots))
    return out


def slot_columns() -> list[str]:
    return [c for k in range(1, SLOTS + 1) for c in (f"other_id_type_{k}", f"other_id_{k}")]


def load_observations(con: duckdb.DuckDBPyConnection, rows: Sequence[Row], table: str = "obs") -> None:
    columns = ["occurred_at", *slot_columns()]
    frame = pd.DataFrame(wide_rows(rows), columns=columns)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
    con.register("frame_view", frame)
    casts = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in slot_columns())
    times = "CAST(occurred_at AS TIMESTAMP) AS occurred_at"
    con.execute(f"CREATE TABLE {table} AS SELECT {times}, {casts} FROM frame_view")
    con.unregister("frame_view")


def observations_query(table: str = "obs") -> exp.Query:
    return sqlglot.select("occurred_at", *slot_columns()).from_(table)


@pytest.fixture()
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "wh.duckdb"))
    connection.execute("CREATE SCHEMA out")
    yield connection
    connection.close()


def stitch(
    con: duckdb.DuckDBPyConnection, table: str = "obs", target: str = "stitched", **kwargs: object
) -> tuple[StitcherStats, list[tuple]]:
    session = DuckDBSession(con, "out")
    stats = run_stitcher(
        session,
        observations=observations_query(table),
        target=exp.table_(target, db="out", quoted=True),
        main_id_column=MAIN,
        scratch_prefix=f"scratch_{target}",
        **kwargs,  # type: ignore[arg-type]
    )
    got = con.execute(f'SELECT * FROM out."{target}"').fetchall()
    return stats, sorted(got, key=_sort_key)


def scratch_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    names = con.execute("SELECT table_name FROM information_schema.tables").fetchall()  # temporary ones too
    return [n for (n,) in names if n.startswith("scratch_")]


def check(con: duckdb.DuckDBPyConnection, rows: Sequence[Row], **kwargs: object) -> StitcherStats:
    load_observations(con, rows)
    stats, got = stitch(con, **kwargs)
    assert got == expected_output(rows)
    assert stats.ids == len({k for _, _, ids in rows for k in ids})
    assert stats.clusters == expected_clusters(rows)
    assert stats.edges == expected_pairs(rows)
    assert 0 < stats.internal_edges <= stats.edges or stats.internal_edges == stats.edges == 0
    assert scratch_tables(con) == []
    return stats


def ts(rng: random.Random, null_rate: float = 0.1) -> dt.datetime | None:
    """Few distinct values so first_seen_at ties (and the hash tie-break) happen."""
    if rng.random() < null_rate:
        return None
    return T0 + dt.timedelta(hours=rng.randrange(6))


def random_rows(seed: int, n_rows: int, n_ids: int, max_ids: int = 3) -> list[Row]:
    rng = random.Random(seed)
    types = ["email", "anon_id", "user_id"]
    rows: list[Row] = []
    for i in range(n_rows):
        k = rng.choice([1, 1, 2, 2, 2, 3, max_ids])
        ids = [(rng.choice(types), f"v{rng.randrange(n_ids)}") for _ in range(k)]
        rows.append((f"r{i}", ts(rng), ids))
    return rows


# ------------------------------------------------------------------------- tests


def test_main_id_expression_matches_python(con: duckdb.DuckDBPyConnection) -> None:
    values = [("a@b.com", "email"), ("ünïcode-✓", "anon_id"), ("", "user_id"), ("42", "email")]
    for other_id, other_id_type in values:
        expr = main_id_expression(exp.Literal.string(other_id), exp.Literal.string(other_id_type))
        (got,) = con.execute(sqlglot.select(expr).sql(dialect=DUCKDB)).fetchone()
        assert got == py_main_id(other_id, other_id_type)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_sparse_graphs(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    check(con, random_rows(seed, n_rows=3000, n_ids=2500))


def test_chain_10k_hops(con: duckdb.DuckDBPyConnection) -> None:
    n = 10_000
    order = list(range(n + 1))
    random.Random(7).shuffle(order)  # names unrelated to chain position
    rows: list[Row] = [
        (f"r{i}", T0 + dt.timedelta(seconds=n - i), [("email", f"c{order[i]}"), ("email", f"c{order[i + 1]}")])
        for i in range(n)
    ]
    stats = check(con, rows)
    assert stats.rounds <= 20
    assert (stats.edges, stats.clusters) == (n, 1)


def test_chain_sequential_names(con: duckdb.DuckDBPyConnection) -> None:
    """Consecutive node numbers along the chain: the priority hash must still mix."""
    n = 10_000
    rows: list[Row] = [(f"r{i}", None, [("t", f"{i:06d}"), ("t", f"{i + 1:06d}")]) for i in range(n)]
    assert check(con, rows).rounds <= 20


def test_star(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(3)
    rows: list[Row] = [(f"r{i}", ts(rng), [("anon_id", "hub"), ("email", f"leaf{i}")]) for i in range(5000)]
    stats = check(con, rows)
    assert (stats.edges, stats.clusters) == (5000, 1)


def test_duplicate_edges_and_repeated_ids(con: duckdb.DuckDBPyConnection) -> None:
    rows: list[Row] = []
    for i in range(50):
        rows.append((f"a{i}", T0 + dt.timedelta(days=i), [("email", "x"), ("user_id", "y")]))
        rows.append((f"b{i}", T0 + dt.timedelta(days=i), [("user_id", "y"), ("email", "x"), ("email", "x")]))
    # same id twice on one row: not a link, so valid_at stays first_seen_at
    rows.append(("solo", T0 - dt.timedelta(days=3), [("email", "z"), ("email", "z")]))
    stats = check(con, rows)
    assert (stats.edges, stats.clusters) == (1, 2)


def test_isolated_ids(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(5)
    rows: list[Row] = [(f"r{i}", ts(rng), [("email", f"e{i}")]) for i in range(200)]
    rows.append(("pair", T0, [("email", "p1"), ("email", "p2")]))
    stats = check(con, rows)
    assert (stats.edges, stats.clusters, stats.rounds) == (1, 201, 1)


def test_only_isolated_ids(con: duckdb.DuckDBPyConnection) -> None:
    rows: list[Row] = [(f"r{i}", None, [("email", f"e{i}")]) for i in range(10)]
    stats = check(con, rows)
    assert (stats.rounds, stats.edges, stats.clusters) == (0, 0, 10)


def test_empty_observations(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE obs (occurred_at TIMESTAMP, {', '.join(c + ' VARCHAR' for c in slot_columns())})")
    stats, got = stitch(con)
    assert ((stats.rounds, stats.ids, stats.edges, stats.clusters), got) == ((0, 0, 0, 0), [])
    assert scratch_tables(con) == []


def test_null_row_key_links_nothing(con: duckdb.DuckDBPyConnection) -> None:
    rows: list[Row] = [
        (None, T0, [("email", "a"), ("email", "b")]),
        (None, T0, [("email", "c")]),
        ("r1", T0 + dt.timedelta(hours=1), [("email", "a"), ("email", "d")]),
    ]
    load_observations(con, rows)
    _, got = stitch(con)
    # model: each NULL-key observation is its own row
    singles: list[Row] = [
        (f"n{i}", T0, [key]) for i, key in enumerate([("email", "a"), ("email", "b"), ("email", "c")])
    ]
    assert got == expected_output([*singles, rows[2]])


def test_same_value_as_two_types(con: duckdb.DuckDBPyConnection) -> None:
    rows: list[Row] = [
        ("r1", T0, [("email", "same")]),
        ("r2", T0, [("user_id", "same")]),
        ("r3", T0 + dt.timedelta(hours=1), [("user_id", "same"), ("anon_id", "a1")]),
    ]
    stats = check(con, rows)
    assert (stats.ids, stats.clusters) == (3, 2)


def test_null_occurred_at(con: duckdb.DuckDBPyConnection) -> None:
    rows: list[Row] = [
        # all-NULL component: main id by smallest hash, NULL times
        ("n1", None, [("email", "a"), ("email", "b")]),
        ("n2", None, [("email", "b"), ("anon_id", "c")]),
        # NULL first_seen_at sorts last, whichever member has the smaller hash
        *[(f"m{i}", None, [("email", f"d{i}"), ("email", f"e{i}")]) for i in range(6)],
        *[(f"t{i}", T0 + dt.timedelta(hours=2), [("email", f"e{i}")]) for i in range(6)],
        # linked only on a NULL-time row, but seen alone with a time
        ("k1", None, [("email", "f"), ("email", "g")]),
        ("k2", T0, [("email", "f")]),
    ]
    check(con, rows)


def test_rows_with_many_ids(con: duckdb.DuckDBPyConnection) -> None:
    stats = check(con, random_rows(11, n_rows=1500, n_ids=3000, max_ids=6))
    assert stats.internal_edges < stats.edges  # a row of k ids: k - 1 star edges for k (k - 1) / 2 pairs


def test_edges_count_pairs_not_star_edges(con: duckdb.DuckDBPyConnection) -> None:
    """One row of four ids is six pairs (three star edges); a pair seen again is counted once, also when
    one row's star holds it and another row links it as two non-hub ids."""
    ids = [("email", f"e{i}") for i in range(4)]
    rows: list[Row] = [("r1", T0, ids), ("r2", T0, list(reversed(ids))), ("r3", T0, [ids[2], ids[3], ids[2]])]
    rows.append(("r4", T0, [("user_id", "u"), ("anon_id", "a")]))
    stats = check(con, rows)
    assert (stats.edges, stats.clusters) == (7, 2)
    assert stats.internal_edges in (4, 5)  # r1's star, r3's pair unless r1's hub is in it, r4


def test_one_giant_component(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(13)
    n_ids = 3000
    rows: list[Row] = [(f"c{i}", ts(rng), [("email", f"v{i}"), ("email", f"v{i + 1}")]) for i in range(0, n_ids - 1, 2)]
    rows += [
        (f"x{i}", ts(rng), [("email", f"v{rng.randrange(n_ids)}"), ("email", f"v{rng.randrange(n_ids)}")])
        for i in range(6000)
    ]
    rows.append(("last", T0, [("email", f"v{n_ids - 1}"), ("email", "v0")]))
    stats = check(con, rows)
    assert stats.clusters == 1


def test_reproducible_across_orderings_and_runs(con: duckdb.DuckDBPyConnection) -> None:
    rows = random_rows(21, n_rows=2000, n_ids=1500)
    load_observations(con, rows, "obs")
    load_observations(con, list(reversed(rows)), "obs_rev")
    stats_a, got_a = stitch(con, "obs", "run_a")
    stats_b, got_b = stitch(con, "obs_rev", "run_b")
    stats_c, got_c = stitch(con, "obs", "run_c")
    assert got_a == got_b == got_c == expected_output(rows)
    # node numbers (and so the rounds) may differ between runs; nothing in the result does
    assert {(s.ids, s.edges, s.clusters) for s in (stats_a, stats_b, stats_c)} == {
        (stats_a.ids, stats_a.edges, stats_a.clusters)
    }


def test_round_limit(con: duckdb.DuckDBPyConnection) -> None:
    rows: list[Row] = [(f"r{i}", None, [("t", f"n{i}"), ("t", f"n{i + 1}")]) for i in range(2000)]
    load_observations(con, rows)
    with pytest.raises(StitcherRoundLimitError, match=r"max_rounds=1: \d+ edges left"):
        stitch(con, max_rounds=1)
    assert scratch_tables(con) == []
    assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'stitched'").fetchone() == (
        0,
    )


def test_scratch_tables_dropped_on_sql_error(con: duckdb.DuckDBPyConnection) -> None:
    load_observations(con, [("r1", T0, [("email", "a"), ("email", "b")])])
    con.execute('CREATE TABLE out."stitched" (x INTEGER)')  # target exists: CREATE fails
    with pytest.raises(duckdb.Error):
        stitch(con)
    assert scratch_tables(con) == []


def test_output_schema(con: duckdb.DuckDBPyConnection) -> None:
    load_observations(con, [("r1", T0, [("email", "a"), ("email", "b")])])
    stitch(con)
    cols = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'stitched' ORDER BY ordinal_position"
    ).fetchall()
    assert cols == [
        (MAIN, "VARCHAR"),
        ("other_id", "VARCHAR"),
        ("other_id_type", "VARCHAR"),
        ("valid_at", "TIMESTAMP"),
        ("first_seen_at", "TIMESTAMP"),
    ]


def scripted_answer(sql: str) -> list[tuple]:
    """Answers the stitcher's queries by what they ask, so every statement kind (two rounds, pending
    jumps, map composition, an incremental run) is produced."""
    if re.match(r"SELECT SUM\(", sql, re.IGNORECASE) and "MAX(" in sql.upper():  # observations, newest time
        return [(5, dt.datetime(2024, 1, 9))]
    if "MAX(" in sql.upper() and "OCCURRED_AT" in sql.upper():
        return [(dt.datetime(2024, 1, 9),)]
    edges_round = re.search(r"edges_r(\d+)", sql, re.IGNORECASE)  # Snowflake folds names to upper case
    if edges_round:  # edges left after round n
        return [(3 if edges_round.group(1) == "1" else 0,)]
    jumped = re.search(r"COUNT\(\*\) FROM \S*pt_\d+_j(\d+)", sql, re.IGNORECASE)
    if jumped:  # nodes a jump wrote (those pending before it): two jumps, then a third that writes none
        return [(2 if int(jumped.group(1)) <= 2 else 0,)]
    return [(5, 3)]


# (engine, the sqlglot dialect whose parser must accept its statements): Databricks' SQL is Spark's too
@pytest.mark.parametrize(
    ("engine", "dialect"),
    [
        ("duckdb", "duckdb"),
        ("snowflake", "snowflake"),
        ("bigquery", "bigquery"),
        ("postgres", "postgres"),
        ("databricks", "spark"),
        ("databricks", "databricks"),
        ("redshift", "redshift"),
    ],
)
@pytest.mark.parametrize("incremental", [False, True])
def test_statements_render_for_warehouses(engine: str, dialect: str, incremental: bool) -> None:
    session = RecordingSession(dialect_for(engine), answer=scripted_answer)
    previous = None
    if incremental:
        checkpoint = Checkpoint(dt.datetime(2024, 1, 8), dt.datetime(2024, 1, 4), 5, 10, 4)
        previous = PreviousGraph(exp.table_("Material_user_id_stitcher_ab12cd34_2", db="out", quoted=True), checkpoint)
    stats = run_stitcher(
        session,
        observations=observations_query("src_db.obs"),
        target=exp.table_("Material_user_id_stitcher_ab12cd34_3", db="out", quoted=True),
        main_id_column=MAIN,
        scratch_prefix="tmp_stitch",
        previous=previous,
    )
    assert stats.mode == ("incremental" if incremental else "full")
    assert stats.rounds == 2
    # names compared case-blind: Snowflake's dialect folds the names the product writes to upper case
    joined = "\n".join(session.statements).lower()
    for needle in ("_m1_2", "_labels", "_pt_1_j2", "_pt_1_j3", "CREATE TABLE", "DROP TABLE IF EXISTS"):
        assert needle.lower() in joined
    if incremental:
        for needle in ("tmp_stitch_hit", "tmp_stitch_remap", "UNION ALL"):
            assert needle.lower() in joined
    for sql in session.statements:
        if sql in ("BEGIN", "COMMIT"):  # DuckDB: the previous table is extended in place, in one transaction
            continue
        names = ("tmp_stitch", "material_user_id_stitcher", "src_db.obs", "information_schema.views")
        assert any(name in sql.lower() for name in names)
        sqlglot.parse_one(sql, read=dialect)  # renders to SQL the dialect's parser accepts


def test_a_lent_graph_restitches_to_the_lenders_table(con: duckdb.DuckDBPyConnection) -> None:
    """An entity borrowing another's stitcher re-stitches the lender's table (compiler's `_lent_graph`): the
    same clusters, main ids and first_seen_at; each id's valid_at is its first_seen_at, as when its cluster
    was one row of ids each seen at its first_seen_at."""
    from types import SimpleNamespace

    from profiles_dagster.plan.steps import StepKey
    from profiles_dagster.sql.compiler import _lent_graph

    rows = random_rows(31, n_rows=600, n_ids=500)
    load_observations(con, rows)
    stitch(con, target="lender")
    lender = exp.table_("lender", db="out", quoted=True)
    ctx = SimpleNamespace(
        project=SimpleNamespace(entities={"user": SimpleNamespace(main_id_column=MAIN)}),
        materials={StepKey.id_stitcher("user"): lender},
    )
    stats = run_stitcher(
        DuckDBSession(con, "out"),
        observations=_lent_graph(ctx, "user"),  # type: ignore[arg-type]
        target=exp.table_("borrower", db="out", quoted=True),
        main_id_column=MAIN,
        scratch_prefix="scratch_borrower",
    )
    got = sorted(con.execute('SELECT * FROM out."borrower"').fetchall(), key=_sort_key)
    want = sorted(((m, i, t, s, s) for m, i, t, _, s in expected_output(rows)), key=_sort_key)
    assert got == want
    assert stats.clusters == expected_clusters(rows)


def test_slots_of_one_literal_type_find_ids_by_value(con: duckdb.DuckDBPyConnection) -> None:
    """Observations as the compiler writes them (a UNION ALL whose branches give each slot's id type as a
    literal, NULL where a source has no id for the slot): those slots look ids up by value among their type's
    ids; a slot whose type varies, or is not a literal, by type and value. Same result either way."""
    from profiles_dagster.sql.stitcher import _slot_types

    rng = random.Random(41)
    con.execute("CREATE TABLE a (ts TIMESTAMP, e VARCHAR, n VARCHAR, t VARCHAR)")
    con.execute("CREATE TABLE b (ts TIMESTAMP, e VARCHAR)")
    rows: list[Row] = []
    for i in range(400):
        at = ts(rng)
        email, anon = f"v{rng.randrange(150)}", f"v{rng.randrange(150)}" if rng.random() < 0.8 else None
        kind = rng.choice(["user_id", "phone"])
        rows.append((f"a{i}", at, [("email", email), *([("anon_id", anon)] if anon else []), (kind, f"v{i % 70}")]))
        con.execute("INSERT INTO a VALUES (?, ?, ?, ?)", [at, email, anon, kind])
    for i in range(100):
        at, email = ts(rng), f"v{rng.randrange(200)}"
        rows.append((f"b{i}", at, [("email", email)]))
        con.execute("INSERT INTO b VALUES (?, ?)", [at, email])
    # a's third slot: the type is a column (user_id or phone); its value v<i % 70> for both
    con.execute("ALTER TABLE a ADD COLUMN v VARCHAR")
    con.execute("UPDATE a SET v = 'v' || ((rowid) % 70)")
    query = sqlglot.parse_one(
        "SELECT ts AS occurred_at, CAST('email' AS VARCHAR) AS other_id_type_1, e AS other_id_1, "
        "CAST('anon_id' AS VARCHAR) AS other_id_type_2, n AS other_id_2, t AS other_id_type_3, v AS other_id_3 "
        "FROM a UNION ALL SELECT ts, 'email', e, CAST(NULL AS VARCHAR), NULL, NULL, NULL FROM b",
        read="duckdb",
    )
    assert isinstance(query, exp.Query)
    assert _slot_types(query, 3) == ("email", "anon_id", None)
    stats = run_stitcher(
        DuckDBSession(con, "out"),
        observations=query,
        target=exp.table_("typed", db="out", quoted=True),
        main_id_column=MAIN,
        scratch_prefix="scratch_typed",
    )
    got = sorted(con.execute('SELECT * FROM out."typed"').fetchall(), key=_sort_key)
    assert got == expected_output(rows)
    assert stats.observations == sum(len(ids) for _, _, ids in rows)


@pytest.mark.parametrize(
    ("query", "reread"),
    [
        ("SELECT ts AS occurred_at, CAST('email' AS VARCHAR) AS other_id_type_1, e AS other_id_1 FROM a", True),
        (
            "SELECT occurred_at, other_id_type_1, other_id_1 FROM (SELECT ts AS occurred_at, 'email' AS "
            "other_id_type_1, e AS other_id_1 FROM s.a WHERE ts > '2024-01-01' "
            "UNION ALL SELECT ts, 'email', coalesce(e, f) FROM b) AS o",
            True,
        ),
        # an id filter is evaluated once, in the copy: cheaper than four times (the example at 4M: 0.6 s CPU)
        ("SELECT ts AS occurred_at, CAST('email' AS VARCHAR) AS other_id_type_1, lower(e) AS other_id_1 FROM a", False),
        (
            "SELECT occurred_at, other_id_type_1, other_id_1 FROM (SELECT ts AS occurred_at, 'email' AS "
            "other_id_type_1, CASE WHEN e = 'x' THEN NULL ELSE e END AS other_id_1 FROM s.a WHERE ts > '2024-01-01' "
            "UNION ALL SELECT ts, 'email', e FROM b) AS o",
            False,
        ),
        (
            "SELECT ts AS occurred_at, 'email' AS other_id_type_1, first_value(e) OVER (ORDER BY ts) AS other_id_1 "
            "FROM a",
            False,
        ),
        ("SELECT max(ts) AS occurred_at, 'email' AS other_id_type_1, e AS other_id_1 FROM a GROUP BY e", False),
        ("SELECT a.ts AS occurred_at, 'email' AS other_id_type_1, b.e AS other_id_1 FROM a JOIN b ON a.k = b.k", False),
        ("SELECT DISTINCT ts AS occurred_at, 'email' AS other_id_type_1, e AS other_id_1 FROM a", False),
        (
            "SELECT ts AS occurred_at, 'email' AS other_id_type_1, e AS other_id_1 FROM a "
            "UNION SELECT ts, 'x', e FROM b",
            False,
        ),
        ("SELECT ts AS occurred_at, 'email' AS other_id_type_1, (SELECT max(e) FROM b) AS other_id_1 FROM a", False),
        ("SELECT ts AS occurred_at, 'email' AS other_id_type_1, e AS other_id_1 FROM read_csv('x.csv')", False),
    ],
)
def test_observations_read_in_place_only_when_cheap(query: str, reread: bool) -> None:
    """A full run reads plain projections of tables several times instead of copying them; anything that
    computes more (windows, aggregates, joins, DISTINCT, subqueries, table functions) it copies once."""
    from profiles_dagster.sql.stitcher import _rereadable

    parsed = sqlglot.parse_one(query, read="duckdb")
    assert isinstance(parsed, exp.Query)
    assert _rereadable(parsed) is reread
