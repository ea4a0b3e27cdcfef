"""siteconfig.yaml: where it is found, how paths and `${VAR}` secrets resolve, and that secrets never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.siteconfig import ENV_VAR, find_site_config, load_connection
from profiles_dagster_tests.projects import SITECONFIG, dedent, write_file, write_project

PASSWORD = "pa55-w0rd-never-shown"

WAREHOUSES = dedent(
    """
    connections:
      warehouse:
        target: dev
        outputs:
          dev:
            type: postgres
            host: localhost
            user: "{{ env('PG_USER') }}"
            password: ${PG_PASSWORD}
          local:
            type: DuckDB
            path: data/local.duckdb
          memory:
            type: duckdb
            path: ":memory:"
    """
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fake home folder, and no $PROFILES_SITE_CONFIG, so the user's own files never leak in."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return home


# ---- find_site_config --------------------------------------------------------------------------


def test_search_order(tmp_path, home, monkeypatch):
    project = write_project(tmp_path / "project")
    in_project = project / "siteconfig.yaml"
    in_home = write_file(home / ".pb" / "siteconfig.yaml", SITECONFIG)
    from_env = write_file(tmp_path / "env" / "site.yaml", SITECONFIG)
    explicit = write_file(tmp_path / "explicit" / "site.yaml", SITECONFIG)

    monkeypatch.setenv(ENV_VAR, str(from_env))
    assert find_site_config(project, explicit) == explicit.resolve()
    assert find_site_config(project, str(explicit)) == explicit.resolve()
    assert find_site_config(project) == from_env.resolve()

    monkeypatch.delenv(ENV_VAR)
    assert find_site_config(project) == in_project.resolve()

    in_project.unlink()
    assert find_site_config(project) == in_home.resolve()

    in_home.unlink()
    with pytest.raises(ProfilesError) as info:
        find_site_config(project)
    assert "no site configuration found" in info.value.message
    assert str(in_project) in info.value.message and str(in_home) in info.value.message
    assert "--site-config" in info.value.hint


def test_an_explicit_path_that_does_not_exist_is_not_silently_replaced(tmp_path, home):
    project = write_project(tmp_path / "project")  # has its own siteconfig.yaml
    missing = tmp_path / "nowhere" / "site.yaml"
    with pytest.raises(ProfilesError) as info:
        find_site_config(project, missing)
    assert str(missing) in info.value.message
    assert "--site-config" in info.value.message


def test_env_var_that_does_not_exist_is_not_silently_replaced(tmp_path, home, monkeypatch):
    project = write_project(tmp_path / "project")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing.yaml"))
    with pytest.raises(ProfilesError) as info:
        find_site_config(project)
    assert ENV_VAR in info.value.message


# ---- load_connection ---------------------------------------------------------------------------


def test_relative_duckdb_path_resolves_against_the_siteconfig_folder(tmp_path, monkeypatch):
    site = write_file(tmp_path / "conf" / "siteconfig.yaml", WAREHOUSES)
    monkeypatch.chdir(tmp_path)  # not the siteconfig's folder
    conn = load_connection(site, "warehouse", "local")
    assert (conn.name, conn.target, conn.type) == ("warehouse", "local", "duckdb")
    assert conn.settings["path"] == str((tmp_path / "conf" / "data" / "local.duckdb").resolve())
    assert conn.schema == "profiles"  # the default when the target names none


def test_absolute_and_memory_duckdb_paths_are_kept(tmp_path):
    target = tmp_path / "elsewhere" / "db.duckdb"
    site = write_file(
        tmp_path / "siteconfig.yaml",
        WAREHOUSES.replace("path: data/local.duckdb", f"path: {target}"),
    )
    assert load_connection(site, "warehouse", "local").settings["path"] == str(target)
    assert load_connection(site, "warehouse", "memory").settings["path"] == ":memory:"


def test_default_target_and_project_siteconfig(tmp_path):
    project = write_project(tmp_path / "project")
    conn = load_connection(project / "siteconfig.yaml", "test")
    assert (conn.target, conn.type, conn.schema) == ("dev", "duckdb", "profiles")
    assert conn.settings["path"] == str((project / "test.duckdb").resolve())
    assert conn.source == project / "siteconfig.yaml"


def test_secrets_come_from_the_environment(tmp_path, monkeypatch):
    site = write_file(tmp_path / "siteconfig.yaml", WAREHOUSES)
    monkeypatch.setenv("PG_PASSWORD", PASSWORD)
    monkeypatch.setenv("PG_USER", "analyst")
    conn = load_connection(site, "warehouse")
    assert conn.target == "dev"
    assert conn.settings == {"host": "localhost", "user": "analyst", "password": PASSWORD}


def test_unset_secret_is_a_located_error(tmp_path, monkeypatch):
    site = write_file(tmp_path / "siteconfig.yaml", WAREHOUSES)
    monkeypatch.delenv("PG_PASSWORD", raising=False)
    monkeypatch.setenv("PG_USER", "analyst")
    with pytest.raises(ProfilesError) as info:
        load_connection(site, "warehouse")
    err = info.value
    assert Path(err.file).name == "siteconfig.yaml"
    assert (err.line, err.key) == (9, "connections.warehouse.outputs.dev.password")
    assert "environment variable PG_PASSWORD is not set" in err.message


def test_secrets_never_print(tmp_path, monkeypatch):
    site = write_file(tmp_path / "siteconfig.yaml", WAREHOUSES)
    monkeypatch.setenv("PG_PASSWORD", PASSWORD)
    monkeypatch.setenv("PG_USER", "analyst")
    conn = load_connection(site, "warehouse")
    assert PASSWORD not in repr(conn)
    assert PASSWORD not in str(conn)
    assert PASSWORD not in repr(conn.redacted())
    assert conn.redacted() == {"host": "localhost", "user": "analyst", "password": "***"}
    assert "analyst" in repr(conn)  # only secrets are hidden
    assert conn.settings["password"] == PASSWORD  # the engine still gets it


def test_unknown_connection_suggests_the_closest(tmp_path):
    site = write_file(tmp_path / "siteconfig.yaml", WAREHOUSES)
    with pytest.raises(ProfilesError) as info:
        load_connection(site, "warehous")
    err = info.value
    assert Path(err.file).name == "siteconfig.yaml"
    assert (err.line, err.key) == (1, "connections")
    assert "no connection named 'warehous'" in err.message
    assert err.hint == "did you mean 'warehouse'?"


def test_unknown_connection_lists_them_when_nothing_is_close(tmp_path):
    site = write_file(tmp_path / "siteconfig.yaml", WAREHOUSES)
    with pytest.raises(ProfilesError) as info:
        load_connection(site, "snowflake_prod")
    assert info.value.hint == "connections: warehouse"


def test_unknown_target_suggests_the_closest(tmp_path):
    site = write_file(tmp_path / "siteconfig.yaml", WAREHOUSES)
    with pytest.raises(ProfilesError) as info:
        load_connection(site, "warehouse", "locl")
    err = info.value
    assert Path(err.file).name == "siteconfig.yaml"
    assert (err.line, err.key) == (4, "connections.warehouse.outputs")
    assert "no target 'locl' in connection 'warehouse'" in err.message
    assert err.hint == "did you mean 'local'?"

    with pytest.raises(ProfilesError) as info:
        load_connection(site, "warehouse", "production")
    assert info.value.hint == "targets: dev, local, memory"


def test_target_without_type(tmp_path):
    site = write_file(tmp_path / "siteconfig.yaml", SITECONFIG.replace("        type: duckdb\n", ""))
    with pytest.raises(ProfilesError) as info:
        load_connection(site, "test")
    assert (info.value.line, info.value.key) == (5, "connections.test.outputs.dev")
    assert "a target needs `type`" in info.value.message


def test_siteconfig_without_connections(tmp_path):
    site = write_file(tmp_path / "siteconfig.yaml", "# nothing here\n")
    with pytest.raises(ProfilesError) as info:
        load_connection(site, "test")
    assert (Path(info.value.file).name, info.value.line) == ("siteconfig.yaml", 1)
    assert "expected a `connections:` mapping" in info.value.message
