"""pb's run options `--seq_no N [--force]` and `--model_refs`, and the keys pb accepts that change what a
run builds: entity `feature_views.name`, model `enable_status`, id_type `extends`, `include_untimed`.

Each project here is our own, run on DuckDB; expected values are worked out by hand from the seeded
rows. What pb 0.26.4 does was observed on Postgres (see the report of issue 5): `--seq_no N` reuses
run N's time window and its complete materials and builds what is missing; `--force` rebuilds them;
an unknown N is an error; the stable views stay on the newest complete run.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster_tests.format.harness import Outputs, run_project, write
from profiles_dagster_tests.format.test_format_core import ORDERS_INPUT, project, rid

ORDERS = """create table raw.orders as select * from (values
    ('u1', 10, timestamp '2025-01-01 00:00:00'),
    ('u1', 20, timestamp '2025-01-02 00:00:00'),
    ('u2', 5, timestamp '2025-01-03 00:00:00'),
    ('u3', 7, timestamp '2025-03-01 00:00:00')
) t(user_id, amount, ts)"""

# `error()` raises while raw.switch has a row: a step that fails on demand, for a run to continue
VARS = """
var_groups:
  - name: vars
    entity_key: user
    vars:
      - entity_var:
          name: total
          select: sum(amount) + (select count(*) from raw.switch where error('switched on') is null)
          from: inputs/orders
      - entity_var:
          name: orders
          select: count(*)
          from: inputs/orders
"""

SQL_MODEL = """
models:
  - name: order_totals
    model_type: sql_template
    model_spec:
      materialization:
        output_type: table
      single_sql: |
        {% with orders = this.DeRef("inputs/orders") %}
        select user_id, sum(amount) as total from {{ orders }} group by user_id
        {% endwith %}
