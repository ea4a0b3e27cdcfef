"""Nothing lost under faults: the registry, the run lock, atomic publication, retention and cleanup.

Kills of a real run process are in test_runner_kill.py.
"""

from __future__ import annotations

import gc
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster.errors import BusyError, ProfilesError
from profiles_dagster.loading import load
from profiles_dagster.lock import RunLock, now_utc, process_alive, process_token
from profiles_dagster.runner import ProfilesRun, parse_time
from profiles_dagster.sql import registry
from profiles_dagster.sql.retention import MaterialRow, RunRow, plan_cleanup
from profiles_dagster_tests.conftest import END_TIME, load_example_inputs, write_site_config
from profiles_dagster_tests.projects import copy_example

CLI = (sys.executable, "-m", "profiles_dagster.cli")
STABLE_VIEWS = (
    "user_id_stitcher",
    "user_all",
    "user_high_value",
    "user_feature_view",
    "user_features_by_email",
    "high_value_feature_view",
    "high_value_by_email",
    "user_daily_orders",
)


# -- helpers ------------------------------------------------------------------------------------------------


def _project(tmp_path: Path, settings: str | None = None) -> tuple[Path, Path, Path]:
    """A copy of the example project (optionally with profiles_dagster.yaml), its data and a siteconfig."""
    root = copy_example(tmp_path / "project")
    if settings is not None:
        (root / "profiles_dagster.yaml").write_text(settings, encoding="utf-8")
    database = tmp_path / "warehouse.duckdb"
    load_example_inputs(database)
    return root, database, write_site_config(tmp_path, database)


def _cli(*args: str) -> int:
    return main([*args, "--end_time", END_TIME] if args[0] in ("run", "compile") else list(args))


def _sql(database: Path, query: str) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def _view_targets(database: Path) -> dict[str, str]:
    """Stable view -> the material its definition reads."""
    rows = _sql(database, "select view_name, sql from duckdb_views() where schema_name = 'profiles'")
    out = {}
    for name, sql in rows:
        if name.startswith("Material_"):  # an earlier id stitcher material the next run extended in place
            continue
        found = re.findall(r"Material_\w+", sql)
        if found:
            out[name] = found[0]
    return out


def _checksums(database: Path) -> dict[str, tuple]:
    return {v: _sql(database, f"select count(*), bit_xor(hash(t)) from profiles.{v} t")[0] for v in STABLE_VIEWS}


def _objects(database: Path, prefix: str = "") -> set[str]:
    rows = _sql(database, "select table_name from information_schema.tables where table_schema = 'profiles'")
    return {r[0] for r in rows if r[0].startswith(prefix)}


def _started(root: Path, site: Path, **kwargs) -> tuple[ProfilesRun, object]:
    """A run that has taken the lock and its seq_no, and stops there (its session stays open)."""
    loaded = load(root, site_config=site)
    cm = loaded.warehouse.session()
    session = cm.__enter__()
    run = ProfilesRun(loaded.project, loaded.plan, session, end_time=parse_time(END_TIME), **kwargs)
    try:
        run.start()
    except BaseException:
        cm.__exit__(None, None, None)
        raise
    return run, cm


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- registry -----------------------------------------------------------------------------------------------


def test_registry_records_runs_materials_views_and_releases_the_lock(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path)
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    (run,) = _sql(
        database, "select seq_no, status, pid, host, run_id, started_at, finished_at from profiles._profiles_runs"
    )
    assert run[:2] == (1, "complete") and run[2] > 0 and run[3] == socket.gethostname() and run[4]
    assert run[5] <= run[6]
    statuses = _sql(database, "select distinct status from profiles._profiles_materials")
    assert statuses == [("complete",)]
    assert not _sql(database, "select * from profiles._profiles_materials where started_at is null or seconds is null")
    assert dict(_sql(database, "select view_name, table_name from profiles._profiles_views")) == _view_targets(database)
    assert _sql(database, "select run_id from profiles._profiles_lock") == [(None,)]


