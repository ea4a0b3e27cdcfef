"""`validate` on Postgres and Redshift prepares every step against the connection's real tables in one
transaction that is rolled back: a binder error is named with its var and file:line, and the database holds
exactly what it held before (no registry, no material, no lock row), its input rows untouched.

Uses the Postgres 15 stand-in (and the Redshift stand-in: a Postgres behind a protocol proxy); they fail,
never skip, when they cannot start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from profiles_dagster.cli import main
from profiles_dagster.loading import load
from profiles_dagster.lock import RunLock, ensure_registry
from profiles_dagster_tests.projects import INPUTS, PB_PROJECT, dedent, write_project
from profiles_dagster_tests.standins import fixtures

# `event` is text: sum(event) has no match on Postgres or Redshift
BAD_VARS = dedent(
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
              name: event_total
              select: sum(event)
              from: inputs/tracks
          - entity_var:
              name: total_amount
              select: sum(amount)
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
ROWS = [("u1", "a1", "2025-10-01 10:00:00", 12.5, "buy"), ("u2", "a1", "2025-10-02 11:00:00", 3.0, "view")]


@pytest.fixture(scope="module")
def postgres_target(postgres_standin) -> dict:
    return postgres_standin.target("prepare_server")


@pytest.fixture(scope="module")
def redshift_target() -> Iterator[dict]:
    engine = next(starter := fixtures._redshift())
    try:
        yield engine.target
    finally:
        starter.close()


def _project(root: Path, target: dict, vars_yaml: str, *, feature_view: bool = False) -> Path:
    site = {"connections": {"test": {"target": "dev", "outputs": {"dev": {**target, "schema": "profiles"}}}}}
    project = FEATURE_VIEW if feature_view else PB_PROJECT
    return write_project(
        root, project=project, models={"inputs.yaml": INPUTS, "vars.yaml": vars_yaml}, siteconfig=yaml.safe_dump(site)
    )


def _inputs(root: Path) -> None:
    """raw.tracks with two rows (created once per database)."""
    with load(root, site_config=root / "siteconfig.yaml").warehouse.session() as session:
        session.execute("CREATE SCHEMA IF NOT EXISTS raw")
        session.execute("DROP TABLE IF EXISTS raw.tracks")
        session.execute(
            "CREATE TABLE raw.tracks (user_id VARCHAR(64), anonymous_id VARCHAR(64), timestamp TIMESTAMP, "
            "amount DOUBLE PRECISION, event VARCHAR(64))"
        )
        values = ", ".join(f"('{u}', '{a}', TIMESTAMP '{t}', {m}, '{e}')" for u, a, t, m, e in ROWS)
        session.execute(f"INSERT INTO raw.tracks VALUES {values}")


def _state(root: Path) -> tuple[list[tuple], list[tuple]]:
    """Every table of the database (information_schema.tables, outside the catalogs) and raw.tracks' rows."""
    with load(root, site_config=root / "siteconfig.yaml").warehouse.session() as session:
        tables = session.query(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        )
        rows = session.query("SELECT user_id, anonymous_id, amount, event FROM raw.tracks ORDER BY user_id")
    return [tuple(r) for r in tables], [tuple(r) for r in rows]  # Redshift's client returns lists


def _validate(root: Path) -> int:
    return main(["validate", "-p", str(root), "--site-config", str(root / "siteconfig.yaml")])


@pytest.mark.parametrize("which", ["postgres", "redshift"])
def test_a_binder_error_is_named_with_its_var_and_nothing_is_written(
    which: str, tmp_path: Path, request: pytest.FixtureRequest, capsys
) -> None:
    target = request.getfixturevalue(f"{which}_target")
    root = _project(tmp_path / "p", target, BAD_VARS)
    _inputs(root)
    before = _state(root)
    assert main(["validate", "-p", str(root), "--site-config", str(root / "siteconfig.yaml")]) == 1
    err = capsys.readouterr().err
    assert _state(root) == before
    lines = err.splitlines()
    assert lines[-1] == "validate: 1 error(s)", err
    found = [x for x in lines if "entity var 'event_total'" in x]
    assert len(found) == 1, err
    assert found[0].startswith(f"error: {root / 'models' / 'vars.yaml'}:11:"), found[0]
    assert "sum" in found[0], found[0]
    assert "n_tracks" not in err and "total_amount" not in err


@pytest.mark.parametrize("which", ["postgres", "redshift"])
def test_a_good_project_is_prepared_and_nothing_is_written(
    which: str, tmp_path: Path, request: pytest.FixtureRequest, capsys
) -> None:
    target = request.getfixturevalue(f"{which}_target")
    root = _project(tmp_path / "p", target, GOOD_VARS, feature_view=True)
    _inputs(root)
    before = _state(root)
    assert ("raw", "tracks", "BASE TABLE") in before[0] and len(before[1]) == 2
    assert _validate(root) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"runs on {which} (prepared against the connection's tables, in a transaction rolled back): OK" in out
    assert _state(root) == before
    # a second validate (a registry would now exist, had the first written one) is the same
    assert _validate(root) == 0, capsys.readouterr().err
    assert _state(root) == before


