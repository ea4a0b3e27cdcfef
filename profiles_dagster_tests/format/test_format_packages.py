"""Local packages with inputsMap, a templated pb_project.yaml, sql models as edge sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles_dagster import ProfilesError
from profiles_dagster.project.loader import load_project
from profiles_dagster_tests.format.harness import run_project, write
from profiles_dagster_tests.format.test_format_core import rid

PACKAGE = {
    "vendor/base_features/pb_project.yaml": """
        name: base_features
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
    "vendor/base_features/models/inputs.yaml": """
        inputs:
          - name: rsTracks
            app_defaults:
              table: rudder.tracks
              occurred_at_col: timestamp
              ids:
                - select: user_id
                  type: user_id
                  entity: user
        """,
    "vendor/base_features/models/vars.yaml": """
        var_groups:
          - name: base_vars
            entity_key: user
            vars:
              - entity_var:
                  name: events_total
                  select: count(*)
                  from: inputs/rsTracks
        """,
}


def test_local_package_with_inputs_map_and_templated_project(tmp_path: Path) -> None:
    files = {
        **PACKAGE,
        "pb_project.yaml": """
            name: with_package
            schema_version: {{ best_schema_version }}
            connection: test
            model_folders:
              - models
            packages:
              - name: base_features
                url: vendor/base_features
                inputsMap:
                  rsTracks: inputs/tracks
            entities:
              - name: user
                id_types:
                  - user_id
            id_types:
              - name: user_id
            """,
        "models/inputs.yaml": """
            inputs:
              - name: tracks
                app_defaults:
                  table: raw.tracks
                  occurred_at_col: ts
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
            """,
    }
    seed = [
        """create table raw.tracks as select * from (values
            ('u1', timestamp '2025-01-01 00:00:00'), ('u1', timestamp '2025-01-02 00:00:00'),
            ('u2', timestamp '2025-01-03 00:00:00')) t(user_id, ts)""",
    ]
    out = run_project(tmp_path, files, seed)
    assert dict(out.rows("select user_main_id, events_total from out.user_feature_view")) == {
        rid("u1", "user_id"): 2,
        rid("u2", "user_id"): 1,
    }


def test_remote_package_is_refused_with_what_to_do(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pb_project.yaml": """
            name: remote
            schema_version: 99
            connection: test
            packages:
              - name: corelib
                url: "https://github.com/rudderlabs/profiles-corelib/tag/schema_{{best_schema_version}}"
            entities: []
            """,
            "models/empty.yaml": "",
        },
    )
    with pytest.raises(ProfilesError) as err:
        load_project(tmp_path)
    assert err.value.line == 6 and "schema_99" in err.value.message and "vendor" in (err.value.hint or "")


def test_sql_model_as_edge_source_and_vars_from_the_id_graph(tmp_path: Path) -> None:
    files = {
        "pb_project.yaml": """
            name: model_edges
            schema_version: 99
            connection: test
            model_folders:
              - models
            entities:
              - name: user
                id_stitcher: models/user_graph
                id_types:
                  - user_id
                  - email
            id_types:
              - name: user_id
              - name: email
            """,
        "models/models.yaml": """
            inputs:
              - name: signups
                app_defaults:
                  table: raw.signups
                  occurred_at_col: ts
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
            models:
              - name: crm_links
                model_type: sql_template
                model_spec:
                  materialization:
                    output_type: table
                  occurred_at_col: linked_at
                  ids:
                    - select: user_id
                      type: user_id
                      entity: user
                    - select: lower(email)
                      type: email
                      entity: user
                  single_sql: |
                    select crm_user as user_id, crm_email as email, linked_at from raw.crm
              - name: user_graph
                model_type: id_stitcher
                model_spec:
                  entity_key: user
                  edge_sources:
                    - from: inputs/signups
                    - from: models/crm_links
            var_groups:
              - name: vars
                entity_key: user
                vars:
                  - entity_var:
                      name: n_user_ids
                      select: count(distinct other_id)
                      from: models/user_graph
                      where: other_id_type = 'user_id'
            """,
    }
    seed = [
        """create table raw.signups as select * from (values
            ('u1', timestamp '2025-01-01 00:00:00'), ('u2', timestamp '2025-01-02 00:00:00'),
            ('u3', timestamp '2025-01-03 00:00:00')) t(user_id, ts)""",
        """create table raw.crm as select * from (values
            ('u1', 'Same@X.com', timestamp '2025-02-01 00:00:00'),
            ('u2', 'same@x.com', timestamp '2025-02-02 00:00:00')) t(crm_user, crm_email, linked_at)""",
    ]
    out = run_project(tmp_path, files, seed)
    graph = dict(out.rows("select other_id, user_main_id from out.user_graph"))
    assert graph["u1"] == graph["u2"] == graph["same@x.com"] == rid("u1", "user_id") != graph["u3"]
    counts = dict(out.rows("select user_main_id, n_user_ids from out.user_feature_view"))
    assert counts == {rid("u1", "user_id"): 2, rid("u3", "user_id"): 1}
