"""Incremental runs over an append-only input: every stable view equals a full recompute's, cell by cell."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from profiles_dagster.loading import load
from profiles_dagster.runner import ProfilesRun
from profiles_dagster_tests.run import incr_project
from profiles_dagster_tests.run.incr_project import STABLE_VIEWS, add_events, write_project

D = datetime


def _run(root: Path, site: Path, end: datetime, **kwargs: object) -> ProfilesRun:
    loaded = load(root, site_config=site)
    with loaded.warehouse.session() as session:
        run = ProfilesRun(loaded.project, loaded.plan, session, end_time=end, **kwargs)  # type: ignore[arg-type]
        try:
            run.start()
            for _ in run.execute():
                pass
            run.publish()
        except BaseException as exc:
            run.fail(exc)
            raise
    return run


BASE = [
    (D(2025, 1, 1, 10), "u1", "a1", 50.0, "buy"),
    (D(2025, 1, 2, 10), None, "a1", None, "view"),
    (D(2025, 1, 3, 10), "u2", "a2", 120.0, "buy"),
    (D(2025, 1, 4, 10), None, "a3", None, "view"),
    (D(2025, 1, 5, 10), "u3", None, 10.0, "buy"),
]


def test_previous_materials_known_after_a_complete_run(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    root, site = write_project(tmp_path, database)
    add_events(database, BASE)
    first = _run(root, site, D(2025, 1, 6))
    assert first.context is not None and not first.context.increments.previous
    second = _run(root, site, D(2025, 1, 7))
    assert second.context is not None
    known = second.context.increments.previous
    assert set(known) == {s.key for s in second.steps}
    for step in second.steps:
        prev = known[step.key]
        assert prev.seq_no == first.seq_no and prev.end_time == D(2025, 1, 6)
        assert prev.table.name == first.materials[step.key].name
    stitcher = next(s for s in second.steps if s.kind.name == "ID_STITCHER")
    assert known[stitcher.key].checkpoint is not None
    refreshed = _run(root, site, D(2025, 1, 7), full_refresh=True)
    assert refreshed.context is not None and refreshed.context.increments.of(stitcher.key) is None


def _views(database: Path) -> dict[str, list[tuple]]:
    """Every stable view, its rows sorted (an independent dump: compared as data, not as SQL)."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        out = {}
        for name in STABLE_VIEWS:
            rows = con.execute(f"SELECT * FROM profiles.{name}").fetchall()
            out[name] = sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))
        return out
    finally:
        con.close()


def _full_recompute(tmp_path: Path, rows: list, end: datetime) -> dict[str, list[tuple]]:
    n = 0
    while (tmp_path / f"fresh{n}").exists():
        n += 1
    folder = tmp_path / f"fresh{n}"
    folder.mkdir()
    database = folder / "w.duckdb"
    root, site = write_project(folder, database)
    add_events(database, rows)
    _run(root, site, end)
    return _views(database)


def _stats(run: ProfilesRun) -> dict[str, dict[str, object]]:
    return {r.step.path: r.stats for r in run.results}


class Scenario:
    """A project run once, then again after more rows; the second run compared with a full recompute."""

    def __init__(self, tmp_path: Path, first: list, first_end: datetime) -> None:
        self.tmp = tmp_path
        self.database = tmp_path / "w.duckdb"
        self.root, self.site = write_project(tmp_path, self.database)
        self.rows = list(first)
        add_events(self.database, first)
        self.first = _run(self.root, self.site, first_end)

    def again(self, more: list, end: datetime, **kwargs: object) -> ProfilesRun:
        add_events(self.database, more)
        self.rows += more
        return _run(self.root, self.site, end, **kwargs)

    def check(self, end: datetime) -> dict[str, list[tuple]]:
        got = _views(self.database)
        want = _full_recompute(self.tmp, self.rows, end)
        for name in STABLE_VIEWS:
            assert got[name] == want[name], name
        return got


