"""pongo2 forms pb projects use, in a project of our own run on DuckDB; expected values by hand.

`with` pairs separated by spaces, `!`, `||`, `&&`, `|filter:arg` and a macro testing
`!(end_time|isnil)`: the forms Jinja2 alone reads otherwise or not at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles_dagster.cli import main
from profiles_dagster_tests.format.harness import run_project, write
from profiles_dagster_tests.format.test_format_core import ORDERS_INPUT, project, rid

ORDERS = """create table raw.orders as select * from (values
    ('u1', 10, timestamp '2025-01-01 00:00:00'),
    ('u1', 20, timestamp '2025-01-02 00:00:00'),
    ('u2', 5, timestamp '2025-01-03 00:00:00')
) t(user_id, amount, ts)"""

MACROS = """
    macros:
      - name: days_to_end
        inputs:
          - ts
        value: >-
          {% if !(end_time|isnil) %}date_diff('day', {{ ts }}, {{ end_time_sql }}){% else %}NULL{% endif %}
    """

FILES = {
    "pb_project.yaml": project("pongo"),
    "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
    "models/macros.yaml": MACROS,
    "models/sql.yaml": """
        models:
          - name: order_pairs
            model_type: sql_template
            model_spec:
              materialization:
                output_type: table
              ids:
                - select: user_id
                  type: user_id
                  entity: user
              single_sql: |
                {% with A = this.DeRef("inputs/orders") B = this.DeRef("inputs/orders") %}
                select a.user_id, count(*) as pairs from {{ A }} a join {{ B }} b on a.user_id = b.user_id group by 1
                {% endwith %}
        var_groups:
          - name: vars
            entity_key: user
            vars:
              - entity_var:
                  name: pairs
                  select: max(pairs)
                  from: models/order_pairs
              - entity_var:
                  name: engine_sum
                  select: >-
                    {% if warehouse.DatabaseType() == "snowflake" || warehouse.DatabaseType() == "duckdb" %}sum(amount){% else %}0{% endif %}
                  from: inputs/orders
              - entity_var:
                  name: both
                  select: >-
                    {% if !(warehouse.DatabaseType() == "bigquery") && warehouse.DatabaseType() == "duckdb" %}1{% else %}0{% endif %}
                  from: inputs/orders
              - entity_var:
                  name: tag
                  select: >-
                    max('{{ "A-B"|lower|cut:"-" }}{{ 7|stringformat:"%03d" }}')
                  from: inputs/orders
              - entity_var:
                  name: age_days
                  select: "min({{ days_to_end('ts') }})"
                  from: inputs/orders
        """,
}


def test_pongo2_forms_in_a_project(tmp_path: Path) -> None:
    out = run_project(tmp_path, FILES, [ORDERS], end_time="2025-01-11T00:00:00Z")
    view = out.by_key("out.user_feature_view")
    u1, u2 = view[rid("u1", "user_id")], view[rid("u2", "user_id")]
    # u1 has 2 orders: 2 x 2 = 4 self-join pairs; u2 has 1
    assert (u1["pairs"], u2["pairs"]) == (4, 1)
    # duckdb: the || branch; the && branch needs "not bigquery" and "duckdb", both true
    assert (u1["engine_sum"], u2["engine_sum"], u1["both"]) == (30, 5, 1)
    # "A-B" lowered is "a-b", cut of "-" gives "ab"; 7 as %03d is 007
    assert u1["tag"] == "ab007"
    # end_time is set: the fewest days from an order to 2025-01-11 (u1: Jan 2 -> 9, u2: Jan 3 -> 8)
    assert (u1["age_days"], u2["age_days"]) == (9, 8)


def test_a_template_error_in_a_macro_names_the_macro(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = dict(FILES)
    files["models/macros.yaml"] = """
        macros:
          - name: days_to_end
            inputs:
              - ts
            value: |
              date_diff('day',
                {{ ts || }}, {{ end_time_sql }})
        """
    write(tmp_path, files)
    assert main(["validate", "-p", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    # line 5 holds `value: |`, so the template's line 2 (`{{ ts || }}`) is the file's line 7
    assert (
        "macros.yaml:7: macros[0].value: in macro 'days_to_end': template syntax error (line 2 of the template)" in err
    )
    assert "called from" in err and "vars.yaml" not in err.split("called from")[0]
