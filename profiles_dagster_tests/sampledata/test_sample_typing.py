"""Sample data typed from the columns' use where that use is indirect: a column an id's `select` only tests,
a column a var aggregates through a sql model that copies it (under its name or another, through a join or
a union), and the keys such a model joins its inputs on."""

from __future__ import annotations

from pathlib import Path

import duckdb

from profiles_dagster.cli import main
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.project.loader import load_project
from profiles_dagster.sampledata.columns import Kind, input_columns
from profiles_dagster_tests.projects import dedent, write_project

END_TIME = "2026-06-01T00:00:00Z"

CASE_ID_INPUTS = dedent(
    """
    inputs:
      - name: accounts
        app_defaults:
          table: raw.accounts
          occurred_at_col: created_at
          ids:
            - select: case when status is not null then account_id when is_deleted = false then account_id end
              type: user_id
              entity: user
            - select: lower(anonymous_id)
              type: anonymous_id
              entity: user
    """
)


def _kinds(root: Path) -> dict[str, dict[str, Kind]]:
    project = load_project(root)
    found = input_columns(project, build_plan(project))
    return {name: {c.name.lower(): c.kind for c in cols.values()} for name, cols in found.items()}


def test_columns_an_id_select_only_tests_are_no_ids(tmp_path: Path) -> None:
    # the id is account_id; is_deleted is compared with a boolean and status only tested for NULL: as ids they
    # would hold id texts, and `is_deleted = false` would fail to cast them to BOOLEAN
    root = write_project(tmp_path, models={"inputs.yaml": CASE_ID_INPUTS})
    assert _kinds(root)["accounts"] == {
        "status": Kind.TEXT,
        "account_id": Kind.ID,
        "is_deleted": Kind.BOOLEAN,
        "anonymous_id": Kind.ID,  # inside lower(): still the id's value
        "created_at": Kind.TIMESTAMP,
    }
    assert main(["sample-data", "-p", str(root), "--rows", "60", "--end-time", END_TIME]) == 0
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0


MODEL_INPUTS = dedent(
    """
    inputs:
      - name: orders
        app_defaults:
          table: raw.orders
          occurred_at_col: completed_at
          ids:
            - select: customer_id
              type: user_id
              entity: user
      - name: order_items
        app_defaults:
          table: raw.order_items
      - name: products
        app_defaults:
          table: raw.products
      - name: refunds
        app_defaults:
          table: raw.refunds
    """
)

MODELS = dedent(
    """
    models:
      - name: enriched_items
        model_type: sql_template
        model_spec:
          materialization:
            output_type: ephemeral
          single_sql: |
            {% with o = this.DeRef("inputs/orders") oi = this.DeRef("inputs/order_items") %}
            {% with p = this.DeRef("inputs/products") %}
            select o.customer_id as user_id, o.completed_at, oi.item_count, p.category as product_category
            from {{ o }} o
            left join {{ oi }} oi on o.order_id = oi.order_id
            left join {{ p }} p on oi.product_id = p.product_id
            {% endwith %}
            {% endwith %}
          ids:
            - select: user_id
              type: user_id
              entity: user
      - name: money
        model_type: sql_template
        model_spec:
          materialization:
            output_type: ephemeral
          single_sql: |
            {% with o = this.DeRef("inputs/orders") r = this.DeRef("inputs/refunds") %}
            select customer_id as user_id, revenue as amount from {{ o }}
            union all
            select buyer_id, refunded from {{ r }}
            {% endwith %}
          ids:
            - select: user_id
              type: user_id
              entity: user
    var_groups:
      - name: g
        entity_key: user
        vars:
          - entity_var:
              name: total_items
              select: sum(item_count)
              from: models/enriched_items
          - entity_var:
              name: categories
              select: count(distinct product_category)
              from: models/enriched_items
          - entity_var:
              name: net
              select: sum(amount)
              from: models/money
    """
)


def test_columns_a_var_reads_through_a_sql_model_are_typed_by_that_use(tmp_path: Path) -> None:
    # sum(item_count) reads the model's item_count, which is order_items' (`oi.item_count`): a number there, or
    # sum() fails on text; `amount` is orders.revenue in the union's first branch and refunds.refunded in its
    # second; the model's id user_id is orders.customer_id (and refunds.buyer_id); the join keys need many values
    root = write_project(tmp_path, models={"inputs.yaml": MODEL_INPUTS, "profiles.yaml": MODELS})
    project = load_project(root)
    found = input_columns(project, build_plan(project))
    kinds = {name: {c.name.lower(): c.kind for c in cols.values()} for name, cols in found.items()}
    assert kinds["order_items"]["item_count"] is Kind.NUMBER
    assert kinds["orders"]["revenue"] is Kind.NUMBER
    assert kinds["refunds"]["refunded"] is Kind.NUMBER
    assert kinds["refunds"]["buyer_id"] is Kind.ID and found["refunds"]["buyer_id"].id_type == "user_id"
    assert kinds["products"]["category"] is Kind.TEXT
    assert found["orders"]["order_id"].joined and found["order_items"]["order_id"].joined
    assert found["products"]["product_id"].joined and not found["products"]["category"].joined

    assert main(["sample-data", "-p", str(root), "--rows", "200", "--end-time", END_TIME]) == 0
    con = duckdb.connect(str(root / "test.duckdb"), read_only=True)
    try:
        ((distinct_keys,),) = con.execute("select count(distinct order_id) from raw.order_items").fetchall()
    finally:
        con.close()
    assert distinct_keys > 50  # a handful of keys would multiply the joined rows at each join
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0
    con = duckdb.connect(str(root / "test.duckdb"), read_only=True)
    try:
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'profiles' and table_name = 'user_feature_view'"
            ).fetchall()
        )
    finally:
        con.close()
    assert types["total_items"] == "DOUBLE" and types["net"] == "DOUBLE"
