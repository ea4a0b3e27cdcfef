"""pb's incremental features: an entity var's `merge:`/`merge_where:` over `{{rowset.x}}`, reading an input whose
contract says `is_append_only: true`; two runs on DuckDB with rows appended between them.

pb 0.26.4's meaning, observed on Postgres (the findings of issue 19): the first run computes every var over all
rows; a later run computes a merge var's select over the rows with `occurred_at >= the previous run's end time`
(one value per main id), stacks those values under the previous run's (following main ids that stitching
changed) as the rows of `rowset`, keeps the rows passing `merge_where`, and aggregates them per main id with
`merge`. Late rows (dated before the previous end time) are never merged, and a row dated exactly at it is
merged again: pb's drift, kept for a user's own `merge:`. A full refresh (`--rebase_incremental`, pb's flag)
computes in full again, without `merge_where`. Expected values are worked out by hand from the rows below;
the two-run, full-refresh, window/where and sql-model projects were also run under pb 0.26.4 on Postgres with the same rows
and gave the same values, cell for cell (main ids included).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb

from profiles_dagster.cli import main
from profiles_dagster_tests.format.harness import Outputs, write
from profiles_dagster_tests.format.test_format_core import project, rid

END_1 = "2025-02-01T00:00:00Z"
END_2 = "2025-06-01T00:00:00Z"

INPUTS = """
inputs:
  - name: orders
    contract:
      is_append_only: true
    app_defaults:
      table: raw.orders
      occurred_at_col: ts
      ids:
        - select: user_id
          type: user_id
          entity: user
        - select: anonymous_id
          type: anonymous_id
          entity: user
"""

VARS = """
var_groups:
  - name: vars
    entity_key: user
    vars:
      - entity_var:
          name: total
          select: sum(amount)
          from: inputs/orders
          merge: sum({{rowset.total}})
      - entity_var:
          name: n_orders
          select: count(*)
          from: inputs/orders
          merge: sum({{ rowset.n_orders }})
      - entity_var:
          name: biggest
          select: max(amount)
          from: inputs/orders
          merge: max(rowset.biggest)
      - entity_var:
          name: small_max
          select: max(amount)
          from: inputs/orders
          merge: max({{rowset.small_max}})
          merge_where: "{{rowset.small_max}} < 30"
      - entity_var:
          name: plain_total
          select: sum(amount)
          from: inputs/orders
      - entity_var:
          name: total_plus_one
          select: "{{user.total}} + 1"
