"""`validate` runs every step on empty inputs in a scratch DuckDB: binder errors are found before `run`, each
named with its var and file:line, and the user's DuckDB file is left as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster_tests.projects import INPUTS, PB_PROJECT, dedent, write_project

# one mistake per var, none depending on another; lines asserted below
VARS = dedent(
    """
    var_groups:
      - name: vars
        entity_key: user
        vars:
          - entity_var:
              name: n_tracks
              select: count(*)
              from: inputs/tracks
          - entity_var:
              name: total_amount
              select: sum(amount)
              from: inputs/tracks
          - entity_var:
              name: distinct_users
              select: hll(user_id)
              from: inputs/tracks
          - entity_var:
              name: first_event
              select: first_value(event) over (order by timestamp)
              from: inputs/tracks
          - entity_var:
              name: last_seen
              select: max(timestamp)
              from: inputs/tracks
    """
)
GOOD_VARS = dedent(
    """
    var_groups:
      - name: vars
        entity_key: user
        vars:
          - entity_var:
              name: n_tracks
              select: count(*)
              from: inputs/tracks
          - entity_var:
              name: total_amount
              select: sum(amount)
              from: inputs/tracks
          - entity_var:
              name: first_event
              select: first_value(event)
              from: inputs/tracks
              window:
                order_by:
                  - timestamp
          - entity_var:
              name: per_track
              select: "{{ user.Var('total_amount') }} / nullif({{ user.Var('n_tracks') }}, 0)"
    """
)
FEATURE_VIEW = PB_PROJECT.replace(
    "      - anonymous_id\n",
    "      - anonymous_id\n"
    "    feature_views:\n"
    "      using_ids:\n"
    "        - id: anonymous_id\n"
    "          name: anon_features\n",
    1,
)


def _database(root: Path, amount_type: str) -> Path:
    """The project's DuckDB file (siteconfig: test.duckdb beside it) with raw.tracks, `amount` of that type."""
    path = root / "test.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA raw")
    con.execute(
        f"CREATE TABLE raw.tracks (user_id VARCHAR, anonymous_id VARCHAR, timestamp TIMESTAMP, "
        f"amount {amount_type}, event VARCHAR)"
    )
    con.execute("INSERT INTO raw.tracks VALUES ('u1', 'a1', TIMESTAMP '2025-10-01 10:00:00', '12.5', 'buy')")
    con.close()
    return path


def _state(path: Path) -> tuple[str, list[tuple]]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    return digest, tables


def _project(root: Path, vars_yaml: str) -> Path:
    return write_project(root, models={"inputs.yaml": INPUTS, "vars.yaml": vars_yaml})


def test_three_binder_errors_in_one_pass_and_the_database_is_unchanged(tmp_path: Path, capsys) -> None:
    root = _project(tmp_path / "p", VARS)
    database = _database(root, "VARCHAR")
    before = _state(database)
    assert main(["validate", "-p", str(root)]) == 1
    err = capsys.readouterr().err
    assert _state(database) == before
    lines = err.splitlines()
    assert lines[-1] == "validate: 3 error(s)"
    vars_file = root / "models" / "vars.yaml"
    by_var = {
        "total_amount": (11, "sum(VARCHAR)"),  # the real table's text column
        "distinct_users": (15, "hll"),  # a Snowflake function DuckDB lacks
        "first_event": (19, "GROUP BY"),  # a window function where an aggregate is needed
    }
    for name, (line, what) in by_var.items():
        found = [x for x in lines if f"entity var '{name}'" in x]
        assert len(found) == 1, err
        assert found[0].startswith(f"error: {vars_file}:{line}:"), found[0]
        assert what in found[0], found[0]
    assert "n_tracks" not in err and "last_seen" not in err


