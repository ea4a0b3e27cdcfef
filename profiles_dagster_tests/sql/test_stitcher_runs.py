"""The id stitcher inside real runs of the example project: incremental by default, `--full-refresh`
rebuilds to the same table, the checkpoint lives in the registry, and `show idstitcher-report`
prints the graph's health numbers.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from profiles_dagster.cli import main
from profiles_dagster.loading import load
from profiles_dagster.plan.steps import StepKind
from profiles_dagster.runner import parse_time, run_all
from profiles_dagster_tests.conftest import END_TIME, EXAMPLE

STITCHER_VIEW = "profiles.user_id_stitcher"


def _stitcher_rows(database: Path) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return sorted(con.execute(f"SELECT * FROM {STITCHER_VIEW}").fetchall(), key=lambda r: tuple(map(str, r)))
    finally:
        con.close()


def _states(database: Path) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(
            "SELECT seq_no, mode, ids, clusters FROM profiles._profiles_stitcher_state ORDER BY seq_no"
        ).fetchall()
    finally:
        con.close()


def test_runs_are_incremental_and_full_refresh_rebuilds_the_same(example_db, capsys) -> None:
    database, site = example_db
    run = ["run", "-p", str(EXAMPLE), "--site-config", str(site), "--end_time", END_TIME]
    assert main(run) == 0
    first = _stitcher_rows(database)
    con = duckdb.connect(str(database))
    try:
        # a new device signs in to two existing profiles (merging them), late but inside the look-back,
        # and a brand new visitor shows up
        (a, b) = con.execute(
            "SELECT user_id FROM raw.identifies WHERE user_id IS NOT NULL AND user_id <> '0' "
            "GROUP BY user_id ORDER BY user_id LIMIT 2"
        ).fetchall()
        newest = con.execute("SELECT max(timestamp) FROM raw.identifies").fetchone()[0]
        con.execute(
            "INSERT INTO raw.identifies VALUES "
            f"('late-1', 'new-device-1', '{a[0]}', NULL, TIMESTAMP '{newest}' - INTERVAL 2 DAY), "
            f"('late-2', 'new-device-1', '{b[0]}', NULL, TIMESTAMP '{newest}' + INTERVAL 1 HOUR), "
            f"('new-1', 'new-device-2', NULL, NULL, TIMESTAMP '{newest}' + INTERVAL 2 HOUR)"
        )
    finally:
        con.close()
    assert main(run) == 0
    second = _stitcher_rows(database)
    assert main([*run, "--full-refresh"]) == 0
    rebuilt = _stitcher_rows(database)
    assert second == rebuilt
    assert len(second) == len(first) + 2
    profiles = {r[0] for r in second}
    assert len(profiles) == len({r[0] for r in first}) - 1 + 1  # two merged, one new
    assert [(seq, mode) for seq, mode, _, _ in _states(database)] == [(1, "full"), (2, "incremental"), (3, "full")]
    assert all((ids, clusters) == (len(second), len(profiles)) for _, _, ids, clusters in _states(database)[1:])
    # a run through the API: the stitcher's counts and health are the step's metadata
    loaded = load(str(EXAMPLE), site_config=str(site))
    _, results = run_all(loaded.project, loaded.plan, loaded.warehouse, end_time=parse_time(END_TIME))
    stats = next(r.stats for r in results if r.step.kind is StepKind.ID_STITCHER)
    assert stats["stitcher_mode"] == "incremental"
    assert stats["stitcher_changed_main_ids"] == 0 and stats["stitcher_new_ids"] == 0
    assert stats["stitcher_clusters"] == stats["health_profiles"] == len(profiles)
    assert stats["health_profile_size_max"] == max(sum(1 for r in second if r[0] == p) for p in profiles)
    assert {k for k in stats if k.startswith("health_ids_")} == {
        "health_ids_anonymous_id",
        "health_ids_email",
        "health_ids_user_id",
    }


def test_show_idstitcher_report(example_run: Path, capsys) -> None:
    site = example_run.parent / "siteconfig.yaml"
    rows = _stitcher_rows(example_run)
    capsys.readouterr()
    assert main(["show", "idstitcher-report", "-p", str(EXAMPLE), "--site-config", str(site), "--top", "3"]) == 0
    out = capsys.readouterr().out
    sizes: dict[str, int] = {}
    per_type: dict[str, int] = {}
    for main_id, _, id_type, _, _ in rows:
        sizes[main_id] = sizes.get(main_id, 0) + 1
        per_type[id_type] = per_type.get(id_type, 0) + 1
    ordered = sorted(sizes.values())
    assert f"profiles {len(sizes):,}   ids {len(rows):,}" in out
    assert f"p50 {ordered[-(-len(ordered) // 2) - 1]:,}" in out
    assert f"max {ordered[-1]:,}" in out
    for id_type, count in per_type.items():
        assert any(line.split()[:2] == [id_type, f"{count:,}"] for line in out.splitlines())
    biggest = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    assert f"{biggest[0]}  {biggest[1]:,} ids" in out
    assert "highest-degree ids" in out
    print(out)  # shown with -s: the example project's report