def test_registry_written_by_an_older_version_gains_new_columns(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path)
    con = duckdb.connect(str(database))
    con.execute("create schema profiles")
    con.execute(
        "create table profiles._profiles_runs (seq_no INT, project VARCHAR, status VARCHAR, started_at TIMESTAMP, "
        "finished_at TIMESTAMP, end_time TIMESTAMP)"
    )
    con.execute("insert into profiles._profiles_runs values (4, 'example_project', 'complete', null, null, null)")
    con.close()
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    assert _sql(database, "select seq_no, status, pid is not null from profiles._profiles_runs order by 1") == [
        (4, "complete", False),
        (5, "complete", True),
    ]


# -- the run lock -------------------------------------------------------------------------------------------


def test_second_run_refuses_naming_the_running_one(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path)
    first, cm = _started(root, site)
    try:
        with pytest.raises(BusyError) as caught:
            _started(root, site)
        message = str(caught.value)
        assert "run seq_no 1 of project 'example_project'" in message
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in message and "started 20" in message
        assert "run_lock.wait_seconds" in message
        # the refused run took no seq_no and left no trace
        assert [r[0] for r in first.session.query("select seq_no from profiles._profiles_runs")] == [1]
        for _ in first.execute():
            pass
        first.publish()
    finally:
        cm.__exit__(None, None, None)
    second, cm = _started(root, site)
    try:
        assert second.seq_no == 2
        second.fail()
    finally:
        cm.__exit__(None, None, None)
    assert _sql(database, "select seq_no, status from profiles._profiles_runs order by 1") == [
        (1, "complete"),
        (2, "failed"),
    ]


def test_second_run_waits_for_the_lock_within_its_bound(tmp_path: Path) -> None:
    root, _, site = _project(tmp_path)
    first, cm = _started(root, site)
    try:
        start = time.monotonic()
        with pytest.raises(BusyError, match="after waiting 1s"):
            _started(root, site, lock_wait_seconds=1.0)
        assert 0.9 <= time.monotonic() - start < 5
        threading.Timer(0.5, first.fail).start()  # the first run ends while the second waits
        second, cm2 = _started(root, site, lock_wait_seconds=30)
        assert second.seq_no == 2
        second.fail()
        cm2.__exit__(None, None, None)
    finally:
        cm.__exit__(None, None, None)


def _plant_lock(database: Path, *, node: str, pid: int, host: str, heartbeat_age: timedelta, seq_no: int = 7) -> None:
    """The lock row and run row a run on `node` would leave if it died at step 3."""
    beat = now_utc() - heartbeat_age
    con = duckdb.connect(str(database))
    try:
        con.execute("create schema if not exists profiles")
        for _, ddl in registry.create_statements("profiles"):
            con.execute(ddl.sql("duckdb"))
        con.execute(
            "insert into profiles._profiles_runs (seq_no, project, status, started_at, pid, host, heartbeat_at) "
            f"values ({seq_no}, 'example_project', 'running', ?, {pid}, '{host}', ?)",
            [beat, beat],
        )
        con.execute(
            "update profiles._profiles_lock set run_id = 'dead-run', seq_no = ?, project = 'example_project', "
            "pid = ?, host = ?, node = ?, acquired_at = ?, heartbeat_at = ?",
            [seq_no, pid, host, node, beat, beat],
        )
    finally:
        con.close()


def test_lock_of_a_dead_process_on_this_machine_is_taken_over(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path)
    pid = _dead_pid()
    _plant_lock(database, node=process_token(pid), pid=pid, host=socket.gethostname(), heartbeat_age=timedelta(0))
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    rows = _sql(database, "select seq_no, status, message from profiles._profiles_runs order by 1")
    assert rows[0][:2] == (7, "killed") and f"process {pid}" in rows[0][2]
    assert rows[1][:2] == (8, "complete")


def test_lock_of_a_live_process_whose_pid_was_reused_is_taken_over(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path)
    node = process_token().rsplit("|", 1)[0] + "|1"  # this pid, but a process that started at another time
    assert process_alive(node) is False
    _plant_lock(database, node=node, pid=os.getpid(), host=socket.gethostname(), heartbeat_age=timedelta(0))
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0


