"""Hostile ids and awkward data go through the stitcher and the id-keyed feature views unchanged.

What the data semantics are (documented here and in the README's "Bad data" section):
- ids are text and compared byte for byte: quotes, backslashes, unicode, 1 KB ids and leading or
  trailing spaces survive exactly as the `select` returns them (trim them in the `select` to drop them);
- NULL and '' are never ids; a row whose other ids are valid still counts for its profile;
- duplicate rows are rows: `count(*)` counts both (deduplicate in the input or a sql model);
- rows dated after `end_time` are left out, as pb leaves them out (its inputs are read up to the
  end time); this test's end time lies after its "future" rows, which are future to the wall clock;
- a TIMESTAMPTZ `occurred_at_col` is compared in UTC (DuckDB sessions run in UTC), so main ids and
  first_seen_at do not depend on the machine's time zone.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main

END_TIME = "2031-01-01T00:00:00Z"  # after the 2030 row: rows past the end time are left out

HOSTILE = [
    "O'Brien",
    "''",
    'a"b',
    '"quoted"',
    "back\\slash",
    "trailing\\",
    "semi;colon -- comment",
    "'; drop table raw.events; --",
    "日本語ユーザー",
    "emoji 👩‍💻",
    "ñandú",
    "Ａ全角",
    "zero\u200bwidth",
    "rtl\u202eevil",
    "x" * 1024,
    "  leading",
    "trailing  ",
    " both ",
    "tab\there",
    "new\nline",
    "%_like",
    "{{ user.Var('x') }}",
    "{% raw %}",
    "$1",
    "NULL",
    "null",
    "0",
    "None",
    "Material_user_all_00000000_1",
]

PB_PROJECT = """\
name: hostile
schema_version: 99
connection: test
model_folders:
  - models
entities:
  - name: user
    id_types:
      - user_id
      - email
    feature_views:
      using_ids:
        - id: user_id
          name: user features "by" user_id
        - id: email
id_types:
  - name: user_id
  - name: email
"""

MODELS = """\
inputs:
  - name: events
    app_defaults:
      table: raw.events
      occurred_at_col: ts
      ids:
        - select: user_id
          type: user_id
          entity: user
        - select: lower(trim(email))
          type: email
          entity: user
var_groups:
  - name: facts
    entity_key: user
    vars:
      - entity_var:
          name: events
          select: count(*)
          from: inputs/events
          default_value: 0
      - entity_var:
          name: revenue
          select: sum(amount)
          from: inputs/events
      - entity_var:
          name: first_ts
          select: min(ts)
          from: inputs/events
      - entity_var:
          name: last_ts
          select: max(ts)
          from: inputs/events
      - entity_var:
          name: raw user id
          select: max(user_id)
          from: inputs/events
      - entity_var:
          name: days_to_end
          select: date_diff('day', max(ts), {{ end_time_sql }})
          from: inputs/events
"""

SITECONFIG = """\
connections:
  test:
    target: dev
    outputs:
      dev:
        type: duckdb
        path: warehouse.duckdb
        schema: "out schema"