"""

END_1 = "2025-02-01T00:00:00Z"  # u3's order (March) is after it
END_2 = "2025-06-01T00:00:00Z"


def files(name: str) -> dict[str, str]:
    return {
        "pb_project.yaml": project(name),
        "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
        "models/vars.yaml": VARS,
        "models/sql.yaml": SQL_MODEL,
    }


def seed(root: Path, *statements: str) -> None:
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    try:
        con.execute("create schema if not exists raw")
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def cli(root: Path, *args: str) -> int:
    return main([args[0], "-p", str(root), *args[1:]])


def totals(out: Outputs, relation: str = "out.user_feature_view") -> dict[str, tuple]:
    rows = out.rows(f"select user_main_id, total, orders from {relation}")
    return {m: (t, n) for m, t, n in rows}


def materials(out: Outputs, seq_no: int) -> dict[str, tuple[str, str]]:
    rows = out.rows(f"select step, table_name, status from out._profiles_materials where seq_no = {seq_no}")
    return {step: (name, status) for step, name, status in rows}


def test_seq_no_continues_a_failed_run_keeping_what_it_completed(tmp_path: Path, capsys) -> None:
    write(tmp_path, files("continue"))
    seed(tmp_path, ORDERS, "create table raw.switch as select 1 as x")
    assert cli(tmp_path, "run", "--end_time", END_2) == 1  # fails at user/entity_vars
    out = Outputs(tmp_path / "warehouse.duckdb")
    first = materials(out, 1)
    assert first["user/id_stitcher"][1] == "complete" and first["user/entity_vars"][1] == "failed"
    assert "user_feature_view" not in {r[0] for r in out.rows("select table_name from information_schema.tables")}

    # fixed; and a late row arrives that the kept input var table of run 1 does not hold
    seed(
        tmp_path,
        "delete from raw.switch",
        "insert into raw.orders values ('u1', 1000, timestamp '2025-01-05 00:00:00')",
    )
    capsys.readouterr()
    assert cli(tmp_path, "run", "--seq_no", "1") == 0
    printed = capsys.readouterr().out
    assert "kept" in printed and "run seq_no 1:" in printed
    assert out.rows("select seq_no, status from out._profiles_runs") == [(1, "complete")]
    after = materials(out, 1)
    # what run 1 completed is the same table, not rebuilt; the rest is built under run 1's names
    assert after["user/id_stitcher"] == first["user/id_stitcher"]
    assert after["user/input_vars_mapped/orders"] == first["user/input_vars_mapped/orders"]
    assert after["user/entity_vars"][1] == "complete" and after["user/entity_vars"][0].endswith("_1")
    u1, u2, u3 = rid("u1", "user_id"), rid("u2", "user_id"), rid("u3", "user_id")
    # the kept input var table predates the late 1000: u1 = 10 + 20
    assert totals(out) == {u1: (Decimal(30), 2), u2: (Decimal(5), 1), u3: (Decimal(7), 1)}

    # --force rebuilds run 1's materials from the inputs as they are now (run 1's end time still)
    assert cli(tmp_path, "run", "--seq_no", "1", "--force") == 0
    assert totals(out)[u1] == (Decimal(1030), 3)
    assert out.rows("select max(seq_no) from out._profiles_runs") == [(1,)]


def test_seq_no_of_an_older_run_uses_its_window_and_leaves_the_views_on_the_newest(tmp_path: Path, capsys) -> None:
    write(tmp_path, files("older"))
    seed(tmp_path, ORDERS, "create table raw.switch (x int)")
    assert cli(tmp_path, "run", "--end_time", END_1) == 0
    assert cli(tmp_path, "run", "--end_time", END_2) == 0
    out = Outputs(tmp_path / "warehouse.duckdb")
    u3 = rid("u3", "user_id")
    assert u3 in totals(out)  # run 2 reads u3's March order

    capsys.readouterr()
    assert cli(tmp_path, "run", "--seq_no", "1", "--force", "--end_time", END_2) == 0
    printed = capsys.readouterr().out
    assert "reuses that run's end and begin time" in printed
    assert "stay on the newer complete run 2" in printed
    run1 = materials(out, 1)
    view_table = run1["user/views/user_feature_view"][0]
    assert view_table.endswith("_1")
    # rebuilt with run 1's end time (Feb): no u3; the stable view still shows run 2
    assert u3 not in totals(out, f'out."{view_table}"')
    assert u3 in totals(out)
    definition = out.rows("select sql from duckdb_views() where view_name = 'user_feature_view'")[0][0]
    assert "_2" in definition.split("FROM")[-1]


def test_seq_no_that_does_not_exist_is_an_error(tmp_path: Path, capsys) -> None:
    write(tmp_path, files("missing"))
    seed(tmp_path, ORDERS, "create table raw.switch (x int)")
    assert cli(tmp_path, "run", "--end_time", END_2) == 0
    capsys.readouterr()
    assert cli(tmp_path, "run", "--seq_no", "7") == 1
    err = capsys.readouterr().err
    assert "run seq_no 7 does not exist for project 'missing'" in err and "1 (complete)" in err
    assert cli(tmp_path, "run", "--seq_no", "seven") == 1
    assert "--seq_no must be a run's number" in capsys.readouterr().err
    assert cli(tmp_path, "run", "--force") == 1
    assert "--force rebuilds the materials of an earlier run" in capsys.readouterr().err
    # `latest` continues run 1: everything kept
    assert cli(tmp_path, "run", "--seq_no", "latest") == 0
    assert "0 step(s) built" in capsys.readouterr().out


def test_model_refs_run_only_the_named_models_and_what_they_read(tmp_path: Path, capsys) -> None:
    write(tmp_path, files("refs"))
    seed(tmp_path, ORDERS, "create table raw.switch (x int)")
    assert cli(tmp_path, "run", "--end_time", END_2, "-m", "models/order_totals") == 0
    out = Outputs(tmp_path / "warehouse.duckdb")
    assert set(materials(out, 1)) == {"models/order_totals"}
    assert sorted(out.rows("select * from out.order_totals")) == [("u1", 30), ("u2", 5), ("u3", 7)]

    # a view's ref brings the whole chain it reads (stitcher, vars, features), and nothing else
    assert cli(tmp_path, "run", "--end_time", END_2, "--model_refs", "user/all/user_feature_view") == 0
    steps = set(materials(out, 2))
    assert "user/views/user_feature_view" in steps and "user/id_stitcher" in steps
    assert "models/order_totals" not in steps
    u1 = rid("u1", "user_id")
    assert totals(out)[u1] == (Decimal(30), 2)

    capsys.readouterr()
    assert cli(tmp_path, "run", "-m", "models/order_total") == 1
    err = capsys.readouterr().err
    assert "no model 'models/order_total'" in err and "models/order_totals" in err


def test_compile_seq_no_writes_that_runs_sql_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    write(tmp_path, files("compile"))
    seed(tmp_path, ORDERS, "create table raw.switch (x int)")
    assert cli(tmp_path, "run", "--end_time", END_1) == 0
    out = Outputs(tmp_path / "warehouse.duckdb")
    before = out.rows("select * from out._profiles_runs")
    assert cli(tmp_path, "compile", "--seq_no", "1") == 0
    after = out.rows("select * from out._profiles_runs")
    assert [r[:6] for r in after] == [r[:6] for r in before]  # seq_no .. end_time: as they were
    assert out.rows("select seq_no, status, message from out._profiles_runs") == [(1, "complete", None)]
    folder = tmp_path / "output" / "dev" / "seq_no_1"
    sql = "\n".join(p.read_text() for p in sorted(folder.glob("*.sql")))
    assert "2025-02-01 00:00:00" in sql  # run 1's end time, not now


# ---- keys that change what a run builds ----------------------------------------------------------


def test_entity_feature_views_name_names_the_default_view(tmp_path: Path) -> None:
    extra = """    feature_views:
      name: customer_360
      using_ids:
        - id: email
        - id: user_id
          name: by_user"""
    inputs = """
