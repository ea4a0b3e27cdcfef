"""Loading Profiles projects: the example loads whole, and every user mistake is a located ProfilesError.

Each mistake test writes the offending file with an explicit line layout and asserts the file
name, the 1-based line of the offending key, its key path (or var name) and the message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.project.loader import load_project
from profiles_dagster.project.templating import TemplateContext, render
from profiles_dagster_tests.projects import EXAMPLE_PROJECT, INPUTS, PB_PROJECT, dedent, write_project


def load_error(root: Path, **files) -> ProfilesError:
    """The ProfilesError that loading (or planning) the project written from `files` raises."""
    write_project(root, **files)
    with pytest.raises(ProfilesError) as info:
        build_plan(load_project(root))
    return info.value


def assert_located(
    err: ProfilesError,
    file: str,
    line: int | None,
    key: str | None,
    message: str,
    hint: str | None = None,
) -> None:
    assert err.file is not None and Path(err.file).name == file, err
    assert (err.line, err.key) == (line, key), err
    assert message in err.message, err
    if hint is not None:
        assert err.hint is not None and hint in err.hint, err
    # the rendered text carries the location, so a CLI user sees it too
    assert f"{file}:{line}" in str(err) if line else file in str(err)


# ---- projects that load ----------------------------------------------------------------------


def test_example_project_loads():
    project = load_project(EXAMPLE_PROJECT)

    assert project.name == "example_project"
    assert list(project.entities) == ["user"]
    user = project.entities["user"]
    assert list(user.id_types) == ["user_id", "anonymous_id", "email"]
    assert user.main_id_column == "user_main_id"
    assert list(project.inputs) == ["identifies", "tracks", "pages", "orders"]
    assert [i.type for i in project.inputs["identifies"].ids] == ["user_id", "anonymous_id", "email"]
    assert list(project.sql_models) == ["user_daily_orders"]
    assert project.sql_models["user_daily_orders"].output_type == "table"
    assert list(project.cohorts) == ["high_value"]
    cohort = project.cohorts["high_value"]
    assert (cohort.entity, cohort.extends) == ("user", None)

    assert user.stitcher is not None
    assert user.stitcher.name == "user_id_stitcher"
    assert not user.stitcher.is_default
    assert user.stitcher.edge_sources == tuple(f"inputs/{n}" for n in ("identifies", "tracks", "pages", "orders"))

    assert len(project.vars) == 16
    assert [v.name for v in project.vars if v.kind == "input_var"] == ["order_number"]
    assert [v.name for v in project.vars if v.cohort == "high_value"] == ["hv_max_order_amount"]
    assert [v.name for v in project.entity_vars("user") if not v.is_feature] == ["last_order_at"]
    assert [v.name for v in project.feature_views("user")] == ["user_feature_view", "user_features_by_email"]
    assert project.notes == []


def test_example_project_origins_point_at_the_yaml():
    project = load_project(EXAMPLE_PROJECT)
    var = next(v for v in project.vars if v.name == "first_seen_at")
    assert var.origin.file.name == "profiles.yaml"
    assert var.origin.key == "var_groups[0].vars[0].entity_var"
    text = var.origin.file.read_text().splitlines()
    assert text[var.origin.line - 1].strip() == "- entity_var:"
    assert text[var.origin.at("select").line - 1].strip() == "select: min(timestamp)"


def test_minimal_project_gets_the_default_stitcher(tmp_path):
    inputs = dedent(
        """
        inputs:
          - name: tracks
            app_defaults:
              table: raw.tracks
              ids:
                - select: user_id
                  type: user_id
                  entity: user
                - select: anonymous_id
                  type: anonymous_id
                  entity: user
          - name: plans  # no ids: not an edge source
            app_defaults:
              table: raw.plans
          - name: imports  # opted out of the default stitcher
            app_defaults:
              table: raw.imports
              ids:
                - select: user_id
                  type: user_id
                  entity: user
                  to_default_stitcher: false
          - name: pages
            app_defaults:
              table: raw.pages
              ids:
                - select: anonymous_id
                  type: anonymous_id
                  entity: user
        """
    )
    root = write_project(tmp_path / "p", models={"inputs.yaml": inputs})
    project = load_project(root)

    stitcher = project.entities["user"].stitcher
    assert stitcher is not None
    assert stitcher.is_default
    assert stitcher.name == "user_default_id_stitcher"
    assert stitcher.edge_sources == ("inputs/tracks", "inputs/pages")
    assert list(project.inputs) == ["tracks", "plans", "imports", "pages"]

    plan = build_plan(project)
    step = plan[("user", "id_stitcher")]
    assert step.view_name == "user_default_id_stitcher"
    assert step.deps == (("user", "input_vars", "tracks"), ("user", "input_vars", "pages"))


def test_trailing_tabs_after_values_are_accepted(tmp_path):
    """pb's Go parser tolerates trailing tabs (and spaces) that PyYAML alone rejects."""
    project = PB_PROJECT.replace("connection: test\n", "connection: test\t\t\n").replace(
        "name: test_project\n", "name: test_project \t\n"
    )
    inputs = INPUTS.replace("table: raw.tracks\n", "table: raw.tracks\t\n").replace(
        "type: user_id\n", "type: user_id\t \t\n"
    )
    root = write_project(tmp_path / "p", project=project, models={"inputs.yaml": inputs})
    loaded = load_project(root)
    assert (loaded.name, loaded.file.connection) == ("test_project", "test")
    assert loaded.inputs["tracks"].spec.app_defaults.table == "raw.tracks"
    assert [i.type for i in loaded.inputs["tracks"].ids] == ["user_id", "anonymous_id"]