BROKEN_MODEL = dedent(
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


@pytest.mark.parametrize("which", ["postgres", "redshift"])
def test_a_failing_model_does_not_hide_an_independent_var(
    which: str, tmp_path: Path, request: pytest.FixtureRequest, capsys
) -> None:
    """Both failures are reported in one pass (on Redshift, which has no savepoints, the preparation starts
    again in a new transaction after each failed step), and nothing is written."""
    target = request.getfixturevalue(f"{which}_target")
    root = _project(tmp_path / "p", target, BAD_VARS)
    (root / "models" / "model.yaml").write_text(BROKEN_MODEL, encoding="utf-8")
    _inputs(root)
    before = _state(root)
    assert _validate(root) == 1
    err = capsys.readouterr().err
    assert _state(root) == before
    lines = err.splitlines()
    assert lines[-1] == "validate: 2 error(s)", err
    assert any("broken_model" in x and "no_such_function" in x and "model.yaml:2" in x for x in lines), err
    assert any("entity var 'event_total'" in x and "vars.yaml:11" in x for x in lines), err


def test_after_a_real_run_validate_leaves_the_registry_and_materials_as_they_were(
    postgres_target: dict, tmp_path: Path, capsys
) -> None:
    """With a registry, materials and stable views of a real run in the schema, validate changes none of them:
    its registry rows, lock and materials roll back."""
    root = _project(tmp_path / "p", postgres_target, GOOD_VARS)
    _inputs(root)
    assert main(["run", "-p", str(root), "--site-config", str(root / "siteconfig.yaml")]) == 0
    capsys.readouterr()
    with load(root, site_config=root / "siteconfig.yaml").warehouse.session() as session:
        runs_before = session.query('SELECT * FROM profiles."_profiles_runs" ORDER BY 1')
        lock_before = session.query('SELECT * FROM profiles."_profiles_lock"')
    before = _state(root)
    assert _validate(root) == 0, capsys.readouterr().err
    assert _state(root) == before
    with load(root, site_config=root / "siteconfig.yaml").warehouse.session() as session:
        assert session.query('SELECT * FROM profiles."_profiles_runs" ORDER BY 1') == runs_before
        assert session.query('SELECT * FROM profiles."_profiles_lock"') == lock_before


def test_a_live_run_holding_the_lock_is_named(postgres_target: dict, tmp_path: Path, capsys) -> None:
    """validate takes the run lock inside its transaction: a live run's lock stops it, naming that run; the
    lock row is the run's afterwards."""
    root = _project(tmp_path / "p", {**postgres_target}, GOOD_VARS)
    _inputs(root)
    with load(root, site_config=root / "siteconfig.yaml").warehouse.session() as session:
        ensure_registry(session, "profiles")
        held = RunLock(session, "profiles", "other_project")
        held.acquire()
        try:
            assert _validate(root) == 1
            err = capsys.readouterr().err
            assert "another run is using output schema 'profiles'" in err and "other_project" in err, err
            assert held.holder() is not None and held.holder().run_id == held.run_id
        finally:
            held.release()


def test_no_prepare_compiles_without_a_connection(tmp_path: Path, capsys) -> None:
    """Snowflake prepares on the connection too (run/prepare_scratch.py); --no-prepare needs none."""
    target = {"type": "snowflake", "account": "a", "user": "u", "password": "p", "role": "r", "warehouse": "w"}
    root = _project(tmp_path / "p", {**target, "dbname": "d"}, GOOD_VARS)
    assert main(["validate", "-p", str(root), "--site-config", str(root / "siteconfig.yaml"), "--no-prepare"]) == 0
    assert "compiles for snowflake (compiled, not prepared: --no-prepare): OK" in capsys.readouterr().out


def test_an_unreachable_connection_is_an_error_that_points_at_no_prepare(tmp_path: Path, capsys) -> None:
    target = {"type": "postgres", "host": "127.0.0.1", "port": 1, "dbname": "x", "user": "u", "sslmode": "disable"}
    root = _project(tmp_path / "p", target, GOOD_VARS)
    assert _validate(root) == 1
    assert "--no-prepare compiles it without one" in capsys.readouterr().err
    assert main(["validate", "-p", str(root), "--site-config", str(root / "siteconfig.yaml"), "--no-prepare"]) == 0
    assert "compiles for postgres (compiled, not prepared: --no-prepare): OK" in capsys.readouterr().out
