"""ProfilesProjectComponent with `dg` (scaffold, check, list), the example's defs folder, and several
projects and entities in one code location without clashes."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from profiles_dagster import ProfilesError, ProfilesProjectComponent
from profiles_dagster_tests.conftest import END_TIME, EXAMPLE, REPO, load_example_inputs, write_site_config
from profiles_dagster_tests.projects import dedent, write_project

BIN = Path(sys.executable).parent


def _views(database: Path) -> set[str]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute("select view_name from duckdb_views() where schema_name = 'profiles'").fetchall()
        return {r[0] for r in rows}
    finally:
        con.close()


def _dg_project(root: Path) -> Path:
    """An empty dg project, as `dg scaffold project` lays one out."""
    (root / "myproj" / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "myproj"\nversion = "0.1.0"\n\n[tool.dg]\ndirectory_type = "project"\n\n'
        '[tool.dg.project]\nroot_module = "myproj"\n'
    )
    (root / "myproj" / "__init__.py").write_text("")
    (root / "myproj" / "defs" / "__init__.py").write_text("")
    (root / "myproj" / "definitions.py").write_text(
        textwrap.dedent(
            """\
            from pathlib import Path

            import dagster as dg


            @dg.definitions
            def defs():
                return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
            """
        )
    )
    return root


def _dg(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dg"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_dg_scaffolds_checks_and_lists_the_component(tmp_path: Path) -> None:
    project = _dg_project(tmp_path / "dgproj")
    database = tmp_path / "w.duckdb"
    load_example_inputs(database)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PROFILES_SITE_CONFIG": str(write_site_config(tmp_path, database)),
        "DAGSTER_HOME": str(tmp_path),
    }
    env.pop("VIRTUAL_ENV", None)
    listed = _dg(["list", "components", "--json"], project, env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "profiles_dagster.ProfilesProjectComponent" in listed.stdout

    scaffold = _dg(
        ["scaffold", "defs", "profiles_dagster.ProfilesProjectComponent", "customer360", "--project", str(EXAMPLE)],
        project,
        env,
    )
    assert scaffold.returncode == 0, scaffold.stdout[-2000:] + scaffold.stderr[-2000:]
    written = project / "myproj" / "defs" / "customer360" / "defs.yaml"
    text = written.read_text()
    assert "type: profiles_dagster.ProfilesProjectComponent" in text and f"project: {EXAMPLE}" in text
    written.write_text(text.replace("  # key_prefix: crm", "  key_prefix: crm"))

    check = _dg(["check", "defs"], project, env)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert "All definitions loaded successfully" in check.stdout + check.stderr

    defs = _dg(["list", "defs", "--json"], project, env)
    assert defs.returncode == 0, defs.stderr[-2000:]
    found = json.loads(defs.stdout)
    keys = {a["asset_key"] for a in found["assets"]}
    assert {"crm/user/features", "crm/user/id_stitcher", "raw/orders"} <= keys
    checks = {f"{c['asset_key']}:{c['name']}" for c in found.get("asset_checks", [])}
    assert "crm/user/features:user_main_id_unique" in checks
    assert "profiles_crm_example_project_schedule" in {s["name"] for s in found.get("schedules", [])}


def test_the_example_defs_folder_loads_and_materializes(example_db, monkeypatch, tmp_path: Path) -> None:
    database, site = example_db
    monkeypatch.setenv("PROFILES_SITE_CONFIG", str(site))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defs = dg.load_defs(defs_root=importlib.import_module("example_project.defs"), project_root=REPO)
    from example_project.definitions import defs as classic

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {k.to_user_string() for k in classic.resolve_asset_graph().get_all_asset_keys()}
    assert all(graph.get(dg.AssetKey(["raw", n])).is_materializable for n in ("orders", "tracks"))
    assert [s.name for s in defs.schedules] == ["profiles_example_project_schedule"]
    assert [s.name for s in defs.sensors] == ["profiles_example_project_new_rows"]
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        run_config={"ops": {"profiles_example_project": {"config": {"end_time": END_TIME}}}}
    )
    assert result.success
    assert {"user_feature_view", "user_features_by_email", "user_id_stitcher"} <= _views(database)


def test_dg_check_defs_at_the_repo_root(tmp_path: Path) -> None:
    """pyproject.toml's [tool.dg] makes the repo a dg project whose code location is the example."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DAGSTER_HOME": str(tmp_path)}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PROFILES_SITE_CONFIG", None)  # the example's own siteconfig.yaml
    check = _dg(["check", "defs"], REPO, env)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert "All definitions loaded successfully" in check.stdout + check.stderr
    listed = _dg(["list", "defs", "--json"], REPO, env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    keys = {a["asset_key"] for a in json.loads(listed.stdout)["assets"]}
    assert {"raw/orders", "user/id_stitcher", "user/features"} <= keys


def test_workspace_still_has_one_code_location() -> None:
    import yaml

    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert [entry["python_file"]["relative_path"] for entry in workspace["load_from"]] == [
        "example_project/definitions.py"
    ]


def test_two_projects_in_one_code_location(tmp_path: Path) -> None:
    parts = []
    for prefix in ("crm", "marketing"):
        folder = tmp_path / prefix
        folder.mkdir()
        database = folder / "w.duckdb"
        load_example_inputs(database)
        component = ProfilesProjectComponent(
            project=str(EXAMPLE),
            site_config=str(write_site_config(folder, database)),
            key_prefix=prefix,
            output_dir=str(folder / "sql"),
        )
        parts.append((prefix, database, dg.build_defs_for_component(component)))
    defs = dg.Definitions.merge(*(d for _, _, d in parts))
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"crm/user/features", "marketing/user/features", "raw/orders"} <= keys
    assert not any(k.startswith("user/") for k in keys)
    assert set(defs.resources) == {"profiles_warehouse_crm", "profiles_warehouse_marketing"}
    assert {s.name for s in defs.schedules} == {
        "profiles_crm_example_project_schedule",
        "profiles_marketing_example_project_schedule",
    }
    checks = {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys}
    assert {"crm/user/features:user_main_id_unique", "marketing/user/features:user_main_id_unique"} <= checks

    config = {
        "ops": {
            "profiles_crm_example_project": {"config": {"end_time": END_TIME}},
            "profiles_marketing_example_project": {"config": {"end_time": END_TIME}},
        }
    }
    selection = [k for k in graph.get_all_asset_keys() if k.path[0] != "raw"]
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        run_config=config, asset_selection=selection
    )
    assert result.success
    assert len(result.get_asset_materialization_events()) == 2 * 19
    for _, database, _ in parts:
        assert "user_feature_view" in _views(database)


