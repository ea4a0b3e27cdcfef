"""A run that fails names the var whose SQL failed (file:line), and `run` leaves the SQL it executed."""

from __future__ import annotations

from pathlib import Path

import duckdb

from profiles_dagster.cli import main
from profiles_dagster_tests.format.harness import END_TIME, write

PROJECT = """
name: fails
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
"""

INPUTS = """
inputs:
  - name: orders
    app_defaults:
      table: raw.orders
      occurred_at_col: ts
      ids:
        - select: user_id
          type: user_id
          entity: user
"""


def _vars(amount_column: str) -> str:
    return f"""
var_groups:
  - name: order_vars
    entity_key: user
    vars:
      - entity_var:
          name: n_orders
          select: count(*)
          from: inputs/orders
      - entity_var:
          name: revenue
          select: sum({amount_column})
          from: inputs/orders
"""


def _project(root: Path, amount_column: str) -> Path:
    write(root, {"pb_project.yaml": PROJECT, "models/inputs.yaml": INPUTS, "models/vars.yaml": _vars(amount_column)})
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("create schema raw")
    con.execute("create table raw.orders as select 'u1' as user_id, 10 as amount, timestamp '2025-01-01' as ts")
    con.close()
    return root


def _sql_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "output" / "dev" / "seq_no_1").glob("*.sql"))


def test_a_successful_run_leaves_its_sql(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "amount")
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0
    files = _sql_files(root)
    assert files[0] == "01_user__input_vars__orders.sql"
    assert "02_user__id_stitcher.sql" in files and any(f.endswith("_user__entity_vars.sql") for f in files)
    entity_vars = next((root / "output" / "dev" / "seq_no_1").glob("*_user__entity_vars.sql")).read_text()
    assert "SUM(AMOUNT)" in entity_vars.upper().replace('"', "")


def test_a_failed_run_names_the_var_and_leaves_the_sql_up_to_the_failed_step(tmp_path: Path, capsys) -> None:
    root = _project(tmp_path / "p", "amont")
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 1
    err = capsys.readouterr().err.strip()
    vars_file = root / "models" / "vars.yaml"
    # line 11 of vars.yaml is `select: sum(amont)`, its key at column 11
    assert err.startswith(f"error: {vars_file}:11:11: var_groups[0].vars[1].entity_var.select: entity var 'revenue'")
    assert "step 'user/entity_vars'" in err and "amont" in err
    files = _sql_files(root)
    assert files[-1].endswith("_user__entity_vars.sql")  # the failed step's SQL is the last file
    assert not any("feature" in f for f in files)  # nothing after it ran
    assert err.endswith(f"(the SQL that failed is in {root / 'output' / 'dev' / 'seq_no_1' / files[-1]})")
    assert "amont" in (root / "output" / "dev" / "seq_no_1" / files[-1]).read_text()


def test_a_function_the_engine_refuses_names_the_var(tmp_path: Path, capsys) -> None:
    root = _project(tmp_path / "p", "amount")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("drop table raw.orders")
    con.execute("create table raw.orders as select 'u1' as user_id, 'x' as amount, timestamp '2025-01-01' as ts")
    con.close()
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 1
    err = capsys.readouterr().err
    assert f"{root / 'models' / 'vars.yaml'}:11:11: " in err and "entity var 'revenue'" in err and "sum(VARCHAR)" in err


SQL_MODEL = """
models:
  - name: big_orders
    model_type: sql_template
    model_spec:
      materialization:
        output_type: table
      single_sql: select * from {{ this.DeRef("inputs/orders") }} where amount > cast('x' as integer)
"""


def test_a_failure_no_var_explains_names_the_step_and_its_model(tmp_path: Path, capsys) -> None:
    root = _project(tmp_path / "p", "amount")
    write(root, {"models/sql.yaml": SQL_MODEL})
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {root / 'models' / 'sql.yaml'}:")
    assert "step 'models/big_orders' failed in the warehouse" in err and "Conversion Error" in err


def test_a_view_whose_rows_fail_when_counted_names_the_step(tmp_path: Path, capsys) -> None:
    """A view is created without reading its rows; the run counts them next, and that is where the engine
    fails on a bad value: still the step's located error, never a traceback."""
    root = _project(tmp_path / "p", "amount")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("create table raw.texts as select 'x' as t")
    con.close()
    bad = SQL_MODEL.replace("output_type: table", "output_type: view").replace(
        "where amount > cast('x' as integer)", "where amount > (select cast(t as integer) from raw.texts)"
    )
    write(root, {"models/sql.yaml": bad})
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(f"error: {root / 'models' / 'sql.yaml'}:")
    assert "step 'models/big_orders' failed in the warehouse" in err and "Conversion Error" in err