inputs:
  - name: identifies
    app_defaults:
      table: raw.identifies
      occurred_at_col: ts
      ids:
        - {select: user_id, type: user_id, entity: user}
        - {select: email, type: email, entity: user}
"""
    vars_ = """
var_groups:
  - name: vars
    entity_key: user
    vars:
      - entity_var: {name: seen, select: count(*), from: inputs/identifies}
"""
    out = run_project(
        tmp_path,
        {"pb_project.yaml": project("fvname", extra), "models/inputs.yaml": inputs, "models/vars.yaml": vars_},
        [
            """create table raw.identifies as select * from (values
                ('u1', 'a@x.com', timestamp '2025-01-01 00:00:00'),
                ('u1', 'b@x.com', timestamp '2025-01-02 00:00:00'),
                ('u2', 'c@x.com', timestamp '2025-01-03 00:00:00')
            ) t(user_id, email, ts)"""
        ],
    )
    views = {r[0] for r in out.rows("select view_name from duckdb_views() where schema_name = 'out'")}
    # pb: the default view takes the name; an unnamed view by id is `<that name>_with_<id>`
    assert {"customer_360", "customer_360_with_email", "by_user"} <= views
    assert "user_feature_view" not in views
    # each cluster's earliest ids tie on first_seen_at: the smaller hash is the main id (pb.md)
    u1 = min(rid("u1", "user_id"), rid("a@x.com", "email"))
    u2 = min(rid("u2", "user_id"), rid("c@x.com", "email"))
    assert sorted(out.rows("select user_main_id, seen from out.customer_360")) == sorted([(u1, 2), (u2, 1)])
    assert sorted(out.rows("select email, seen from out.customer_360_with_email")) == [
        ("a@x.com", 2),
        ("b@x.com", 2),
        ("c@x.com", 1),
    ]
    assert sorted(out.rows("select user_id, seen from out.by_user")) == [("u1", 2), ("u2", 1)]


ENABLE = """
models:
  - name: switched_off
    model_type: sql_template
    model_spec:
      materialization: {output_type: table, enable_status: disabled}
      single_sql: select user_id from {{ this.DeRef("inputs/orders") }}
  - name: unread
    model_type: sql_template
    model_spec:
      materialization: {output_type: table, enable_status: only_if_necessary}
      single_sql: select user_id from {{ this.DeRef("inputs/orders") }}
  - name: needed
    model_type: sql_template
    model_spec:
      materialization: {output_type: table, enable_status: only_if_necessary}
      ids:
        - {select: user_id, type: user_id, entity: user}
      single_sql: select user_id, amount * 2 as doubled from {{ this.DeRef("inputs/orders") }}
  - name: wanted
    model_type: sql_template
    model_spec:
      materialization: {output_type: table, enable_status: good_to_have}
      single_sql: select count(*) as n from {{ this.DeRef("inputs/orders") }}