def test_tolerated_keys_are_noted_not_silently_dropped(tmp_path):
    root = write_project(tmp_path / "p", project=PB_PROJECT + "python_requirements:\n  - numpy\n")
    assert load_project(root).notes == ["python_requirements is accepted and not acted on"]


# ---- pb_project.yaml mistakes ------------------------------------------------------------------


def test_yaml_syntax_error(tmp_path):
    project = dedent(
        """
        name: test_project
        schema_version: 99
        connection: test: other
        """
    )
    err = load_error(tmp_path / "p", project=project)
    assert_located(err, "pb_project.yaml", 3, None, "invalid YAML: mapping values are not allowed here")
    assert err.column == 17


def test_unknown_yaml_tag(tmp_path):
    project = PB_PROJECT.replace("connection: test", "connection: !secret test")
    err = load_error(tmp_path / "p", project=project)
    assert_located(err, "pb_project.yaml", 3, None, "invalid YAML: could not determine a constructor for the tag")


def test_empty_pb_project(tmp_path):
    err = load_error(tmp_path / "p", project="")
    assert_located(err, "pb_project.yaml", 1, None, "the file is empty")


def test_missing_pb_project(tmp_path):
    err = load_error(tmp_path / "p", project=None)
    assert Path(err.file).name == "pb_project.yaml"
    assert "no pb_project.yaml" in err.message


def test_unknown_top_level_key_suggests_the_right_one(tmp_path):
    project = dedent(
        """
        name: test_project
        schema_version: 99
        connection: test
        model_folders:
          - models
        entites:
          - name: user
            id_types:
              - user_id
        id_types:
          - name: user_id
        """
    )
    err = load_error(tmp_path / "p", project=project)
    assert_located(err, "pb_project.yaml", 6, "entites", "unknown key 'entites'", hint="did you mean 'entities'?")


def test_wrong_schema_version(tmp_path):
    err = load_error(tmp_path / "p", project=PB_PROJECT.replace("schema_version: 99", "schema_version: 54"))
    assert_located(
        err, "pb_project.yaml", 2, "schema_version", "schema_version 54 is not supported", hint="pb migrate auto"
    )


def test_missing_required_key(tmp_path):
    err = load_error(tmp_path / "p", project=PB_PROJECT.replace("connection: test\n", ""))
    assert_located(err, "pb_project.yaml", 1, "connection", "required key is missing")


