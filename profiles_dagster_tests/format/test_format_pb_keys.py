"""Keys and shapes pb 0.26 accepts beyond the core format, each on a small project of our own.

What pb does with each was observed with `pb show models` (and its model graph) on projects like
these; expected values are worked out by hand from the seeded rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.project.loader import load_project
from profiles_dagster_tests.format.harness import run_project, write
from profiles_dagster_tests.format.test_format_core import rid

PB_PROJECT = """
    name: keys
    schema_version: 99
    connection: test
    model_folders:
      - models
    entities:
      - name: user
        id_types: [user_id, anonymous_id]
    id_types:
      - name: user_id
      - name: anonymous_id
      - name: session_id
        filters:
          - type: exclude
            value: "null"
    """

TRACKS = """
    inputs:
      - name: tracks
        app_defaults:
          table: raw.tracks
          occurred_at_col: ts
          ids:
            - select: user_id
              type: user_id
              entity: user
            - select: anonymous_id
              type: anonymous_id
              entity: user
    """

SESSION_ID = "        - select: session\n              type: session_id\n              entity: user\n"

VARS = """
    var_groups:
      - name: vars
        entity_key: user
        vars:
          - entity_var:
              name: events
              select: count(*)
              from: inputs/tracks
    """

SEED_TRACKS = """create table raw.tracks as select * from (values
    ('u1', 'a1', 's1', timestamp '2025-01-01 10:00:00'),
    (null, 'a2', 's1', timestamp '2025-01-02 10:00:00'),
    (null, 'a3', 'null', timestamp '2025-01-03 10:00:00'),
    ('u4', 'a4', 'null', timestamp '2025-01-04 10:00:00')
) t(user_id, anonymous_id, session, ts)"""


def load(root: Path, files: dict[str, str]):
    write(root, {"pb_project.yaml": PB_PROJECT, **files})
    return load_project(root)


def load_error(root: Path, files: dict[str, str]) -> ProfilesError:
    write(root, {"pb_project.yaml": PB_PROJECT, **files})
    with pytest.raises(ProfilesError) as info:
        build_plan(load_project(root))
    return info.value


# ---- ids of a type declared under id_types but not listed on the entity -----------------------


def test_unlisted_id_type_is_stitched(tmp_path: Path) -> None:
    """pb loads `type: session_id` on an entity that does not list it, and its default stitcher reads an
    input whose only ids are such ids: they are nodes of the id graph (with the type's filters)."""
    files = {"pb_project.yaml": PB_PROJECT, "models/inputs.yaml": TRACKS + SESSION_ID, "models/vars.yaml": VARS}
    out = run_project(tmp_path, files, [SEED_TRACKS])
    graph = out.rows("select other_id_type, other_id, user_main_id from out.user_default_id_stitcher order by 1, 2")
    # s1 links u1/a1 (row 1) with a2 (row 2); 'null' is excluded by the filter, so a3 and u4/a4 stay apart.
    # earliest member of the first cluster: u1 and a1 and s1 seen at 01-01; ties go to the smaller hash
    first = min((rid(v, t) for v, t in [("u1", "user_id"), ("a1", "anonymous_id"), ("s1", "session_id")]))
    expected = {
        ("anonymous_id", "a1"): first,
        ("anonymous_id", "a2"): first,
        ("session_id", "s1"): first,
        ("user_id", "u1"): first,
        ("anonymous_id", "a3"): rid("a3", "anonymous_id"),
        ("anonymous_id", "a4"): min(rid("a4", "anonymous_id"), rid("u4", "user_id")),
        ("user_id", "u4"): min(rid("a4", "anonymous_id"), rid("u4", "user_id")),
    }
    assert {(t, v): m for t, v, m in graph} == expected
    events = {r[0]: r[1] for r in out.rows("select user_main_id, events from out.user_feature_view")}
    assert events == {first: 2, rid("a3", "anonymous_id"): 1, expected[("user_id", "u4")]: 1}


def test_unlisted_id_type_is_noted_and_stays_off_feature_views(tmp_path: Path) -> None:
    project = load(tmp_path, {"models/inputs.yaml": TRACKS + SESSION_ID})
    assert list(project.entities["user"].spec.id_types) == ["user_id", "anonymous_id"]
    assert any("'session_id'" in n and "not listed on entity 'user'" in n for n in project.notes)


def test_undeclared_id_type_is_refused(tmp_path: Path) -> None:
    """An id type declared nowhere is a project bug pb rejects too."""
    inputs = TRACKS + SESSION_ID.replace("session_id", "device_id")
    err = load_error(tmp_path, {"models/inputs.yaml": inputs})
    assert err.key == "inputs[0].app_defaults.ids[2].type"
    assert "device_id" in err.message


# ---- `key:` with no value ----------------------------------------------------------------------


def test_null_list_is_an_empty_list(tmp_path: Path) -> None:
    """pb (Go's YAML decoder) reads `inputs:` and `vars:` with no value as empty lists."""
    files = {
        "models/inputs.yaml": TRACKS,
        "models/vars.yaml": VARS + "  - name: empty\n        entity_key: user\n        vars:\n",
        "models/macros.yaml": """
            macros:
              - name: one
                inputs:
                value: "1"
            """,
    }
    project = load(tmp_path, files)
    assert project.macros["one"].inputs == []
    assert [v.name for v in project.vars] == ["events"]


# ---- inputs[].where ----------------------------------------------------------------------------


def test_input_where_drops_rows_from_vars_and_stitching(tmp_path: Path) -> None:
    """pb's docs: an input's `where` filters its rows, and a filtered row is not used for stitching either."""
    inputs = TRACKS + "    where: kind <> 'test'\n"
    files = {
        "pb_project.yaml": PB_PROJECT,
        "models/inputs.yaml": inputs,
        "models/vars.yaml": VARS,
        "models/sql.yaml": """
            models:
              - name: kinds
                model_type: sql_template
                model_spec:
                  materialization:
                    output_type: table
                  single_sql: |
                    {% with t = this.DeRef("inputs/tracks") %}
                    select count(*) as n from {{t}}
                    {% endwith %}
            """,
    }
    seed = """create table raw.tracks as select * from (values
        ('u1', 'a1', 'real', timestamp '2025-01-01 10:00:00'),
        ('u1', 'a2', 'test', timestamp '2025-01-02 10:00:00'),
        ('u2', 'a2', 'real', timestamp '2025-01-03 10:00:00'),
        ('u1', 'a1', 'real', timestamp '2025-01-04 10:00:00')
    ) t(user_id, anonymous_id, kind, ts)"""
    out = run_project(tmp_path, files, [seed])
    # without row 2 (kind 'test'), u1/a1 and u2/a2 never meet: two profiles, u1 with 2 rows, u2 with 1
    u1 = min(rid("u1", "user_id"), rid("a1", "anonymous_id"))
    u2 = min(rid("u2", "user_id"), rid("a2", "anonymous_id"))
    events = {r[0]: r[1] for r in out.rows("select user_main_id, events from out.user_feature_view")}
    assert events == {u1: 2, u2: 1}
    assert out.rows("select n from out.kinds") == [(3,)]  # a sql model's DeRef reads the filtered input too


# ---- keys pb accepts that change no value -------------------------------------------------------


def test_keys_pb_accepts_without_effect_are_noted(tmp_path: Path) -> None:
    inputs = TRACKS.replace(
        "        app_defaults:", "        contract:\n          is_append_only: true\n        app_defaults:"
    )
    files = {
        "models/inputs.yaml": inputs,
        "models/vars.yaml": VARS,
        "models/optimizations.yaml": """
            optimizations:
              bundle_entity_vars: false
              enable_input_columns_filtering: true
            """,
        "models/tables.yaml": """
            models:
              - name: table_one
                model_type: feature_table_model
                model_spec:
                  entity_key: user
                  compatibility_mode:
                    linear_dependency_of_vars: false
                  features:
                    - events
            """,
    }
    project = load(tmp_path, files)
    build_plan(project)
    notes = "\n".join(project.notes)
    assert "optimizations (optimizations.yaml: bundle_entity_vars, enable_input_columns_filtering)" in notes
    assert "contract is_append_only on tracks: a run after a complete one reads only their new rows" in notes
    assert "feature_table_model 'table_one': compatibility_mode is accepted" in notes


def test_entity_var_enable_status(tmp_path: Path) -> None:
    """An entity var's own `materialization.enable_status: disabled` leaves it out (pb lists no such var);
    `must_have` computes it as usual."""
    files = {
        "pb_project.yaml": PB_PROJECT,
        "models/inputs.yaml": TRACKS,
        "models/vars.yaml": """
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: events
                      select: count(*)
                      from: inputs/tracks
                  - entity_var:
                      name: dropped
                      select: max(ts)
                      from: inputs/tracks
                      materialization:
                        enable_status: disabled
                  - entity_var:
                      name: first_ts
                      select: min(ts)
                      from: inputs/tracks
                      materialization:
                        enable_status: must_have
            """,
    }
    out = run_project(tmp_path, files, [SEED_TRACKS])
    assert out.columns("out.user_feature_view") == ["user_main_id", "events", "first_ts"]


# ---- feature_table_model keyed by a cohort -------------------------------------------------------


def test_feature_table_of_a_cohort(tmp_path: Path) -> None:
    """`entity_cohort: models/<cohort>` gives a table of the cohort's members and the cohort's vars."""
    files = {
        "pb_project.yaml": PB_PROJECT,
        "models/inputs.yaml": TRACKS,
        "models/vars.yaml": """
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: events
                      select: count(*)
                      from: inputs/tracks
              - name: busy_vars
                entity_cohort: models/busy
                vars:
                  - entity_var:
                      name: last_ts
                      select: max(ts)
                      from: inputs/tracks
            """,
        "models/models.yaml": """
            models:
              - name: busy
                model_type: entity_cohort
                model_spec:
                  extends: user/all
                  filter_pipeline:
                    - type: include
                      value: "{{ user.Var('events') }} > 1"
              - name: busy_table
                model_type: feature_table_model
                model_spec:
                  entity_cohort: models/busy
                  features:
                    - last_ts
            """,
    }
    seed = """create table raw.tracks as select * from (values
        ('u1', 'a1', timestamp '2025-01-01 10:00:00'),
        ('u1', 'a1', timestamp '2025-01-05 10:00:00'),
        ('u2', 'a2', timestamp '2025-01-03 10:00:00')
    ) t(user_id, anonymous_id, ts)"""
    out = run_project(tmp_path, files, [seed])
    # only u1 has more than one event; its last event is on 01-05
    u1 = min(rid("u1", "user_id"), rid("a1", "anonymous_id"))
    assert out.columns("out.busy_table") == ["user_main_id", "valid_at", "last_ts"]  # pb: the end time second
    assert [(r[0], str(r[1])) for r in out.rows("select user_main_id, last_ts from out.busy_table")] == [
        (u1, "2025-01-05 10:00:00")
    ]


def test_cohort_dot_var_in_a_template_is_the_var(tmp_path: Path) -> None:
    """pb renders `{{ busy.first_ts }}` (a cohort's name, then a var) as the var itself, like
    `{{ user.Var('first_ts') }}` (seen in pb 0.26.4's SQL). u1's events are at 01-01 and 01-05: one after
    its first; u2's only event is not after its first."""
    files = {
        "pb_project.yaml": PB_PROJECT,
        "models/inputs.yaml": TRACKS,
        "models/vars.yaml": VARS
        + """
      - name: busy_vars
        entity_cohort: models/busy
        vars:
          - entity_var:
              name: first_ts
              select: min(ts)
              from: inputs/tracks
          - entity_var:
              name: later_events
              select: count(*)
              from: inputs/tracks
              where: ts > {{ busy.first_ts }}
              default_value: 0
    """,
        "models/models.yaml": """
            models:
              - name: busy
                model_type: entity_cohort
                model_spec:
                  extends: user/all
              - name: busy_table
                model_type: feature_table_model
                model_spec:
                  entity_cohort: models/busy
                  features:
                    - later_events
            """,
    }
    seed = """create table raw.tracks as select * from (values
        ('u1', 'a1', timestamp '2025-01-01 10:00:00'),
        ('u1', 'a1', timestamp '2025-01-05 10:00:00'),
        ('u2', 'a2', timestamp '2025-01-03 10:00:00')
    ) t(user_id, anonymous_id, ts)"""
    out = run_project(tmp_path, files, [seed])
    u1 = min(rid("u1", "user_id"), rid("a1", "anonymous_id"))
    u2 = min(rid("u2", "user_id"), rid("a2", "anonymous_id"))
    assert dict(out.rows("select user_main_id, later_events from out.busy_table")) == {u1: 1, u2: 0}


def test_feature_table_of_a_cohort_reads_only_cohort_vars(tmp_path: Path) -> None:
    files = {
        "models/inputs.yaml": TRACKS,
        "models/vars.yaml": VARS,
        "models/models.yaml": """
            models:
              - name: busy
                model_type: entity_cohort
                model_spec:
                  extends: user/all
              - name: busy_table
                model_type: feature_table_model
                model_spec:
                  entity_cohort: models/busy
                  features:
                    - events
            """,
    }
    err = load_error(tmp_path, files)
    assert (Path(err.file).name, err.key) == ("models.yaml", "models[1].model_spec.features[0]")
    assert "not an entity var of cohort 'busy'" in err.message


# ---- keys whose pb meaning is not implemented yet: refused with file, line and key -------------


def test_entity_var_merge_over_an_input_not_append_only_is_refused(tmp_path: Path) -> None:
    # pb 0.26.4 refuses it at load too (merge: is supported: test_format_merge.py)
    merged = VARS.replace("from: inputs/tracks\n", "from: inputs/tracks\n              merge: sum(rowset.events)\n")
    err = load_error(tmp_path, {"models/inputs.yaml": TRACKS, "models/vars.yaml": merged})
    assert (Path(err.file).name, err.line, err.key) == ("vars.yaml", 9, "var_groups[0].vars[0].entity_var.merge")
    assert "'inputs/tracks' is not declared append-only" in err.message


def test_sql_template_features_without_ids_are_refused(tmp_path: Path) -> None:
    # features are supported (test_format_pb_meaning.py); without ids pb has no main id to give them to
    models = """
        models:
          - name: totals
            model_type: sql_template
            model_spec:
              single_sql: select 1 as n
              features:
                - name: n
        """
    err = load_error(tmp_path, {"models/inputs.yaml": TRACKS, "models/sql.yaml": models})
    assert (Path(err.file).name, err.line, err.key) == ("sql.yaml", 6, "models[0].model_spec.features")
    assert "has features but no ids" in err.message


# ---- a feature view "keyed" by the main id -----------------------------------------------------


def test_using_ids_main_id_builds_no_view(tmp_path: Path) -> None:
    """pb 0.26 lists no model for `using_ids: - id: user_main_id`: the default view is keyed by it."""
    project_file = PB_PROJECT.replace(
        "    id_types: [user_id, anonymous_id]\n",
        "    id_types: [user_id, anonymous_id]\n"
        "        feature_views:\n          using_ids:\n            - id: user_main_id\n              name: by_main\n",
    )
    write(tmp_path, {"pb_project.yaml": project_file, "models/inputs.yaml": TRACKS, "models/vars.yaml": VARS})
    project = load_project(tmp_path)
    assert [v.name for v in project.feature_views("user")] == ["user_feature_view"]
    assert any("using_ids 'user_main_id' is the main id" in n for n in project.notes)


def test_maximum_edges_is_refused(tmp_path: Path) -> None:
    capped = PB_PROJECT.replace(
        "      - name: user_id\n", "      - name: user_id\n        maximum_edges:\n          - anonymous_id: 2\n"
    )
    err = load_error(tmp_path, {"pb_project.yaml": capped, "models/inputs.yaml": TRACKS})
    assert (Path(err.file).name, err.line, err.key) == ("pb_project.yaml", 11, "id_types[0].maximum_edges")
    assert "not supported yet" in err.message


# ---- shapes pb reads as text -------------------------------------------------------------------


def test_numeric_select_tags_and_templated_column_type(tmp_path: Path) -> None:
    """pb reads `select: 12.347` as that SQL number, renders a templated column_data_type, accepts `tags:` on
    vars and `available_tags` as {name, description} mappings."""
    project_file = PB_PROJECT + "available_tags:\n      - name: Engagement\n        description: how engaged\n"
    files = {
        "pb_project.yaml": project_file,
        "models/inputs.yaml": TRACKS,
        "models/vars.yaml": """
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: events
                      select: count(*)
                      from: inputs/tracks
                      tags:
                        - Engagement
                      column_data_type: '{{ warehouse.DataType("double") }}'
                  - entity_var:
                      name: constant
                      select: 12.347
            """,
    }
    out = run_project(tmp_path, files, [SEED_TRACKS])
    rows = out.rows("select events, constant, typeof(events) from out.user_feature_view order by events")
    # u1/a1, a2, a3, u4/a4: four profiles with one row each (no session ids declared here)
    assert [(float(e), float(c), t) for e, c, t in rows] == [(1.0, 12.347, "DOUBLE")] * 4
    notes = "\n".join(load_project(tmp_path).notes)
    assert "tags on var(s) events are accepted" in notes
    assert "available_tags is accepted" in notes


# ---- an entity naming another entity's id_stitcher ----------------------------------------------


def test_entity_naming_another_entitys_stitcher(tmp_path: Path) -> None:
    """pb 0.26 loads `id_stitcher: models/user_graph` on entity `account` whose ids are all user ids: its
    `id_model_ref` is that model, its main id column `account_main_id`, its profiles user's clusters."""
    project_file = """
        name: lent
        schema_version: 99
        connection: test
        model_folders:
          - models
        entities:
          - name: user
            id_stitcher: models/user_graph
            id_types: [user_id, anonymous_id]
          - name: account
            id_stitcher: models/user_graph
            id_types: [user_id, anonymous_id]
        id_types:
          - name: user_id
          - name: anonymous_id
        """
    models = """
        models:
          - name: user_graph
            model_type: id_stitcher
            model_spec:
              entity_key: user
              edge_sources:
                - from: inputs/tracks
        """
    files = {
        "pb_project.yaml": project_file,
        "models/inputs.yaml": TRACKS,
        "models/vars.yaml": VARS,
        "models/m.yaml": models,
    }
    seed = """create table raw.tracks as select * from (values
        ('u1', 'a1', timestamp '2025-01-01 10:00:00'),
        (null, 'a1', timestamp '2025-01-02 10:00:00'),
        ('u2', 'a2', timestamp '2025-01-03 10:00:00')
    ) t(user_id, anonymous_id, ts)"""
    out = run_project(tmp_path, files, [seed])
    u1 = min(rid("u1", "user_id"), rid("a1", "anonymous_id"))
    u2 = min(rid("u2", "user_id"), rid("a2", "anonymous_id"))
    assert sorted(out.rows("select account_main_id from out.account_all")) == sorted([(u1,), (u2,)])
    assert out.columns("out.account_feature_view") == ["account_main_id"]
    # the stitcher's view stays the user entity's
    assert sorted(out.rows("select distinct user_main_id from out.user_graph")) == sorted([(u1,), (u2,)])
    notes = "\n".join(load_project(tmp_path).notes)
    assert "entity 'account' names the id_stitcher of entity 'user'" in notes


# ---- a sql model reading the id graph ----------------------------------------------------------


def test_sql_model_reads_the_id_graph(tmp_path: Path) -> None:
    """pb loads `this.DeRef("models/<id stitcher>")` in a sql_template; it is planned after the stitcher,
    and a model reading that model waits too."""
    models = """
        models:
          - name: ids_per_profile
            model_type: sql_template
            model_spec:
              materialization:
                output_type: table
              single_sql: |
                {% with graph = this.DeRef("models/user_default_id_stitcher") %}
                select user_main_id, count(*) as n_ids from {{graph}} group by user_main_id
                {% endwith %}
          - name: biggest
            model_type: sql_template
            model_spec:
              materialization:
                output_type: table
              single_sql: |
                {% with per = this.DeRef("models/ids_per_profile") %}
                select max(n_ids) as n from {{per}}
                {% endwith %}
        """
    files = {
        "pb_project.yaml": PB_PROJECT,
        "models/inputs.yaml": TRACKS,
        "models/vars.yaml": VARS,
        "models/m.yaml": models,
    }
    seed = """create table raw.tracks as select * from (values
        ('u1', 'a1', timestamp '2025-01-01 10:00:00'),
        ('u1', 'a2', timestamp '2025-01-02 10:00:00'),
        ('u2', 'a3', timestamp '2025-01-03 10:00:00')
    ) t(user_id, anonymous_id, ts)"""
    out = run_project(tmp_path, files, [seed])
    u1 = min(rid("u1", "user_id"), rid("a1", "anonymous_id"))
    u2 = min(rid("u2", "user_id"), rid("a3", "anonymous_id"))
    # u1's profile holds u1, a1, a2; u2's holds u2, a3
    assert dict(out.rows("select user_main_id, n_ids from out.ids_per_profile")) == {u1: 3, u2: 2}
    assert out.rows("select n from out.biggest") == [(3,)]


def test_stitcher_reading_its_own_graph_is_refused(tmp_path: Path) -> None:
    models = """
        models:
          - name: loop
            model_type: sql_template
            model_spec:
              single_sql: |
                {% with graph = this.DeRef("models/graph") %}
                select other_id as user_id from {{graph}}
                {% endwith %}
              ids:
                - select: user_id
                  type: user_id
                  entity: user
          - name: graph
            model_type: id_stitcher
            model_spec:
              entity_key: user
              edge_sources:
                - from: inputs/tracks
                - from: models/loop
        """
    project_file = PB_PROJECT.replace(
        "        id_types: [user_id", "        id_stitcher: models/graph\n        id_types: [user_id"
    )
    err = load_error(tmp_path, {"pb_project.yaml": project_file, "models/inputs.yaml": TRACKS, "models/m.yaml": models})
    assert Path(err.file).name == "m.yaml"
    assert "edge source of id stitcher 'graph'" in err.message


def test_feature_table_relative_var_paths(tmp_path: Path) -> None:
    """pb resolves a feature table's `./events` and `../events` to the var events (checked with pb 0.26:
    both give a dependency on user/all/events); other path forms it rejects, and so does the plan."""
    table = """
        models:
          - name: table_one
            model_type: feature_table_model
            model_spec:
              entity_key: user
              features:
                - {path}
        """
    for path in ("./events", "../events"):
        project = load(
            tmp_path, {"models/inputs.yaml": TRACKS, "models/vars.yaml": VARS, "models/t.yaml": table.format(path=path)}
        )
        assert project.feature_tables["table_one"].spec.features == ["events"]
        build_plan(project)
    err = load_error(
        tmp_path,
        {"models/inputs.yaml": TRACKS, "models/vars.yaml": VARS, "models/t.yaml": table.format(path="user/all/events")},
    )
    assert err.key == "models[0].model_spec.features[0]"


# ---- an id_type sql filter reading a sql model --------------------------------------------------


def test_sql_filter_reads_a_sql_model(tmp_path: Path) -> None:
    """pb loads `sql: {select: email, from: models/<sql model>}`: ids listed by the model are excluded."""
    project_file = """
        name: filtered
        schema_version: 99
        connection: test
        model_folders:
          - models
        entities:
          - name: user
            id_types: [user_id, anonymous_id]
        id_types:
          - name: user_id
          - name: anonymous_id
            filters:
              - type: exclude
                sql:
                  select: anonymous_id
                  from: models/shared_devices
        """
    models = """
        models:
          - name: shared_devices
            model_type: sql_template
            model_spec:
              materialization:
                output_type: ephemeral
              single_sql: select 'kiosk' as anonymous_id
        """
    files = {
        "pb_project.yaml": project_file,
        "models/inputs.yaml": TRACKS,
        "models/vars.yaml": VARS,
        "models/m.yaml": models,
    }
    seed = """create table raw.tracks as select * from (values
        ('u1', 'kiosk', timestamp '2025-01-01 10:00:00'),
        ('u2', 'kiosk', timestamp '2025-01-02 10:00:00'),
        ('u2', 'a2', timestamp '2025-01-03 10:00:00')
    ) t(user_id, anonymous_id, ts)"""
    out = run_project(tmp_path, files, [seed])
    # the shared 'kiosk' id is no node, so u1 and u2 stay apart: u1 (1 row), u2 with a2 (2 rows)
    graph = out.rows("select other_id, user_main_id from out.user_default_id_stitcher order by 1")
    u1 = rid("u1", "user_id")
    u2 = rid("u2", "user_id")  # seen on 01-02, before a2 (01-03)
    assert graph == [("a2", u2), ("u1", u1), ("u2", u2)]
    events = dict(out.rows("select user_main_id, events from out.user_feature_view"))
    assert events == {u1: 1, u2: 2}


def test_var_group_of_the_all_cohort(tmp_path: Path) -> None:
    """`entity_cohort: user/all` on a var_group (as pb writes the ALL cohort) owns entity vars of user."""
    grouped = VARS.replace("        entity_key: user\n", "        entity_cohort: user/all\n")
    project = load(tmp_path, {"models/inputs.yaml": TRACKS, "models/vars.yaml": grouped})
    assert [(v.entity, v.cohort, v.name) for v in project.vars] == [("user", None, "events")]
    build_plan(project)


# ---- input_vars on a sql model -----------------------------------------------------------------


def test_input_vars_on_a_sql_model(tmp_path: Path) -> None:
    """pb computes input_vars on a sql model with ids (window vars per session), and entity vars read them
    as `<model>.Var("x")`."""
    models = """
        models:
          - name: events
            model_type: sql_template
            model_spec:
              materialization:
                output_type: table
              single_sql: |
                {% with t = this.DeRef("inputs/tracks") %}
                select user_id, anonymous_id, session, ts from {{t}}
                {% endwith %}
              ids:
                - select: user_id
                  type: user_id
                  entity: user
                - select: anonymous_id
                  type: anonymous_id
                  entity: user
        """
    vars_file = """
        var_groups:
          - name: vars
            entity_key: user
            vars:
              - input_var:
                  name: session_start
                  from: models/events
                  select: min(ts)
                  window:
                    partition_by:
                      - session
              - entity_var:
                  name: first_session_start
                  from: models/events
                  select: max({{ events.Var("session_start") }})
        """
    files = {
        "pb_project.yaml": PB_PROJECT,
        "models/inputs.yaml": TRACKS,
        "models/vars.yaml": vars_file,
        "models/m.yaml": models,
    }
    seed = """create table raw.tracks as select * from (values
        ('u1', 'a1', 's1', timestamp '2025-01-01 10:00:00'),
        ('u1', 'a1', 's1', timestamp '2025-01-01 11:00:00'),
        ('u1', 'a1', 's2', timestamp '2025-01-03 09:00:00'),
        ('u2', 'a2', 's3', timestamp '2025-01-02 10:00:00')
    ) t(user_id, anonymous_id, session, ts)"""
    out = run_project(tmp_path, files, [seed])
    u1 = min(rid("u1", "user_id"), rid("a1", "anonymous_id"))
    u2 = min(rid("u2", "user_id"), rid("a2", "anonymous_id"))
    # u1's sessions start at 01-01 10:00 (s1) and 01-03 09:00 (s2): the latest start is s2's
    got = {m: str(v) for m, v in out.rows("select user_main_id, first_session_start from out.user_feature_view")}
    assert got == {u1: "2025-01-03 09:00:00", u2: "2025-01-02 10:00:00"}


# ---- timegrains, by pb 0.26.4's rules (its compiled SQL at each grain and end time) ---------------


def test_default_time_grain_runs_as_of_the_grains_last_boundary(tmp_path: Path) -> None:
    """`default_time_grain: day` gives every model a day grain, and pb reads input rows up to the last 00:00
    UTC at or before the run's end time: a run ending 2025-01-03 18:00 counts the rows of 01-01 and 01-02
    only (a3's row at 01-03 10:00 is after the boundary, so a3 is no profile at all)."""
    files = {"pb_project.yaml": PB_PROJECT + "default_time_grain: day\n", "models/inputs.yaml": TRACKS}
    files["models/vars.yaml"] = VARS
    out = run_project(tmp_path, files, [SEED_TRACKS], end_time="2025-01-03T18:00:00Z")
    events = {r[0]: r[1] for r in out.rows("select user_main_id, events from out.user_feature_view")}
    assert events == {min(rid("u1", "user_id"), rid("a1", "anonymous_id")): 1, rid("a2", "anonymous_id"): 1}


def test_a_models_time_grain_equal_to_the_default_is_accepted(tmp_path: Path) -> None:
    pb = PB_PROJECT + "default_time_grain: day\n"
    grouped = VARS.replace("        entity_key: user\n", "        entity_key: user\n        time_grain: day\n")
    project = load(tmp_path, {"pb_project.yaml": pb, "models/inputs.yaml": TRACKS, "models/vars.yaml": grouped})
    assert project.time_grain == "day"


COHORT = """
    models:
      - name: busy
        model_type: entity_cohort
        model_spec:
          extends: user/all
          time_grain: GRAIN
    """


@pytest.mark.parametrize(
    ("default", "grain", "says"),
    [
        (None, "day", "has time_grain 'day' but the project has no default_time_grain"),
        ("day", "hour", "has time_grain 'hour', finer than the project's default_time_grain 'day'"),
        ("day", "week", "time_grain (on model 'busy') is not supported yet"),
        ("day", "fortnight", "unknown time grain 'fortnight'"),
    ],
)
def test_a_models_time_grain_pb_refuses_or_we_do_not_compute_yet(
    tmp_path: Path, default: str | None, grain: str, says: str
) -> None:
    """pb refuses a model grain without a default and one finer than the default; a coarser one computes the
    model (and what it reads) as of an earlier boundary in the same run, not implemented here: refused."""
    pb = PB_PROJECT + (f"default_time_grain: {default}\n" if default else "")
    cohort = COHORT.replace("GRAIN", grain)
    err = load_error(tmp_path, {"pb_project.yaml": pb, "models/inputs.yaml": TRACKS, "models/models.yaml": cohort})
    assert (Path(err.file).name, err.line, err.key) == ("models.yaml", 6, "models[0].model_spec.time_grain")
    assert says in err.message


def test_default_time_grain_must_be_one_of_pbs(tmp_path: Path) -> None:
    """pb 0.26.4 takes `10minutes`, not the `tenminutes` of some of its docs."""
    err = load_error(tmp_path, {"pb_project.yaml": PB_PROJECT + "default_time_grain: tenminutes\n"})
    assert (Path(err.file).name, err.key) == ("pb_project.yaml", "default_time_grain")
    assert "unknown time grain 'tenminutes'" in err.message


# ---- <input>.Var("COLUMN") of a contract column --------------------------------------------------


def test_input_var_reference_to_a_contract_column(tmp_path: Path) -> None:
    """pb resolves `tracks.Var("amount")` to the column when the input declares it in contract.with_columns."""
    inputs = TRACKS.replace(
        "        app_defaults:",
        "        contract:\n          with_columns:\n            - name: amount\n        app_defaults:",
    )
    vars_file = """
        var_groups:
          - name: vars
            entity_key: user
            vars:
              - entity_var:
                  name: spent
                  from: inputs/tracks
                  select: sum({{ tracks.Var("amount") }})
                  where: '{{ tracks.Var("amount") }} > 1'
        """
    files = {"pb_project.yaml": PB_PROJECT, "models/inputs.yaml": inputs, "models/vars.yaml": vars_file}
    seed = """create table raw.tracks as select * from (values
        ('u1', 'a1', 5, timestamp '2025-01-01 10:00:00'),
        ('u1', 'a1', 1, timestamp '2025-01-02 10:00:00'),
        ('u1', 'a1', 7, timestamp '2025-01-03 10:00:00')
    ) t(user_id, anonymous_id, amount, ts)"""
    out = run_project(tmp_path, files, [seed])
    u1 = min(rid("u1", "user_id"), rid("a1", "anonymous_id"))
    # rows with amount > 1: 5 + 7
    assert out.rows("select user_main_id, spent from out.user_feature_view") == [(u1, 12)]


def test_input_var_reference_to_an_undeclared_column_is_refused(tmp_path: Path) -> None:
    vars_file = VARS.replace("select: count(*)", "select: sum({{ tracks.Var('amount') }})")
    err = load_error(tmp_path, {"models/inputs.yaml": TRACKS, "models/vars.yaml": vars_file})
    assert "input 'tracks' has no input var 'amount'" in err.message
