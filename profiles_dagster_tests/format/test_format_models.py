"""sql_template models, cohorts and feature tables: our own projects, expected values by hand."""

from __future__ import annotations

from pathlib import Path

from profiles_dagster_tests.format.harness import run_project
from profiles_dagster_tests.format.test_format_core import ORDERS_INPUT, project, rid

ORDERS = """create table raw.orders as select * from (values
    ('u1', 10, timestamp '2025-01-01 00:00:00'),
    ('u1', 20, timestamp '2025-01-02 00:00:00'),
    ('u2', 5, timestamp '2025-01-03 00:00:00'),
    ('u3', 200, timestamp '2025-01-04 00:00:00')
) t(user_id, amount, ts)"""


def test_sql_templates_table_view_ephemeral_and_multi_sql(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": project("sqlmodels"),
        "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
        "models/sql.yaml": """
            models:
              - name: order_totals
                model_type: sql_template
                model_spec:
                  materialization:
                    output_type: table
                    run_type: discrete
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
                  single_sql: |
                    {% with orders = this.DeRef("inputs/orders") %}
                    select user_id, sum(amount) as total from {{ orders }} group by user_id
                    {% endwith %}
              - name: big_spenders
                model_type: sql_template
                model_spec:
                  materialization:
                    output_type: view
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
                  single_sql: |
                    {% with totals = this.DeRef("models/order_totals") %}
                    select user_id, total from {{ totals }} where total > 15
                    {% endwith %}
              - name: recent
                model_type: sql_template
                model_spec:
                  materialization:
                    output_type: ephemeral
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
                  single_sql: |
                    select user_id, ts from {{ this.DeRef("inputs/orders") }} where ts >= '2025-01-02'
              - name: counted
                model_type: sql_template
                model_spec:
                  materialization:
                    output_type: table
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
                  multi_sql: |
                    create table {{ this }} as select user_id, count(*) as n from {{ this.DeRef("inputs/orders") }} group by user_id;
                    insert into {{ this }} values ('u9', 0);
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: total_from_model
                      select: max(total)
                      from: models/order_totals
                  - entity_var:
                      name: is_big
                      select: count(*)
                      from: models/big_spenders
                      default_value: 0
                  - entity_var:
                      name: recent_orders
                      select: count(*)
                      from: models/recent
                      default_value: 0
                  - entity_var:
                      name: n_orders
                      select: max(n)
                      from: models/counted
            """,
    }
    out = run_project(tmp_path, files, [ORDERS])
    view = out.by_key("out.user_feature_view")
    u1, u2, u3 = (view[rid(u, "user_id")] for u in ("u1", "u2", "u3"))
    assert (u1["total_from_model"], u2["total_from_model"], u3["total_from_model"]) == (30, 5, 200)
    assert (u1["is_big"], u2["is_big"], u3["is_big"]) == (1, 0, 1)
    assert (u1["recent_orders"], u2["recent_orders"], u3["recent_orders"]) == (1, 1, 1)
    assert (u1["n_orders"], u2["n_orders"], u3["n_orders"]) == (2, 1, 1)
    # u9 exists only in the model `counted`: pb's default stitcher reads every sql model with ids of the entity
    # too (pb 0.26.4 compiles edges from them), so u9 is a profile of its own
    assert len(view) == 4 and view[rid("u9", "user_id")]["n_orders"] == 0
    assert sorted(out.rows("select * from out.big_spenders")) == [("u1", 30), ("u3", 200)]
    assert out.rows("select count(*) from out.counted") == [(4,)]
    views = {r[0] for r in out.rows("select view_name from duckdb_views() where schema_name = 'out'")}
    assert {"order_totals", "big_spenders", "counted"} <= views and "recent" not in views


def test_single_sql_may_open_with_a_comma_as_pb_writes_it_after_its_own_with(tmp_path: Path) -> None:
    # pb writes a single_sql as `WITH dummy_variable AS (SELECT 1), <a CTE per input read> <single_sql>`
    # (seen in pb 0.26.4's compiled SQL), so public projects start theirs with `, name AS (...)`.
    files = {
        "pb_project.yaml": project("commacte"),
        "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
        "models/sql.yaml": """
            models:
              - name: doubled_totals
                model_type: sql_template
                model_spec:
                  materialization:
                    output_type: table
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
                  single_sql: |
                    {% with orders = this.DeRef("inputs/orders") %}
                      , doubled as (select user_id, amount * 2 as twice from {{ orders }})
                      select user_id, sum(twice) as total2 from doubled group by user_id
                    {% endwith %}
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: total2
                      select: max(total2)
                      from: models/doubled_totals
            """,
    }
    out = run_project(tmp_path, files, [ORDERS])
    assert sorted(out.rows("select * from out.doubled_totals")) == [("u1", 60), ("u2", 10), ("u3", 400)]
    view = out.by_key("out.user_feature_view")
    assert view[rid("u1", "user_id")]["total2"] == 60


