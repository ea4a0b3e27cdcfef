"""`validate` on Snowflake, BigQuery and Databricks prepares every step in a scratch schema dropped at the end:
each material created empty (Snowflake and Databricks: `... LIMIT 0`; BigQuery: a dry run, then an empty table
from its schema), a failing var named with its file:line, and the warehouse holds exactly the schemas, tables
and input rows it held before.

Runs on each engine's stand-in (`PROFILES_DAGSTER_STANDINS=snowflake` picks one): fakesnow, bqemulator and
Spark SQL behind the Databricks adapter; they fail, never skip, when they cannot start."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlglot import exp

from profiles_dagster.cli import SCRATCH_ENGINES, main
from profiles_dagster.errors import ErrorCollector, ProfilesError
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.project.loader import load_project
from profiles_dagster.run.prepare_scratch import SCRATCH_PREFIX, prepare_in_scratch
from profiles_dagster.warehouse.base import Session
from profiles_dagster_tests.projects import INPUTS, PB_PROJECT, dedent, write_project
from profiles_dagster_tests.run.test_prepare_server import BROKEN_MODEL, FEATURE_VIEW, GOOD_VARS
from profiles_dagster_tests.standins import Engine
from profiles_dagster_tests.standins.fixtures import ENGINE_NAMES

# no engine has no_such_fn: the var's select fails to bind
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
              name: event_code
              select: max(no_such_fn(event))
              from: inputs/tracks
          - entity_var:
              name: total_amount
              select: sum(amount)
              from: inputs/tracks
    """
)
# BigQuery's SUM takes numeric arguments only (INT64, NUMERIC, BIGNUMERIC, FLOAT64, INTERVAL): no STRING
SUM_TEXT = BAD_VARS.replace("max(no_such_fn(event))", "sum(event)")
COLUMNS = [
    ("user_id", exp.DataType.build("VARCHAR")),
    ("anonymous_id", exp.DataType.build("VARCHAR")),
    ("timestamp", exp.DataType.build("TIMESTAMP")),
    ("amount", exp.DataType.build("DOUBLE")),
    ("event", exp.DataType.build("VARCHAR")),
]
ROWS = [("u1", "a1", "2025-10-01 10:00:00", 12.5, "buy"), ("u2", "a1", "2025-10-02 11:00:00", 3.0, "view")]


def _on(*names: str) -> pytest.MarkDecorator:
    """The engines a test runs on (Postgres and Redshift prepare in a transaction: test_prepare_server.py),
    among the stand-ins this run starts (PROFILES_DAGSTER_STANDINS)."""
    return pytest.mark.parametrize("engine", [n for n in names if n in ENGINE_NAMES], indirect=True)


