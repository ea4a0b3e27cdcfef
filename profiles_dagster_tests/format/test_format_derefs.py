"""What a sql_template reads through `this.DeRef(...)`, `BuildContract` and `<sql model>.Var(...)`:
our own projects, values worked out by hand."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.plan.steps import StepKey
from profiles_dagster.project.loader import load_project
from profiles_dagster_tests.format.harness import run_project, write
from profiles_dagster_tests.format.test_format_core import ORDERS_INPUT, project, rid
from profiles_dagster_tests.format.test_format_models import ORDERS

INPUT_VARS = """
    var_groups:
      - name: vars
        entity_key: user
        vars:
          - input_var:
              name: doubled
              select: amount * 2
              from: inputs/orders
          - entity_var:
              name: total
              select: sum(amount)
              from: inputs/orders
    """


def _model(name: str, sql: str, output_type: str = "table") -> str:
    body = "\n".join(f"            {line}" for line in sql.strip().splitlines())
    return f"""
      - name: {name}
        model_type: sql_template
        model_spec:
          materialization:
            output_type: {output_type}
          single_sql: |
{body}
"""


def _files(models: str, extra: str = "") -> dict[str, str]:
    return {
        "pb_project.yaml": project("derefs"),
        "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
        "models/vars.yaml": INPUT_VARS + extra,
        "models/sql.yaml": "models:" + models,
    }


def test_input_var_table_and_its_main_id_column(tmp_path: Path) -> None:
    """`inputs/orders/var_table` is the input's rows with the main id and input vars; its
    `/user_main_id` renders as the column's name. u1 ordered 10 + 20, u2 5, u3 200."""
    sql = """
        {% with mid = this.DeRef("inputs/orders/var_table/user_main_id") rows = this.DeRef("inputs/orders/var_table") %}
        select {{ mid }} as main_id, sum(doubled) as doubled_total, count(*) as n from {{ rows }} group by 1
        {% endwith %}
        """
    out = run_project(tmp_path, _files(_model("per_main", sql)), [ORDERS])
    rows = {r[0]: r[1:] for r in out.rows("select * from out.per_main")}
    assert rows == {
        rid("u1", "user_id"): (60, 2),
        rid("u2", "user_id"): (10, 1),
        rid("u3", "user_id"): (400, 1),
    }
    plan = build_plan(load_project(tmp_path))
    assert StepKey.input_vars_mapped("user", "orders") in plan[StepKey.sql_model("per_main")].deps


FEATURES = """
      - name: user_totals
        model_type: feature_table_model
        model_spec:
          entity_key: user
          features:
            - total
"""

CONTRACT = """{% set contract = BuildContract('{"is_event_stream": false, "with_entity_ids": ["user"],
    "with_columns": [{"name": "total"}]}') %}"""


def test_feature_table_read_with_a_contract(tmp_path: Path) -> None:
    """`models/<feature table>` is its view (main id and features), read once it is built; totals 30, 5, 200."""
    sql = (
        CONTRACT.replace("\n", " ")
        + """
        {% with totals = this.DeRef("models/user_totals", contract=contract) %}
        select user_main_id, total from {{ totals }} where total > 15
        {% endwith %}
        """
    )
    out = run_project(tmp_path, _files(FEATURES + _model("big", sql)), [ORDERS])
    assert sorted(out.rows("select * from out.big")) == sorted(
        [(rid("u1", "user_id"), 30), (rid("u3", "user_id"), 200)]
    )


def test_a_contract_the_feature_table_does_not_meet_is_refused(tmp_path: Path) -> None:
    contract = CONTRACT.replace('"total"', '"lifetime_value"').replace("\n", " ")
    sql = (
        contract
        + """
        select * from {{ this.DeRef("models/user_totals", contract=contract) }}
        """
    )
    write(tmp_path, _files(FEATURES + _model("big", sql)))
    with pytest.raises(ProfilesError) as info:
        build_plan(load_project(tmp_path))
    assert "contract is not met" in info.value.message and "lifetime_value" in info.value.message
    assert str(info.value.file).endswith("sql.yaml")


def test_a_contract_must_come_from_build_contract(tmp_path: Path) -> None:
    sql = 'select * from {{ this.DeRef("models/user_totals", contract="total") }}'
    write(tmp_path, _files(FEATURES + _model("big", sql)))
    with pytest.raises(ProfilesError, match="BuildContract"):
        build_plan(load_project(tmp_path))


