"""pb's coarser timegrains on var_groups, each on a small project of our own.

What pb 0.26.4 does (observed on Postgres, /work/briefs/pbincr_findings.md): with `default_time_grain: day` and a
var_group of `time_grain: week`, a run computes a second set of steps as of the week's last boundary (Monday
00:00 UTC): its own input var table, id stitcher, ALL cohort and a var table holding only the week group's vars.
The feature view LEFT JOINs that var table on the main id, so a week var is keyed by the main ids of the week
boundary's stitching: a profile first seen, or merged under another main id, since then gets NULL. The week's
steps are reused until the next week boundary. Expected values are worked out by hand from the seeded rows.

Cross-checked with pb 0.26.4 on Postgres 15 (the projects of the week tests and the month/year test, same rows
and end times): pb's user_feature_view equals the values asserted here, cell for cell and in column order
(week: 35/3/30/2, 14/3/4/1, 8/1/NULL/NULL; then 1136/30; then the next Monday 1136/1136, 14/14, 8/8;
month/year: 111, 1111, 1 with pb's boundaries 2026-03-02 and 2026-01-05 in its seqnos.json; the sql model read by
a week var: 80/30, NULL/NULL, 8/NULL).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.plan.steps import StepKey
from profiles_dagster.project.loader import load_project
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
    columns = Outputs(tmp_path / "warehouse.duckdb").columns("out.user_feature_view")
    assert columns == ["user_main_id", "month_total", "total", "year_total"]  # pb: by name, whatever the grain
    u1 = rid("u1", "user_id")
    assert _values(rows, "total", "month_total", "year_total") == {u1: (1111, 111, 1)}


def test_the_plan_has_each_grains_steps_once_keyed_with_the_grain(tmp_path: Path) -> None:
    write(tmp_path, _files(WEEK_VARS))
    plan = build_plan(load_project(tmp_path))
    week = [s for s in plan.steps if s.grain == "week"]
    assert [s.path for s in week] == [
        "user/input_vars/events/at_week",
        "user/id_stitcher/at_week",
        "user/all/at_week",
        "user/input_vars_mapped/events/at_week",
        "user/entity_vars/at_week",
    ]
    table = plan[StepKey.entity_vars("user").at("week")]
    assert set(table.deps) == {
        StepKey.all("user").at("week"),
        StepKey.id_stitcher("user").at("week"),
        StepKey.input_vars_mapped("user", "events").at("week"),
    }
    assert table.view_name is None and all(s.view_name is None for s in week)  # the stable views stay the day's
    assert table.content_hash != plan[StepKey.entity_vars("user")].content_hash
    assert set(plan[StepKey.features("user")].deps) == {StepKey.entity_vars("user"), table.key}
    assert table.key.kind is StepKey.entity_vars("user").kind and table.key.base == StepKey.entity_vars("user")


def _error(root: Path, files: dict[str, str]) -> ProfilesError:
    write(root, files)
    with pytest.raises(ProfilesError) as info:
        build_plan(load_project(root))
    return info.value


def test_a_week_var_reading_a_days_var_is_refused(tmp_path: Path) -> None:
    vars_yaml = "var_groups:\n" + var_group("daily", None, ("total", "sum(amount)"))
    vars_yaml += var_group("weekly", "week", ("week_share", "sum(amount) / {{ user.total }}"))
    err = _error(tmp_path, _files(vars_yaml))
    assert "var 'week_share' (time_grain 'week') refers to 'total' (the default time grain)" in err.message
    assert (Path(err.file).name, err.key) == ("vars.yaml", "var_groups[1].vars[0].entity_var.select")


def test_a_days_var_reading_a_week_var_is_refused(tmp_path: Path) -> None:
    vars_yaml = "var_groups:\n" + var_group("daily", None, ("doubled", "2 * {{ user.week_total }}"))
    vars_yaml = vars_yaml.replace("          from: inputs/events\n", "")
    vars_yaml += var_group("weekly", "week", ("week_total", "sum(amount)"))
    err = _error(tmp_path, _files(vars_yaml))
    assert "var 'doubled' (the default time grain) refers to 'week_total' (time_grain 'week')" in err.message


COHORT = """
    models:
      - name: big
        model_type: entity_cohort
        model_spec:
          extends: user/all
          filter_pipeline:
            - type: include
              value: "{{ user.total }} > 10"
    """


def test_a_cohorts_feature_view_carries_the_week_vars_of_its_members(tmp_path: Path) -> None:
    """pb 0.26.4 (observed on Postgres, same rows and end time): the cohort's feature view LEFT JOINs the week's
    var table on its members, as the entity's view does; big (total > 10) has u1 and u2+a2:
    3/35/2/30 and 3/14/1/4, in pb's column order; bigger (extends big, total > 20) 3/35/2/30 as pb."""
    extended = (
        COHORT
        + """
      - name: bigger
        model_type: entity_cohort
        model_spec:
          extends: models/big
          filter_pipeline:
            - type: include
              value: "{{ user.total }} > 20"
    """
    )
    write(tmp_path, {**_files(WEEK_VARS), "models/cohort.yaml": extended})
    _sql(tmp_path, SEED)
    _run(tmp_path, "2026-01-22T10:00:00Z")
    db = Outputs(tmp_path / "warehouse.duckdb")
    assert db.columns("out.big_feature_view") == ["user_main_id", "events", "total", "week_events", "week_total"]
    columns = ("events", "total", "week_events", "week_total")
    assert _values(db.by_key("out.big_feature_view"), *columns) == {U1: (3, 35, 2, 30), U2: (3, 14, 1, 4)}
    # a cohort extending it carries them on from its var table
    assert _values(db.by_key("out.bigger_feature_view"), *columns) == {U1: (3, 35, 2, 30)}


