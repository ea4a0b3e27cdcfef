"""Window entity vars `first_value(x)` / `last_value(x)` over each main id's rows: pb takes the MAX of the
window's value over the rows (`SELECT main, MAX(v) FROM (SELECT main, first_value(x) OVER (PARTITION BY main
ORDER BY ..) AS v ...) GROUP BY main`). Where the value is the same on every row of the main id (the first
row's x; the last row's when the frame reaches the partition's end) DuckDB computes it as the ordered aggregate
FIRST/LAST(x ORDER BY ..), NULLs kept; other frames, extra partition_by columns keep the window. Expected values
are worked out by hand from the rows below (timestamps distinct, so "first" is never a tie)."""

from __future__ import annotations

from pathlib import Path

from profiles_dagster.cli import main
from profiles_dagster_tests.format.harness import run_project
from profiles_dagster_tests.format.test_format_core import rid

FILES = {
    "pb_project.yaml": """
        name: first_last
        schema_version: 99
        connection: test
        model_folders:
          - models
        entities:
          - name: user
            id_types:
              - user_id
        id_types:
          - name: user_id
        """,
    "models/inputs.yaml": """
        inputs:
          - name: orders
            app_defaults:
              table: raw.orders
              occurred_at_col: ts
              ids:
                - select: user_id
                  type: user_id
                  entity: user
          - name: visits
            app_defaults:
              table: raw.visits
              occurred_at_col: ts
              ids:
                - select: user_id
                  type: user_id
                  entity: user
        """,
    "models/vars.yaml": """
        var_groups:
          - name: firsts
            entity_key: user
            vars:
              - entity_var:
                  name: first_amount
                  select: first_value(amount)
                  from: inputs/orders
                  window:
                    order_by: [ts]
              - entity_var:
                  name: first_amount_set
                  select: first_value(amount)
                  from: inputs/orders
                  where: amount is not null
                  default_value: 0
                  window:
                    order_by: [ts]
              - entity_var:
                  name: last_amount
                  select: last_value(amount)
                  from: inputs/orders
                  window:
                    order_by: [ts]
                    frame_clause: rows between unbounded preceding and unbounded following
              - entity_var:
                  name: last_running
                  select: last_value(amount)
                  from: inputs/orders
                  window:
                    order_by: [ts]
              - entity_var:
                  name: latest_kind
                  select: first_value(kind)
                  from: inputs/orders
                  window:
                    order_by: [ts desc]
              - entity_var:
                  name: first_per_kind
                  select: first_value(amount)
                  from: inputs/orders
                  window:
                    partition_by: [kind]
                    order_by: [ts]
              - entity_var:
                  name: first_sliding
                  select: first_value(amount)
                  from: inputs/orders
                  window:
                    order_by: [ts]
                    frame_clause: rows between 1 preceding and current row
        """,
}

SEED = [
    """create table raw.orders as select * from (values
        ('u1', NULL, 'a', timestamp '2025-01-01 00:00:00'),
        ('u1', 10, 'b', timestamp '2025-01-02 00:00:00'),
        ('u1', 30, 'a', timestamp '2025-01-03 00:00:00'),
        ('u2', 25, 'a', timestamp '2025-01-04 00:00:00'),
        ('u3', 5, 'b', timestamp '2025-01-05 00:00:00'),
        ('u3', 15, 'b', timestamp '2025-01-06 00:00:00'),
        ('u3', NULL, 'a', timestamp '2025-01-07 00:00:00')
    ) t(user_id, amount, kind, ts)""",
    "create table raw.visits as select * from (values ('u4', timestamp '2025-01-08 00:00:00')) t(user_id, ts)",
]

USERS = ("u1", "u2", "u3", "u4")


def test_first_and_last_value_vars_keep_pbs_values(tmp_path: Path) -> None:
    out = run_project(tmp_path, FILES, SEED)
    view = out.by_key("out.user_feature_view")

    def var(name: str) -> dict[str, object]:
        return {user: view[rid(user, "user_id")][name] for user in USERS}

    # the first row's amount, NULL included (u1's first order has none); u4 has no orders
    assert var("first_amount") == {"u1": None, "u2": 25, "u3": 5, "u4": None}
    # among the rows passing `where`; the default where no row does
    assert var("first_amount_set") == {"u1": 10, "u2": 25, "u3": 5, "u4": 0}
    # the last row's amount over the whole partition, NULL included (u3's last order)
    assert var("last_amount") == {"u1": 30, "u2": 25, "u3": None, "u4": None}
    # the default frame ends at the row: each row's own amount, so the MAX is the largest amount
    assert var("last_running") == {"u1": 30, "u2": 25, "u3": 15, "u4": None}
    # the latest row first (descending order)
    assert var("latest_kind") == {"u1": "a", "u2": "a", "u3": "a", "u4": None}
    # one first per (user, kind), then the MAX over them: u1 a: NULL, b: 10; u3 b: 5, a: NULL
    assert var("first_per_kind") == {"u1": 10, "u2": 25, "u3": 5, "u4": None}
    # a frame of the row and the one before: the MAX of those firsts is the second-to-last row's amount
    assert var("first_sliding") == {"u1": 10, "u2": 25, "u3": 15, "u4": None}


def test_first_and_last_value_vars_compile_to_ordered_aggregates_on_duckdb(tmp_path: Path) -> None:
    run_project(tmp_path, FILES, SEED)
    assert main(["compile", "-p", str(tmp_path)]) == 0
    sql_file = max(tmp_path.glob("output/*/seq_no_*/*entity_vars.sql"))  # the compile's, after the run's
    sql = sql_file.read_text(encoding="utf-8").upper()
    assert sql.count("FIRST(") == 3 and sql.count("LAST(") == 1  # first_amount(_set), latest_kind; last_amount
    assert sql.count("FIRST_VALUE(") == 2 and sql.count("LAST_VALUE(") == 1  # per kind, sliding; running


def test_snowflake_sql_takes_snowflakes_frame(tmp_path: Path) -> None:
    # the same vars in Snowflake SQL: FIRST_VALUE / LAST_VALUE over an ORDER BY with no frame take Snowflake's
    # frame, the whole partition, so `last_running` is the last row's amount (NULL included: u3's last order),
    # not the MAX of each row's own amount; the other vars keep their values
    out = run_project(tmp_path, {**FILES, "profiles_dagster.yaml": "dialect: snowflake\n"}, SEED)
    view = out.by_key("out.user_feature_view")

    def var(name: str) -> dict[str, object]:
        return {user: view[rid(user, "user_id")][name] for user in USERS}

    assert var("last_running") == {"u1": 30, "u2": 25, "u3": None, "u4": None}
    assert var("last_amount") == {"u1": 30, "u2": 25, "u3": None, "u4": None}
    assert var("first_amount") == {"u1": None, "u2": 25, "u3": 5, "u4": None}
    assert var("latest_kind") == {"u1": "a", "u2": "a", "u3": "a", "u4": None}
    assert var("first_sliding") == {"u1": 10, "u2": 25, "u3": 15, "u4": None}
    assert main(["compile", "-p", str(tmp_path)]) == 0
    sql_file = max(tmp_path.glob("output/*/seq_no_*/*entity_vars.sql"))
    assert sql_file.read_text(encoding="utf-8").upper().count("LAST(") == 2  # last_amount, last_running
