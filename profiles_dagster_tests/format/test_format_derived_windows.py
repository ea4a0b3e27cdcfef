"""An entity var without `from` but with a `window`: pb computes it over the entity var table's rows, one per
main id, after the vars it reads (checked against pb 0.26.4 on Postgres: `SELECT main_id, <select> OVER
(PARTITION BY .. ORDER BY .. <frame>) FROM <var table> WHERE main_id IS NOT NULL AND <where>`, joined back
with COALESCE(.., default_value)). Expected values are worked out by hand from the seeded rows.
"""

from __future__ import annotations

from pathlib import Path

from profiles_dagster_tests.format.harness import run_project
from profiles_dagster_tests.format.test_format_core import rid

FILES = {
    "pb_project.yaml": """
        name: derived_windows
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
          - name: ranks
            entity_key: user
            vars:
              - entity_var:
                  name: revenue_rank
                  select: rank()
                  where: "{{ user.Var('total') }} is not null"
                  window:
                    order_by:
                      - "{{ user.Var('total') }} desc"
              - entity_var:
                  name: total
                  select: sum(amount)
                  from: inputs/orders
              - entity_var:
                  name: n_orders
                  select: count(*)
                  from: inputs/orders
              - entity_var:
                  name: running_orders
                  select: "sum({{ user.Var('n_orders') }})"
                  where: "{{ user.Var('total') }} is not null"
                  window:
                    order_by:
                      - "{{ user.Var('total') }}"
                    frame_clause: rows between unbounded preceding and current row
              - entity_var:
                  name: rank_in_size
                  select: rank()
                  where: "{{ user.Var('total') }} > 10"
                  default_value: 0
                  window:
                    partition_by:
                      - "{{ user.Var('n_orders') }}"
                    order_by:
                      - "{{ user.Var('total') }} desc"
              - entity_var:
                  name: double_multi
                  select: "{{ user.Var('total') }} * 2"
                  where: "{{ user.Var('n_orders') }} > 1"
        """,
}

SEED = [
    """create table raw.orders as select * from (values
        ('u1', 10, timestamp '2025-01-01 00:00:00'),
        ('u1', 30, timestamp '2025-01-02 00:00:00'),
        ('u2', 25, timestamp '2025-01-03 00:00:00'),
        ('u3', 5, timestamp '2025-01-04 00:00:00'),
        ('u3', 15, timestamp '2025-01-05 00:00:00'),
        ('u4', 3, timestamp '2025-01-06 00:00:00')
    ) t(user_id, amount, ts)""",
    "create table raw.visits as select * from (values ('u5', timestamp '2025-01-07 00:00:00')) t(user_id, ts)",
]


def test_window_var_without_from_is_computed_over_the_entity_var_table(tmp_path: Path) -> None:
    out = run_project(tmp_path, FILES, SEED)
    view = out.by_key("out.user_feature_view")
    got = {
        user: {k: view[rid(user, "user_id")][k] for k in ("total", "n_orders", "revenue_rank", "running_orders")}
        for user in ("u1", "u2", "u3", "u4", "u5")
    }
    # totals 40, 25, 20, 3 and none (u5 only visited): ranked from the largest, u5 left out by `where`
    assert got["u1"] == {"total": 40, "n_orders": 2, "revenue_rank": 1, "running_orders": 6}
    assert got["u2"] == {"total": 25, "n_orders": 1, "revenue_rank": 2, "running_orders": 4}
    assert got["u3"] == {"total": 20, "n_orders": 2, "revenue_rank": 3, "running_orders": 3}
    assert got["u4"] == {"total": 3, "n_orders": 1, "revenue_rank": 4, "running_orders": 1}
    assert got["u5"] == {"total": None, "n_orders": None, "revenue_rank": None, "running_orders": None}
    # ranked within the same number of orders, among totals above 10: u1 before u3 (2 orders), u2 alone
    ranks = {user: view[rid(user, "user_id")]["rank_in_size"] for user in ("u1", "u2", "u3", "u4", "u5")}
    assert ranks == {"u1": 1, "u2": 1, "u3": 2, "u4": 0, "u5": 0}
    # a var without `from` and with `where`, no window: NULL where `where` does not hold
    doubled = {user: view[rid(user, "user_id")]["double_multi"] for user in ("u1", "u2", "u3", "u4", "u5")}
    assert doubled == {"u1": 80, "u2": None, "u3": 40, "u4": None, "u5": None}