COHORT_PROJECT = {
    "models/inputs.yaml": "inputs:"
    + ORDERS_INPUT
    + """
  - name: identifies
    app_defaults:
      table: raw.identifies
      occurred_at_col: ts
      ids:
        - select: user_id
          type: user_id
          entity: user
        - select: email
          type: email
          entity: user
""",
    "models/vars.yaml": """
        var_groups:
          - name: vars
            entity_key: user
            vars:
              - entity_var:
                  name: revenue
                  select: sum(amount)
                  from: inputs/orders
              - entity_var:
                  name: country
                  select: max(country)
                  from: inputs/identifies
          - name: us_vars
            entity_cohort: models/us_users
            vars:
              - entity_var:
                  name: us_orders
                  select: count(*)
                  from: inputs/orders
                  default_value: 0
          - name: big_vars
            entity_cohort: models/us_big
            vars:
              - entity_var:
                  name: big_max
                  select: max(amount)
                  from: inputs/orders
        """,
}
IDENTIFIES = """create table raw.identifies as select * from (values
    ('u1', 'one@x.com', 'US', timestamp '2024-12-01 00:00:00'),
    ('u2', 'two@x.com', 'US', timestamp '2024-12-02 00:00:00'),
    ('u3', 'three@x.com', 'DE', timestamp '2024-12-03 00:00:00'),
    ('u4', 'four@x.com', 'US', timestamp '2024-12-04 00:00:00')
) t(user_id, email, country, ts)"""
ORDERS_COHORT = """create table raw.orders as select * from (values
    ('u1', 100, timestamp '2025-01-01 00:00:00'),
    ('u2', 50, timestamp '2025-01-02 00:00:00'),
    ('u3', 200, timestamp '2025-01-03 00:00:00')
) t(user_id, amount, ts)"""


def test_cohorts_pipeline_extends_vars_and_views(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": project("cohorts"),
        **COHORT_PROJECT,
        "models/cohorts.yaml": """
            models:
              - name: us_users
                model_type: entity_cohort
                model_spec:
                  extends: user/all
                  filter_pipeline:
                    - type: include
                      value: "{{ user.Var('country') }} = 'US'"
                  feature_views:
                    - id: email
                      name: us_users_by_email
              - name: us_big
                model_type: entity_cohort
                model_spec:
                  extends: models/us_users
                  filter_pipeline:
                    - type: exclude
                      value: "{{ user.Var('revenue') }} < 80"
            """,
    }
    out = run_project(tmp_path, files, [ORDERS_COHORT, IDENTIFIES])
    # u1: first seen on identifies with its email on one row: the smaller hash of the two
    m = {u: out.main_id_of(u, "user_id") for u in ("u1", "u2", "u3", "u4")}
    assert {r[0] for r in out.rows("select user_main_id from out.user_us_users")} == {m["u1"], m["u2"], m["u4"]}
    # exclude revenue < 80: u2 (50) out; u4 has no revenue: NULL drops it; u1 stays
    assert {r[0] for r in out.rows("select user_main_id from out.user_us_big")} == {m["u1"]}
    us_view = out.by_key("out.us_users_feature_view")
    assert out.columns("out.us_users_feature_view") == ["user_main_id", "us_orders", "country", "revenue"]
    assert {k: v["us_orders"] for k, v in us_view.items()} == {m["u1"]: 1, m["u2"]: 1, m["u4"]: 0}
    assert out.columns("out.us_big_feature_view") == ["user_main_id", "big_max", "country", "revenue", "us_orders"]
    assert out.rows("select big_max, us_orders from out.us_big_feature_view") == [(100, 1)]
    by_email = dict(out.rows("select email, us_orders from out.us_users_by_email"))
    assert by_email == {"one@x.com": 1, "two@x.com": 1, "four@x.com": 0}
    # a cohort's views by id follow the entity's view ids and its own list, not its parent's
    views = {r[0] for r in out.rows("select view_name from duckdb_views() where schema_name = 'out'")}
    assert "us_big_feature_view_with_email" not in views


def test_filter_expression_and_feature_table_model(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": project("expr"),
        **COHORT_PROJECT,
        "models/cohorts.yaml": """
            models:
              - name: us_users
                model_type: entity_cohort
                model_spec:
                  extends: user/all
                  filter_expression: "{{ user.country }} = 'US'"
              - name: us_big
                model_type: entity_cohort
                model_spec:
                  extends: user/all
                  filter_expression:
                    OR:
                      - "{{ user.revenue }} > 150"
                      - AND:
                          - "{{ user.country }} = 'US'"
                          - "{{ user.revenue }} >= 100"
              - name: user_profile
                model_type: feature_table_model
                model_spec:
                  entity_key: user
                  features:
                    - revenue
                    - country
            """,
    }
    out = run_project(tmp_path, files, [ORDERS_COHORT, IDENTIFIES])
    m = {u: out.main_id_of(u, "user_id") for u in ("u1", "u2", "u3", "u4")}
    assert {r[0] for r in out.rows("select user_main_id from out.user_us_users")} == {m["u1"], m["u2"], m["u4"]}
    # u3: 200 > 150; u1: US and 100 >= 100; u2: US but 50; u4: NULL revenue
    assert {r[0] for r in out.rows("select user_main_id from out.user_us_big")} == {m["u1"], m["u3"]}
    assert out.columns("out.user_profile") == ["user_main_id", "valid_at", "revenue", "country"]
    assert sorted(out.rows("select revenue, country from out.user_profile"), key=str) == sorted(
        [(100, "US"), (50, "US"), (200, "DE"), (None, "US")], key=str
    )