@pytest.fixture(autouse=True)
def _standin_probe(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """fakesnow's server answers EXPLAIN (Snowflake's probe: compiled, not run, no warehouse credits) with
    HTTP 500, which the connector retries for minutes; on the stand-in the probe is a LIMIT 0 query."""
    callspec = getattr(request.node, "callspec", None)
    name = callspec.params.get("engine") if callspec is not None else None
    if name == "snowflake":
        from profiles_dagster.warehouse.snowflake import SnowflakeSession

        monkeypatch.setattr(SnowflakeSession, "probe", lambda self, sql: self.query(f"SELECT * FROM ({sql}) LIMIT 0"))


def _project(root: Path, engine: Engine, vars_yaml: str, *, feature_view: bool = False) -> Path:
    site = {"connections": {"test": {"target": "dev", "outputs": {"dev": {**engine.target, "schema": "profiles"}}}}}
    project = FEATURE_VIEW if feature_view else PB_PROJECT
    return write_project(
        root, project=project, models={"inputs.yaml": INPUTS, "vars.yaml": vars_yaml}, siteconfig=yaml.safe_dump(site)
    )


def _inputs(engine: Engine) -> None:
    """raw.tracks with two rows."""
    with engine.warehouse().session() as session:
        session.create_schema("raw")
        session.load_rows(exp.table_("tracks", db="raw"), COLUMNS, [ROWS])


def _state(engine: Engine) -> tuple[list[tuple[str, str]], int]:
    """Every schema and table of the warehouse (name pairs; a schema alone as (schema, '')), and raw.tracks'
    row count."""
    with engine.warehouse().session() as session:
        found = [(s, "") for s in _schemas(engine, session)]
        for schema in [s for s, _ in found]:
            found.extend((schema, t) for t in session.list_objects(schema))
        rows = session.query("SELECT count(*) FROM raw.tracks")[0][0]
    return sorted((s.lower(), t.lower()) for s, t in found), int(rows)


def _schemas(engine: Engine, session: Session) -> list[str]:
    if engine.name == "bigquery":
        return [d.dataset_id for d in session.connection.list_datasets()]
    if engine.name == "databricks":
        return [str(r[0]) for r in session.query("SHOW SCHEMAS")]
    rows = session.query("SELECT schema_name FROM information_schema.schemata")
    return [str(r[0]) for r in rows if str(r[0]).upper() != "INFORMATION_SCHEMA"]


def _prepare(root: Path, engine: Engine) -> tuple[int, list[ProfilesError]]:
    """What `validate` does on the engine (the Databricks stand-in is reached through its adapter, which the
    CLI cannot use): the steps prepared and the errors."""
    project = load_project(root)
    plan = build_plan(project)
    errors = ErrorCollector()
    prepared = prepare_in_scratch(project, plan, engine.warehouse(), errors)
    return prepared, list(errors.errors)


@_on(*SCRATCH_ENGINES)
def test_a_failing_var_is_named_with_its_file_and_line_and_nothing_is_left(engine: Engine, tmp_path: Path) -> None:
    root = _project(tmp_path / "p", engine, BAD_VARS)
    _inputs(engine)
    before = _state(engine)
    _, errors = _prepare(root, engine)
    assert _state(engine) == before
    messages = [str(e) for e in errors]
    assert len(errors) == 1, messages
    assert "entity var 'event_code'" in messages[0], messages
    assert messages[0].startswith(f"{root / 'models' / 'vars.yaml'}:11:"), messages
    assert "no_such_fn" in messages[0].lower(), messages
    assert not any(s.lower().startswith(SCRATCH_PREFIX) for s, _ in before[0])


@_on(*SCRATCH_ENGINES)
def test_a_good_project_is_prepared_and_nothing_is_left(engine: Engine, tmp_path: Path) -> None:
    root = _project(tmp_path / "p", engine, GOOD_VARS, feature_view=True)
    _inputs(engine)
    before = _state(engine)
    assert ("raw", "tracks") in before[0] and before[1] == 2
    prepared, errors = _prepare(root, engine)
    assert not errors, [str(e) for e in errors]
    assert prepared == len(build_plan(load_project(root)).steps)
    assert _state(engine) == before


@_on(*SCRATCH_ENGINES)
def test_a_failing_model_does_not_hide_an_independent_var(engine: Engine, tmp_path: Path) -> None:
    root = _project(tmp_path / "p", engine, BAD_VARS)
    (root / "models" / "model.yaml").write_text(BROKEN_MODEL, encoding="utf-8")
    _inputs(engine)
    before = _state(engine)
    _, errors = _prepare(root, engine)
    assert _state(engine) == before
    messages = [str(e) for e in errors]
    assert len(errors) == 2, messages
    assert any("broken_model" in x and "no_such_function" in x.lower() and "model.yaml:2" in x for x in messages)
    assert any("entity var 'event_code'" in x and "vars.yaml:11" in x for x in messages)


@_on("bigquery")  # BigQuery's SUM refuses STRING; the other engines' rules differ (Snowflake casts text)
def test_sum_over_text_is_refused_on_bigquery(engine: Engine, tmp_path: Path) -> None:
    root = _project(tmp_path / "p", engine, SUM_TEXT)
    _inputs(engine)
    _, errors = _prepare(root, engine)
    messages = [str(e) for e in errors]
    assert len(errors) == 1 and "entity var 'event_code'" in messages[0] and "vars.yaml:11" in messages[0], messages


@_on("snowflake", "bigquery")  # the Databricks stand-in is reached through an adapter the CLI cannot use
def test_the_cli_says_what_it_proved(engine: Engine, tmp_path: Path, capsys) -> None:
    root = _project(tmp_path / "p", engine, GOOD_VARS)
    _inputs(engine)
    assert main(["validate", "-p", str(root), "--site-config", str(root / "siteconfig.yaml")]) == 0, (
        capsys.readouterr().err
    )
    out = capsys.readouterr().out
    assert f"runs on {engine.name} (prepared against the connection's tables, empty materials in a scratch " in out


class _Recording(Session):
    """A session that records what it is asked to run (Snowflake's SQL; BigQuery's billing where asked)."""

    dialect = "snowflake"

    def __init__(self, reads_billed: bool = False) -> None:
        super().__init__(None, "PROFILES")
        self.ran: list[str] = []
        self.billed = reads_billed

    def execute(self, sql: str) -> None:
        self.ran.append(sql)

    def query(self, sql: str) -> list[tuple]:
        self.ran.append(sql)
        return []


def test_only_the_scratch_schema_is_written_and_every_material_is_empty() -> None:
    from profiles_dagster.run.prepare_scratch import scratching

    session = scratching(_Recording(), "_pd_validate_x")
    session.schema = "_pd_validate_x"
    statements = {
        "CREATE TABLE _pd_validate_x.m AS SELECT a FROM raw.t": True,  # emptied
        "CREATE TABLE profiles.m AS SELECT a FROM raw.t": False,
        "CREATE OR REPLACE VIEW profiles.user_all AS SELECT * FROM _pd_validate_x.m": False,
        "CREATE VIEW _pd_validate_x.v AS SELECT a FROM raw.t": True,
        "CREATE SCHEMA IF NOT EXISTS profiles": False,
        "INSERT INTO raw.t (a) VALUES (1)": False,
        "INSERT INTO _pd_validate_x.m (a) SELECT a FROM raw.t": True,  # emptied
        "UPDATE raw.t SET a = 2": False,
        "DELETE FROM profiles.m": False,
        "DROP TABLE IF EXISTS profiles.m": False,
        "DROP TABLE IF EXISTS _pd_validate_x.m": True,
        "ALTER TABLE _pd_validate_x.m RENAME TO profiles.m": False,
        "ALTER TABLE _pd_validate_x.m RENAME TO _pd_validate_x.n": True,
        "TRUNCATE TABLE raw.t": False,
        "GRANT SELECT ON TABLE raw.t TO ROLE r": False,
        "SELECT count(*) FROM raw.t": True,
    }
    for sql in statements:
        session.execute(sql)
    ran = session.ran
    assert session.skipped == [s for s, runs in statements.items() if not runs]
    assert len(ran) == sum(statements.values()), ran
    assert not any("PROFILES" in r.upper() for r in ran), ran
    emptied = [r for r in ran if "LIMIT 0" in r]
    assert len(emptied) == 2 and all("FROM (SELECT a FROM raw.t)" in r for r in emptied), ran
    # a count of a view over the inputs is probed (EXPLAIN), not run
    session.ran.clear()
    assert session.row_count(exp.table_("v", db="_pd_validate_x")) == 0
    assert session.ran and all(r.startswith("EXPLAIN") for r in session.ran)


def test_where_reads_are_billed_queries_over_the_inputs_are_probed() -> None:
    from profiles_dagster.run.prepare_scratch import scratching

    class Billed(_Recording):
        reads_billed = True

        def probe(self, sql: str) -> None:
            self.ran.append("DRY RUN " + sql)

    session = scratching(Billed(), "_pd_validate_x")
    session.schema = "_pd_validate_x"
    assert session.query("SELECT a FROM raw.t") == []
    session.query("WITH q AS (SELECT 1 AS a) SELECT a FROM q JOIN _pd_validate_x.m USING (a)")
    assert session.ran == [
        "DRY RUN SELECT a FROM raw.t",
        "WITH q AS (SELECT 1 AS a) SELECT a FROM q JOIN _pd_validate_x.m USING (a)",
    ]


def test_a_scratch_schema_that_cannot_be_made_is_one_error_that_says_why(tmp_path: Path) -> None:
    from profiles_dagster.run.prepare_scratch import prepare_in_scratch

    class NoRights(_Recording):
        def create_schema(self, schema: str) -> None:
            raise RuntimeError("Insufficient privileges to operate on database 'ANALYTICS'")

    class NoRightsEngine:
        kind = "snowflake"

        @contextlib.contextmanager
        def session(self) -> Iterator[Session]:
            yield NoRights()

    root = write_project(tmp_path / "p", models={"inputs.yaml": INPUTS, "vars.yaml": GOOD_VARS})
    project = load_project(root)
    errors = ErrorCollector()
    assert prepare_in_scratch(project, build_plan(project), NoRightsEngine(), errors) == 0  # type: ignore[arg-type]
    assert len(errors.errors) == 1
    error = errors.errors[0]
    assert "could not create its scratch schema _pd_validate_" in str(error) and "Insufficient privileges" in str(error)
    assert error.hint is not None and "--no-prepare" in error.hint
