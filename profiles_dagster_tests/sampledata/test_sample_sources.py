"""Sample data for what a Snowflake project reads beyond plain columns: JSON it parses (FLATTEN, `:` paths),
a GROUP BY name that is a select alias (no column), and a table a sql model reads by name (no input)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from profiles_dagster.cli import main
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.project.loader import load_project
from profiles_dagster.sampledata.columns import NAMED_TABLE, Kind, input_columns
from profiles_dagster_tests.projects import dedent, write_project

END_TIME = "2026-06-01T00:00:00Z"

INPUTS = dedent(
    """
    inputs:
      - name: orders
        app_defaults:
          table: raw.orders
          occurred_at_col: ts
          ids:
            - select: user_id
              type: user_id
              entity: user
      - name: accounts
        app_defaults:
          table: raw.accounts
          ids:
            - select: user_id
              type: user_id
              entity: user
    """
)

MODELS = dedent(
    """
    models:
      - name: items
        model_type: sql_template
        model_spec:
          materialization:
            output_type: table
          ids:
            - select: user_id
              type: user_id
              entity: user
          single_sql: |
            {% with o = this.DeRef("inputs/orders") %}
            select o.user_id, f.value:sku::string as sku
            from (select * from {{ o }}) o, table(flatten(parse_json(o.products))) f
            {% endwith %}
      - name: sessions
        model_type: sql_template
        model_spec:
          materialization:
            output_type: table
          ids:
            - select: user_id
              type: user_id
              entity: user
          single_sql: |
            {% with o = this.DeRef("inputs/orders") %}
            select user_id, session_id, first_ts from (
              select user_id, date_part(epoch_second, ts) as session_id, min(ts) as first_ts
              from {{ o }} group by user_id, session_id
            ) s
            {% endwith %}
      - name: segmented
        model_type: sql_template
        model_spec:
          materialization:
            output_type: table
          ids:
            - select: user_id
              type: user_id
              entity: user
          single_sql: |
            with last as (select max(seen_at) as latest from raw.segments where seen_at < current_date())
            select s.user_id, s.segment from raw.segments s, last
            where s.segment = 'gold' and s.joined_at <= last.latest
    var_groups:
      - name: vars
        entity_key: user
        vars:
          - entity_var:
              name: n_items
              select: count(sku)
              from: models/items
          - entity_var:
              name: city
              select: max(details:city::string)
              from: inputs/orders
          - entity_var:
              name: gold
              select: count(*)
              from: models/segmented
              default_value: 0
          - entity_var:
              name: signed
              select: any_value(signed_at)
              from: inputs/accounts
          - entity_var:
              name: orders_since_signed
              select: count(*)
              from: inputs/orders
              where: ts >= {{ user.Var('signed') }}
              default_value: 0
    """
)


def _project(root: Path) -> Path:
    write_project(root, models={"inputs.yaml": INPUTS, "models.yaml": MODELS})
    (root / "profiles_dagster.yaml").write_text("dialect: snowflake\n", encoding="utf-8")
    return root


def test_json_columns_alias_groups_and_tables_read_by_name(tmp_path: Path) -> None:
    project = load_project(_project(tmp_path))
    found = input_columns(project, build_plan(project))
    orders = found["orders"]
    assert orders["products"].kind is Kind.JSON and not orders["products"].json_object  # FLATTEN's input
    assert orders["details"].kind is Kind.JSON and orders["details"].json_object  # a path reads it
    assert {"sku", "city"} <= orders["details"].json_keys
    # the GROUP BY names the select's alias, and the outer select reads it from the subquery (not from the CTE
    # the input's rows are in, which is in reach of every scope of the query but not selected from there)
    assert "session_id" not in orders
    # the var `signed` hands on signed_at's values, and its use against ts (a timestamp) types it
    assert found["accounts"]["signed_at"].kind is Kind.TIMESTAMP
    segments = found[NAMED_TABLE + "raw.segments"]
    assert segments["user_id"].kind is Kind.ID and segments["segment"].strings == {"gold"}
    # joined_at is compared with MAX(seen_at), a timestamp (compared with CURRENT_DATE): a timestamp too
    assert segments["seen_at"].kind is Kind.TIMESTAMP and segments["joined_at"].kind is Kind.TIMESTAMP


def test_such_a_project_runs_on_its_sample_data(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert main(["sample-data", "-p", str(root), "--rows", "120", "--end-time", END_TIME]) == 0
    assert main(["validate", "-p", str(root)]) == 0
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0
    con = duckdb.connect(str(root / "test.duckdb"), read_only=True)
    try:
        products = [json.loads(p) for (p,) in con.execute("select products from raw.orders").fetchall()]
        assert all(isinstance(p, list) and 1 <= len(p) <= 3 and all("sku" in i for i in p) for p in products)
        # every order has 1-3 products with a sku, so every profile with an order has items
        rows = con.execute("select n_items, city, gold from profiles.user_feature_view").fetchall()
        assert rows and all(n >= 1 for n, _, _ in rows)
        assert any(c is not None and str(c).isdigit() for _, c, _ in rows)  # JSON fields hold numbers
        assert any(g > 0 for _, _, g in rows)  # 85% of the sample segments are the one the model looks for
    finally:
        con.close()