def test_a_cohort_filtered_on_a_week_var_is_refused(tmp_path: Path) -> None:
    cohort = COHORT.replace("{{ user.total }} > 10", "{{ user.week_total }} > 10")
    err = _error(tmp_path, {**_files(WEEK_VARS), "models/cohort.yaml": cohort})
    assert "refers to 'user.week_total', of time_grain 'week'" in err.message
    assert "not supported yet" in err.message


def test_a_cohorts_var_group_with_a_coarser_grain_is_refused(tmp_path: Path) -> None:
    cohort_vars = "  - name: big_weekly\n    entity_cohort: models/big\n    time_grain: week\n    vars:\n"
    cohort_vars += "      - entity_var:\n          name: big_total\n          select: sum(amount)\n"
    cohort_vars += "          from: inputs/events\n"
    vars_yaml = "var_groups:\n" + var_group("daily", None, ("total", "sum(amount)")) + cohort_vars
    err = _error(tmp_path, {**_files(vars_yaml), "models/cohort.yaml": COHORT})
    assert "time_grain (on var_group 'big_weekly') is not supported yet" in err.message
    assert err.key == "var_groups[1].time_grain"


def test_an_input_var_in_a_coarser_var_group_is_refused(tmp_path: Path) -> None:
    vars_yaml = WEEK_VARS + (
        "      - input_var:\n          name: doubled\n          select: 2 * amount\n          from: inputs/events\n"
    )
    err = _error(tmp_path, _files(vars_yaml))
    assert "input_var 'doubled' of var_group 'weekly' (time_grain 'week')" in err.message
    assert "not supported yet" in err.message


def test_a_feature_table_lists_week_vars_from_the_weeks_var_table(tmp_path: Path) -> None:
    """pb 0.26.4 (observed on Postgres, same rows and end time): a feature_table_model listing a day var and a week
    var reads the week var from the week's var table, LEFT JOINed on the main id: 14/4, 35/30, 8/NULL."""
    table = """
    models:
      - name: weekly_features
        model_type: feature_table_model
        model_spec:
          entity_key: user
          features:
            - week_total
            - total
    """
    write(tmp_path, {**_files(WEEK_VARS), "models/table.yaml": table})
    _sql(tmp_path, SEED)
    _run(tmp_path, "2026-01-22T10:00:00Z")
    db = Outputs(tmp_path / "warehouse.duckdb")
    assert db.columns("out.weekly_features") == ["user_main_id", "valid_at", "week_total", "total"]  # listed order
    # pb: the run's end time (the day grain's boundary) as valid_at
    assert {r[0] for r in db.rows("select valid_at from out.weekly_features")} == {datetime(2026, 1, 22)}
    assert _values(db.by_key("out.weekly_features"), "total", "week_total") == {
        U1: (35, 30),
        U2: (14, 4),
        U3: (8, None),
    }


def test_end_time_sql_in_a_week_var_is_the_weeks_boundary(tmp_path: Path) -> None:
    """pb computes the week's steps as a run of their own whose end time is the boundary: what
    `{{ end_time_sql }}` renders there (Monday 00:00), while the day's vars see the day's (Thursday 00:00)."""
    vars_yaml = "var_groups:\n" + var_group("daily", None, ("day_age", "max(date_diff('day', ts, {{ end_time_sql }}))"))
    vars_yaml += var_group("weekly", "week", ("week_age", "max(date_diff('day', ts, {{ end_time_sql }}))"))
    write(tmp_path, _files(vars_yaml))
    _sql(tmp_path, SEED)
    rows = _run(tmp_path, "2026-01-22T10:00:00Z")
    # u1's oldest row 01-15 09:00: 7 days (date_diff counts midnights) before 01-22, 4 before Monday 01-19
    assert _values(rows, "day_age", "week_age")[U1] == (7, 4)