def test_lock_of_an_abandoned_run_of_this_process_is_taken_over(tmp_path: Path) -> None:
    """A run object dropped without publish() or fail() (a bug in calling code) does not block the process."""
    root, database, site = _project(tmp_path)
    run, cm = _started(root, site)
    cm.__exit__(None, None, None)
    del run
    gc.collect()
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    assert _sql(database, "select seq_no, status from profiles._profiles_runs order by 1") == [
        (1, "killed"),
        (2, "complete"),
    ]


def test_lock_from_another_machine_waits_for_its_heartbeat_to_expire(tmp_path: Path, capsys) -> None:
    root, database, site = _project(tmp_path)
    _plant_lock(
        database, node="other-boot/pid:[1]|4242|99", pid=4242, host="worker-7", heartbeat_age=timedelta(minutes=5)
    )
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 1
    err = capsys.readouterr().err
    assert "error: another run is using output schema 'profiles'" in err
    assert "run seq_no 7 of project 'example_project' (pid 4242 on host worker-7" in err
    con = duckdb.connect(str(database))
    con.execute("update profiles._profiles_lock set heartbeat_at = heartbeat_at - interval 2 hour")
    con.close()
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    assert _sql(database, "select seq_no, status from profiles._profiles_runs order by 1") == [
        (7, "killed"),
        (8, "complete"),
    ]


def test_stale_after_is_a_setting(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path, "run_lock:\n  stale_after_seconds: 60\n")
    _plant_lock(database, node="elsewhere|1|1", pid=1, host="worker-7", heartbeat_age=timedelta(minutes=5))
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0


@pytest.mark.parametrize("attempt", range(5))
def test_concurrent_lock_claims_have_one_winner(tmp_path: Path, attempt: int) -> None:
    """Many threads, each with its own connection, race for a free lock: exactly one holds it."""
    database = tmp_path / "race.duckdb"
    con = duckdb.connect(str(database))
    con.execute("create schema profiles")
    for _, ddl in registry.create_statements("profiles"):
        con.execute(ddl.sql("duckdb"))
    from profiles_dagster.warehouse.duckdb import DuckDBSession

    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    locks: list[RunLock] = []  # alive for the whole test, as a running run's lock is

    def claim() -> None:
        session = DuckDBSession(duckdb.connect(str(database)), "profiles")
        lock = RunLock(session, "profiles", "p", wait_seconds=0)
        locks.append(lock)
        barrier.wait()
        try:
            lock.acquire()
            outcomes.append(lock.run_id)
        except BusyError:
            outcomes.append("busy")

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o != "busy"]
    assert len(outcomes) == 8 and len(winners) == 1
    assert con.execute("select run_id from profiles._profiles_lock where run_id is not null").fetchall() == [
        (winners[0],)
    ]
    con.close()


# -- two processes ------------------------------------------------------------------------------------------


def _cli_process(root: Path, site: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "run", "-p", str(root), "--site-config", str(site), "--end_time", END_TIME],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _pause_after_first_step(proc: subprocess.Popen) -> None:
    """Stop the run (SIGSTOP) after its first step: it holds the DuckDB file and its lock for as long as
    the test needs, however fast the steps are."""
    line = proc.stdout.readline()
    assert " rows " in line, line + proc.stderr.read()
    os.kill(proc.pid, signal.SIGSTOP)


def test_two_processes_one_runs_the_other_refuses_naming_it(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path)
    first = _cli_process(root, site)
    _pause_after_first_step(first)
    second = _cli_process(root, site)
    out, err = second.communicate(timeout=120)
    os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 1, out + err
    assert err.startswith("error: the DuckDB file") and f"in use by process {first.pid}" in err
    assert "Traceback" not in err
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    assert _sql(database, "select seq_no, status from profiles._profiles_runs") == [(1, "complete")]
    assert all(count > 0 for count, _ in _checksums(database).values())