def test_duplicate_yaml_key(tmp_path):
    project = dedent(
        """
        name: test_project
        schema_version: 99
        connection: test
        connection: other
        """
    )
    err = load_error(tmp_path / "p", project=project)
    assert_located(err, "pb_project.yaml", 4, "connection", "duplicate key 'connection' (first on line 3)")


def test_invalid_regex_in_id_type_filter(tmp_path):
    project = dedent(
        """
        name: test_project
        schema_version: 99
        connection: test
        entities:
          - name: user
            id_types:
              - anonymous_id
        id_types:
          - name: anonymous_id
            filters:
              - type: exclude
                regex: "(undefined|null"
        """
    )
    err = load_error(tmp_path / "p", project=project)
    assert_located(err, "pb_project.yaml", 12, "id_types[0].filters[0].regex", "invalid regex: missing )")


def test_filter_with_both_value_and_regex(tmp_path):
    project = dedent(
        """
        name: test_project
        schema_version: 99
        connection: test
        entities:
          - name: user
            id_types:
              - anonymous_id
        id_types:
          - name: anonymous_id
            filters:
              - type: exclude
                value: unknown
                regex: "test.*"
        """
    )
    err = load_error(tmp_path / "p", project=project)
    assert_located(
        err,
        "pb_project.yaml",
        11,
        "id_types[0].filters[0]",
        "a filter needs exactly one of value, regex or sql, found value and regex",
    )


def test_entity_names_an_undeclared_id_type(tmp_path):
    project = dedent(
        """
        name: test_project
        schema_version: 99
        connection: test
        entities:
          - name: user
            id_types:
              - user_id
              - emial
        id_types:
          - name: user_id
          - name: email
        """
    )
    err = load_error(tmp_path / "p", project=project)
    assert_located(
        err,
        "pb_project.yaml",
        8,
        "entities[0].id_types[1]",
        "id type 'emial' is not declared under id_types",
        hint="did you mean 'email'?",
    )


def test_entity_id_stitcher_points_at_a_missing_model(tmp_path):
    project = dedent(
        """
        name: test_project
        schema_version: 99
        connection: test
        entities:
          - name: user
            id_stitcher: models/user_id_stitcher
            id_types:
              - user_id
              - anonymous_id
        id_types:
          - name: user_id
          - name: anonymous_id
        """
    )
    err = load_error(tmp_path / "p", project=project)
    assert_located(
        err,
        "pb_project.yaml",
        6,
        "entities[0].id_stitcher",
        "entity 'user' names id_stitcher 'models/user_id_stitcher' but no id_stitcher model",
        hint="remove `id_stitcher` to use the default stitcher",
    )


def test_feature_view_using_an_id_the_entity_does_not_have(tmp_path):
    project = dedent(
        """
        name: test_project
        schema_version: 99
        connection: test
        entities:
          - name: user
            id_types:
              - user_id
              - anonymous_id
            feature_views:
              using_ids:
                - id: user_id
                - id: emails
                  name: by_email
        id_types:
          - name: user_id
          - name: anonymous_id
          - name: email
        """
    )
    err = load_error(tmp_path / "p", project=project)
    assert_located(
        err,
        "pb_project.yaml",
        12,
        "entities[0].feature_views.using_ids[1].id",
        "feature view id 'emails' is not an id type of entity 'user'",
    )


def test_model_folder_that_does_not_exist(tmp_path):
    err = load_error(tmp_path / "p", project=PB_PROJECT.replace("  - models\n", "  - modles\n"))
    assert_located(err, "pb_project.yaml", 5, "model_folders[0]", "model folder 'modles' does not exist")


# ---- inputs ----------------------------------------------------------------------------------


def test_unknown_key_inside_app_defaults(tmp_path):
    inputs = dedent(
        """
        inputs:
          - name: tracks
            app_defaults:
              table: raw.tracks
              occured_at_col: timestamp
              ids:
                - select: user_id
                  type: user_id
                  entity: user
        """
    )
    err = load_error(tmp_path / "p", models={"inputs.yaml": inputs})
    assert_located(
        err,
        "inputs.yaml",
        5,
        "inputs[0].app_defaults.occured_at_col",
        "unknown key 'occured_at_col'",
        hint="did you mean 'occurred_at_col'?",
    )