def test_new_rows_new_profiles_merge_and_late_rows_equal_a_full_recompute(tmp_path: Path) -> None:
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    more = [
        (D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy"),  # existing profile
        (D(2025, 1, 6, 13), "u4", "a4", 5.0, "buy"),  # new profile
        (D(2025, 1, 6, 14), "u3", "a3", 1.0, "view"),  # merges u3's profile with a3's
        (D(2025, 1, 4, 9), "u2", "a2", 30.0, "buy"),  # late, inside the 4-day look-back
        (None, "u2", None, 2.0, "view"),  # no occurred_at: read as the full run reads it
    ]
    second = s.again(more, D(2025, 1, 7))
    stats = _stats(second)
    for path in INCREMENTAL_STEPS:
        assert stats[path]["incremental"] is True, (path, stats[path])
    views = s.check(D(2025, 1, 7))
    # by hand: u1 bought 50 + 70; u2 120 + 30 (the late row) and ranks first; u3 + a3 are one profile now
    assert len(views["user_all"]) == 4  # (u1,a1) (u2,a2) (u3,a3) (u4)
    # user_id, buy_days, days_since_last, first_amount, first_ts, kinds, last_ts, median_amount, n_events,
    # revenue, revenue_rank
    by_user = {r[0]: r[1:] for r in views["users_by_user_id"]}
    assert by_user["u1"] == (2, 1, 50.0, D(2025, 1, 1, 10), 2, D(2025, 1, 6, 12), 60.0, 3, 120.0, 2)
    # the row without occurred_at counts; the late row is u2's latest; its first event (by time) is the 120
    assert by_user["u2"] == (2, 3, 120.0, D(2025, 1, 3, 10), 2, D(2025, 1, 4, 9), 30.0, 3, 150.0, 1)
    # a3's view is the merged profile's first event (no amount); the median of 10 and 1 is 5.5
    assert by_user["u3"] == (1, 1, None, D(2025, 1, 4, 10), 2, D(2025, 1, 6, 14), 5.5, 3, 10.0, 3)
    assert by_user["u4"] == (1, 1, 5.0, D(2025, 1, 6, 13), 1, D(2025, 1, 6, 13), 5.0, 1, 5.0, 4)
    assert sorted(r[1] for r in views["big_feature_view"]) == [2, 2]  # big_orders of u1 and u2
    assert stats["user/entity_vars"]["recomputed_on_all_profiles"] == "days_since_last, revenue_rank"


def _dump(database: Path, query: str) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


INCREMENTAL_STEPS = (
    "user/all",
    "user/input_vars/events",
    "user/input_vars_mapped/events",
    "user/entity_vars",
    "user/cohort/big/vars",
)


def test_a_late_row_with_an_earlier_new_id_changes_the_main_id(tmp_path: Path) -> None:
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    before = dict(_dump(s.database, "SELECT other_id, user_main_id FROM profiles.user_default_id_stitcher"))
    # window start = newest event (Jan 5 10:00) - 4 days = Jan 1 10:00: a row at Jan 1 11:00 is inside it
    late = [(D(2025, 1, 1, 10, 30), None, "a9", None, "view"), (D(2025, 1, 1, 11), "u3", "a9", 3.0, "view")]
    second = s.again(late, D(2025, 1, 7))
    assert all(_stats(second)[p]["incremental"] is True for p in INCREMENTAL_STEPS)
    after = dict(_dump(s.database, "SELECT other_id, user_main_id FROM profiles.user_default_id_stitcher"))
    assert after["u3"] != before["u3"] and after["u3"] == after["a9"]  # a9 is the cluster's earliest id now
    views = s.check(D(2025, 1, 7))
    by_user = {r[0]: r[1:] for r in views["users_by_user_id"]}
    assert by_user["u3"][2:5] == (None, D(2025, 1, 1, 10, 30), 2)  # first_amount, first_ts, kinds


def test_a_row_changed_before_the_look_back_window_rebuilds_in_full_and_says_why(tmp_path: Path) -> None:
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    second = s.again([(D(2024, 12, 30), "u1", None, 9.0, "buy")], D(2025, 1, 7))  # older than the window
    stats = _stats(second)
    assert stats["user/input_vars/events"]["incremental"] is False
    assert "rows at or before the look-back window" in str(stats["user/input_vars/events"]["incremental_reason"])
    assert stats["user/entity_vars"]["incremental"] is False
    s.check(D(2025, 1, 7))
    third = s.again([(D(2025, 1, 7, 1), "u2", None, 1.0, "buy")], D(2025, 1, 8))  # incremental again
    assert all(_stats(third)[p]["incremental"] is True for p in INCREMENTAL_STEPS)
    s.check(D(2025, 1, 8))


def test_full_refresh_rebuilds_everything(tmp_path: Path) -> None:
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    second = s.again([(D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy")], D(2025, 1, 7), full_refresh=True)
    for path, stats in _stats(second).items():
        assert stats["incremental"] is False, path
        assert stats["incremental_reason"] == "full refresh requested" or path == "user/id_stitcher"
    s.check(D(2025, 1, 7))


def test_a_changed_var_definition_rebuilds_the_var_table_and_what_reads_it(tmp_path: Path) -> None:
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    profiles = s.root / "models" / "profiles.yaml"
    profiles.write_text(profiles.read_text().replace("select: max(ts)", "select: max(ts) + interval 1 hour"))
    second = s.again([(D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy")], D(2025, 1, 7))
    stats = _stats(second)
    assert stats["user/input_vars/events"]["incremental"] is True
    assert stats["user/entity_vars"]["incremental"] is False
    assert stats["user/entity_vars"]["incremental_reason"] == "no previous material of this definition"
    (tmp_path / "fresh").mkdir()
    fresh_db = tmp_path / "fresh" / "w.duckdb"
    root, site = write_project(tmp_path / "fresh", fresh_db)
    (root / "models" / "profiles.yaml").write_text(profiles.read_text())
    add_events(fresh_db, s.rows)
    _run(root, site, D(2025, 1, 7))
    assert _views(s.database) == _views(fresh_db)


def test_a_var_reading_rows_and_end_time_rebuilds_its_table_in_full(tmp_path: Path) -> None:
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    profiles = s.root / "models" / "profiles.yaml"
    text = profiles.read_text().replace(
        "          from: inputs/events\n          default_value: 0\n",
        "          from: inputs/events\n          where: ts <= {{ end_time_sql }}\n          default_value: 0\n",
        1,
    )
    profiles.write_text(text)
    s.again([], D(2025, 1, 6))  # the new definition's first run
    third = s.again([(D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy")], D(2025, 1, 7))
    stats = _stats(third)
    assert stats["user/entity_vars"]["incremental"] is False
    assert "reads rows and the run's time" in str(stats["user/entity_vars"]["incremental_reason"])
    assert stats["user/input_vars_mapped/events"]["incremental"] is True


def test_a_run_killed_after_extending_loses_nothing(tmp_path: Path) -> None:
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    published = _views(s.database)
    add_events(s.database, [(D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy")])
    s.rows.append((D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy"))
    loaded = load(s.root, site_config=s.site)
    with loaded.warehouse.session() as session:
        run = ProfilesRun(loaded.project, loaded.plan, session, end_time=D(2025, 1, 7))
        run.start()
        for step in run.steps:  # up to the mapped table: the input var table was extended, then the run dies
            result = run.execute_step(step)
            if step.kind.name == "INPUT_VARS_MAPPED":
                break
        assert result.stats["incremental"] is True
        run.fail(RuntimeError("killed"))
    assert _views(s.database) == published  # the stable views still read the first run's complete tables
    third = s.again([(D(2025, 1, 6, 13), "u4", None, 5.0, "buy")], D(2025, 1, 7))
    stats = _stats(third)
    assert stats["user/input_vars/events"]["incremental"] is True  # extends the killed run's complete table
    s.check(D(2025, 1, 7))


def _stitcher_tables(database: Path) -> dict[str, str]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_name LIKE '%id_stitcher%'"
        ).fetchall()
        return dict(rows)
    finally:
        con.close()


def test_a_run_killed_after_stitching_in_place_keeps_the_previous_graph_readable_and_force_rebuilds(
    tmp_path: Path,
) -> None:
    """DuckDB extends the previous stitcher table in place (renamed, patched; its old name a view of its old rows):
    a run that dies after it leaves the stable views as they were; `--seq_no N --force` drops run N's table, so
    the previous one becomes a table of its rows again first, and the views then equal a full recompute."""
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    published = _views(s.database)
    (first,) = [name for name in _stitcher_tables(s.database) if name.startswith("Material")]
    first_rows = _rows(s.database, first)
    more = [(D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy"), (D(2025, 1, 6, 13), "u9", "a3", 1.0, "buy")]
    add_events(s.database, more)
    s.rows += more
    loaded = load(s.root, site_config=s.site)
    with loaded.warehouse.session() as session:
        run = ProfilesRun(loaded.project, loaded.plan, session, end_time=D(2025, 1, 7))
        run.start()
        for step in run.steps:
            result = run.execute_step(step)
            if step.kind.name == "ID_STITCHER":
                break
        assert result.stats["incremental"] is True
        killed = run.seq_no
        run.fail(RuntimeError("killed"))
    kinds = _stitcher_tables(s.database)
    assert sorted(kinds.values()) == ["BASE TABLE", "VIEW", "VIEW"]  # the new table; the old name; the stable view
    assert _views(s.database) == published and _rows(s.database, first) == first_rows
    _run(s.root, s.site, D(2025, 1, 7), seq_no=killed, force=True)  # extends the first run's table again
    assert _rows(s.database, first) == first_rows
    s.check(D(2025, 1, 7))


def _rows(database: Path, name: str) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return sorted(con.execute(f'SELECT * FROM profiles."{name}"').fetchall())
    finally:
        con.close()


def test_an_input_not_declared_append_only_is_read_in_full(tmp_path: Path) -> None:
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    inputs = s.root / "models" / "inputs.yaml"
    inputs.write_text(inputs.read_text().replace("is_append_only: true", "is_append_only: false"))
    s.again([], D(2025, 1, 6))
    third = s.again([(D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy")], D(2025, 1, 7))
    stats = _stats(third)
    assert "not declared append-only" in str(stats["user/input_vars/events"]["incremental_reason"])
    assert stats["user/entity_vars"]["incremental"] is False
    s.check(D(2025, 1, 7))


def test_each_step_says_in_dagster_whether_it_ran_incrementally(tmp_path: Path) -> None:
    import dagster as dg

    from profiles_dagster.dagster.definitions import materialization_metadata

    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    second = s.again([(D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy")], D(2025, 1, 7))
    by_path = {r.step.path: r for r in second.results}
    metadata = materialization_metadata(by_path["user/entity_vars"], second.seq_no)
    event = dg.AssetMaterialization(asset_key="user/entity_vars", metadata=metadata)
    assert event.metadata["profiles/incremental"].value is True
    assert event.metadata["profiles/profiles_changed"].value == 1  # u1's profile
    assert event.metadata["profiles/rows_read"].value == 5  # u1: 3 events (2 then, 1 now), 2 days with a buy
    added = materialization_metadata(by_path["user/input_vars/events"], second.seq_no)
    assert added["profiles/rows_added"] == 1
    features = materialization_metadata(by_path["user/features"], second.seq_no)
    assert features["profiles/incremental"] is False and features["profiles/incremental_reason"]


def _without_rank(text: str) -> str:
    """The test project without its var ranking across profiles (the entity var table is patched in place)."""
    start = text.index("      - entity_var:\n          name: revenue_rank")
    end = text.index("  - name: big_vars")
    return text[:start] + text[end:]


def test_a_var_table_without_ranks_is_patched_in_place_and_equals_a_full_recompute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: rewriting every profile's row costs what a full run's var table costs; without a var ranking across
    profiles, the previous table moves to the new material, the recomputed profiles' rows are replaced, those
    no longer members (a merged cluster's old main id) deleted, and the var reading the run's end time set again
    on every row (the end time moved by a day)."""
    monkeypatch.setattr(incr_project, "PROFILES", _without_rank(incr_project.PROFILES))
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    more = [
        (D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy"),  # existing profile
        (D(2025, 1, 6, 13), "u4", "a4", 5.0, "buy"),  # new profile
        (D(2025, 1, 6, 14), "u3", "a3", 1.0, "view"),  # merges u3's profile into a3's: u3's main id is gone
        (D(2025, 1, 4, 9), "u2", "a2", 30.0, "buy"),  # late, inside the 4-day look-back
    ]
    second = s.again(more, D(2025, 1, 8))
    stats = _stats(second)["user/entity_vars"]
    assert stats["incremental"] is True and stats["patched_in_place"] is True
    assert stats["recomputed_on_all_profiles"] == "days_since_last"
    assert _stats(second)["user/cohort/big/vars"]["patched_in_place"] is False  # inherits the entity's values
    # its feature days_since_last changes on every row: written anew from the patched var table
    features = _stats(second)["user/features"]
    assert features["incremental"] is False and "days_since_last" in str(features["incremental_reason"])
    views = s.check(D(2025, 1, 8))
    # user_id, buy_days, days_since_last, first_amount, first_ts, kinds, last_ts, median_amount, n_events, revenue
    by_user = {r[0]: r[1:] for r in views["users_by_user_id"]}
    assert len(views["user_all"]) == 4
    assert by_user["u2"][1] == 4  # last event Jan 4 (the late row), end time Jan 8: kept, its days set again
    assert by_user["u1"][1] == 2  # last event Jan 6
    third = s.again([(D(2025, 1, 8, 9), "u4", None, 1.0, "view")], D(2025, 1, 9))
    assert _stats(third)["user/entity_vars"]["patched_in_place"] is True
    views = s.check(D(2025, 1, 9))
    by_user = {r[0]: r[1:] for r in views["users_by_user_id"]}
    assert by_user["u2"][1] == 5 and by_user["u4"][1] == 1


def test_a_feature_table_without_features_reading_the_run_time_is_patched_as_its_var_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: a feature table is the var table's is_feature columns; where none of them reads the run's time, only the
    recomputed profiles' rows differ from the previous run's, so they alone are replaced (the var reading the
    end time, no feature, is still set again on every row of the var table)."""
    text = _without_rank(incr_project.PROFILES)
    anchor = "          name: days_since_last\n"
    monkeypatch.setattr(incr_project, "PROFILES", text.replace(anchor, anchor + "          is_feature: false\n"))
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    more = [
        (D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy"),
        (D(2025, 1, 6, 14), "u3", "a3", 1.0, "view"),  # merges u3's profile into a3's
        (D(2025, 1, 4, 9), "u2", "a2", 30.0, "buy"),  # late, inside the look-back
    ]
    second = s.again(more, D(2025, 1, 8))
    assert _stats(second)["user/entity_vars"]["patched_in_place"] is True
    assert _stats(second)["user/features"]["patched_in_place"] is True
    views = s.check(D(2025, 1, 8))
    assert len(views["user_all"]) == 3


def _without_windows(text: str) -> str:
    """The test project without its windowed input var (and the entity var reading it)."""
    start = text.index("      - input_var:\n          name: event_no")
    end = text.index("      - entity_var:\n          name: n_events")
    text = text[:start] + text[end:]
    start = text.index("      - entity_var:\n          name: first_amount")
    end = text.index("      - entity_var:\n          name: buy_days")
    return text[:start] + text[end:]


def test_a_mapped_table_without_windows_recomputes_only_the_rows_whose_profile_the_stitching_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: a mapped row's values follow from its own input row and its main id, so only the new rows are
    computed, and the previous rows whose cluster's main id moved are added back under the new one; the others
    stay as they were, and the result still equals a full recompute."""
    monkeypatch.setattr(incr_project, "PROFILES", _without_windows(incr_project.PROFILES))
    s = Scenario(tmp_path, BASE, D(2025, 1, 6))
    more = [
        (D(2025, 1, 6, 12), "u1", "a1", 70.0, "buy"),  # existing profile: its old rows are not read again
        (D(2025, 1, 6, 13), "u4", "a4", 5.0, "buy"),  # new profile
        (D(2025, 1, 6, 14), "u3", "a3", 1.0, "view"),  # merges u3's profile (Jan 5) into a3's (Jan 4, earlier)
        (D(2025, 1, 4, 9), "u2", "a2", 30.0, "buy"),  # late, inside the 4-day look-back
        (None, "u2", None, 2.0, "view"),
    ]
    second = s.again(more, D(2025, 1, 7))
    stats = _stats(second)
    assert all(stats[p]["incremental"] is True for p in INCREMENTAL_STEPS)
    # computed: the 5 new rows; moved: u3's Jan 5 row (its cluster merged into a3's, which keeps its
    # main id: a3's Jan 4 row, whose profile only gained ids, is not touched)
    assert stats["user/input_vars_mapped/events"]["rows_read"] == 5
    assert stats["user/input_vars_mapped/events"]["rows_moved"] == 1
    s.check(D(2025, 1, 7))
    # a late row with an earlier new id: u3's cluster takes a9 as its main id, every member row moves
    third = s.again(
        [(D(2025, 1, 3, 10, 30), None, "a9", None, "view"), (D(2025, 1, 3, 11), "u3", "a9", 3.0, "view")],
        D(2025, 1, 8),
    )
    assert all(_stats(third)[p]["incremental"] is True for p in INCREMENTAL_STEPS)
    s.check(D(2025, 1, 8))