def test_two_processes_with_a_wait_both_complete_one_after_the_other(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path, "run_lock:\n  wait_seconds: 300\n")
    first = _cli_process(root, site)
    _pause_after_first_step(first)
    second = _cli_process(root, site)
    time.sleep(4)  # the second is up and waiting for the file
    assert second.poll() is None
    os.kill(first.pid, signal.SIGCONT)
    for proc in (first, second):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    runs = _sql(database, "select seq_no, status, pid from profiles._profiles_runs order by 1")
    assert [(s, st) for s, st, _ in runs] == [(1, "complete"), (2, "complete")]
    assert [pid for *_, pid in runs] == [first.pid, second.pid]
    assert {t.rsplit("_", 1)[1] for t in _view_targets(database).values()} == {"2"}


# -- atomic publication -------------------------------------------------------------------------------------


def test_run_killed_while_publishing_is_finished_by_the_next_run(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path)
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    before = _view_targets(database)
    run, cm = _started(root, site)
    for _ in run.execute():
        pass

    def killed(views) -> None:  # the process dies right after recording where the views go
        raise SystemExit("killed")

    run.session.point_views = killed
    with pytest.raises(SystemExit):
        run.publish()
    # a killed process neither marks its run failed nor releases its lock; make its pid a dead one
    pid = _dead_pid()
    run.session.execute(f"update profiles._profiles_lock set pid = {pid}, node = '{process_token(pid)}'")
    cm.__exit__(None, None, None)
    assert _view_targets(database) == before
    assert _sql(database, "select status from profiles._profiles_runs where seq_no = 2") == [("publishing",)]
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    statuses = _sql(database, "select seq_no, status, message from profiles._profiles_runs order by 1")
    assert statuses[1][:2] == (2, "complete") and "killed while publishing" in statuses[1][2]
    assert statuses[2][:2] == (3, "complete")
    assert {t.rsplit("_", 1)[1] for t in _view_targets(database).values()} == {"3"}


def test_failed_run_records_why_and_leaves_views(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path)
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    before = _checksums(database)
    con = duckdb.connect(str(database))
    con.execute("alter table raw.orders rename column amount to amount_usd")
    con.close()
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 1
    ((status, message),) = _sql(database, "select status, message from profiles._profiles_runs where seq_no = 2")
    assert status == "failed" and "amount" in message
    failed = _sql(database, "select status from profiles._profiles_materials where seq_no = 2 and status = 'failed'")
    assert len(failed) == 1
    assert _checksums(database) == before
    assert _sql(database, "select run_id from profiles._profiles_lock") == [(None,)]


# -- retention ----------------------------------------------------------------------------------------------


def test_five_runs_keep_two(tmp_path: Path, capsys) -> None:
    root, database, site = _project(tmp_path)
    for _ in range(5):
        assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    reference = _checksums(database)
    materials = _objects(database, "Material_")
    assert {m.rsplit("_", 1)[1] for m in materials} == {"1", "2", "3", "4", "5"}
    capsys.readouterr()
    assert _cli("cleanup", "-p", str(root), "--site-config", str(site), "--keep", "2", "--dry-run") == 0
    dry = capsys.readouterr().out
    assert _objects(database, "Material_") == materials  # a dry run drops nothing
    # tables, and earlier id stitcher materials the next run extended in place (views of it)
    assert dry.count("would drop table Material_") + dry.count("would drop view Material_") == len(materials) * 3 // 5
    assert _cli("cleanup", "-p", str(root), "--site-config", str(site), "--keep", "2") == 0
    out = capsys.readouterr().out
    left = _objects(database, "Material_")
    assert {m.rsplit("_", 1)[1] for m in left} == {"4", "5"} and len(left) == len(materials) * 2 // 5
    undo = [line for line in out.splitlines() if line.startswith("dropped table _pd_") and "_undo" in line]
    assert len(undo) == 3  # the old rows the views of runs 1-3 read (runs 2-4 extended the stitcher in place)
    assert f"dropped {len(materials) * 3 // 5 + len(undo)} object(s)" in out
    assert _checksums(database) == reference
    dropped = _sql(database, "select distinct seq_no from profiles._profiles_materials where status = 'dropped'")
    assert sorted(r[0] for r in dropped) == [1, 2, 3]
    # nothing more to do: a second cleanup drops nothing
    assert _cli("cleanup", "-p", str(root), "--site-config", str(site), "--keep", "2") == 0
    assert "dropped 0 object(s)" in capsys.readouterr().out


