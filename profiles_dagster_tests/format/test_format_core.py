"""Projects of our own, one per family of pb constructs, each run on DuckDB and checked value by value.

Expected values are worked out by hand from the seeded rows (written next to each test), and main
ids from pb's documented rule with hashlib, not from anything the product printed.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

from profiles_dagster_tests.format.harness import run_project

SALT = "fe971b24-9572-4005-b22f-351e9c09274d"


def rid(other_id: str, other_id_type: str) -> str:
    inner = hashlib.sha1((SALT + other_id).encode()).hexdigest()[:32]
    return "rid" + hashlib.sha1((inner + other_id_type).encode()).hexdigest()[:32]


PB_PROJECT = """
name: {name}
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
{extra_entity}
id_types:
  - name: user_id
  - name: anonymous_id
  - name: email
"""

ORDERS_INPUT = """
  - name: orders
    app_defaults:
      table: raw.orders
      occurred_at_col: ts
      ids:
        - select: user_id
          type: user_id
          entity: user
"""


def project(name: str, extra_entity: str = "") -> str:
    return PB_PROJECT.format(name=name, extra_entity=extra_entity)


def test_default_stitcher_filters_and_view_by_id(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": """
            name: filters
            schema_version: 99
            connection: test
            model_folders:
              - models
            entities:
              - name: user
                id_types: [user_id, anonymous_id, email]
                feature_views:
                  using_ids:
                    - id: email
            id_types:
              - name: user_id
                filters:
                  - type: exclude
                    value: guest
              - name: anonymous_id
                filters:
                  - type: exclude
                    regex: "test.*"
              - name: email
                filters:
                  - type: include
                    regex: "[^@ ]+@[^@ ]+"
            """,
        "models/inputs.yaml": """
            inputs:
              - name: tracks
                app_defaults:
                  table: raw.tracks
                  occurred_at_col: ts
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
                    - select: anonymous_id
                      type: anonymous_id
                      entity: user
              - name: identifies
                app_defaults:
                  table: raw.identifies
                  occurred_at_col: ts
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
                    - select: lower(email)
                      type: email
                      entity: user
            """,
        "models/vars.yaml": """
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: tracks_count
                      select: count(*)
                      from: inputs/tracks
            """,
    }
    seed = [
        """create table raw.tracks as select * from (values
            ('u1', 'a1', timestamp '2025-01-01 10:00:00'),
            ('u1', 'a2', timestamp '2025-01-02 10:00:00'),
            ('guest', 'a3', timestamp '2025-01-03 10:00:00'),
            (null, 'a2', timestamp '2025-01-04 10:00:00'),
            ('u2', 'test-9', timestamp '2025-01-05 10:00:00'),
            ('u3', '', timestamp '2025-01-06 10:00:00'),
            ('u5', 'mytest-1', timestamp '2025-01-06 11:00:00')
        ) t(user_id, anonymous_id, ts)""",
        """create table raw.identifies as select * from (values
            ('u1', 'A@X.com', timestamp '2025-01-07 10:00:00'),
            ('u2', 'bad-email', timestamp '2025-01-08 10:00:00'),
            ('u4', 'd@y.org', timestamp '2025-01-09 10:00:00'),
            ('u6', 'say e@z.org', timestamp '2025-01-09 11:00:00')
        ) t(user_id, email, ts)""",
    ]
    out = run_project(tmp_path, files, seed)
    graph = out.rows("select other_id_type, other_id, user_main_id from out.user_default_id_stitcher")
    nodes = {(t, i) for t, i, _ in graph}
    # guest, test-9, '' , bad-email and 'say e@z.org' are filtered; 'mytest-1' is kept (anchored regex)
    assert nodes == {
        ("user_id", "u1"),
        ("anonymous_id", "a1"),
        ("anonymous_id", "a2"),
        ("anonymous_id", "a3"),
        ("user_id", "u2"),
        ("user_id", "u3"),
        ("email", "a@x.com"),
        ("user_id", "u4"),
        ("email", "d@y.org"),
        ("user_id", "u5"),
        ("anonymous_id", "mytest-1"),
        ("user_id", "u6"),
    }
    main = {(t, i): m for t, i, m in graph}
    first = min(rid("u1", "user_id"), rid("a1", "anonymous_id"))  # tie on first_seen_at: the smaller hash
    assert {main[("user_id", "u1")], main[("anonymous_id", "a2")], main[("email", "a@x.com")]} == {first}
    assert main[("anonymous_id", "a3")] == rid("a3", "anonymous_id")  # 'guest' dropped: a lone id
    u4 = min(rid("u4", "user_id"), rid("d@y.org", "email"))  # both first seen on one row
    assert main[("email", "d@y.org")] == main[("user_id", "u4")] == u4
    counts = {k: v["tracks_count"] for k, v in out.by_key("out.user_feature_view").items()}
    assert counts[first] == 3  # rows 1, 2 and the anonymous row 4
    assert counts[rid("a3", "anonymous_id")] == 1
    assert counts[u4] is None  # no tracks: NULL, no default
    by_email = dict(out.rows("select email, tracks_count from out.user_feature_view_with_email"))
    assert by_email == {"a@x.com": 3, "d@y.org": None}
    assert out.columns("out.user_feature_view_with_email") == ["email", "tracks_count"]


def test_entity_vars_where_defaults_and_derived(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": project("vars"),
        "models/inputs.yaml": "inputs:\n"
        + ORDERS_INPUT
        + """
              - name: signups
                app_defaults:
                  table: raw.signups
                  occurred_at_col: ts
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
            """.replace("\n            ", "\n"),
        "models/vars.yaml": """
            var_groups:
              - name: orders
                entity_key: user
                vars:
                  - entity_var:
                      name: n_completed
                      select: count(*)
                      from: inputs/orders
                      where: status = 'completed'
                      default_value: 0
                  - entity_var:
                      name: revenue
                      select: sum(amount)
                      from: inputs/orders
                      where: status = 'completed'
                  - entity_var:
                      name: revenue_or_zero
                      select: sum(amount)
                      from: inputs/orders
                      where: status = 'completed'
                      default_value: 0
                  - entity_var:
                      name: max_cancel
                      select: max(amount)
                      from: inputs/orders
                      where: status = 'cancelled'
                      is_feature: false
                  - entity_var:
                      name: avg_completed
                      select: "{{ user.Var('revenue') }} / {{ user.Var('n_completed') }}"
                  - entity_var:
                      name: cancel_double
                      select: "{{ user.Var('max_cancel') }} * 2"
                  - entity_var:
                      name: label
                      select: "case when {{ user.revenue_or_zero }} > 20 then 'big' else 'small' end"
                  - entity_var:
                      name: n_statuses
                      select: count(distinct status)
                      from: inputs/orders
                      where: amount > 6
            """,
    }
    seed = [
        """create table raw.orders as select * from (values
            ('u1', 10.00::decimal(10,2), 'completed', timestamp '2025-01-01 00:00:00'),
            ('u1', 20.00, 'completed', timestamp '2025-01-02 00:00:00'),
            ('u1', 5.00, 'cancelled', timestamp '2025-01-03 00:00:00'),
            ('u2', 7.00, 'cancelled', timestamp '2025-01-04 00:00:00')
        ) t(user_id, amount, status, ts)""",
        "create table raw.signups as select 'u3' as user_id, timestamp '2025-01-05 00:00:00' as ts",
    ]
    out = run_project(tmp_path, files, seed)
    view = out.by_key("out.user_feature_view")
    u1, u2, u3 = view[rid("u1", "user_id")], view[rid("u2", "user_id")], view[rid("u3", "user_id")]
    assert out.columns("out.user_feature_view") == [
        "user_main_id",
        "avg_completed",
        "cancel_double",
        "label",
        "n_completed",
        "n_statuses",
        "revenue",
        "revenue_or_zero",
    ]
    assert (u1["n_completed"], u1["revenue"], u1["revenue_or_zero"]) == (2, Decimal("30.00"), Decimal("30.00"))
    assert (u2["n_completed"], u2["revenue"], u2["revenue_or_zero"]) == (0, None, 0)
    assert (u3["n_completed"], u3["revenue"], u3["revenue_or_zero"]) == (0, None, 0)
    assert u1["avg_completed"] == 15 and u2["avg_completed"] is None and u3["avg_completed"] is None
    assert (u1["cancel_double"], u2["cancel_double"], u3["cancel_double"]) == (10, 14, None)
    assert (u1["label"], u2["label"], u3["label"]) == ("big", "small", "small")
    # count(distinct) over rows passing where: u1 has 10 and 20 completed (> 6): 1 status; u2: 7 cancelled
    assert (u1["n_statuses"], u2["n_statuses"], u3["n_statuses"]) == (1, 1, None)


def test_window_vars_and_input_vars(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": project("windows"),
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
            """,
        "models/vars.yaml": """
            var_groups:
              - name: orders
                entity_key: user
                vars:
                  - input_var:
                      name: amount_rank
                      select: rank()
                      from: inputs/orders
                      window:
                        partition_by:
                          - user_main_id
                        order_by:
                          - amount desc
                  - input_var:
                      name: running_total
                      select: sum(amount)
                      from: inputs/orders
                      window:
                        partition_by:
                          - user_main_id
                        order_by:
                          - ts
                  - input_var:
                      name: big_flag
                      select: "1"
                      from: inputs/orders
                      where: amount >= 20
                      default_value: 0
                  - entity_var:
                      name: top_order
                      select: max(order_id)
                      from: inputs/orders
                      where: amount_rank = 1
                  - entity_var:
                      name: first_amount
                      select: first_value(amount)
                      from: inputs/orders
                      window:
                        order_by:
                          - ts
                  - entity_var:
                      name: last_amount
                      select: last_value(amount)
                      from: inputs/orders
                      window:
                        order_by:
                          - ts
                        frame_clause: rows between unbounded preceding and unbounded following
                  - entity_var:
                      name: max_running
                      select: max(running_total)
                      from: inputs/orders
                  - entity_var:
                      name: n_big
                      select: sum(big_flag)
                      from: inputs/orders
            """,
    }
    seed = [
        """create table raw.orders as select * from (values
            ('o1', 'u1', 10, timestamp '2025-01-01 00:00:00'),
            ('o2', 'u1', 30, timestamp '2025-01-02 00:00:00'),
            ('o3', 'u1', 20, timestamp '2025-01-03 00:00:00'),
            ('o4', 'u2', 5, timestamp '2025-01-01 12:00:00')
        ) t(order_id, user_id, amount, ts)""",
    ]
    out = run_project(tmp_path, files, seed)
    view = out.by_key("out.user_feature_view")
    u1, u2 = view[rid("u1", "user_id")], view[rid("u2", "user_id")]
    assert (u1["top_order"], u2["top_order"]) == ("o2", "o4")
    assert (u1["first_amount"], u2["first_amount"]) == (10, 5)
    assert (u1["last_amount"], u2["last_amount"]) == (20, 5)
    assert (u1["max_running"], u2["max_running"]) == (60, 5)
    assert (u1["n_big"], u2["n_big"]) == (2, 0)
    (mapped,) = out.rows("select table_name from out._profiles_materials where step = 'user/input_vars_mapped/orders'")
    rows = out.rows(f'select order_id, amount_rank, running_total, big_flag from out."{mapped[0]}" order by 1')
    assert rows == [("o1", 3, 10, 0), ("o2", 1, 40, 1), ("o3", 2, 60, 1), ("o4", 1, 5, 0)]