def test_input_with_two_sources(tmp_path):
    inputs = dedent(
        """
        inputs:
          - name: tracks
            app_defaults:
              table: raw.tracks
              view: raw.tracks_view
        """
    )
    err = load_error(tmp_path / "p", models={"inputs.yaml": inputs})
    assert_located(
        err,
        "inputs.yaml",
        3,
        "inputs[0].app_defaults",
        "app_defaults needs exactly one of table, view, s3 or csv, found table and view",
    )


def test_input_id_of_an_undeclared_id_type(tmp_path):
    inputs = dedent(
        """
        inputs:
          - name: tracks
            app_defaults:
              table: raw.tracks
              ids:
                - select: user_id
                  type: user_id
                  entity: user
                - select: device
                  type: device_id
                  entity: user
        """
    )
    err = load_error(tmp_path / "p", models={"inputs.yaml": inputs})
    assert_located(
        err,
        "inputs.yaml",
        10,
        "inputs[0].app_defaults.ids[1].type",
        "id type 'device_id' is not an id type of entity 'user'",
        hint="id types of user: user_id, anonymous_id",
    )


def test_input_id_naming_an_unknown_entity(tmp_path):
    inputs = dedent(
        """
        inputs:
          - name: tracks
            app_defaults:
              table: raw.tracks
              ids:
                - select: user_id
                  type: user_id
                  entity: users
        """
    )
    err = load_error(tmp_path / "p", models={"inputs.yaml": inputs})
    assert_located(
        err, "inputs.yaml", 8, "inputs[0].app_defaults.ids[0].entity", "unknown entity 'users'", "did you mean 'user'?"
    )


def test_duplicate_input_name_across_files(tmp_path):
    again = dedent(
        """
        # the same input, copied into a second file
        inputs:
          - name: tracks
            app_defaults:
              table: raw.tracks_copy
        """
    )
    err = load_error(tmp_path / "p", models={"inputs.yaml": INPUTS, "more_inputs.yaml": again})
    assert_located(err, "more_inputs.yaml", 3, "inputs[0].name", "input 'tracks' is defined twice")


def test_models_file_that_is_not_a_mapping(tmp_path):
    err = load_error(tmp_path / "p", models={"inputs.yaml": INPUTS, "list.yaml": "- tracks\n- pages\n"})
    assert_located(err, "list.yaml", 1, None, "expected a mapping, found list")


# ---- models ----------------------------------------------------------------------------------


def test_unknown_model_type_suggests_the_right_one(tmp_path):
    models = dedent(
        """
        models:
          - name: daily
            model_type: sql_templat
            model_spec:
              single_sql: select 1
        """
    )
    err = load_error(tmp_path / "p", models={"inputs.yaml": INPUTS, "models.yaml": models})
    assert_located(
        err,
        "models.yaml",
        3,
        "models[0].model_type",
        "unknown model_type 'sql_templat'",
        hint="did you mean 'sql_template'?",
    )


def test_python_model_is_refused_by_name(tmp_path):
    models = dedent(
        """
        models:
          - name: daily
            model_type: sql_template
            model_spec:
              single_sql: select 1
          - name: churn
            model_type: python_model
            model_spec:
              occurred_at_col: timestamp
        """
    )
    err = load_error(tmp_path / "p", models={"inputs.yaml": INPUTS, "models.yaml": models})
    assert_located(err, "models.yaml", 7, "models[1].model_type", "model type 'python_model' is not supported")


def test_unknown_key_in_a_model_spec(tmp_path):
    models = dedent(
        """
        models:
          - name: stitcher
            model_type: id_stitcher
            model_spec:
              entity_key: user
              edge_source:
                - from: inputs/tracks
        """
    )
    err = load_error(tmp_path / "p", models={"inputs.yaml": INPUTS, "models.yaml": models})
    assert_located(
        err,
        "models.yaml",
        6,
        "models[0].model_spec.edge_source",
        "unknown key 'edge_source'",
        hint="did you mean 'edge_sources'?",
    )