SQL_MODEL = """
    models:
      - name: big_events
        model_type: sql_template
        model_spec:
          materialization:
            output_type: table
          single_sql: |
            select * from {{ this.DeRef("inputs/events") }} where amount > 5
          occurred_at_col: ts
          ids:
            - select: user_id
              type: user_id
              entity: user
              to_default_stitcher: false
    """


def test_a_sql_model_read_by_a_week_var_is_computed_as_of_the_week_too(tmp_path: Path) -> None:
    """The sql model a week var reads is built a second time as of the week boundary (its input rows up to
    Monday 00:00), its rows given the week stitching's main ids; the day's var reads the day's build."""
    vars_yaml = "var_groups:\n" + var_group("daily", None, ("big_total", "sum(amount)"))
    vars_yaml += var_group("weekly", "week", ("week_big_total", "sum(amount)"))
    vars_yaml = vars_yaml.replace("from: inputs/events", "from: models/big_events")
    write(tmp_path, {**_files(vars_yaml), "models/sql.yaml": SQL_MODEL})
    _sql(tmp_path, SEED, "insert into raw.events values ('u1', null, 50, timestamp '2026-01-20 08:00:00')")
    rows = _run(tmp_path, "2026-01-22T10:00:00Z")
    # rows over 5 with a user_id: u1 10 (01-15), 20 (01-19 00:00), 50 (01-20), 100 (01-22 09:00, after the
    # day's boundary); u3 8 (01-20). a2's 7 has no user_id: no main id through the model's ids
    assert _values(rows, "big_total", "week_big_total") == {U1: (80, 30), U2: (None, None), U3: (8, None)}
    db = Outputs(tmp_path / "warehouse.duckdb")
    steps = {r[0] for r in db.rows("select step from out._profiles_materials where seq_no = 1")}
    assert {"models/big_events", "models/big_events/at_week"} <= steps


WEEK_MODEL = SQL_MODEL.replace("        model_spec:\n", "        model_spec:\n          time_grain: week\n", 1)
BIG_TOTAL = "var_groups:\n" + var_group("daily", None, ("total", "sum(amount)"), ("big_total", "sum(amount)"))
BIG_TOTAL = BIG_TOTAL.replace(
    "name: big_total\n          select: sum(amount)\n          from: inputs/events",
    "name: big_total\n          select: sum(amount)\n          from: models/big_events",
)


def test_a_sql_model_of_week_grain_is_built_as_of_monday_and_read_by_the_days_vars(tmp_path: Path) -> None:
    """pb 0.26.4 (observed on Postgres, same rows and end time): a sql_template with `time_grain: week` is built
    only as of the week boundary, and its rows get their main ids from the week boundary's id graph (pb's
    `models/big_events/var_table` at week); the day's var table reads them: u1 10+20 = 30, u3 (first seen after
    Monday) NULL, u2's rows over 5 have no user_id. pb's feature view: 30/35, NULL/14, NULL/8."""
    write(tmp_path, {**_files(BIG_TOTAL), "models/sql.yaml": WEEK_MODEL})
    _sql(tmp_path, SEED)
    rows = _run(tmp_path, "2026-01-22T10:00:00Z")
    assert _values(rows, "big_total", "total") == {U1: (30, 35), U2: (None, 14), U3: (None, 8)}
    db = Outputs(tmp_path / "warehouse.duckdb")
    steps = {r[0] for r in db.rows("select step from out._profiles_materials where seq_no = 1")}
    assert "models/big_events" not in steps  # built at its grain only, as pb does
    assert {"models/big_events/at_week", "user/input_vars_mapped/big_events/at_week"} <= steps
    assert db.rows("select count(*) from out.big_events") == [(3,)]  # its stable view: rows up to Monday 00:00


def test_a_week_sql_model_as_an_edge_source_is_refused(tmp_path: Path) -> None:
    model = WEEK_MODEL.replace("              to_default_stitcher: false\n", "")
    err = _error(tmp_path, {**_files(BIG_TOTAL), "models/sql.yaml": model})
    assert "sql model 'big_events' has time_grain 'week' and is an edge source of user's id stitcher" in err.message
    assert err.key == "models[0].model_spec.time_grain"


def test_a_sql_model_reading_a_week_sql_model_is_refused(tmp_path: Path) -> None:
    reader = """
      - name: reader
        model_type: sql_template
        model_spec:
          materialization:
            output_type: table
          single_sql: select * from {{ this.DeRef("models/big_events") }}
    """
    files = {**_files(BIG_TOTAL), "models/sql.yaml": WEEK_MODEL + reader}
    err = _error(tmp_path, files)
    assert "DeRef('models/big_events'): sql model 'big_events' has time_grain 'week'" in err.message