def test_inputs_missing_from_the_database_are_typed_from_their_use(tmp_path: Path, capsys) -> None:
    """Without raw.tracks in the file, `sum(amount)` types amount as a number: only the other two fail."""
    root = _project(tmp_path / "p", VARS)
    assert main(["validate", "-p", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "validate: 2 error(s)"
    assert "total_amount" not in err and "distinct_users" in err and "first_event" in err
    assert not (root / "test.duckdb").exists()  # no database is created either


def test_a_project_that_runs_validates_ok(tmp_path: Path, capsys) -> None:
    root = _project(tmp_path / "p", GOOD_VARS)
    (root / "pb_project.yaml").write_text(FEATURE_VIEW, encoding="utf-8")
    database = _database(root, "DOUBLE")
    before = _state(database)
    assert main(["validate", "-p", str(root)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "runs on duckdb (prepared on empty inputs): OK" in out
    assert "validate: 0 errors" in out
    assert _state(database) == before


def test_no_prepare_only_compiles(tmp_path: Path, capsys) -> None:
    root = _project(tmp_path / "p", VARS)
    _database(root, "VARCHAR")
    assert main(["validate", "-p", str(root), "--no-prepare"]) == 0
    assert "compiles for duckdb (compiled, not prepared: --no-prepare): OK" in capsys.readouterr().out


def test_a_failing_model_does_not_hide_an_independent_one(tmp_path: Path, capsys) -> None:
    """A sql model failing on the engine is reported with its file:line; the var table (independent) still is."""
    model = dedent(
        """
        models:
          - name: broken_model
            model_type: sql_template
            model_spec:
              materialization:
                output_type: table
              single_sql: select no_such_function(user_id) as x from {{ this.DeRef("inputs/tracks") }}
        """
    )
    root = write_project(tmp_path / "p", models={"inputs.yaml": INPUTS, "vars.yaml": VARS, "model.yaml": model})
    _database(root, "VARCHAR")
    assert main(["validate", "-p", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "validate: 4 error(s)"
    assert any("broken_model" in x and "no_such_function" in x and "model.yaml:2" in x for x in err.splitlines())


@pytest.mark.parametrize("amount_type", ["DOUBLE", "DECIMAL(18,3)"])
def test_real_column_types_are_used(tmp_path: Path, amount_type: str, capsys) -> None:
    root = _project(tmp_path / "p", GOOD_VARS)
    _database(root, amount_type)
    assert main(["validate", "-p", str(root)]) == 0, capsys.readouterr().err


def test_an_attached_databases_table_gives_the_real_types(tmp_path: Path, capsys) -> None:
    """An input `ext.raw.tracks` reads the database siteconfig's `attach:` names `ext`: its real column types are
    prepared (amount is text there), and neither file changes."""
    root = _project(tmp_path / "p", VARS)
    inputs_yaml = root / "models" / "inputs.yaml"
    inputs_yaml.write_text(INPUTS.replace("table: raw.tracks", "table: ext.raw.tracks"), encoding="utf-8")
    site = root / "siteconfig.yaml"
    site.write_text(site.read_text() + "        attach:\n          - path: ext.duckdb\n            alias: ext\n")
    ext = _database(root, "VARCHAR").rename(root / "ext.duckdb")
    main_db = root / "test.duckdb"
    duckdb.connect(str(main_db)).close()
    before = (_state(main_db), _state(ext))
    assert main(["validate", "-p", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "validate: 3 error(s)", err
    assert "entity var 'total_amount'" in err and "sum(VARCHAR)" in err
    assert (_state(main_db), _state(ext)) == before


LOOKUP_MODEL = dedent(
    """
    models:
      - name: big_spenders
        model_type: sql_template
        model_spec:
          materialization:
            output_type: table
          single_sql: |
            select t.user_id, l.segment
            from {{ this.DeRef("inputs/tracks") }} t join raw.segments l on l.user_id = t.user_id
    """
)


def test_a_table_a_sql_model_reads_by_name_is_prepared_from_the_file(tmp_path: Path, capsys) -> None:
    """`raw.segments` is no input: the model reads it by name. In the file it is prepared with its columns; a
    file without it is prepared with the columns the model reads, and a note says the run needs it."""
    root = write_project(tmp_path / "p", models={"inputs.yaml": INPUTS, "model.yaml": LOOKUP_MODEL})
    database = _database(root, "DOUBLE")
    assert main(["validate", "-p", str(root)]) == 0
    out = capsys.readouterr().out
    assert "raw.segments, which a sql model reads by name, is no table of the connection" in out, out
    con = duckdb.connect(str(database))
    con.execute("CREATE TABLE raw.segments (user_id VARCHAR, segment VARCHAR)")
    con.close()
    before = _state(database)
    assert main(["validate", "-p", str(root)]) == 0, capsys.readouterr().err
    assert _state(database) == before