TWO_ENTITIES = """\
name: two_entities
schema_version: 99
connection: test
model_folders:
  - models
entities:
  - name: user
    id_types:
      - user_id
  - name: account
    id_types:
      - account_id
id_types:
  - name: user_id
  - name: account_id
"""

EVENTS = """\
inputs:
  - name: events
    app_defaults:
      table: raw.events
      occurred_at_col: ts
      ids:
        - select: user_id
          type: user_id
          entity: user
        - select: account_id
          type: account_id
          entity: account
var_groups:
  - name: user_vars
    entity_key: user
    vars:
      - entity_var:
          name: events
          select: count(*)
          from: inputs/events
          description: Events of the user.
  - name: account_vars
    entity_key: account
    vars:
      - entity_var:
          name: events
          select: count(*)
          from: inputs/events
          description: Events of the account.
      - entity_var:
          name: users
          select: count(distinct user_id)
          from: inputs/events
"""


def test_two_entities_in_one_project(tmp_path: Path) -> None:
    root = write_project(tmp_path / "two", project=TWO_ENTITIES, models={"inputs.yaml": dedent(EVENTS)})
    database = root / "test.duckdb"
    con = duckdb.connect(str(database))
    con.execute("create schema raw")
    con.execute(
        "create table raw.events as select 'u' || (i % 5) as user_id, 'a' || (i % 2) as account_id, "
        "timestamp '2025-01-01' + to_days(i) as ts from range(20) t(i)"
    )
    con.close()
    defs = dg.build_defs_for_component(ProfilesProjectComponent(project=str(root), output_dir=str(tmp_path / "sql")))
    graph = defs.resolve_asset_graph()
    user = graph.get(dg.AssetKey(["user", "features"]))
    account = graph.get(dg.AssetKey(["account", "features"]))
    assert (user.group_name, account.group_name) == ("user", "account")
    checks = {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys}
    assert {"user/features:user_main_id_unique", "account/features:account_main_id_unique"} <= checks
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process()
    assert result.success
    rows = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata["dagster/row_count"].value
        for e in result.get_asset_materialization_events()
    }
    assert rows["user/features"] == 5 and rows["account/features"] == 2
    columns = {
        e.asset_key.to_user_string(): {
            c.name: c.description
            for c in e.event_specific_data.materialization.metadata["dagster/column_schema"].value.columns
        }
        for e in result.get_asset_materialization_events()
    }
    assert columns["user/features"]["events"] == "Events of the user."
    assert columns["account/features"]["events"] == "Events of the account."
    assert {"user_feature_view", "account_feature_view"} <= _views(database)


def test_component_options_reach_the_definitions(tmp_path: Path) -> None:
    site = str(write_site_config(tmp_path, tmp_path / "w.duckdb"))
    on_cron = ProfilesProjectComponent(project=str(EXAMPLE), site_config=site, automation="on_cron")
    defs = dg.build_defs_for_component(on_cron)
    condition = defs.resolve_asset_graph().get(dg.AssetKey(["user", "features"])).automation_condition
    assert condition.get_label() == "on_cron(0 6 * * *, UTC)"  # the cron of the example's schedule
    assert not list(defs.schedules or [])
    assert set(defs.resources) == {"profiles_warehouse"}

    with pytest.raises(ProfilesError, match="no input named 'nope'"):
        dg.build_defs_for_component(
            ProfilesProjectComponent(project=str(EXAMPLE), site_config=site, sensor={"inputs": ["nope"]})
        )
    with pytest.raises(ProfilesError, match="no step 'user/nope'"):
        dg.build_defs_for_component(
            ProfilesProjectComponent(
                project=str(EXAMPLE),
                site_config=site,
                checks={"custom": [{"name": "c", "step": "user/nope", "condition": "true"}]},
            )
        )