"""

# in run 1 (up to END_1): u1 10+5, a1 7 (a separate profile), u2 40 and 2 (dated exactly at END_1);
# u3's row (March) is after END_1
SEED = """create table raw.orders as select * from (values
    ('u1', null, 10, timestamp '2025-01-01 00:00:00'),
    ('u1', null, 5, timestamp '2025-01-10 00:00:00'),
    (null, 'a1', 7, timestamp '2025-01-05 00:00:00'),
    ('u2', null, 40, timestamp '2025-01-20 00:00:00'),
    ('u2', null, 2, timestamp '2025-02-01 00:00:00'),
    ('u3', null, 1, timestamp '2025-03-01 00:00:00')
) t(user_id, anonymous_id, amount, ts)"""

# appended after run 1: a row joining u1 and a1 (stitching merges their profiles), and a late row for u2
APPENDED = """insert into raw.orders values
    ('u1', 'a1', 3, timestamp '2025-02-10 00:00:00'),
    ('u2', null, 100, timestamp '2025-01-25 00:00:00')"""

U1, A1, U2, U3 = rid("u1", "user_id"), rid("a1", "anonymous_id"), rid("u2", "user_id"), rid("u3", "user_id")


def _files(name: str, vars_yaml: str = VARS, inputs: str = INPUTS) -> dict[str, str]:
    return {"pb_project.yaml": project(name), "models/inputs.yaml": inputs, "models/vars.yaml": vars_yaml}


def _sql(root: Path, *statements: str) -> None:
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    try:
        con.execute("create schema if not exists raw")
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def _run(root: Path, end_time: str, *extra: str) -> dict[object, dict[str, object]]:
    assert main(["run", "-p", str(root), "--end_time", end_time, *extra]) == 0
    return Outputs(root / "warehouse.duckdb").by_key("out.user_feature_view")


def _values(rows: dict[object, dict[str, object]], column: str) -> dict[object, object]:
    return {key: row[column] for key, row in rows.items()}


def _two_runs(tmp_path: Path, name: str, *second: str) -> tuple[dict, dict]:
    write(tmp_path, _files(name))
    _sql(tmp_path, SEED)
    first = _run(tmp_path, END_1)
    _sql(tmp_path, APPENDED)
    return first, _run(tmp_path, END_2, *second)


def test_first_run_computes_in_full_and_the_second_merges_the_new_rows(tmp_path: Path) -> None:
    first, second = _two_runs(tmp_path, "merge_runs")
    # run 1: no previous run, every var over all rows up to END_1 (merge_where does not apply)
    assert _values(first, "total") == {U1: Decimal(15), A1: Decimal(7), U2: Decimal(42)}
    assert _values(first, "n_orders") == {U1: 2, A1: 1, U2: 2}
    assert _values(first, "small_max") == {U1: 10, A1: 7, U2: 40}
    # run 2: the new rows are those dated >= END_1: u2's 2 (dated exactly END_1, already in run 1), u3's 1,
    # u1+a1's 3. The late 100 of u2 (January) is not new. u1 and a1 now form one profile, main id u1's (seen
    # first); their previous values are both merged into it.
    # total = sum(rowset): u1 15 + 7 (a1's) + 3 = 25; u2 42 + 2 = 44; u3 1
    assert _values(second, "total") == {U1: Decimal(25), U2: Decimal(44), U3: Decimal(1)}
    # n_orders = sum of counts: u1 2 + 1 + 1 = 4; u2 2 + 1 = 3; u3 1
    assert _values(second, "n_orders") == {U1: 4, U2: 3, U3: 1}
    # biggest = max(rowset): u1 max(10, 7, 3) = 10; u2 max(40, 2) = 40 (the late 100 is missed); u3 1
    assert _values(second, "biggest") == {U1: 10, U2: 40, U3: 1}
    # small_max: rowset rows below 30 only: u1 {10, 7, 3} -> 10; u2 {40, 2} -> {2} -> 2; u3 {1} -> 1
    assert _values(second, "small_max") == {U1: 10, U2: 2, U3: 1}
    # a var without merge is computed over all rows: u1 10+5+7+3 = 25; u2 40+2+100 = 142; u3 1
    assert _values(second, "plain_total") == {U1: Decimal(25), U2: Decimal(142), U3: Decimal(1)}
    # a var without from reads this run's merged value: 25+1, 44+1, 1+1
    assert _values(second, "total_plus_one") == {U1: Decimal(26), U2: Decimal(45), U3: Decimal(2)}


WINDOW_AND_WHERE = """
var_groups:
  - name: vars
    entity_key: user
    vars:
      - entity_var:
          name: first_amount
          select: first_value(amount)
          from: inputs/orders
          window:
            order_by:
              - ts
          merge: min({{rowset.first_amount}})
      - entity_var:
          name: big_count
          select: count(*)
          from: inputs/orders
          where: amount >= 5
          default_value: 0
          merge: sum({{rowset.big_count}})
