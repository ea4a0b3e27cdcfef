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
