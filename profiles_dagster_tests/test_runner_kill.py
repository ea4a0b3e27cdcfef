"""SIGKILL a real `profiles-dagster run` inside each kind of step; nothing a reader sees may change.

How the kill lands inside a given step, with no hook in the product: the CLI prints a line when a
step ends, so the target step starts right after its predecessor's line; the test kills a moment
later, and then checks in the registry that the target's material was `running` (started, never
finished) when the process died. To make that moment fall inside the target step whatever the load
of the machine, the killed run is slowed down in the target step only, with warehouse objects a user
could have: the input is a view, and the project's SQL calls DuckDB macros (`pace_*`). For the
reference run they are instant; before the killed run one of them is replaced by a slow version that
returns the same values, so the project (and its hashes) and every result stay the same. Feature views
have no SQL of the user's: their phase is long because the features are wide (an 8 KB text feature)
and there are eight views.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster.loading import load
from profiles_dagster.plan.steps import StepKind

END_TIME = "2025-11-01T00:00:00Z"
CLI = (sys.executable, "-m", "profiles_dagster.cli")

PB_PROJECT = """\
name: kill_test
schema_version: 99
connection: test
model_folders:
  - models
entities:
  - name: user
    id_types:
      - user_id
      - anonymous_id
      - email
    feature_views:
      using_ids:
        - id: email
          name: user_features_by_email
        - id: anonymous_id
          name: user_features_by_anonymous_id
        - id: user_id
          name: user_features_by_user_id
id_types:
  - name: user_id
  - name: anonymous_id
  - name: email
"""

MODELS = """\
inputs:
  - name: signups
    app_defaults:
      table: raw.signups
      occurred_at_col: timestamp
      ids:
        - select: user_id
          type: user_id
          entity: user
        - select: email
          type: email
          entity: user
  - name: events
    app_defaults:
      table: raw.events
      occurred_at_col: timestamp
      ids:
        - select: pace_id(user_id)
          type: user_id
          entity: user
        - select: pace_id(anonymous_id)
          type: anonymous_id
          entity: user
models:
  - name: engaged
    model_type: entity_cohort
    model_spec:
      extends: user/all
      filter_pipeline:
        - type: include
          value: "pace_cohort({{ user.Var('event_count') }}) >= 5"
var_groups:
  - name: activity
    entity_key: user
    vars:
      - entity_var:
          name: event_count
          select: pace_var(count(*))
          from: inputs/events
          default_value: 0
      - entity_var:
          name: last_event_at
          select: max(timestamp)
          from: inputs/events
      - entity_var:
          name: history
          select: repeat(max(event), 1000)
          from: inputs/events
      - entity_var:
          name: email
          select: max(email)
          from: inputs/signups
"""

SITECONFIG = """\
connections:
  test:
    target: dev
    outputs:
      dev:
        type: duckdb
        path: warehouse.duckdb
        schema: profiles