"""


def test_a_window_var_and_a_var_with_where_merge_their_values_over_the_new_rows(tmp_path: Path) -> None:
    write(tmp_path, _files("merge_window_where", WINDOW_AND_WHERE))
    _sql(tmp_path, SEED)
    first = _run(tmp_path, END_1)
    # run 1: the earliest amount u1 10, a1 7, u2 40; rows of 5 or more: u1 2, a1 1, u2 1 (its 2 is below 5)
    assert _values(first, "first_amount") == {U1: 10, A1: 7, U2: 40}
    assert _values(first, "big_count") == {U1: 2, A1: 1, U2: 1}
    _sql(tmp_path, APPENDED)
    second = _run(tmp_path, END_2)
    # new rows: u1+a1 3, u2 2, u3 1. first_value over the new rows: 3, 2, 1; min with the previous ones:
    # u1 min(10, 7, 3) = 3, u2 min(40, 2) = 2, u3 1
    assert _values(second, "first_amount") == {U1: 3, U2: 2, U3: 1}
    # no new row is of 5 or more, so no new value: u1 2 + 1 = 3, u2 1, u3 none at all: its default 0
    assert _values(second, "big_count") == {U1: 3, U2: 1, U3: 0}


def test_full_refresh_computes_every_var_over_all_rows(tmp_path: Path) -> None:
    _, second = _two_runs(tmp_path, "merge_rebase", "--rebase_incremental")
    # all rows up to END_2: u1 10+5+7+3 = 25 (4 rows, max 10); u2 40+2+100 = 142 (3 rows, max 100); u3 1
    assert _values(second, "total") == {U1: Decimal(25), U2: Decimal(142), U3: Decimal(1)}
    assert _values(second, "n_orders") == {U1: 4, U2: 3, U3: 1}
    assert _values(second, "biggest") == {U1: 10, U2: 100, U3: 1}
    # merge_where applies only when merging: a full computation is the plain max
    assert _values(second, "small_max") == {U1: 10, U2: 100, U3: 1}


def test_a_changed_definition_computes_the_var_table_in_full(tmp_path: Path) -> None:
    write(tmp_path, _files("merge_changed"))
    _sql(tmp_path, SEED)
    _run(tmp_path, END_1)
    _sql(tmp_path, APPENDED)
    (tmp_path / "models/vars.yaml").write_text(VARS.replace("select: count(*)", "select: count(amount)"))
    second = _run(tmp_path, END_2)
    # the var table's definition changed: no previous run of it to merge into, so all rows count, the late 100
    # included: u2 40+2+100 = 142, 3 rows, max 100
    assert _values(second, "total") == {U1: Decimal(25), U2: Decimal(142), U3: Decimal(1)}
    assert _values(second, "n_orders") == {U1: 4, U2: 3, U3: 1}
    assert _values(second, "biggest") == {U1: 10, U2: 100, U3: 1}


def test_a_third_run_merges_into_the_second(tmp_path: Path) -> None:
    _two_runs(tmp_path, "merge_three")
    _sql(tmp_path, "insert into raw.orders values ('u3', null, 9, timestamp '2025-07-01 00:00:00')")
    third = _run(tmp_path, "2025-08-01T00:00:00Z")
    # new since END_2: u3's 9. total: u1 25, u2 44 (run 2's), u3 1 + 9 = 10
    assert _values(third, "total") == {U1: Decimal(25), U2: Decimal(44), U3: Decimal(10)}
    assert _values(third, "n_orders") == {U1: 4, U2: 3, U3: 2}


def _validate_error(tmp_path: Path, files: dict[str, str], capsys) -> str:
    write(tmp_path, files)
    assert main(["validate", "-p", str(tmp_path)]) == 1
    return capsys.readouterr().err


ONE_MERGE = """
var_groups:
  - name: vars
    entity_key: user
    vars:
      - entity_var:
          name: total
          select: sum(amount)
          from: inputs/orders
          merge: {merge}