var_groups:
  - name: vars
    entity_key: user
    vars:
      - entity_var: {name: doubled, select: sum(doubled), from: models/needed}
"""


def test_enable_status_disabled_and_only_if_necessary_are_left_out_as_pb_does(tmp_path: Path, capsys) -> None:
    out = run_project(
        tmp_path,
        {"pb_project.yaml": project("enable"), "models/inputs.yaml": "inputs:" + ORDERS_INPUT, "models/m.yaml": ENABLE},
        [ORDERS],
    )
    printed = capsys.readouterr().out
    assert "model 'switched_off'" in printed and "enable_status: disabled: not built" in printed
    assert "model 'unread'" in printed and "only_if_necessary and no built model reads it" in printed
    steps = {r[0] for r in out.rows("select step from out._profiles_materials")}
    assert {"models/needed", "models/wanted"} <= steps
    assert not steps & {"models/switched_off", "models/unread"}
    assert out.rows("select n from out.wanted") == [(4,)]
    doubled = dict(out.rows("select user_main_id, doubled from out.user_feature_view"))
    assert doubled == {rid("u1", "user_id"): 60, rid("u2", "user_id"): 10, rid("u3", "user_id"): 14}

    assert main(["validate", "-p", str(tmp_path)]) == 0
    assert "enable_status: disabled" in capsys.readouterr().out


def test_a_var_reading_a_disabled_model_is_an_error(tmp_path: Path, capsys) -> None:
    write(
        tmp_path,
        {
            "pb_project.yaml": project("enable_err"),
            "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
            "models/m.yaml": ENABLE.replace(
                "enable_status: only_if_necessary}\n      ids:", "enable_status: disabled}\n      ids:"
            ),
        },
    )
    assert main(["validate", "-p", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "m.yaml:" in err and "model 'needed' is disabled, but user/entity_vars reads it" in err
    assert "enable_status" in err


def test_enable_status_takes_pbs_values_only(tmp_path: Path, capsys) -> None:
    write(
        tmp_path,
        {
            "pb_project.yaml": project("enable_bad"),
            "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
            "models/m.yaml": ENABLE.replace("enable_status: good_to_have", "enable_status: sometimes"),
        },
    )
    assert main(["validate", "-p", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "m.yaml:" in err and "enable_status" in err and "good_to_have" in err


def test_id_type_extends_keeps_only_its_own_filters_and_says_so(tmp_path: Path, capsys) -> None:
    pb_project = """
        name: extends
        schema_version: 99
        connection: test
        model_folders: [models]
        entities:
          - name: user
            id_types: [user_id, anonymous_id]
        id_types:
          - name: user_id
            filters:
              - {type: exclude, value: guest}
          - name: anonymous_id
            extends: user_id
            filters:
              - {type: exclude, value: unknown}
        """
    inputs = """
        inputs:
          - name: tracks
            app_defaults:
              table: raw.tracks
              occurred_at_col: ts
              ids:
                - {select: user_id, type: user_id, entity: user}
                - {select: anonymous_id, type: anonymous_id, entity: user}
        """
    out = run_project(
        tmp_path,
        {"pb_project.yaml": pb_project, "models/inputs.yaml": inputs},
        [
            """create table raw.tracks as select * from (values
                ('u1', 'guest', timestamp '2025-01-01 00:00:00'),
                ('guest', 'unknown', timestamp '2025-01-02 00:00:00'),
                (null, 'a2', null)
            ) t(user_id, anonymous_id, ts)"""
        ],
    )
    assert "id_type 'anonymous_id' extends 'user_id': only its own filters apply" in capsys.readouterr().out
    nodes = sorted(out.rows("select other_id_type, other_id from out.user_default_id_stitcher"))
    # observed on pb 0.26.4: the extended type's `guest` filter is not inherited; `unknown` is dropped;
    # a row without occurred_at (a2) is read, as pb always reads untimed rows
    assert nodes == [("anonymous_id", "a2"), ("anonymous_id", "guest"), ("user_id", "u1")]


def test_include_untimed_is_refused_with_where_and_why(tmp_path: Path, capsys) -> None:
    write(
        tmp_path,
        {
            "pb_project.yaml": project("untimed") + "include_untimed: true\n",
            "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
        },
    )
    assert main(["validate", "-p", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "pb_project.yaml:" in err and "include_untimed" in err and "pb's migration removed it" in err


@pytest.mark.parametrize("key", ["max_iterations: 30", "validity_time: 24h"])
def test_stitcher_keys_not_acted_on_are_named(tmp_path: Path, capsys, key: str) -> None:
    write(
        tmp_path,
        {
            "pb_project.yaml": project("notes", "    id_stitcher: models/user_id_stitcher"),
            "models/inputs.yaml": "inputs:" + ORDERS_INPUT,
            "models/stitcher.yaml": f"""
                models:
                  - name: user_id_stitcher
                    model_type: id_stitcher
                    model_spec:
                      entity_key: user
                      {key}
                      edge_sources:
                        - from: inputs/orders
                """,
        },
    )
    assert main(["validate", "-p", str(tmp_path)]) == 0
    assert f"{key.split(':')[0]} is accepted" in capsys.readouterr().out


CONTRACT_INPUT = """
inputs:
  - name: orders
    contract:
      is_optional: false
      is_event_stream: true
      with_entity_ids: [{entity}]
      with_columns:
        - name: user_id
        - name: {column}
    app_defaults:
      table: raw.orders
      occurred_at_col: ts
      ids:
        - select: user_id
          type: user_id
          entity: user