"""

USERS = 2000
# the slow versions of the pacing objects: each makes its step take several seconds (the kill comes
# half a second in; the run never gets to finish the step)
FAST = {
    "raw.events": "create or replace view raw.events as select * from raw.events_base",
    "pace_id": "create or replace macro pace_id(x) as x",
    "pace_var": "create or replace macro pace_var(x) as x",
    "pace_cohort": "create or replace macro pace_cohort(x) as x",
}
SLOW = {
    "raw.events": "create or replace view raw.events as select * from raw.events_base "
    "where length(repeat(cast(timestamp as varchar), 20000)) > 0",
    "pace_id": "create or replace macro pace_id(x) as case when length(repeat(x, 2400)) > 0 then x end",
    "pace_var": "create or replace macro pace_var(x) as "
    "case when length(repeat(cast(x as varchar), 240000)) > 0 then x end",
    "pace_cohort": "create or replace macro pace_cohort(x) as "
    "case when length(repeat(cast(x as varchar), 240000)) > 0 then x end",
}


def write_kill_project(root: Path) -> Path:
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "pb_project.yaml").write_text(PB_PROJECT, encoding="utf-8")
    (root / "models" / "profiles.yaml").write_text(MODELS, encoding="utf-8")
    (root / "siteconfig.yaml").write_text(SITECONFIG, encoding="utf-8")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    try:
        con.execute("create schema raw")
        con.execute(
            f"create table raw.signups as select 'u' || range as user_id, 'user' || range || '@example.com' as email, "
            f"timestamp '2025-01-01' + to_minutes(range) as timestamp from range({USERS})"
        )
        con.execute(
            f"create table raw.events_base as select case when range % 3 = 0 then 'u' || (range % {USERS}) end "
            f"as user_id, 'a' || (range % {USERS * 3 // 2}) as anonymous_id, 'event_' || (range % 17) as event, "
            f"timestamp '2025-02-01' + to_seconds(range * 7) as timestamp from range({USERS * 10})"
        )
        for statement in FAST.values():
            con.execute(statement)
    finally:
        con.close()
    return root


def _pace(database: Path, statements: list[str]) -> None:
    con = duckdb.connect(str(database))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def _sql(database: Path, query: str) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def _views(database: Path) -> dict[str, str]:
    """Stable view -> the material it reads."""
    rows = _sql(database, "select view_name, sql from duckdb_views() where schema_name = 'profiles'")
    # an earlier id stitcher material the next run extended in place is a view too: not a stable view
    return {name: re.findall(r"Material_\w+", sql)[0] for name, sql in rows if not name.startswith("Material_")}


def _checksums(database: Path, views) -> dict[str, tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return {v: con.execute(f"select count(*), bit_xor(hash(t)) from profiles.{v} t").fetchone() for v in views}
    finally:
        con.close()


@dataclass(frozen=True)
class Reference:
    root: Path
    seconds: dict[str, float]  # step path -> its duration in the reference run
    order: list[str]  # step paths in run order
    kinds: dict[str, StepKind]
    views: dict[str, str]
    checksums: dict[str, tuple]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    root = write_kill_project(tmp_path_factory.mktemp("kill") / "project")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0
    seconds = {}
    for line in out.getvalue().splitlines():
        match = re.match(r"(\S+)\s+Material_\S+\s+[\d,]+ rows\s+([\d.]+)s", line)
        if match:
            seconds[match.group(1)] = float(match.group(2))
    plan = load(root).plan
    database = root / "warehouse.duckdb"
    views = _views(database)
    return Reference(
        root,
        seconds,
        [s.path for s in plan.steps],
        {s.path: s.kind for s in plan.steps},
        views,
        _checksums(database, views),
    )


# step kind -> (the pacing object made slow for the killed run, the step the kill aims at)
KINDS = {
    "input_vars": ("raw.events", "user/input_vars/events"),
    "id_stitcher": ("pace_id", "user/id_stitcher"),
    "entity_vars": ("pace_var", "user/entity_vars"),
    "cohort": ("pace_cohort", "user/cohort/engaged"),
    "views": (None, "user/views/user_feature_view"),
}


# seconds from the predecessor's line to the kill, tried in turn: (unpaced, paced)
DELAYS = {False: (0.03, 0.0, 0.06, 0.01, 0.1, 0.02, 0.15, 0.04), True: (0.5, 1.0, 2.0)}


def _kill_inside(root: Path, target: str, predecessor: str, delay: float) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        [*CLI, "run", "-p", str(root), "--end_time", END_TIME],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.split(maxsplit=1)[:1] == [predecessor]:
                time.sleep(delay)
                proc.kill()  # SIGKILL: no cleanup, no `finally`, no failed status
                break
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(seen), err)


@pytest.mark.parametrize("kind", list(KINDS))
def test_sigkill_inside_a_step_loses_nothing(kind: str, reference: Reference, tmp_path: Path) -> None:
    pacer, target = KINDS[kind]
    assert reference.kinds[target].value in kind
    predecessor = reference.order[reference.order.index(target) - 1]
    root = tmp_path / "project"
    database = root / "warehouse.duckdb"
    # a loaded machine can stretch the moment before the step starts: aim again if the kill came too early.
    # The unpaced view phase is short (a few tenths of a second in all), so it is aimed at from its very start,
    # and a run that finished before the kill is aimed at again, sooner.
    running: list[str] = []
    materials: dict[str, str] = {}
    for delay in DELAYS[pacer is not None]:
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(reference.root, root, ignore=shutil.ignore_patterns("output", "*.wal"))
        if pacer:
            _pace(database, [SLOW[pacer]])
        killed = _kill_inside(root, target, predecessor, delay=delay)
        if killed.returncode == 0 and not pacer:
            continue  # the whole phase ended before the kill
        assert killed.returncode == -9, killed.stdout + killed.stderr
        materials = dict(_sql(database, "select step, status from profiles._profiles_materials where seq_no = 2"))
        running = [step for step, st in materials.items() if st == "running"]
        if running:  # else it came before the step started, or between two steps: aim again
            break
    # the kill landed inside a step of that kind: its material was started and never finished
    assert len(running) == 1 and reference.kinds[running[0]] is reference.kinds[target], (target, materials)
    assert all(st == "complete" for step, st in materials.items() if step not in running)
    assert _sql(database, "select status from profiles._profiles_runs where seq_no = 2") == [("running",)]
    _pace(database, [FAST[pacer]] if pacer else [])

    # every stable view still reads the previous complete run, with the same rows
    assert _views(database) == reference.views
    assert _checksums(database, reference.views) == reference.checksums
    complete = {
        t
        for (t,) in _sql(
            database,
            "select m.table_name from profiles._profiles_materials m join profiles._profiles_runs r using (seq_no) "
            "where m.status = 'complete' and r.status = 'complete'",
        )
    }
    assert set(reference.views.values()) <= complete  # no orphan material visible through a view

    # the next run takes over the dead run's lock and completes; same data, same rows
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0
    runs = dict(_sql(database, "select seq_no, status from profiles._profiles_runs"))
    assert runs == {1: "complete", 2: "killed", 3: "complete"}
    assert {m.rsplit("_", 1)[1] for m in _views(database).values()} == {"3"}
    assert _checksums(database, reference.views) == reference.checksums

    # and a cleanup removes what the killed run left (half-written materials, stitcher scratch tables)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["cleanup", "-p", str(root), "--keep", "1"]) == 0
    left = {t for (t,) in _sql(database, "select table_name from duckdb_tables() where schema_name = 'profiles'")}
    assert not [t for t in left if t.startswith("_pd_") or re.search(r"_[12]$", t)], left
    assert _checksums(database, reference.views) == reference.checksums