"""


def _email(k: int) -> str:
    return f"user{k}+o'neil@exämple.com"


def _rows() -> list[tuple]:
    rows = []
    base = datetime(2025, 3, 1, tzinfo=UTC)
    for k, uid in enumerate(HOSTILE):
        ts = base.replace(hour=k % 24, minute=k)
        rows.append((uid, _email(k), ts, 10))
        rows.append((None, f"  {_email(k).upper()}  ", ts.replace(day=2), 5))  # same person, by email only
    rows.append(rows[0])  # an exact duplicate row of HOSTILE[0]
    rows.append((HOSTILE[1], _email(1), datetime(2030, 1, 1, tzinfo=UTC), 1))  # in the future
    rows.append(("", None, base, 100))  # no ids at all: attributed to nobody
    rows.append((None, "", base, 100))
    rows.append((None, None, base, 100))
    return rows


def _project(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "pb_project.yaml").write_text(PB_PROJECT, encoding="utf-8")
    (root / "models" / "inputs.yaml").write_text(MODELS, encoding="utf-8")
    (root / "siteconfig.yaml").write_text(SITECONFIG, encoding="utf-8")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    try:
        con.execute("create schema raw")
        con.execute("create table raw.events (user_id varchar, email varchar, ts timestamptz, amount decimal(10,2))")
        con.executemany("insert into raw.events values (?, ?, ?, ?)", _rows())
        # two rows of one user in different offsets: 10:00+05:00 is earlier than 06:00+00:00
        con.execute(
            "insert into raw.events values ('tz user', 'tz@example.com', timestamptz '2025-03-01 10:00:00+05:00', 1), "
            "('tz user', null, timestamptz '2025-03-01 06:00:00+00:00', 1), "
            "(null, 'tz@example.com', timestamptz '2025-02-28 23:30:00-06:00', 1)"
        )
    finally:
        con.close()
    return root


def _sql(database: Path, query: str) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _project(tmp_path_factory.mktemp("hostile") / "project")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0
    return root


def test_hostile_ids_round_trip_through_the_stitcher(hostile_run: Path) -> None:
    database = hostile_run / "warehouse.duckdb"
    graph = _sql(database, 'select other_id, other_id_type, user_main_id from "out schema".user_default_id_stitcher')
    user_ids = {i for i, t, _ in graph if t == "user_id"}
    assert user_ids == {*HOSTILE, "tz user"}  # exact bytes: spaces, quotes, unicode, 1 KB
    emails = {i for i, t, _ in graph if t == "email"}
    assert emails == {_email(k).lower() for k in range(len(HOSTILE))} | {"tz@example.com"}
    main_of = {(i, t): m for i, t, m in graph}
    for k, uid in enumerate(HOSTILE):  # each user id and its email are one profile, and profiles differ
        assert main_of[(uid, "user_id")] == main_of[(_email(k).lower(), "email")]
    assert len({main_of[(uid, "user_id")] for uid in HOSTILE}) == len(HOSTILE)
    assert all(m.startswith("rid") and len(m) == 35 for m in main_of.values())


def test_hostile_ids_key_the_feature_views_exactly(hostile_run: Path) -> None:
    database = hostile_run / "warehouse.duckdb"
    rows = _sql(
        database, 'select user_id, events, revenue, "raw user id" from "out schema"."user features ""by"" user_id"'
    )
    by_id = {r[0]: r[1:] for r in rows}
    assert set(by_id) == {*HOSTILE, "tz user"} and len(rows) == len(HOSTILE) + 1
    for k, uid in enumerate(HOSTILE):
        events, revenue, raw = by_id[uid]
        expected = {0: (3, 25), 1: (3, 16)}.get(k, (2, 15))  # duplicate row counted; future row counted
        assert (events, int(revenue)) == expected, uid
        assert raw == uid
    by_email = dict(_sql(database, 'select email, events from "out schema".user_feature_view_with_email'))
    assert {e: by_email[e] for e in (_email(2).lower(), "tz@example.com")} == {
        _email(2).lower(): 2,
        "tz@example.com": 3,
    }


def test_rows_without_ids_and_empty_ids_are_attributed_to_nobody(hostile_run: Path) -> None:
    database = hostile_run / "warehouse.duckdb"
    ids = _sql(database, """select count(*) from "out schema".user_default_id_stitcher where other_id = '' """)
    assert ids == [(0,)]
    total = _sql(database, 'select sum(events), sum(revenue) from "out schema".user_feature_view')
    assert total == [(2 * len(HOSTILE) + 2 + 3, 10 * len(HOSTILE) + 5 * len(HOSTILE) + 10 + 1 + 3)]


def test_future_rows_count_and_time_zones_compare_in_utc(hostile_run: Path) -> None:
    database = hostile_run / "warehouse.duckdb"
    con = duckdb.connect(str(database), read_only=True)
    con.execute("set TimeZone = 'UTC'")
    future = con.execute(
        """select last_ts, days_to_end from "out schema"."user features ""by"" user_id" where user_id = ?""",
        [HOSTILE[1]],
    ).fetchone()
    tz = con.execute(
        """select first_ts from "out schema"."user features ""by"" user_id" where user_id = 'tz user'"""
    ).fetchone()
    seen = dict(
        con.execute(
            """select other_id, first_seen_at from "out schema".user_default_id_stitcher
            where other_id in ('tz user', 'tz@example.com')"""
        ).fetchall()
    )
    con.close()
    assert future[0] == datetime(2030, 1, 1, tzinfo=UTC) and future[1] == 365  # to the 2031-01-01 end time
    assert tz[0] == datetime(2025, 3, 1, 5, 0, tzinfo=UTC)  # 10:00+05:00, not 06:00+00:00
    assert seen == {"tz user": datetime(2025, 3, 1, 5, 0), "tz@example.com": datetime(2025, 3, 1, 5, 0)}


def test_main_ids_do_not_depend_on_the_machine_time_zone(hostile_run: Path, tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(hostile_run, root, ignore=shutil.ignore_patterns("output"))
    database = root / "warehouse.duckdb"
    con = duckdb.connect(str(database))
    con.execute('drop schema "out schema" cascade')
    con.close()
    env = {**os.environ, "TZ": "Asia/Kolkata"}
    proc = subprocess.run(
        [sys.executable, "-m", "profiles_dagster.cli", "run", "-p", str(root), "--end_time", END_TIME],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    query = 'select other_id, other_id_type, user_main_id, first_seen_at from "out schema".user_default_id_stitcher'
    assert sorted(_sql(database, query)) == sorted(_sql(hostile_run / "warehouse.duckdb", query))


def test_names_from_yaml_are_quoted_identifiers(hostile_run: Path) -> None:
    database = hostile_run / "warehouse.duckdb"
    views = {r[0] for r in _sql(database, "select view_name from duckdb_views() where schema_name = 'out schema'")}
    assert 'user features "by" user_id' in views
    assert _sql(database, "select count(*) from raw.events")[0][0] == len(_rows()) + 3
