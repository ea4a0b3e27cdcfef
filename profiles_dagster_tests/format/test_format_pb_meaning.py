"""Constructs whose meaning comes from the SQL pb 0.26.4 writes for them (read from `pb compile` on Postgres):
an input var's window partitioned by `rudder_id`, the rows an input var is computed over, and the var
selects pb's SQL cannot run (refused at validate, naming the file, line and key). Expected values are worked
out by hand from the seeded rows.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from profiles_dagster.cli import main
from profiles_dagster_tests.format.harness import run_project, write
from profiles_dagster_tests.format.test_format_core import rid

PB_PROJECT = """
    name: {name}
    schema_version: 99
    connection: test
    model_folders:
      - models
    entities:
      - name: user
        id_types:
          - user_id
          - anon_id
    id_types:
      - name: user_id
      - name: anon_id
        filters:
          - type: exclude
            value: unknown
    """

EVENTS = """
    inputs:
      - name: events
        app_defaults:
          table: raw.events
          occurred_at_col: ts
          ids:
            - select: user_id
              type: user_id
              entity: user
            - select: anon_id
              type: anon_id
              entity: user
    """

SESSION_VARS = """
    var_groups:
      - name: sessions
        entity_key: user
        vars:
          - input_var:
              name: session_start
              from: inputs/events
              select: min(ts)
              window:
                partition_by:
                  - session_id
                  - rudder_id
          - input_var:
              name: session_events
              from: inputs/events
              select: count(*)
              window:
                partition_by:
                  - session_id
          - input_var:
              name: event_seq
              from: inputs/events
              select: row_number()
              window:
                partition_by:
                  - rudder_id
                order_by:
                  - ts
          - entity_var:
              name: first_session_start
              from: inputs/events
              select: min({{ events.Var("session_start") }})
          - entity_var:
              name: biggest_session
              from: inputs/events
              select: max({{ events.Var("session_events") }})
          - entity_var:
              name: last_seq
              from: inputs/events
              select: max({{ events.Var("event_seq") }})
    """

SEED = [
    """create table raw.events as select * from (values
        ('e1', 'u1', 'a1', 's1', timestamp '2025-01-01 10:00:00'),
        ('e2', 'u1', 'a1', 's1', timestamp '2025-01-01 11:00:00'),
        ('e3', 'u2', 'a2', 's1', timestamp '2025-01-01 09:00:00'),
        ('e4', NULL, 'unknown', 's1', timestamp '2025-01-01 08:00:00'),
        ('e5', NULL, 'a1', 's2', timestamp '2025-01-02 12:00:00')
    ) t(event_id, user_id, anon_id, session_id, ts)""",
]


def test_input_var_window_partitioned_by_rudder_id_and_only_over_rows_with_a_main_id(tmp_path: Path) -> None:
    # pb: `PARTITION BY <table>.session_id, <table>.user_main_id ... WHERE user_main_id IS NOT NULL`.
    # e4 has no id that passes the filters ('unknown' is excluded), so no main id: it is left out of every
    # input var's window (session s1 counts 3 events, not 4; its 08:00 is no session start) and keeps NULL.
    # e5 is u1's through a1, so u1 has sessions s1 (e1, e2) and s2 (e5); u2 has s1 (e3).
    files = {
        "pb_project.yaml": PB_PROJECT.format(name="rudder_id_windows"),
        "models/inputs.yaml": EVENTS,
        "models/vars.yaml": SESSION_VARS,
    }
    out = run_project(tmp_path, files, SEED)
    u1, u2 = out.main_id_of("u1", "user_id"), out.main_id_of("u2", "user_id")
    view = out.by_key("out.user_feature_view")
    assert view[u1]["first_session_start"] == datetime(2025, 1, 1, 10)  # s1 for u1 starts at e1, not e3 or e4
    assert view[u2]["first_session_start"] == datetime(2025, 1, 1, 9)
    assert (view[u1]["biggest_session"], view[u2]["biggest_session"]) == (3, 3)
    assert (view[u1]["last_seq"], view[u2]["last_seq"]) == (3, 1)
    (mapped,) = out.rows("select table_name from out._profiles_materials where step = 'user/input_vars_mapped/events'")
    rows = out.rows(f'select event_id, session_start, session_events, event_seq from out."{mapped[0]}" order by 1')
    assert rows == [
        ("e1", datetime(2025, 1, 1, 10), 3, 1),
        ("e2", datetime(2025, 1, 1, 10), 3, 2),
        ("e3", datetime(2025, 1, 1, 9), 3, 1),
        ("e4", None, None, None),
        ("e5", datetime(2025, 1, 2, 12), 1, 3),
    ]


def _validate_error(tmp_path: Path, name: str, vars_yaml: str, capsys) -> str:
    write(
        tmp_path,
        {"pb_project.yaml": PB_PROJECT.format(name=name), "models/inputs.yaml": EVENTS, "models/vars.yaml": vars_yaml},
    )
    assert main(["validate", "-p", str(tmp_path)]) == 1
    return capsys.readouterr().err


def test_window_function_in_a_sourced_entity_var_without_window_is_refused(tmp_path: Path, capsys) -> None:
    # pb writes `SELECT main_id, first_value(name) FROM .. GROUP BY main_id`: no OVER, which the warehouse
    # rejects; refused at validate where the select is written, with the way out
    vars_yaml = """
        var_groups:
          - name: g
            entity_key: user
            vars:
              - entity_var:
                  name: n_events
                  from: inputs/events
                  select: count(*)
              - entity_var:
                  name: first_session
                  from: inputs/events
                  select: first_value(session_id)
        """
    err = _validate_error(tmp_path, "first_value_bare", vars_yaml, capsys)
    assert "vars.yaml:12:11: var_groups[0].vars[1].entity_var.select:" in err
    assert "`first_value(...)` is a window function" in err and "'first_session'" in err
    assert "window: order_by" in err


def test_aggregate_in_an_entity_var_without_from_is_refused(tmp_path: Path, capsys) -> None:
    # pb computes a var without `from` over the entity var table with no GROUP BY: `SELECT main_id,
    # any_value(..) FROM <var table>` fails on the warehouse (pb 0.26.4 on Postgres: "must appear in the GROUP
    # BY clause"); an aggregate inside its own OVER clause is a window, which pb computes
    vars_yaml = """
        var_groups:
          - name: g
            entity_key: user
            vars:
              - entity_var:
                  name: n_events
                  from: inputs/events
                  select: count(*)
              - entity_var:
                  name: running
                  select: "sum({{ user.Var('n_events') }}) over (order by {{ user.Var('n_events') }})"
              - entity_var:
                  name: doubled
                  select: "any_value({{ user.Var('n_events') }} * 2)"
        """
    err = _validate_error(tmp_path, "any_value_bare", vars_yaml, capsys)
    assert "vars.yaml:14:11: var_groups[0].vars[2].entity_var.select:" in err
    assert "`any_value(...)` aggregates" in err and "'doubled'" in err and "GROUP BY" in err
    assert "'running'" not in err


def test_aggregate_in_an_input_var_without_window_is_refused(tmp_path: Path, capsys) -> None:
    # pb: `SELECT input_row_id, max(ts) FROM <input var table> WHERE ..`: no GROUP BY, rejected likewise
    vars_yaml = """
        var_groups:
          - name: g
            entity_key: user
            vars:
              - input_var:
                  name: last_ts
                  from: inputs/events
                  select: max(ts)
              - entity_var:
                  name: latest
                  from: inputs/events
                  select: max({{ events.Var("last_ts") }})
        """
    err = _validate_error(tmp_path, "input_var_agg", vars_yaml, capsys)
    assert "vars.yaml:8:11: var_groups[0].vars[0].input_var.select:" in err
    assert "`max(...)` aggregates" in err and "input var 'last_ts'" in err and "window:" in err


FEATURE_PROJECT = """
    name: model_features
    schema_version: 99
    connection: test
    model_folders:
      - models
    entities:
      - name: user
        id_types:
          - user_id
          - anon_id
        feature_views:
          using_ids:
            - id: anon_id
              name: by_anon
    id_types:
      - name: user_id
      - name: anon_id
    """

FEATURE_MODELS = """
    models:
      - name: profile_facts
        model_type: sql_template
        model_spec:
          materialization:
            output_type: table
          single_sql: |
            {% with e = this.DeRef("inputs/events") %}
            select user_id, anon_id, amount as a_amount, name as m_name from {{ e }}
            {% endwith %}
          ids:
            - select: user_id
              type: user_id
              entity: user
            - select: anon_id
              type: anon_id
              entity: user
          features:
            - name: m_name
              description: a name the profile's rows carry
            - name: a_amount
      - name: big
        model_type: entity_cohort
        model_spec:
          extends: user/all
          filter_pipeline:
            - type: include
              value: "{{ user.Var('total') }} > 5"
    var_groups:
      - name: g
        entity_key: user
        vars:
          - entity_var:
              name: total
              from: inputs/events
              select: sum(amount)
          - entity_var:
              name: b_var
              from: inputs/events
              select: count(*)
    """

FEATURE_SEED = [
    """create table raw.events as select * from (values
        ('u1', 'a1', 10, 'bob', timestamp '2025-01-01 10:00:00'),
        ('u1', 'a2', 5, 'al', timestamp '2025-01-02 10:00:00'),
        (NULL, 'a2', 7, 'cy', timestamp '2025-01-03 10:00:00'),
        ('u2', 'a3', 1, 'di', timestamp '2025-01-04 10:00:00')
    ) t(user_id, anon_id, amount, name, ts)""",
]


def test_features_of_a_sql_template_join_every_feature_view(tmp_path: Path) -> None:
    # pb 0.26.4: each feature view LEFT JOINs `SELECT main_id, MAX(col) .. FROM (the model's rows with the main id
    # their ids stitch to) GROUP BY main_id`; the columns come grouped by what computes them, in path order
    # (`models/profile_facts` before `user/all/var_table`), each group by name; cohort views carry them too.
    # u1, a1, a2 are one profile (rows 1-3: amounts 10, 5, 7; names bob, al, cy), u2 and a3 another (1, di)
    files = {
        "pb_project.yaml": FEATURE_PROJECT,
        "models/inputs.yaml": EVENTS,
        "models/models.yaml": FEATURE_MODELS,
    }
    out = run_project(tmp_path, files, FEATURE_SEED)
    u1, u2 = out.main_id_of("u1", "user_id"), out.main_id_of("u2", "user_id")
    assert out.columns("out.user_feature_view") == ["user_main_id", "a_amount", "m_name", "b_var", "total"]
    view = out.by_key("out.user_feature_view")
    assert {k: view[u1][k] for k in ("a_amount", "m_name", "b_var", "total")} == {
        "a_amount": 10,
        "m_name": "cy",
        "b_var": 3,
        "total": 22,
    }
    assert {k: view[u2][k] for k in ("a_amount", "m_name", "b_var", "total")} == {
        "a_amount": 1,
        "m_name": "di",
        "b_var": 1,
        "total": 1,
    }
    by_anon = out.rows("select anon_id, a_amount, m_name from out.by_anon order by 1")
    assert by_anon == [("a1", 10, "cy"), ("a2", 10, "cy"), ("a3", 1, "di")]
    assert out.columns("out.big_feature_view") == ["user_main_id", "a_amount", "m_name", "b_var", "total"]
    assert out.rows("select user_main_id, a_amount, m_name from out.big_feature_view") == [(u1, 10, "cy")]


def test_sql_template_features_need_ids_and_names_of_their_own(tmp_path: Path, capsys) -> None:
    no_ids = FEATURE_MODELS.replace(
        """          ids:
            - select: user_id
              type: user_id
              entity: user
            - select: anon_id
              type: anon_id
              entity: user