"""


def test_merge_on_an_input_not_append_only_is_refused(tmp_path: Path, capsys) -> None:
    inputs = INPUTS.replace("      is_append_only: true", "      is_event_stream: true")  # not enough for pb
    files = _files("merge_not_append_only", ONE_MERGE.format(merge="sum({{rowset.total}})"), inputs)
    err = _validate_error(tmp_path, files, capsys)
    assert "vars.yaml:9:" in err and "var_groups[0].vars[0].entity_var.merge" in err
    assert "'total'" in err and "not declared append-only" in err and "is_append_only: true" in err


def test_merge_that_does_not_aggregate_is_refused(tmp_path: Path, capsys) -> None:
    # pb groups the rowset by main id: a bare value fails in the warehouse at run time; refused at validate
    err = _validate_error(tmp_path, _files("merge_bare", ONE_MERGE.format(merge="'{{rowset.total}}'")), capsys)
    assert "vars.yaml:9:" in err and "not an aggregate" in err and "sum({{rowset.total}})" in err


# ---- timegrains: results reused until the grain's next boundary -----------------------------------------


def test_a_second_run_within_the_same_day_reuses_the_first_runs_results(tmp_path: Path) -> None:
    """pb 0.26.4 with `default_time_grain: day` (observed): a run at 10:00 computes as of 00:00 that day; a run at
    15:00 the same day writes no material and its views show the 10:00 run's; a run the next day computes again."""
    vars_yaml = ONE_MERGE.replace("          merge: {merge}\n", "")
    files = _files("grain_reuse", vars_yaml)
    files["pb_project.yaml"] += "default_time_grain: day\n"
    write(tmp_path, files)
    _sql(tmp_path, SEED)
    first = _run(tmp_path, "2025-06-01T10:00:00Z")
    # as of 2025-06-01 00:00: every seeded row. u1 15, a1 7, u2 42, u3 1
    assert _values(first, "total") == {U1: 15, A1: 7, U2: 42, U3: 1}
    # both rows dated before the boundary; the second joins u1 and a1
    _sql(tmp_path, APPENDED)
    second = _run(tmp_path, "2025-06-01T15:00:00Z")
    assert second == first  # same boundary: the first run's results, not recomputed
    db = Outputs(tmp_path / "warehouse.duckdb")
    (material,) = db.rows(
        "select table_name from out._profiles_materials where seq_no = 2 and step = 'user/entity_vars'"
    )
    assert material[0].endswith("_1")  # run 2 reused run 1's var table
    third = _run(tmp_path, "2025-06-02T01:00:00Z")
    # as of 2025-06-02 00:00: the appended rows count. u1+a1 10+5+7+3 = 25, u2 40+2+100 = 142, u3 1
    assert _values(third, "total") == {U1: 25, U2: 142, U3: 1}


def test_merge_reading_another_column_is_refused(tmp_path: Path, capsys) -> None:
    # the rows of rowset hold the main id and the var's own value; pb's SQL fails on any other column
    files = _files("merge_other", ONE_MERGE.format(merge="sum({{rowset.amount}})"))
    err = _validate_error(tmp_path, files, capsys)
    assert "vars.yaml:9:" in err and "reads `rowset.amount`" in err and "{{rowset.total}}" in err


SQL_SOURCE = """
models:
  - name: big_orders
    model_type: sql_template
    model_spec:
      materialization:
        output_type: table
      occurred_at_col: ts
      contract:
        is_append_only: true
      ids:
        - select: user_id
          type: user_id
          entity: user
        - select: anonymous_id
          type: anonymous_id
          entity: user
      single_sql: |
        {% with orders = this.DeRef("inputs/orders") %}
        select user_id, anonymous_id, amount, ts from {{ orders }} where amount >= 5
        {% endwith %}
var_groups:
  - name: vars
    entity_key: user
    vars:
      - entity_var:
          name: big_total
          select: sum(amount)
          from: models/big_orders
          merge: sum({{rowset.big_total}})
"""


def test_merge_over_an_append_only_sql_model(tmp_path: Path) -> None:
    write(tmp_path, _files("merge_sql_model", SQL_SOURCE))
    _sql(tmp_path, SEED)
    first = _run(tmp_path, END_1)
    # run 1, rows of 5 or more up to END_1: u1 10+5, a1 7, u2 40 (u2's 2 is below 5)
    assert _values(first, "big_total") == {U1: 15, A1: 7, U2: 40}
    _sql(tmp_path, APPENDED)
    second = _run(tmp_path, END_2)
    # new rows of the model dated >= END_1: none (u2's 2, u3's 1 and u1+a1's 3 are below 5; u2's 100 is late).
    # u1 and a1 now one profile: 15 + 7 = 22; u2 keeps 40 (a full recompute: 140); u3 has no row of 5 or more
    assert _values(second, "big_total") == {U1: 22, U2: 40, U3: None}
