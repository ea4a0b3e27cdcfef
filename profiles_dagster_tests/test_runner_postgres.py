"""On a server warehouse the run lock is a registry row: two processes against one Postgres schema.

DuckDB stops a second process at the file already; Postgres lets both in, so here the `_profiles_lock`
row alone keeps runs apart, names the running one, and is taken over from a killed one. Uses the
throwaway Postgres 15 cluster of the stand-in tests, which fails (never skips) when it cannot start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from profiles_dagster import lock as run_lock
from profiles_dagster.errors import BusyError
from profiles_dagster.loading import load
from profiles_dagster.lock import RunLock, ensure_registry
from profiles_dagster.runner import parse_time, run_all
from profiles_dagster_tests.standins.example import END_TIME, load_example_inputs, project_copy

CLI = (sys.executable, "-m", "profiles_dagster.cli")


@pytest.fixture(scope="module")
def target(postgres_standin) -> dict:  # the shared server: it fails, never skips, if it cannot start
    return postgres_standin.target("reliability")


@pytest.fixture(scope="module")
def inputs_loaded(target: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    project, site = project_copy(tmp_path_factory.mktemp("pg_inputs"), target)
    with load(project, site_config=site).warehouse.session() as session:
        load_example_inputs(session)
    return target


def _project(tmp_path: Path, target: dict, schema: str, settings: str = "") -> tuple[Path, Path]:
    project, site = project_copy(tmp_path, target, schema=schema)
    if settings:
        with open(project / "profiles_dagster.yaml", "a", encoding="utf-8") as handle:
            handle.write(settings)
    return project, site


def _start(project: Path, site: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "run", "-p", str(project), "--site-config", str(site), "--end_time", END_TIME],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _after_first_step(proc: subprocess.Popen, sig: int) -> None:
    line = proc.stdout.readline()
    assert " rows " in line, line + proc.stderr.read()
    os.kill(proc.pid, sig)


def _rows(project: Path, site: Path, sql: str) -> list[tuple]:
    with load(project, site_config=site).warehouse.session() as session:
        return session.query(sql)


def test_lock_claims_race_on_postgres(inputs_loaded: dict, tmp_path: Path) -> None:
    project, site = _project(tmp_path, inputs_loaded, "race")
    warehouse = load(project, site_config=site).warehouse
    with warehouse.session() as session:
        ensure_registry(session, "race")
    barrier = threading.Barrier(8)
    locks: list[RunLock] = []
    outcomes: list[str] = []

    def claim() -> None:
        session = warehouse.open_session()
        lock = RunLock(session, "race", "p", wait_seconds=0)
        locks.append(lock)
        barrier.wait()
        try:
            lock.acquire()
            outcomes.append("won")
        except BusyError:
            outcomes.append("busy")

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["busy"] * 7 + ["won"]
    for lock in locks:
        lock.session.connection.close()


def test_second_process_refuses_naming_the_first(inputs_loaded: dict, tmp_path: Path) -> None:
    project, site = _project(tmp_path, inputs_loaded, "two")
    first = _start(project, site)
    _after_first_step(first, signal.SIGSTOP)  # it holds the registry lock, mid-run
    try:
        second = subprocess.run(
            [*CLI, "run", "-p", str(project), "--site-config", str(site), "--end_time", END_TIME],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 1, second.stdout + second.stderr
    assert second.stderr.startswith("error: another run is using output schema 'two'")
    assert f"run seq_no 1 of project 'example_project' (pid {first.pid} on host" in second.stderr
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert _rows(project, site, "select seq_no, status from two._profiles_runs order by 1") == [(1, "complete")]


def test_second_process_waits_then_runs(inputs_loaded: dict, tmp_path: Path) -> None:
    project, site = _project(tmp_path, inputs_loaded, "waits", "run_lock:\n  wait_seconds: 600\n")
    first = _start(project, site)
    _after_first_step(first, signal.SIGSTOP)
    second = _start(project, site)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            second.wait(timeout=8)  # waiting for the lock, not running
    finally:
        os.kill(first.pid, signal.SIGCONT)
    for proc in (first, second):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    runs = _rows(project, site, "select seq_no, status, pid from waits._profiles_runs order by 1")
    assert runs == [(1, "complete", first.pid), (2, "complete", second.pid)]


def test_killed_process_lock_is_taken_over(inputs_loaded: dict, tmp_path: Path) -> None:
    project, site = _project(tmp_path, inputs_loaded, "killed")
    first = _start(project, site)
    _after_first_step(first, signal.SIGKILL)
    first.wait(timeout=60)
    second = subprocess.run(
        [*CLI, "run", "-p", str(project), "--site-config", str(site), "--end_time", END_TIME],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert second.returncode == 0, second.stderr
    assert _rows(project, site, "select seq_no, status from killed._profiles_runs order by 1") == [
        (1, "killed"),
        (2, "complete"),
    ]
    assert _rows(project, site, "select count(*) from killed.user_feature_view")[0][0] > 0
    cleaned = subprocess.run(
        [*CLI, "cleanup", "-p", str(project), "--site-config", str(site), "--keep", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cleaned.returncode == 0, cleaned.stderr
    left = _rows(
        project,
        site,
        "select table_name from information_schema.tables "
        "where table_schema = 'killed' and table_name like 'Material%'",
    )
    assert left and all(name.endswith("_2") for (name,) in left)


def test_long_step_keeps_its_lock_against_another_machine(
    inputs_loaded: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose session is busy (here: idle between two steps) for three times `stale_after_seconds` still
    holds its lock against a run on another machine: a thread of the run beats on a connection of its own."""
    project, site = _project(tmp_path, inputs_loaded, "longstep", "run_lock:\n  stale_after_seconds: 1\n")
    loaded = load(project, site_config=site)
    seen: list[str] = []

    def another_machine_tries(_result) -> None:
        if seen:
            return
        time.sleep(3)  # no beat at a step boundary in this time
        with loaded.warehouse.session() as other, monkeypatch.context() as patch:
            patch.setattr(run_lock, "node_id", lambda: "another-machine")  # the holder's pid means nothing here
            elsewhere = RunLock(other, "longstep", "p", wait_seconds=0, stale_after_seconds=1)
            try:
                elsewhere.acquire()
                seen.append("taken over")
                elsewhere.release()
            except BusyError as exc:
                seen.append(str(exc))

    seq_no, results = run_all(
        loaded.project, loaded.plan, loaded.warehouse, end_time=parse_time(END_TIME), on_result=another_machine_tries
    )
    assert seen and seen[0].startswith("another run is using output schema 'longstep': run seq_no 1 of project"), seen
    assert len(results) == 19
    rows = _rows(project, site, "select seq_no, status from longstep._profiles_runs order by 1")
    assert rows == [(seq_no, "complete")]
    holder = _rows(project, site, "select run_id from longstep._profiles_lock")
    assert holder == [(None,)]  # released, and the beat thread wrote nothing after
    assert not [t for t in threading.enumerate() if t.name.startswith("profiles-lock-heartbeat")]