def test_retention_setting_cleans_after_each_run(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path, "retention_runs: 1\n")
    for _ in range(2):
        assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    assert {m.rsplit("_", 1)[1] for m in _objects(database, "Material_")} == {"2"}
    assert all(count > 0 for count, _ in _checksums(database).values())


def test_cleanup_never_drops_what_views_point_at_or_newer_runs_reused(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path)
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    loaded = load(root, site_config=site)
    features = [("user", "features")]
    for _ in range(3):  # subset runs: features only, reading run 1's entity vars
        with loaded.warehouse.session() as session:
            run = ProfilesRun(loaded.project, loaded.plan, session, selected=features, end_time=parse_time(END_TIME))
            run.start()
            list(run.execute())
            run.publish()
    reference = _checksums(database)
    assert _cli("cleanup", "-p", str(root), "--site-config", str(site), "--keep", "1") == 0
    left = _objects(database, "Material_")
    assert any(m.startswith("Material_user_var_table_") and m.endswith("_1") for m in left)  # reused by run 4
    assert any(m.startswith("Material_user_feature_view_") and m.endswith("_1") for m in left)  # a view's
    assert any(m.startswith("Material_user_feature_table_") and m.endswith("_4") for m in left)
    assert not any(m.startswith("Material_user_feature_table_") and m.endswith(("_2", "_3")) for m in left)
    assert _checksums(database) == reference
    # a subset run after the cleanup still finds what it reads
    with loaded.warehouse.session() as session:
        run = ProfilesRun(loaded.project, loaded.plan, session, selected=features, end_time=parse_time(END_TIME))
        run.start()
        list(run.execute())
        run.publish()


def test_cleanup_drops_orphans_and_scratch_but_not_foreign_tables_or_what_user_views_read(tmp_path: Path) -> None:
    root, database, site = _project(tmp_path)
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    assert _cli("run", "-p", str(root), "--site-config", str(site)) == 0
    (old_features,) = [m for m in _objects(database, "Material_user_feature_table_") if m.endswith("_1")]
    con = duckdb.connect(str(database))
    con.execute("create table profiles.Material_user_all_0123abcd_2 as select 1 as x")  # killed before bookkeeping
    con.execute("create table profiles._pd_0123abcd_2_m1_3 as select 1 as x")  # stitcher scratch of run 2
    con.execute("create table profiles.Material_other_tool_89abcdef_77 as select 1 as x")  # not ours: seq 77
    con.execute("create table profiles.my_notes as select 1 as x")
    con.execute(f'create view profiles.my_report as select * from profiles."{old_features}"')
    con.close()
    assert _cli("cleanup", "-p", str(root), "--site-config", str(site), "--keep", "1") == 0
    left = _objects(database)
    assert "Material_user_all_0123abcd_2" not in left and "_pd_0123abcd_2_m1_3" not in left
    assert {"Material_other_tool_89abcdef_77", "my_notes", "my_report", old_features} <= left
    assert _sql(database, "select count(*) from profiles.my_report")[0][0] > 0


def test_cleanup_rejects_keep_below_one(tmp_path: Path, capsys) -> None:
    root, _, site = _project(tmp_path)
    assert main(["cleanup", "-p", str(root), "--site-config", str(site), "--keep", "0"]) == 1
    assert "error: --keep must be at least 1" in capsys.readouterr().err


def test_cleanup_refuses_while_a_run_holds_the_lock(tmp_path: Path, capsys) -> None:
    root, _, site = _project(tmp_path)
    run, cm = _started(root, site)
    try:
        assert main(["cleanup", "-p", str(root), "--site-config", str(site)]) == 1
        assert "another run is using output schema 'profiles'" in capsys.readouterr().err
    finally:
        run.fail()
        cm.__exit__(None, None, None)