""",
        "",
    )
    files = {"pb_project.yaml": FEATURE_PROJECT, "models/inputs.yaml": EVENTS, "models/models.yaml": no_ids}
    write(tmp_path / "a", files)
    assert main(["validate", "-p", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "models.yaml:" in err and "models[0].model_spec.features" in err and "has features but no ids" in err
    clash = FEATURE_MODELS.replace("name: b_var", "name: a_amount")
    write(tmp_path / "b", {**files, "models/models.yaml": clash})
    assert main(["validate", "-p", str(tmp_path / "b")]) == 1
    assert "var 'a_amount' is defined twice" in capsys.readouterr().err


def test_rudder_id_typed_id_holds_the_main_id_and_deref_names_an_input_in_its_window(tmp_path: Path) -> None:
    # pb 0.26.4: an id of type `rudder_id` on a sql model is the entity's main id itself: its rows are read by
    # `ON <select> = <main id>` (no lookup in the graph, and no node of it: pb's stitcher takes only the other
    # ids). `this.DeRef("inputs/x")` of an input read up to the end time is a name (pb: a CTE), so `{{ c }}.col`
    # works as with a table; the row dated after the end time is not read.
    files = {
        "pb_project.yaml": """
            name: rudder_id_ids
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
            """,
        "models/inputs.yaml": """
            inputs:
              - name: orders
                app_defaults:
                  table: raw.orders
                  occurred_at_col: ts
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
              - name: crm
                app_defaults:
                  table: raw.crm
                  occurred_at_col: updated_at
            """,
        "models/models.yaml": """
            models:
              - name: scores
                model_type: sql_template
                model_spec:
                  materialization:
                    output_type: table
                  single_sql: |
                    {% with c = this.DeRef("inputs/crm") %}
                    select {{ c }}.profile, {{ c }}.score from {{ c }}
                    {% endwith %}
                  ids:
                    - select: profile
                      type: rudder_id
                      entity: user
                  features:
                    - name: score
            var_groups:
              - name: g
                entity_key: user
                vars:
                  - entity_var:
                      name: n_scores
                      from: models/scores
                      select: count(*)
            """,
    }
    u1, u2 = rid("u1", "user_id"), rid("u2", "user_id")
    seed = [
        """create table raw.orders as select * from (values
            ('u1', timestamp '2025-01-01 00:00:00'), ('u2', timestamp '2025-01-02 00:00:00')
        ) t(user_id, ts)""",
        f"""create table raw.crm as select * from (values
            ('{u1}', 7, timestamp '2025-02-01 00:00:00'),
            ('{u1}', 9, timestamp '2025-03-01 00:00:00'),
            ('{u2}', 4, timestamp '2025-12-01 00:00:00'),
            ('rid_nobody', 1, timestamp '2025-02-01 00:00:00')
        ) t(profile, score, updated_at)""",
    ]
    out = run_project(tmp_path, files, seed)
    assert sorted(r[0] for r in out.rows("select user_main_id from out.user_all")) == sorted([u1, u2])
    view = out.by_key("out.user_feature_view")
    assert (view[u1]["score"], view[u1]["n_scores"]) == (9, 2)
    assert (view[u2]["score"], view[u2]["n_scores"]) == (None, None)  # its row is after the end time


def test_an_id_naming_a_column_the_sql_model_does_not_select_is_an_error_where_it_is_read(
    tmp_path: Path, capsys
) -> None:
    # the model's rows are read by their ids (here for its features); pb's SQL joins on the id's column, which
    # the model does not have, and fails on the warehouse: said at validate, at the id
    broken = FEATURE_MODELS.replace(
        "select user_id, anon_id, amount as a_amount", "select user_id as uid, anon_id, amount as a_amount"
    )
    files = {"pb_project.yaml": FEATURE_PROJECT, "models/inputs.yaml": EVENTS, "models/models.yaml": broken}
    write(tmp_path, files)
    assert main(["validate", "-p", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "models.yaml:12:11: models[0].model_spec.ids[0].select:" in err
    assert "reads 'user_id', which the model does not select" in err and "uid, anon_id, a_amount, m_name" in err


MAIN_ID_NAMED_MODEL = """
    models:
      - name: scores
        model_type: sql_template
        model_spec:
          materialization:
            output_type: table
          ids:
            - select: user_id
              type: user_id
              entity: user
          single_sql: |
            select user_id, 'stale' as user_main_id, 5 as points from {{ this.DeRef("inputs/events") }}
    var_groups:
      - name: vars
        entity_key: user
        vars:
          - entity_var:
              name: points
              select: sum(points)
              from: models/scores
          - entity_var:
              name: seen_main_id
              select: max(user_main_id)
              from: models/scores
    """


def test_a_sql_model_column_named_like_the_main_id_gives_way_to_the_stitched_main_id(tmp_path: Path) -> None:
    # pb 0.26.4 (Postgres) drops the model's own `user_main_id` from the model's var table and puts the stitched
    # main id in its place: vars group by, and read, the stitched one. u1 and u2 share a1: one profile, rows
    # e1-e3 (5 points each) -> 15; u3 alone (e6) -> 5. Both see their own main id, never 'stale'.
    seed = [
        """create table raw.events as select * from (values
            ('e1', 'u1', 'a1', timestamp '2025-01-01 10:00:00'),
            ('e2', 'u1', NULL, timestamp '2025-01-01 11:00:00'),
            ('e3', 'u2', 'a1', timestamp '2025-01-02 09:00:00'),
            ('e6', 'u3', NULL, timestamp '2025-01-03 09:00:00')
        ) t(event_id, user_id, anon_id, ts)""",
    ]
    files = {
        "pb_project.yaml": PB_PROJECT.format(name="main_id_named_model"),
        "models/inputs.yaml": EVENTS,
        "models/models.yaml": MAIN_ID_NAMED_MODEL,
    }
    out = run_project(tmp_path, files, seed)
    u1, u3 = out.main_id_of("u1", "user_id"), out.main_id_of("u3", "user_id")
    assert out.main_id_of("u2", "user_id") == u1 != u3
    view = out.by_key("out.user_feature_view")
    assert {k: (v["points"], v["seen_main_id"]) for k, v in view.items()} == {u1: (15, u1), u3: (5, u3)}


def test_a_sql_model_column_named_like_the_main_id_gives_way_on_postgres_too(tmp_path: Path, postgres_standin) -> None:
    # Postgres cannot select "every column but": the model's columns are spelled out without its own
    # `user_main_id` (a duplicate name was an error there, where pb runs). Same rows and values as above.
    import yaml

    target = postgres_standin.target("main_id_named_pg")  # a fresh database
    con = postgres_standin.connect("main_id_named_pg")
    with con.cursor() as cur:
        cur.execute("create schema raw")
        cur.execute(
            """create table raw.events as select * from (values
                ('e1', 'u1', 'a1', timestamp '2025-01-01 10:00:00'),
                ('e2', 'u1', NULL, timestamp '2025-01-01 11:00:00'),
                ('e3', 'u2', 'a1', timestamp '2025-01-02 09:00:00'),
                ('e6', 'u3', NULL, timestamp '2025-01-03 09:00:00')
            ) t(event_id, user_id, anon_id, ts)"""
        )
    con.close()
    outputs = {"dev": {**target, "schema": "out"}}
    files = {
        "siteconfig.yaml": yaml.safe_dump({"connections": {"test": {"target": "dev", "outputs": outputs}}}),
        "pb_project.yaml": PB_PROJECT.format(name="main_id_named_model"),
        "models/inputs.yaml": EVENTS,
        "models/models.yaml": MAIN_ID_NAMED_MODEL,
    }
    write(tmp_path, files)
    assert main(["run", "-p", str(tmp_path), "--end_time", "2025-06-01T00:00:00Z"]) == 0, "the project did not run"
    con = postgres_standin.connect("main_id_named_pg")
    with con.cursor() as cur:
        cur.execute("select other_id, user_main_id from out.user_default_id_stitcher where other_id_type = 'user_id'")
        main_of = dict(cur.fetchall())
        cur.execute("select user_main_id, points, seen_main_id from out.user_feature_view")
        view = {row[0]: (int(row[1]), row[2]) for row in cur.fetchall()}
    con.close()
    u1, u3 = main_of["u1"], main_of["u3"]
    assert main_of["u2"] == u1 != u3
    assert view == {u1: (15, u1), u3: (5, u3)}
