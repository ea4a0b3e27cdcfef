"""`validate` reports every independent problem in one pass, each located; dependents are not repeated."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles_dagster.cli import main
from profiles_dagster.errors import MAX_ERRORS, ProfilesError, ProfilesErrors
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.project.loader import load_project
from profiles_dagster_tests.projects import INPUTS, dedent, write_project

# three mistakes, one per file, none depending on another
BAD_INPUT = dedent(
    """
    inputs:
      - name: tracks
        app_defaults:
          table: raw.tracks
          occurred_at_col: timestamp
          ids:
            - select: user_id
              type: user_id
              entity: user
      - name: pages
        app_defaults:
          table: raw.pages
          ids:
            - select: user_id
              type: user_id
              entity: usr
    """
)
BAD_VAR = dedent(
    """
    var_groups:
      - name: vars
        entity_key: user
        vars:
          - entity_var:
              name: n_tracks
              select: count(*)
              from: inputs/trakcs
          - entity_var:
              name: n_pages
              select: count(*)
              from: inputs/pages
    """
)
BAD_MODEL = dedent(
    """
    models:
      - name: high_value
        model_type: entity_cohortt
        model_spec:
          extends: user/all
    """
)


def _three_mistakes(root: Path) -> Path:
    return write_project(root, models={"inputs.yaml": BAD_INPUT, "vars.yaml": BAD_VAR, "cohorts.yaml": BAD_MODEL})


def test_three_independent_mistakes_in_one_pass(tmp_path: Path) -> None:
    root = _three_mistakes(tmp_path / "p")
    with pytest.raises(ProfilesErrors) as info:
        load_project(root)
    errors = info.value.errors
    assert [(Path(e.file).name, e.line) for e in errors] == [
        ("cohorts.yaml", 3),  # model_type
        ("inputs.yaml", 16),  # entity: usr
        ("vars.yaml", 8),  # from: inputs/trakcs
    ]
    assert errors[0].column == 5 and errors[1].column == 11  # located to the column where the YAML has it
    assert "unknown model_type 'entity_cohortt'" in errors[0].message
    assert "unknown entity 'usr'" in errors[1].message and errors[1].hint == "did you mean 'user'?"
    assert "no input named 'trakcs'" in errors[2].message and errors[2].hint == "did you mean 'tracks'?"
    # n_pages reads the input that failed: its error would only repeat the first one
    assert not any("pages" in e.message for e in errors)
    # one exception type for callers; the first error reads as it always did
    assert isinstance(info.value, ProfilesError)
    assert str(info.value).splitlines()[0] == str(errors[0])
    assert len(str(info.value).splitlines()) == 3


def test_a_single_error_reads_as_before(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", models={"inputs.yaml": INPUTS, "cohorts.yaml": BAD_MODEL})
    with pytest.raises(ProfilesError) as info:
        load_project(root)
    assert str(info.value) == str(info.value.errors[0])
    where = root / "models" / "cohorts.yaml"
    assert str(info.value).startswith(f"{where}:3:5: models[0].model_type: unknown model_type 'entity_cohortt'")


def test_a_yaml_syntax_error_stops_only_its_file(tmp_path: Path) -> None:
    """The broken file might define what others read: their unknown-name errors are not reported after it."""
    broken = "inputs:\n  - name: [tracks\n"
    root = write_project(
        tmp_path / "p", models={"inputs.yaml": broken, "vars.yaml": BAD_VAR, "cohorts.yaml": BAD_MODEL}
    )
    with pytest.raises(ProfilesErrors) as info:
        load_project(root)
    names = [Path(e.file).name for e in info.value.errors]
    assert names == ["cohorts.yaml", "inputs.yaml"]


def test_the_cap(tmp_path: Path) -> None:
    count = MAX_ERRORS + 7
    entries = "".join(
        f"      - entity_var:\n          name: v{i}\n          select: count(*)\n          from: inputs/nope{i}\n"
        for i in range(count)
    )
    vars_yaml = f"var_groups:\n  - name: vars\n    entity_key: user\n    vars:\n{entries}"
    root = write_project(tmp_path / "p", models={"inputs.yaml": INPUTS, "vars.yaml": vars_yaml})
    with pytest.raises(ProfilesErrors) as info:
        load_project(root)
    assert len(info.value.errors) == MAX_ERRORS and info.value.truncated == 7 and info.value.count == count


def test_validate_cli_lists_every_error_and_counts_them(tmp_path: Path, capsys) -> None:
    root = _three_mistakes(tmp_path / "p")
    assert main(["validate", "-p", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[0] for line in err[:3]] == ["error"] * 3
    assert "cohorts.yaml:3:5: " in err[0] and "inputs.yaml:16:11: " in err[1] and "vars.yaml:8" in err[2]
    assert err[-1] == "validate: 3 error(s)"


def test_validate_cli_last_line_on_success(tmp_path: Path, capsys) -> None:
    root = write_project(tmp_path / "p")
    assert main(["validate", "-p", str(root)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("validate: 0 errors, ") and out[-1].endswith(" note(s)")


def test_template_mistakes_in_two_vars_in_one_pass(tmp_path: Path) -> None:
    """References are checked var by var: two vars naming undefined vars give two errors at their lines."""
    vars_yaml = dedent(
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
                  name: double
                  select: '{{ user.Var("n_trakcs") }} * 2'
              - entity_var:
                  name: triple
                  select: '{{ user.Var("n_tracs") }} * 3'
        """
    )
    root = write_project(tmp_path / "p", models={"inputs.yaml": INPUTS, "vars.yaml": vars_yaml})
    with pytest.raises(ProfilesErrors) as info:
        build_plan(load_project(root))
    errors = info.value.errors
    assert [(e.line, e.message) for e in errors] == [
        (11, "var 'double' refers to undefined var 'n_trakcs'"),
        (14, "var 'triple' refers to undefined var 'n_tracs'"),
    ]
    assert errors[0].hint == "did you mean 'n_tracks'?"


def _sql_model(name: str, sql: str) -> str:
    return (
        f"  - name: {name}\n    model_type: sql_template\n    model_spec:\n      materialization:\n"
        f"        output_type: table\n      single_sql: {sql}\n"
    )


def test_each_steps_sql_is_checked_and_a_step_reading_a_failed_one_is_skipped(tmp_path: Path, capsys) -> None:
    models = (
        "models:\n"
        + _sql_model("first", "select 1 as x from (")
        + _sql_model("second", "select 2 as y from (")
        + _sql_model("third", "'select * from {{ this.DeRef(\"models/first\") }} where ('")
    )
    root = write_project(tmp_path / "p", models={"inputs.yaml": INPUTS, "sql.yaml": models})
    assert main(["validate", "-p", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "validate: 2 error(s)"  # third reads first: its step is skipped, not reported again
    assert "first" in err[0] and "sql.yaml:7:7: " in err[0]
    assert "second" in err[1] and "sql.yaml:13:7: " in err[1]