"""


def test_contract_columns_are_checked_when_a_run_starts(tmp_path: Path, capsys) -> None:
    write(
        tmp_path,
        {
            "pb_project.yaml": project("contract"),
            "models/inputs.yaml": CONTRACT_INPUT.format(entity="user", column="coupon"),
        },
    )
    seed(tmp_path, ORDERS)
    assert cli(tmp_path, "run", "--end_time", END_2) == 1
    err = capsys.readouterr().err
    assert "inputs.yaml:" in err and "input 'orders' breaks its contract" in err and "coupon" in err
    (tmp_path / "models/inputs.yaml").write_text(CONTRACT_INPUT.format(entity="user", column="AMOUNT"))
    assert cli(tmp_path, "run", "--end_time", END_2) == 0  # names compare case-insensitively
    (tmp_path / "models/inputs.yaml").write_text(CONTRACT_INPUT.format(entity="usr", column="amount"))
    assert main(["validate", "-p", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "contract.with_entity_ids[0]" in err and "unknown entity 'usr'" in err


OVERRIDE_PACKAGE = {
    "vendor/lib/pb_project.yaml": """
        name: lib
        schema_version: 99
        connection: test
        model_folders: [models]
        entities:
          - name: user
            id_types: [user_id]
        id_types:
          - name: user_id
        """,
    "vendor/lib/models/lib.yaml": """
        models:
          - name: lib_totals
            model_type: sql_template
            model_spec:
              materialization: {output_type: table}
              single_sql: select user_id, sum(amount) as s from {{ this.DeRef("inputs/orders") }} group by user_id
        var_groups:
          - name: lib_vars
            entity_key: user
            vars:
              - entity_var: {name: lib_orders, select: count(*), from: inputs/orders}
              - entity_var: {name: lib_max, select: max(amount), from: inputs/orders}
              - entity_var: {name: lib_helper, select: min(amount), from: inputs/orders}
              - entity_var: {name: lib_spread, select: "{{ user.lib_max }} - {{ user.lib_helper }}"}
        """,
}


def test_package_overrides_set_enable_status_of_its_models_and_vars(tmp_path: Path, capsys) -> None:
    pb_project = project("overrides").replace(
        "model_folders:\n  - models\n",
        """model_folders:
  - models