SESSIONS = """create table raw.sessions as select * from (values
    ('s1', 'u1', 30, timestamp '2025-01-01 00:00:00'),
    ('s2', 'u1', 50, timestamp '2025-01-02 00:00:00'),
    ('s3', 'u2', 10, timestamp '2025-01-03 00:00:00')
) t(session_id, user_id, seconds, ts)"""


def test_user_vars_read_a_model_over_another_entitys_feature_table(tmp_path: Path) -> None:
    """user is planned after session, whose feature table its model reads: u1 80 s, u2 10 s."""
    files = _files(
        """
      - name: session_features
        model_type: feature_table_model
        model_spec:
          entity_key: session
          features:
            - seconds
            - session_user
"""
        + _model(
            "session_rows",
            """
            {% set contract = BuildContract('{"with_entity_ids": ["session"], "with_columns": [{"name": "seconds"}]}') %}
            select session_user as user_id, seconds from {{ this.DeRef("models/session_features", contract=contract) }}
            """,
            "ephemeral",
        ).replace(
            "          single_sql",
            "          ids:\n            - select: user_id\n              type: user_id\n              entity: user\n          single_sql",
        ),
        """
          - entity_var:
              name: session_seconds
              select: sum(seconds)
              from: models/session_rows
      - name: session_vars
        entity_key: session
        vars:
          - entity_var:
              name: seconds
              select: max(seconds)
              from: inputs/sessions
          - entity_var:
              name: session_user
              select: max(user_id)
              from: inputs/sessions
    """,
    )
    files["pb_project.yaml"] = (
        project("derefs", "  - name: session\n    id_types:\n      - session_id\n") + "  - name: session_id\n"
    )
    files["models/inputs.yaml"] += """
  - name: sessions
    app_defaults:
      table: raw.sessions
      occurred_at_col: ts
      ids:
        - select: session_id
          type: session_id
          entity: session
"""
    out = run_project(tmp_path, files, [ORDERS, SESSIONS])
    view = out.by_key("out.user_feature_view")
    assert view[rid("u1", "user_id")]["session_seconds"] == 80
    assert view[rid("u2", "user_id")]["session_seconds"] == 10
    assert view[rid("u3", "user_id")]["session_seconds"] is None


def test_sql_model_input_vars_in_templates(tmp_path: Path) -> None:
    """`<sql model>.Var("x")` and `<sql model>.x` name an input var of the model, as for inputs:
    order_rows keeps orders of 10 and more (u1 10 + 20, u3 200); tripled is amount * 3."""
    model = _model(
        "order_rows",
        'select user_id, amount from {{ this.DeRef("inputs/orders") }} where amount >= 10',
        "ephemeral",
    ).replace(
        "          single_sql",
        "          ids:\n            - select: user_id\n              type: user_id\n              entity: user\n          single_sql",
    )
    extra = """
          - input_var:
              name: tripled
              select: amount * 3
              from: models/order_rows
          - entity_var:
              name: tripled_total
              select: sum({{ order_rows.Var("tripled") }})
              from: models/order_rows
          - entity_var:
              name: big_orders
              select: count(*)
              from: models/order_rows
              where: "{{ order_rows.tripled }} > 60"
              default_value: 0
    """
    out = run_project(tmp_path, _files(model, extra), [ORDERS])
    view = out.by_key("out.user_feature_view")
    u1, u2, u3 = (view[rid(u, "user_id")] for u in ("u1", "u2", "u3"))
    assert (u1["tripled_total"], u2["tripled_total"], u3["tripled_total"]) == (90, None, 600)
    assert (u1["big_orders"], u2["big_orders"], u3["big_orders"]) == (0, 0, 1)


def test_entity_var_table_all_cohort_and_a_cohort(tmp_path: Path) -> None:
    """`user/all/var_table` is the entity var table (totals 30, 5, 200), `entity/user/all` the ALL cohort
    (3 members), `models/big` a cohort (total of 15 and more: u1, u3) and `models/big/var_table` its vars."""
    models = (
        """
      - name: big
        model_type: entity_cohort
        model_spec:
          extends: user/all
          filter_pipeline:
            - type: include
              value: "{{ user.Var('total') }} >= 15"
"""
        + _model("from_vars", 'select user_main_id, total from {{ this.DeRef("user/all/var_table") }} where total > 15')
        + _model("members", 'select count(*) as n from {{ this.DeRef("entity/user/all") }}')
        + _model("big_members", 'select count(*) as n from {{ this.DeRef("models/big") }}')
        + _model("big_vars", 'select count(*) as n from {{ this.DeRef("models/big/var_table") }}')
    )
    out = run_project(tmp_path, _files(models), [ORDERS])
    assert sorted(out.rows("select * from out.from_vars")) == sorted(
        [(rid("u1", "user_id"), 30), (rid("u3", "user_id"), 200)]
    )
    assert out.rows("select * from out.members") == [(3,)]
    assert out.rows("select * from out.big_members") == [(2,)]
    assert out.rows("select * from out.big_vars") == [(2,)]


