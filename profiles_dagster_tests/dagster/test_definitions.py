"""The example as Dagster assets: in-process materialize (all, subset), the CLI, and validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from example_project.definitions import raw_loader
from example_project.loading import RAW_TABLES
from profiles_dagster import ProfilesError, ProfilesTranslator, build_definitions
from profiles_dagster.warehouse.duckdb import DuckDBWarehouse
from profiles_dagster_tests.conftest import END_TIME, EXAMPLE, REPO, write_site_config

RUN_CONFIG = {"ops": {"profiles_example_project": {"config": {"end_time": END_TIME}}}}
STABLE_VIEWS = {
    "user_id_stitcher",
    "user_all",
    "user_high_value",
    "user_feature_view",
    "user_features_by_email",
    "high_value_feature_view",
    "high_value_by_email",
    "user_daily_orders",
}


def _defs(database: Path, **kwargs) -> dg.Definitions:
    warehouse = DuckDBWarehouse(database=str(database), output_schema="profiles")
    return build_definitions(EXAMPLE, warehouse=warehouse, assets=[raw_loader(n) for n in RAW_TABLES], **kwargs)


def _views(database: Path) -> dict[str, int]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'profiles' "
                "and table_type = 'VIEW'"
            ).fetchall()
        ]
        return {n: con.execute(f'select count(*) from profiles."{n}"').fetchone()[0] for n in names}
    finally:
        con.close()


def test_specs_keys_groups_and_kinds(tmp_path: Path) -> None:
    defs = _defs(tmp_path / "w.duckdb")
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "raw/identifies",
        "user/id_stitcher",
        "user/all",
        "user/entity_vars",
        "user/features",
        "user/input_vars/orders",
        "user/input_vars_mapped/orders",
        "user/cohort/high_value",
        "user/cohort/high_value/vars",
        "user/views/user_feature_view",
        "models/user_daily_orders",
    } <= keys
    spec = graph.get(dg.AssetKey(["user", "id_stitcher"]))
    assert spec.group_name == "user"
    assert {"profiles", "duckdb"} <= set(spec.kinds)
    assert dg.AssetKey(["user", "input_vars", "orders"]) in spec.parent_keys
    # the user's loader owns raw/orders: no duplicate external asset
    assert graph.get(dg.AssetKey(["raw", "orders"])).is_materializable


def test_inputs_become_external_assets_without_loaders(tmp_path: Path) -> None:
    defs = build_definitions(EXAMPLE, warehouse=DuckDBWarehouse(database=str(tmp_path / "w.duckdb")))
    node = defs.resolve_asset_graph().get(dg.AssetKey(["raw", "tracks"]))
    assert node.is_external and not node.is_materializable


def test_translator_prefix(tmp_path: Path) -> None:
    defs = _defs(tmp_path / "w.duckdb", translator=ProfilesTranslator(key_prefix="crm"))
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "crm/user/id_stitcher" in keys and "user/id_stitcher" not in keys


def test_materialize_all_then_a_subset(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    defs = _defs(database)
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(run_config=RUN_CONFIG)
    assert result.success
    materialized = {e.asset_key.to_user_string(): e for e in result.get_asset_materialization_events()}
    assert len(materialized) == 4 + 19
    stitch = materialized["user/id_stitcher"].event_specific_data.materialization.metadata
    assert stitch["dagster/row_count"].value > 0
    assert stitch["dagster/table_name"].value.startswith("profiles.Material_user_id_stitcher_")
    assert "user_main_id" in [c.name for c in stitch["dagster/column_schema"].schema.columns]
    views = _views(database)
    assert set(views) == STABLE_VIEWS and all(views.values())

    # a subset reuses the latest upstream materials and repoints only its own views
    con = duckdb.connect(str(database), read_only=True)
    before = con.execute("select * from profiles.user_all").fetchall()
    con.close()
    subset = job.execute_in_process(
        run_config=RUN_CONFIG,
        asset_selection=[dg.AssetKey(["user", "features"]), dg.AssetKey(["user", "views", "user_feature_view"])],
    )
    assert subset.success
    assert {e.asset_key.to_user_string() for e in subset.get_asset_materialization_events()} == {
        "user/features",
        "user/views/user_feature_view",
    }
    con = duckdb.connect(str(database), read_only=True)
    assert con.execute("select * from profiles.user_all").fetchall() == before
    sql = con.execute("select sql from duckdb_views() where view_name = 'user_feature_view'").fetchone()[0]
    latest = con.execute("select max(seq_no) from profiles._profiles_runs where status = 'complete'").fetchone()[0]
    con.close()
    assert f"_{latest}" in sql and latest == 2


def test_subset_without_upstream_names_the_missing_step(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    defs = _defs(database)
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(asset_selection=[dg.AssetKey(["raw", n]) for n in RAW_TABLES]).success
    with pytest.raises(ProfilesError, match=r"the selection reads .*user/entity_vars, never materialized"):
        job.execute_in_process(run_config=RUN_CONFIG, asset_selection=[dg.AssetKey(["user", "features"])])
    assert _views(database) == {}


def _cli_env(tmp_path: Path) -> dict[str, str]:
    database = tmp_path / "cli.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "PROFILES_SITE_CONFIG": str(write_site_config(tmp_path, database)),
    }
    (tmp_path / "dagster_home").mkdir()
    return env


def test_dagster_cli_materializes_everything(tmp_path: Path) -> None:
    env = _cli_env(tmp_path)
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "example_project.definitions", "--select", "*"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    views = _views(tmp_path / "cli.duckdb")
    assert set(views) == STABLE_VIEWS and all(views.values())


def test_dagster_definitions_validate(tmp_path: Path) -> None:
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "example_project.definitions"],
        cwd=REPO,
        env=_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_workspace_has_one_code_location() -> None:
    import yaml

    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert len(workspace["load_from"]) == 1
    assert (REPO / workspace["load_from"][0]["python_file"]["relative_path"]).is_file()


def test_the_cli_path_imports_no_dagster(tmp_path: Path) -> None:
    """`profiles-dagster` on DuckDB starts without Dagster (about a second of imports); Definitions still get
    a Dagster resource for the same connection."""
    site = write_site_config(tmp_path, tmp_path / "w.duckdb")
    code = (
        "import sys\n"
        "from profiles_dagster.cli import main\n"
        f"assert main(['validate', '-p', {str(EXAMPLE)!r}, '--site-config', {str(site)!r}]) == 0\n"
        "from profiles_dagster.loading import load\n"
        f"loaded = load({str(EXAMPLE)!r}, site_config={str(site)!r})\n"
        "import profiles_dagster\n"
        "assert not [m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')], 'dagster imported'\n"
        "print(type(loaded.warehouse).__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFILES_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "DuckDBEngine"

    defs = build_definitions(EXAMPLE, site_config=site, output_dir=tmp_path / "sql")
    resource = defs.resources["profiles_warehouse"]
    assert isinstance(resource, DuckDBWarehouse) and isinstance(resource, dg.ConfigurableResource)
    assert resource.database == str(tmp_path / "w.duckdb")


@pytest.mark.parametrize(
    ("kind", "settings"),
    [
        ("postgres", "host: 127.0.0.1\n        dbname: d\n        user: u\n        password: ${PD_TEST_PG_PW}"),
        ("snowflake", "account: xy12345\n        user: u\n        password: pw\n        dbname: d"),
        ("bigquery", "project_id: p"),
    ],
)
def test_the_cli_path_on_a_server_engine_imports_no_dagster(tmp_path: Path, kind: str, settings: str) -> None:
    """Loading a project on a server engine gives its plain engine; Definitions get the engine's resource,
    a `${VAR}` secret as that EnvVar."""
    site = tmp_path / "siteconfig.yaml"
    site.write_text(
        "connections:\n  example:\n    target: dev\n    outputs:\n      dev:\n"
        f"        type: {kind}\n        schema: profiles\n        {settings}\n",
        encoding="utf-8",
    )
    code = (
        "import sys\n"
        "from profiles_dagster.loading import load\n"
        f"loaded = load({str(EXAMPLE)!r}, site_config={str(site)!r})\n"
        "assert not [m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')], 'dagster imported'\n"
        "print(type(loaded.warehouse).__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFILES_")} | {"PD_TEST_PG_PW": "pw"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    engine = done.stdout.strip().splitlines()[-1]
    assert engine.endswith("Engine") and engine.lower().startswith(kind), engine

    os.environ["PD_TEST_PG_PW"] = "pw"
    try:
        defs = build_definitions(EXAMPLE, site_config=site, output_dir=tmp_path / "sql")
    finally:
        del os.environ["PD_TEST_PG_PW"]
    resource = defs.resources["profiles_warehouse"]
    assert isinstance(resource, dg.ConfigurableResource) and resource.kind == kind
    assert type(resource).__name__.endswith("Warehouse")
    if kind == "postgres":
        assert isinstance(resource.password, dg.EnvVar) and resource.password.env_var_name == "PD_TEST_PG_PW"
