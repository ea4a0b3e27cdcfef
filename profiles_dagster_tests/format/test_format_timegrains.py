"""pb's coarser timegrains on var_groups, each on a small project of our own.

What pb 0.26.4 does (observed on Postgres, /work/briefs/pbincr_findings.md): with `default_time_grain: day` and a
var_group of `time_grain: week`, a run computes a second set of steps as of the week's last boundary (Monday
00:00 UTC): its own input var table, id stitcher, ALL cohort and a var table holding only the week group's vars.
The feature view LEFT JOINs that var table on the main id, so a week var is keyed by the main ids of the week
boundary's stitching: a profile first seen, or merged under another main id, since then gets NULL. The week's
steps are reused until the next week boundary. Expected values are worked out by hand from the seeded rows.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from profiles_dagster.cli import main
from profiles_dagster_tests.format.harness import Outputs, write
from profiles_dagster_tests.format.test_format_core import rid

PROJECT = """
    name: grains
    schema_version: 99
    connection: test
    model_folders:
      - models
    default_time_grain: day
    entities:
      - name: user
        id_types: [user_id, anonymous_id]
    id_types:
      - name: user_id
      - name: anonymous_id
    """

INPUTS = """
    inputs:
      - name: events
        app_defaults:
          table: raw.events
          occurred_at_col: ts
          ids:
            - select: user_id
              type: user_id
              entity: user
            - select: anonymous_id
              type: anonymous_id
              entity: user
    """


def var_group(name: str, grain: str | None, *vars_: tuple[str, str]) -> str:
    head = f"  - name: {name}\n    entity_key: user\n" + (f"    time_grain: {grain}\n" if grain else "")
    body = "".join(
        f"      - entity_var:\n          name: {var}\n          select: {select}\n          from: inputs/events\n"
        for var, select in vars_
    )
    return head + "    vars:\n" + body


WEEK_VARS = "var_groups:\n" + var_group("daily", None, ("total", "sum(amount)"), ("events", "count(*)"))
WEEK_VARS += var_group("weekly", "week", ("week_total", "sum(amount)"), ("week_events", "count(*)"))

# end time Thursday 2026-01-22 10:00: day boundary 01-22 00:00, week boundary Monday 01-19 00:00
SEED = """create table raw.events as select * from (values
    ('u1', 'a1', 10, timestamp '2026-01-15 09:00:00'),
    ('u1', null, 20, timestamp '2026-01-19 00:00:00'),
    ('u1', null, 5, timestamp '2026-01-20 12:00:00'),
    ('u2', null, 4, timestamp '2026-01-14 08:00:00'),
    (null, 'a2', 7, timestamp '2026-01-16 08:00:00'),
    ('u2', 'a2', 3, timestamp '2026-01-21 09:00:00'),
    ('u3', null, 8, timestamp '2026-01-20 09:00:00'),
    ('u1', null, 100, timestamp '2026-01-22 09:00:00')
) t(user_id, anonymous_id, amount, ts)"""

U1 = min(rid("u1", "user_id"), rid("a1", "anonymous_id"))  # u1 and a1 first seen together: the smaller hash
U2 = rid("u2", "user_id")  # u2 (01-14) is seen before a2 (01-16): the merged profile keeps u2's main id
U3 = rid("u3", "user_id")


def _files(vars_yaml: str) -> dict[str, str]:
    return {"pb_project.yaml": PROJECT, "models/inputs.yaml": INPUTS, "models/vars.yaml": vars_yaml}


def _sql(root: Path, *statements: str) -> None:
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    try:
        con.execute("create schema if not exists raw")
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def _run(root: Path, end_time: str) -> dict[object, dict[str, object]]:
    assert main(["run", "-p", str(root), "--end_time", end_time]) == 0
    return Outputs(root / "warehouse.duckdb").by_key("out.user_feature_view")


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _values(rows: dict[object, dict[str, object]], *columns: str) -> dict[object, tuple[int | None, ...]]:
    return {key: tuple(_int(row[c]) for c in columns) for key, row in rows.items()}


def test_a_week_var_group_computes_as_of_mondays_boundary_beside_the_days_vars(tmp_path: Path) -> None:
    write(tmp_path, _files(WEEK_VARS))
    _sql(tmp_path, SEED)
    rows = _run(tmp_path, "2026-01-22T10:00:00Z")
    assert Outputs(tmp_path / "warehouse.duckdb").columns("out.user_feature_view") == [
        "user_main_id",
        "events",
        "total",
        "week_events",
        "week_total",
    ]
    # day vars, rows up to 01-22 00:00 (the 01-22 09:00 row waits): u1+a1 10+20+5, u2+a2 4+7+3, u3 8.
    # week vars, rows up to Monday 01-19 00:00 inclusive: u1+a1 10+20; u2 alone 4 (a2 was its own profile
    # then, under its own main id, which the day's stitching no longer has); u3 not seen yet: NULL
    assert _values(rows, "total", "events", "week_total", "week_events") == {
        U1: (35, 3, 30, 2),
        U2: (14, 3, 4, 1),
        U3: (8, 1, None, None),
    }
    db = Outputs(tmp_path / "warehouse.duckdb")
    ((table,),) = db.rows("select table_name from out._profiles_materials where step = 'user/entity_vars/at_week'")
    # the week's own var table, keyed by the week boundary's main ids: a2 is a profile of its own there
    week = {k: int(v) for k, v in db.rows(f"select user_main_id, week_total from out.{table}")}
    assert week == {U1: 30, U2: 4, rid("a2", "anonymous_id"): 7}


def test_the_week_steps_are_reused_until_the_next_monday(tmp_path: Path) -> None:
    write(tmp_path, _files(WEEK_VARS))
    _sql(tmp_path, SEED)
    _run(tmp_path, "2026-01-22T10:00:00Z")
    # a late row dated before the week boundary and one after it, both before the next day boundary
    _sql(
        tmp_path,
        "insert into raw.events values ('u1', null, 1000, timestamp '2026-01-18 12:00:00'), "
        "('u1', null, 1, timestamp '2026-01-19 05:00:00')",
    )
    rows = _run(tmp_path, "2026-01-23T10:00:00Z")
    # the day's vars see every row up to 01-23 00:00: u1 35+100+1000+1; the week's are run 1's, reused
    assert _values(rows, "total", "week_total") == {U1: (1136, 30), U2: (14, 4), U3: (8, None)}
    db = Outputs(tmp_path / "warehouse.duckdb")
    by_step = dict(db.rows("select step, table_name from out._profiles_materials where seq_no = 2"))
    assert by_step["user/entity_vars/at_week"].endswith("_1")  # run 1's week var table
    assert by_step["user/id_stitcher/at_week"].endswith("_1")
    assert by_step["user/entity_vars"].endswith("_2")  # the day's: computed again
    # the next Monday: the week's steps as of 01-26 00:00, the same rows as the day's
    rows = _run(tmp_path, "2026-01-26T10:00:00Z")
    assert _values(rows, "total", "week_total") == {U1: (1136, 1136), U2: (14, 14), U3: (8, 8)}


MONTH_YEAR_VARS = "var_groups:\n" + var_group("daily", None, ("total", "sum(amount)"))
MONTH_YEAR_VARS += var_group("monthly", "month", ("month_total", "sum(amount)"))
MONTH_YEAR_VARS += var_group("yearly", "year", ("year_total", "sum(amount)"))


def test_month_and_year_var_groups_compute_as_of_their_first_mondays(tmp_path: Path) -> None:
    """pb's month and year start on the first Monday of the month or year: a run at Wednesday 2026-03-04 10:00
    computes the day's vars as of 03-04 00:00, the month's as of Monday 03-02 00:00 (March 1st is a Sunday),
    the year's as of Monday 2026-01-05 00:00 (January 1st is a Thursday)."""
    seed = """create table raw.events as select * from (values
        ('u1', null, 1, timestamp '2026-01-03 10:00:00'),
        ('u1', null, 10, timestamp '2026-02-10 10:00:00'),
        ('u1', null, 100, timestamp '2026-03-02 00:00:00'),
        ('u1', null, 1000, timestamp '2026-03-03 10:00:00')
    ) t(user_id, anonymous_id, amount, ts)"""
    write(tmp_path, _files(MONTH_YEAR_VARS))
    _sql(tmp_path, seed)
    rows = _run(tmp_path, "2026-03-04T10:00:00Z")
    u1 = rid("u1", "user_id")
    assert _values(rows, "total", "month_total", "year_total") == {u1: (1111, 111, 1)}