packages:
  - name: lib
    url: vendor/lib
    overrides:
      - requested_enable_status: disabled
        models:
          - models/lib_totals
          - entity/user/all/lib_orders
      - requested_enable_status: only_if_necessary
        models:
          - user/all/lib_helper
""",
    )
    out = run_project(
        tmp_path,
        {**OVERRIDE_PACKAGE, "pb_project.yaml": pb_project, "models/inputs.yaml": "inputs:" + ORDERS_INPUT},
        [ORDERS],
    )
    printed = capsys.readouterr().out
    assert "entity var 'lib_orders'" in printed and "disabled by package 'lib'" in printed
    assert "model 'lib_totals' (" in printed and "pb_project.yaml:" in printed
    assert "models/lib_totals" not in {r[0] for r in out.rows("select step from out._profiles_materials")}
    # lib_orders not computed; lib_helper stays a feature (its view reads it, as in pb 0.26); spread = max - min
    assert out.columns("out.user_feature_view") == ["user_main_id", "lib_helper", "lib_max", "lib_spread"]
    rows = {m: (mx, sp) for m, _, mx, sp in out.rows("select * from out.user_feature_view")}
    assert rows == {rid("u1", "user_id"): (20, 10), rid("u2", "user_id"): (5, 0), rid("u3", "user_id"): (7, 0)}


def test_package_override_of_an_unknown_model_names_the_line(tmp_path: Path, capsys) -> None:
    pb_project = project("overrides_bad").replace(
        "model_folders:\n  - models\n",
        """model_folders:
  - models
packages:
  - name: lib
    url: vendor/lib
    overrides:
      - requested_enable_status: disabled
        models:
          - entity/user/all/lib_order
""",
    )
    write(tmp_path, {**OVERRIDE_PACKAGE, "pb_project.yaml": pb_project, "models/inputs.yaml": "inputs:" + ORDERS_INPUT})
    assert main(["validate", "-p", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "pb_project.yaml:12" in err and "has no entity var 'lib_order'" in err and "lib_orders" in err


def test_a_var_reading_a_var_a_package_override_disables_is_an_error(tmp_path: Path, capsys) -> None:
    pb_project = project("overrides_reader").replace(
        "model_folders:\n  - models\n",
        """model_folders:
  - models
packages:
  - name: lib
    url: vendor/lib
    overrides:
      - requested_enable_status: disabled
        models:
          - entity/user/all/lib_max
""",
    )
    write(tmp_path, {**OVERRIDE_PACKAGE, "pb_project.yaml": pb_project, "models/inputs.yaml": "inputs:" + ORDERS_INPUT})
    assert main(["validate", "-p", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    # pb 0.26 drops lib_spread silently; here the reader is named where it reads the disabled var
    assert "lib.yaml:" in err and "var 'lib_spread' reads var 'lib_max', which is not computed" in err
    assert "package 'lib' disables it" in err and "pb_project.yaml:12" in err