def test_id_stitcher_edge_source_naming_an_unknown_input(tmp_path):
    project = PB_PROJECT.replace("  - name: user\n", "  - name: user\n    id_stitcher: models/stitcher\n")
    models = dedent(
        """
        models:
          - name: stitcher
            model_type: id_stitcher
            model_spec:
              entity_key: user
              edge_sources:
                - from: inputs/tracks
                - from: inputs/track
        """
    )
    err = load_error(tmp_path / "p", project=project, models={"inputs.yaml": INPUTS, "models.yaml": models})
    assert_located(
        err,
        "models.yaml",
        8,
        "models[0].model_spec.edge_sources[1].from",
        "edge_sources 'inputs/track': no input named 'track'",
        hint="did you mean 'tracks'?",
    )


def test_cohort_extending_an_unknown_cohort(tmp_path):
    models = dedent(
        """
        models:
          - name: active
            model_type: entity_cohort
            model_spec:
              extends: user/all
          - name: active_buyers
            model_type: entity_cohort
            model_spec:
              extends: models/actives
        """
    )
    err = load_error(tmp_path / "p", models={"inputs.yaml": INPUTS, "models.yaml": models})
    assert_located(
        err,
        "models.yaml",
        9,
        "models[1].model_spec.extends",
        "cohort extends unknown 'models/actives'",
        hint="did you mean 'active'?",
    )


def test_sql_template_dereferencing_an_unknown_input(tmp_path):
    models = dedent(
        """
        models:
          - name: daily
            model_type: sql_template
            model_spec:
              single_sql: |
                select * from {{ this.DeRef("inputs/trakcs") }}
        """
    )
    err = load_error(tmp_path / "p", models={"inputs.yaml": INPUTS, "models.yaml": models})
    assert_located(
        err,
        "models.yaml",
        5,
        "models[0].model_spec.single_sql",
        "DeRef('inputs/trakcs'): no input named 'trakcs'",
        hint="did you mean 'tracks'?",
    )


# ---- var_groups ------------------------------------------------------------------------------


def vars_error(root: Path, vars_yaml: str) -> ProfilesError:
    return load_error(root, models={"inputs.yaml": INPUTS, "vars.yaml": dedent(vars_yaml)})


def test_var_group_with_both_entity_key_and_entity_cohort(tmp_path):
    err = vars_error(
        tmp_path / "p",
        """
        var_groups:
          - name: activity
            entity_key: user
            entity_cohort: models/active
            vars:
              - entity_var:
                  name: first_seen_at
                  select: min(timestamp)
                  from: inputs/tracks
        """,
    )
    assert_located(err, "vars.yaml", 2, "var_groups[0]", "a var_group needs exactly one of entity_key or entity_cohort")


def test_var_group_naming_an_unknown_entity(tmp_path):
    err = vars_error(
        tmp_path / "p",
        """
        var_groups:
          - name: activity
            entity_key: usr
            vars: []
        """,
    )
    assert_located(err, "vars.yaml", 3, "var_groups[0].entity_key", "unknown entity 'usr'", hint="did you mean 'user'?")


def test_entity_var_without_select(tmp_path):
    err = vars_error(
        tmp_path / "p",
        """
        var_groups:
          - name: activity
            entity_key: user
            vars:
              - entity_var:
                  name: first_seen_at
                  select: min(timestamp)
                  from: inputs/tracks
              - entity_var:
                  name: page_views
                  from: inputs/tracks
        """,
    )
    assert_located(err, "vars.yaml", 9, "var_groups[0].vars[1].entity_var.select", "required key is missing")


def test_var_from_an_unknown_input(tmp_path):
    err = vars_error(
        tmp_path / "p",
        """
        var_groups:
          - name: activity
            entity_key: user
            vars:
              - entity_var:
                  name: page_views
                  select: count(*)
                  from: inputs/trcks
        """,
    )
    assert_located(
        err,
        "vars.yaml",
        8,
        "var_groups[0].vars[0].entity_var.from",
        "from 'inputs/trcks': no input named 'trcks'",
        hint="did you mean 'tracks'?",
    )