def test_plan_cleanup_rules() -> None:
    runs = [
        RunRow(1, "p", "complete"),
        RunRow(2, "p", "failed"),
        RunRow(3, "p", "complete"),
        RunRow(4, "q", "complete"),
    ]
    rows = [
        MaterialRow(1, "p", "a", "h1", "Material_a_aaaaaaaa_1", "complete"),
        MaterialRow(1, "p", "b", "h1", "Material_b_bbbbbbbb_1", "complete"),
        MaterialRow(2, "p", "a", "h1", "Material_a_aaaaaaaa_2", "complete"),
        MaterialRow(2, "p", "b", "h1", "Material_b_bbbbbbbb_2", "running"),
        MaterialRow(3, "p", "a", "h1", "Material_a_aaaaaaaa_3", "complete"),
        MaterialRow(3, "p", "b", "h1", "Material_b_bbbbbbbb_1", "reused"),
        MaterialRow(4, "q", "a", "h1", "Material_a_cccccccc_4", "complete"),
    ]
    existing = {r.table_name: "TABLE" for r in rows} | {"Material_b_bbbbbbbb_3": "TABLE", "_pd_ab12cd34_2_e": "TABLE"}
    plan = plan_cleanup(
        "p", keep=1, runs=runs, materials=rows, existing=existing, view_pointers={"v": "Material_a_aaaaaaaa_1"}
    )
    assert plan.keep_runs == [3]
    assert sorted(d.name for d in plan.drops) == [
        "Material_a_aaaaaaaa_2",  # a failed run's
        "Material_b_bbbbbbbb_2",  # a failed run's half-written one
        "Material_b_bbbbbbbb_3",  # orphan of run 3: not in the registry
        "_pd_ab12cd34_2_e",  # the stitcher's scratch table of run 2
    ]
    assert plan.kept["Material_a_aaaaaaaa_1"] == "view v points at it"
    assert plan.kept["Material_b_bbbbbbbb_1"] == "read by kept run 3"
    assert "Material_a_cccccccc_4" not in plan.kept  # another project's: neither kept nor dropped
    with pytest.raises(ValueError):
        plan_cleanup("p", keep=0, runs=runs, materials=rows, existing=existing)


def test_plan_cleanup_matches_names_listed_in_another_case() -> None:
    """Snowflake lists `Material_a_aaaaaaaa_1` as `MATERIAL_A_AAAAAAAA_1`: the same rules, nothing kept is dropped."""
    runs = [RunRow(1, "p", "complete"), RunRow(2, "p", "failed"), RunRow(3, "p", "complete")]
    rows = [
        MaterialRow(1, "p", "a", "h1", "Material_a_aaaaaaaa_1", "complete"),
        MaterialRow(2, "p", "a", "h1", "Material_a_aaaaaaaa_2", "complete"),
        MaterialRow(3, "p", "a", "h1", "Material_a_aaaaaaaa_3", "complete"),
        MaterialRow(3, "p", "b", "h1", "Material_b_bbbbbbbb_3", "complete"),
    ]
    listed = [r.table_name.upper() for r in rows] + ["MATERIAL_B_BBBBBBBB_2", "_PD_AB12CD34_2_E", "_PD_AB12CD34_3_E"]
    existing = dict.fromkeys(listed, "TABLE")
    plan = plan_cleanup(
        "p", keep=1, runs=runs, materials=rows, existing=existing, view_pointers={"v": "Material_a_aaaaaaaa_1"}
    )
    assert sorted(d.name for d in plan.drops) == [
        "MATERIAL_A_AAAAAAAA_2",  # a failed run's
        "MATERIAL_B_BBBBBBBB_2",  # orphan of the failed run 2
        "_PD_AB12CD34_2_E",  # stitcher scratch tables of finished runs
        "_PD_AB12CD34_3_E",
    ]
    assert plan.kept["MATERIAL_A_AAAAAAAA_1"] == "view v points at it"
    assert {"MATERIAL_A_AAAAAAAA_3", "MATERIAL_B_BBBBBBBB_3"} <= set(plan.kept)


def test_busy_error_is_a_profiles_error() -> None:
    assert issubclass(BusyError, ProfilesError)