CHECKPOINTED = """
{%- set last_this = this.DeRef(pre_existing=true, dependency="optional", checkpoint_name="baseline") -%}
{%- set delta = this.DeRef("inputs/orders/incr_delta_tbl", dependency="coercive", baseline_name="baseline", prereqs=[last_this]) -%}
{%- set full = this.DeRef("inputs/orders", prereqs=[delta.Except()]) -%}
{% if last_this.IsEnabled() and delta.IsEnabled() %}
select user_id, amount from {{ last_this }} union all select user_id, amount from {{ delta }}
{% else %}
select user_id, amount from {{ full }} where amount >= 10
{% endif %}
"""


def test_checkpoint_derefs_take_pbs_branch_for_a_run_without_a_checkpoint(tmp_path: Path) -> None:
    """pb's incremental sql_template pattern: the material of an earlier run (`pre_existing`) and the rows
    added since a baseline are enabled only when pb has a checkpoint; with none (pb's first run, and every
    run here) the template's full-refresh branch runs. Orders of 10 and 20 (u1) and 200 (u3) pass >= 10."""
    out = run_project(tmp_path, _files(_model("big_orders", CHECKPOINTED)), [ORDERS])
    assert sorted(out.rows("select * from out.big_orders")) == [("u1", 10), ("u1", 20), ("u3", 200)]


@pytest.mark.parametrize(
    ("call", "said"),
    [
        ('this.DeRef("models/per_main", pre_existing=true, checkpoint_name="past")', "earlier run"),
        ('this.DeRef(pre_existing=true, dependency="optional", checkpoint_name="baseline")', "not enabled in this run"),
        ('this.DeRef("inputs/orders", time_grain_spec="-1Day")', "time_grain_spec is not supported yet"),
        ('this.DeRef("inputs/orders", dependency="optional")', "dependency='optional'"),
        ('this.DeRef("inputs/nope/var_table")', "no input named 'nope'"),
        ('this.DeRef("models/nope")', "no sql_template, id stitcher, cohort or feature table named 'nope'"),
    ],
)
def test_derefs_not_supported_are_located_errors(tmp_path: Path, call: str, said: str) -> None:
    write(tmp_path, _files(_model("per_main", f"select * from {{{{ {call} }}}}")))
    with pytest.raises(ProfilesError) as info:
        build_plan(load_project(tmp_path))
    assert said in info.value.message
    assert str(info.value.file).endswith("sql.yaml") and info.value.line is not None


def test_templated_id_select(tmp_path: Path) -> None:
    """pb renders an id's select as a template: u1, u2 and u3 are stitched from the cast ids."""
    files = _files("")
    del files["models/sql.yaml"]
    files["models/inputs.yaml"] = files["models/inputs.yaml"].replace(
        "- select: user_id", "- select: \"cast(user_id as {{ warehouse.DataType('text') }})\""
    )
    out = run_project(tmp_path, files, [ORDERS])
    view = out.by_key("out.user_feature_view")
    assert {k: v["total"] for k, v in view.items()} == {
        rid("u1", "user_id"): 30,
        rid("u2", "user_id"): 5,
        rid("u3", "user_id"): 200,
    }


def test_sample_data_reads_a_templated_id_select(tmp_path: Path) -> None:
    """sample-data finds the id column inside the rendered select: user_id is written as an id."""
    files = _files("")
    del files["models/sql.yaml"]
    files["models/inputs.yaml"] = files["models/inputs.yaml"].replace(
        "- select: user_id", "- select: \"cast(user_id as {{ warehouse.DataType('text') }})\""
    )
    write(tmp_path, files)
    assert main(["sample-data", "-p", str(tmp_path)]) == 0
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        columns = {d[0].lower() for d in con.execute("select * from raw.orders limit 0").description}
    finally:
        con.close()
    assert {"user_id", "amount", "ts"} <= columns