def test_undefined_var_reference_is_found_by_the_planner(tmp_path):
    vars_yaml = dedent(
        """
        var_groups:
          - name: activity
            entity_key: user
            vars:
              - entity_var:
                  name: first_seen_at
                  select: min(timestamp)
                  from: inputs/tracks
              - entity_var:
                  name: days_active
                  description: refers to a var nobody defined
                  select: '{{ user.Var("nope") }} + 1'
        """
    )
    root = write_project(tmp_path / "p", models={"inputs.yaml": INPUTS, "vars.yaml": vars_yaml})
    project = load_project(root)  # loading alone does not render templates
    with pytest.raises(ProfilesError) as info:
        build_plan(project)
    assert_located(
        info.value,
        "vars.yaml",
        12,
        "var_groups[0].vars[1].entity_var.select",
        "var 'days_active' refers to undefined var 'nope'",
        hint="vars here: first_seen_at, days_active",
    )


def test_undefined_var_in_where_points_at_where(tmp_path):
    err = vars_error(
        tmp_path / "p",
        """
        var_groups:
          - name: activity
            entity_key: user
            vars:
              - entity_var:
                  name: first_seen_at
                  select: min(timestamp)
                  from: inputs/tracks
              - entity_var:
                  name: late_events
                  select: count(*)
                  from: inputs/tracks
                  where: timestamp > {{ user.first_seen }}
        """,
    )
    assert_located(
        err,
        "vars.yaml",
        13,
        "var_groups[0].vars[1].entity_var.where",
        "var 'late_events' refers to undefined var 'first_seen'",
        hint="did you mean 'first_seen_at'?",
    )


def test_cycle_between_two_derived_vars(tmp_path):
    err = vars_error(
        tmp_path / "p",
        """
        var_groups:
          - name: activity
            entity_key: user
            vars:
              - entity_var:
                  name: a
                  select: '{{ user.Var("b") }} + 1'
              - entity_var:
                  name: b
                  select: '{{ user.Var("a") }} * 2'
        """,
    )
    assert_located(
        err,
        "vars.yaml",
        7,
        "var_groups[0].vars[0].entity_var.select",
        "vars refer to each other in a cycle: a -> b -> a",
    )


def test_duplicate_var_name(tmp_path):
    err = vars_error(
        tmp_path / "p",
        """
        var_groups:
          - name: activity
            entity_key: user
            vars:
              - entity_var:
                  name: first_seen_at
                  select: min(timestamp)
                  from: inputs/tracks
          - name: more_activity
            entity_key: user
            vars:
              - entity_var:
                  name: first_seen_at
                  select: min(timestamp)
                  from: inputs/tracks
        """,
    )
    assert_located(
        err, "vars.yaml", 13, "var_groups[1].vars[0].entity_var.name", "var 'first_seen_at' is defined twice"
    )
    assert "vars.yaml:5" in err.message  # where the first definition is


def test_template_syntax_error_in_a_var_select(tmp_path):
    err = vars_error(
        tmp_path / "p",
        """
        var_groups:
          - name: activity
            entity_key: user
            vars:
              - entity_var:
                  name: x
                  select: count(*)
                  from: inputs/tracks
              - entity_var:
                  name: days_active
                  select: '{{ user.Var("x" }}'
        """,
    )
    assert_located(
        err,
        "vars.yaml",
        11,
        "var_groups[0].vars[1].entity_var.select",
        "template syntax error: expected ')', got the end of the tag",
    )


def test_a_template_compiled_once_renders_with_each_context():
    text = '{{ user.Var("x") }} + 1'
    plain = TemplateContext(entities=("user",))
    placeholder = TemplateContext(entities=("user",), resolve_var=lambda entity, name: f"__{name}")
    assert render(text, plain) == "x + 1"
    assert render(text, placeholder) == "__x + 1"
    for _ in range(2):  # a broken template fails every time, not only the first
        with pytest.raises(ProfilesError, match="template syntax error"):
            render("{{ user.Var('x' }}", plain)