def test_on_a_monday_the_week_reads_the_days_steps_and_tuesday_reuses_them(tmp_path: Path) -> None:
    """A run whose day boundary is also the week's (Monday 2026-01-26) builds the rows, graph and ALL cohort
    once, as pb computes that boundary once; the week's var table is its own. Tuesday's run reuses the week's."""
    write(tmp_path, _files(WEEK_VARS))
    _sql(tmp_path, SEED)
    rows = _run(tmp_path, "2026-01-26T10:00:00Z")
    # every seeded row is before Monday 01-26 00:00: the week's values are the day's
    assert _values(rows, "total", "week_total") == {U1: (135, 135), U2: (14, 14), U3: (8, 8)}
    db = Outputs(tmp_path / "warehouse.duckdb")
    first = dict(db.rows("select step, table_name from out._profiles_materials where seq_no = 1"))
    assert first["user/id_stitcher/at_week"] == first["user/id_stitcher"]
    assert first["user/input_vars_mapped/events/at_week"] == first["user/input_vars_mapped/events"]
    assert first["user/entity_vars/at_week"] != first["user/entity_vars"]
    _sql(tmp_path, "insert into raw.events values ('u3', null, 1, timestamp '2026-01-26 05:00:00')")
    rows = _run(tmp_path, "2026-01-27T10:00:00Z")
    assert _values(rows, "total", "week_total") == {U1: (135, 135), U2: (14, 14), U3: (9, 8)}
    second = dict(db.rows("select step, table_name from out._profiles_materials where seq_no = 2"))
    assert second["user/entity_vars/at_week"] == first["user/entity_vars/at_week"]
    assert second["user/id_stitcher/at_week"] == first["user/id_stitcher"]


def test_a_week_boundary_before_any_row_gives_null_week_vars(tmp_path: Path) -> None:
    """A run at Thursday 2026-01-15 10:00: the week's boundary, Monday 01-12 00:00, comes before every row, so
    the week's graph is empty and every week var is NULL; the day's vars count the rows up to 01-15 00:00."""
    write(tmp_path, _files(WEEK_VARS))
    _sql(tmp_path, SEED)
    rows = _run(tmp_path, "2026-01-15T10:00:00Z")
    assert _values(rows, "total", "week_total") == {U2: (4, None)}


def test_a_grain_key_parses_back_and_a_name_like_a_grain_stays_a_name() -> None:
    week = StepKey.input_vars("user", "events").at("week")
    assert (week.path, week.grain, week.base, week.name) == (
        "user/input_vars/events/at_week",
        "week",
        StepKey.input_vars("user", "events"),
        "events",
    )
    assert StepKey.cohort_vars("user", "c").at("month").kind is StepKey.cohort_vars("user", "c").kind
    named = StepKey.input_vars("user", "at_week")  # an input named like a grain
    assert (named.grain, named.name) == (None, "at_week")
    assert StepKey.sql_model("at_week").grain is None
    assert named.at("week").base == named


def test_an_append_only_input_extends_the_days_steps_while_the_weeks_are_built_in_full(tmp_path: Path) -> None:
    """The incremental path extends the default grain's steps up to the run's end time; a coarser grain's steps
    are computed as of an earlier boundary and are built in full (and say so), with the same values."""
    inputs = INPUTS.replace(
        "        app_defaults:\n", "        contract:\n          is_append_only: true\n        app_defaults:\n", 1
    )
    write(tmp_path, {**_files(WEEK_VARS), "models/inputs.yaml": inputs})
    _sql(tmp_path, SEED)
    _run(tmp_path, "2026-01-22T10:00:00Z")
    _sql(tmp_path, "insert into raw.events values ('u3', 'a1', 2, timestamp '2026-01-22 12:00:00')")
    rows = _run(tmp_path, "2026-01-23T10:00:00Z")
    # u3 joins u1+a1 on 01-22 12:00 (before 01-23 00:00): one profile under u1+a1's main id (seen first),
    # 35+100+8+2; the week's var table is run 1's (same week), where u3 was no profile yet
    assert _values(rows, "total", "week_total") == {U1: (145, 30), U2: (14, 4)}
    rows = _run(tmp_path, "2026-01-26T10:00:00Z")  # next Monday: the week's steps as of 01-26, in full
    assert _values(rows, "total", "week_total") == {U1: (145, 145), U2: (14, 14)}
    db = Outputs(tmp_path / "warehouse.duckdb")
    assert db.rows("select count(*) from out._profiles_materials where seq_no = 3 and step like '%at_week'") == [(5,)]
