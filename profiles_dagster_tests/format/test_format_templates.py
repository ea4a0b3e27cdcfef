"""Templating, macros, dialects, csv inputs, several entities: our own projects, expected by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from profiles_dagster_tests.format.harness import run_project
from profiles_dagster_tests.format.test_format_core import ORDERS_INPUT, project, rid

ORDERS = """create table raw.orders as select * from (values
    ('u1', 10.00::decimal(10,2), 'completed', 'b-sku', null, timestamp '2025-01-01 00:00:00'),
    ('u1', 30.00, 'completed', 'a-sku', 'WELCOME', timestamp '2025-01-11 00:00:00'),
    ('u1', 5.00, 'cancelled', 'c-sku', null, timestamp '2025-01-21 00:00:00'),
    ('u2', 7.00, 'completed', 'a-sku', null, timestamp '2025-05-30 00:00:00')
) t(user_id, amount, status, sku, coupon, ts)"""


def test_templates_macros_and_time(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": project("templates"),
        "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
        "models/macros.yaml": """
            macros:
              - name: days_between
                inputs:
                  - a
                  - b
                value: "date_diff('day', {{ a }}, {{ b }})"
              - name: completed
                value: "status = 'completed'"
            """,
        "models/vars.yaml": """
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: first_ts
                      select: min(ts)
                      from: inputs/orders
                  - entity_var:
                      name: span_days
                      select: "{{ days_between('min(ts)', 'max(ts)') }}"
                      from: inputs/orders
                      where: "{{ completed }}"
                  - entity_var:
                      name: age_days
                      select: "{{ days_between('{{ user.Var(\\"first_ts\\") }}', end_time_sql) }}"
                  - entity_var:
                      name: engine_count
                      select: >-
                        {% if warehouse.DatabaseType() == "snowflake" %}0{% elif warehouse.DatabaseType() == "duckdb" %}count(*){% else %}-1{% endif %}
                      from: inputs/orders
                  - entity_var:
                      name: doubled
                      select: "{% with factor = 2 %}sum(amount) * {{ factor }}{% endwith %}"
                      from: inputs/orders
                  - entity_var:
                      name: tripled
                      select: "{% set factor = 3 %}{{ factor }} * count(*)"
                      from: inputs/orders
                  - entity_var:
                      name: has_begin
                      select: "{% if begin_time|isnil %}0{% else %}1{% endif %}"
                  - entity_var:
                      name: before_end_day
                      select: count(*)
                      from: inputs/orders
                      where: "ts < CAST('{{ end_time.Format(\\"2006-01-02\\") }}' AS DATE) - INTERVAL 3 DAY"
            """,
    }
    out = run_project(tmp_path, files, [ORDERS], end_time="2025-06-01T08:30:00Z")
    view = out.by_key("out.user_feature_view")
    u1, u2 = view[rid("u1", "user_id")], view[rid("u2", "user_id")]
    assert (u1["span_days"], u2["span_days"]) == (10, 0)  # completed: Jan 1 -> Jan 11; one order
    assert (u1["age_days"], u2["age_days"]) == (151, 2)  # to 2025-06-01
    assert (u1["engine_count"], u1["doubled"], u1["tripled"]) == (3, Decimal("90.00"), 9)
    assert u1["has_begin"] == 0
    assert (u1["before_end_day"], u2["before_end_day"]) == (3, None)  # u2 ordered May 30, after May 29


def test_snowflake_sql_runs_on_duckdb(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": project("snowflake_sql"),
        "profiles_dagster.yaml": "dialect: snowflake\n",
        "models/inputs.yaml": """
            inputs:
              - name: orders
                app_defaults:
                  table: raw.orders
                  occurred_at_col: ts
                  ids:
                    - select: upper(user_id)::varchar
                      type: user_id
                      entity: user
            """,
        "models/vars.yaml": """
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: revenue
                      select: sum(amount::number(10,2))
                      from: inputs/orders
                      where: status = 'completed'
                  - entity_var:
                      name: kind
                      select: iff(count(*) > 1, 'repeat', 'single')
                      from: inputs/orders
                  - entity_var:
                      name: span
                      select: datediff(day, min(ts), max(ts))
                      from: inputs/orders
                  - entity_var:
                      name: coupon
                      select: nvl(max(coupon), 'none')
                      from: inputs/orders
                  - entity_var:
                      name: skus
                      select: listagg(distinct sku, ',') within group (order by sku)
                      from: inputs/orders
                  - entity_var:
                      name: big_orders
                      select: count_if(amount > 8)
                      from: inputs/orders
                  - entity_var:
                      name: per_order
                      select: div0({{ user.revenue }}, {{ user.big_orders }})
                  - entity_var:
                      name: written_for
                      select: >-
                        max({% if warehouse.DatabaseType() == "snowflake" %}1{% else %}0{% endif %})
                      from: inputs/orders
            """,
    }
    out = run_project(tmp_path, files, [ORDERS])
    view = out.by_key("out.user_feature_view")
    u1, u2 = view[rid("U1", "user_id")], view[rid("U2", "user_id")]
    assert (u1["revenue"], u2["revenue"]) == (Decimal("40.00"), Decimal("7.00"))
    assert (u1["kind"], u2["kind"]) == ("repeat", "single")
    assert (u1["span"], u2["span"]) == (20, 0)
    assert (u1["coupon"], u2["coupon"]) == ("WELCOME", "none")
    assert (u1["skus"], u2["skus"]) == ("a-sku,b-sku,c-sku", "a-sku")
    assert (u1["big_orders"], u2["big_orders"]) == (2, 0)
    assert (u1["per_order"], u2["per_order"]) == (20, 0)  # div0: 7 / 0 is 0
    # templates take the branch pb takes on the warehouse the SQL is written for, not the engine running it
    assert (u1["written_for"], u2["written_for"]) == (1, 1)


def test_csv_input_untimed_view_input_and_column_type(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": project("csv"),
        "data/visits.csv": "anonymous_id,user_id,page\na1,u1,/home\na1,,/pricing\na2,u1,/home\na3,,/blog\n",
        "models/inputs.yaml": """
            inputs:
              - name: visits
                app_defaults:
                  csv: data/visits.csv
                  ids:
                    - select: anonymous_id
                      type: anonymous_id
                      entity: user
                    - select: user_id
                      type: user_id
                      entity: user
              - name: recent_orders
                app_defaults:
                  view: raw.recent_orders
                  occurred_at_col: ts
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
            """,
        "models/vars.yaml": """
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: pages
                      select: count(*)
                      from: inputs/visits
                      column_data_type: varchar
                  - entity_var:
                      name: distinct_pages
                      select: count(distinct page)
                      from: inputs/visits
                  - entity_var:
                      name: recent_revenue
                      select: sum(amount)
                      from: inputs/recent_orders
            """,
    }
    seed = [ORDERS, "create view raw.recent_orders as select * from raw.orders where ts > '2025-01-05'"]
    out = run_project(tmp_path, files, seed)
    graph = out.rows("select other_id, user_main_id from out.user_default_id_stitcher")
    assert len(graph) == 5  # a1, a2, a3, u1 from the csv; u2 from the view
    main = dict(graph)
    assert main["a1"] == main["a2"] == main["u1"] and main["a3"] != main["a1"]
    view = out.by_key("out.user_feature_view")
    u1 = view[main["u1"]]
    assert (u1["pages"], u1["distinct_pages"], u1["recent_revenue"]) == ("3", 2, Decimal("35.00"))
    assert view[main["a3"]]["pages"] == "1" and view[main["u2"]]["pages"] is None


def test_vars_that_read_other_vars_in_where(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": project("var_refs"),
        "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
        "models/vars.yaml": """
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: first_order_at
                      select: min(ts)
                      from: inputs/orders
                  - entity_var:
                      name: later_orders
                      select: count(*)
                      from: inputs/orders
                      where: ts > {{ user.Var("first_order_at") }} + INTERVAL 5 DAY
                      default_value: 0
                  - entity_var:
                      name: above_first
                      select: sum(amount) - {{ user.Var("first_amount") }}
                      from: inputs/orders
                  - entity_var:
                      name: first_amount
                      select: first_value(amount)
                      from: inputs/orders
                      window:
                        order_by:
                          - ts
            """,
    }
    out = run_project(tmp_path, files, [ORDERS])
    view = out.by_key("out.user_feature_view")
    u1, u2 = view[rid("u1", "user_id")], view[rid("u2", "user_id")]
    assert (u1["later_orders"], u2["later_orders"]) == (2, 0)  # Jan 11 and Jan 21 are > Jan 6
    assert (u1["above_first"], u2["above_first"]) == (Decimal("35.00"), Decimal("0.00"))


def test_two_entities_and_sql_id_filter(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": """
            name: two_entities
            schema_version: 99
            connection: test
            model_folders:
              - models
            entities:
              - name: user
                id_types:
                  - user_id
              - name: account
                id_column_name: account_key
                id_types:
                  - account_id
            id_types:
              - name: user_id
                filters:
                  - type: exclude
                    sql:
                      select: blocked_id
                      from: inputs/blocklist
              - name: account_id
            """,
        "models/inputs.yaml": """
            inputs:
              - name: blocklist
                app_defaults:
                  table: raw.blocklist
              - name: events
                app_defaults:
                  table: raw.events
                  occurred_at_col: ts
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
                    - select: account_id
                      type: account_id
                      entity: account
            """,
        "models/vars.yaml": """
            var_groups:
              - name: user_vars
                entity_key: user
                vars:
                  - entity_var:
                      name: events
                      select: count(*)
                      from: inputs/events
              - name: account_vars
                entity_key: account
                vars:
                  - entity_var:
                      name: users
                      select: count(distinct user_id)
                      from: inputs/events
            """,
    }
    seed = [
        "create table raw.blocklist as select 'bot' as blocked_id",
        """create table raw.events as select * from (values
            ('u1', 'acc1', timestamp '2025-01-01 00:00:00'),
            ('u2', 'acc1', timestamp '2025-01-02 00:00:00'),
            ('bot', 'acc2', timestamp '2025-01-03 00:00:00'),
            ('u1', 'acc2', timestamp '2025-01-04 00:00:00')
        ) t(user_id, account_id, ts)""",
    ]
    out = run_project(tmp_path, files, seed)
    users = dict(out.rows("select user_main_id, events from out.user_feature_view"))
    assert users == {rid("u1", "user_id"): 2, rid("u2", "user_id"): 1}  # 'bot' is blocked by the sql filter
    assert out.columns("out.account_feature_view") == ["account_key", "users"]
    accounts = dict(out.rows("select account_key, users from out.account_feature_view"))
    assert accounts == {rid("acc1", "account_id"): 2, rid("acc2", "account_id"): 2}
    assert out.columns("out.account_default_id_stitcher")[0] == "account_key"


def test_inputs_are_read_up_to_the_end_time(tmp_path: Path) -> None:
    """pb reads every input, sql models' DeRefs included, up to --end_time (inclusive); NULL times stay."""
    files = {
        "pb_project.yaml": project("end_time"),
        "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
        "models/models.yaml": """
            models:
              - name: per_user
                model_type: sql_template
                model_spec:
                  materialization:
                    output_type: table
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
                  single_sql: select user_id, count(*) as n from {{ this.DeRef("inputs/orders") }} group by user_id
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: orders_seen
                      select: count(*)
                      from: inputs/orders
                  - entity_var:
                      name: from_model
                      select: max(n)
                      from: models/per_user
            """,
    }
    seed = [
        """create table raw.orders as select * from (values
            ('u1', 1, timestamp '2025-01-01 00:00:00'),
            ('u1', 2, timestamp '2025-03-01 00:00:00'),
            ('u1', 3, null),
            ('u2', 4, timestamp '2025-03-01 00:00:01'),
            ('u3', 5, timestamp '2025-02-01 00:00:00')
        ) t(user_id, amount, ts)""",
    ]
    out = run_project(tmp_path, files, seed, end_time="2025-03-01T00:00:00Z")
    rows = dict(out.rows("select user_main_id, orders_seen from out.user_feature_view"))
    assert rows == {rid("u1", "user_id"): 3, rid("u3", "user_id"): 1}  # u2 only ordered after the end time
    assert sorted(out.rows("select * from out.per_user")) == [("u1", 3), ("u3", 1)]


def test_input_var_references_are_checked(tmp_path: Path) -> None:
    import pytest

    from profiles_dagster import ProfilesError
    from profiles_dagster.plan.planner import build_plan
    from profiles_dagster.project.loader import load_project
    from profiles_dagster_tests.format.harness import write

    write(tmp_path, {
        "pb_project.yaml": project("input_var_refs"),
        "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
        "models/vars.yaml": """
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - input_var:
                      name: rank_in_user
                      select: row_number()
                      from: inputs/orders
                      window:
                        partition_by:
                          - user_main_id
                        order_by:
                          - ts
                  - entity_var:
                      name: first_amount
                      select: max(amount)
                      from: inputs/orders
                      where: "{{ orders.Var('rank_in_usr') }} = 1"
            """,
    })  # fmt: skip
    with pytest.raises(ProfilesError) as err:
        build_plan(load_project(tmp_path))
    assert "no input var 'rank_in_usr'" in err.value.message and "rank_in_user" in (err.value.hint or "")
    assert err.value.file.endswith("vars.yaml") and err.value.line == 18 and err.value.key.endswith("entity_var.where")
