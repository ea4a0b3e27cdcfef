"""`profiles-dagster sample-data`: a project with no rows gets input tables a run can use end to end."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster.clock import parse_time
from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.project.loader import load_project
from profiles_dagster.project.schema import IdType
from profiles_dagster.sampledata import write_sample_data
from profiles_dagster.sampledata.columns import Kind, input_columns
from profiles_dagster.sampledata.ids import id_shape, junk_values, passes
from profiles_dagster_tests.projects import copy_example, dedent, write_project

END_TIME = "2026-06-01T00:00:00Z"


def _rows(database: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """The example project without its raw tables, given sample data and run."""
    root = copy_example(tmp_path_factory.mktemp("example"))
    assert main(["sample-data", "-p", str(root), "--seed", "7", "--rows", "300", "--end-time", END_TIME]) == 0
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0
    return root / "example_project.duckdb"


def test_example_runs_end_to_end_and_merges_profiles_across_inputs(example: Path) -> None:
    # an anonymous id of `pages` (its only id) and a user id of `orders` (no anonymous id there) end up in
    # one profile: only stitching across inputs can put them together
    ((merged,),) = _rows(
        example,
        """
        select count(distinct a.user_main_id) from profiles.user_id_stitcher a
        join profiles.user_id_stitcher b on a.user_main_id = b.user_main_id
        where a.other_id_type = 'anonymous_id' and a.other_id in (select anonymous_id from raw.pages)
          and b.other_id_type = 'user_id' and b.other_id in (select user_id from raw.orders)
        """,
    )
    assert merged > 10
    ((profiles,),) = _rows(example, "select count(*) from profiles.user_feature_view")
    ((ids,),) = _rows(example, "select count(*) from profiles.user_id_stitcher")
    assert 0 < profiles < ids


def test_example_junk_ids_are_in_the_inputs_and_filtered_out(example: Path) -> None:
    # the example excludes user_id '0', anonymous ids matching (undefined|null|unknown|test.*) and
    # noreply@example.com; emails must match its include regex
    ((zeros,),) = _rows(example, "select count(*) from raw.identifies where user_id = '0'")
    ((bad_anon,),) = _rows(
        example,
        "select count(*) from raw.tracks where regexp_full_match(anonymous_id, '(undefined|null|unknown|test.*)')",
    )
    assert zeros > 0 and bad_anon > 0
    ((kept,),) = _rows(
        example,
        "select count(*) from profiles.user_id_stitcher where other_id in ('0', 'noreply@example.com') "
        "or regexp_full_match(other_id, '(undefined|null|unknown|test.*)')",
    )
    assert kept == 0


def test_example_timestamps_fall_before_the_end_time(example: Path) -> None:
    ((latest, earliest),) = _rows(example, "select max(timestamp), min(timestamp) from raw.tracks")
    assert str(latest) < "2026-06-01" and str(earliest) >= "2026-03-03"


def test_example_columns_typed_from_their_use(example: Path) -> None:
    types = dict(
        _rows(
            example,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'orders'",
        )
    )
    # amount: sum()/max(); timestamp: occurred_at; status: compared with 'completed'; order_id: a window's order
    assert types == {
        "user_id": "VARCHAR",
        "email": "VARCHAR",
        "timestamp": "TIMESTAMP",
        "amount": "DOUBLE",
        "status": "VARCHAR",
        "order_id": "VARCHAR",
    }
    statuses = {s for (s,) in _rows(example, "select distinct status from raw.orders")}
    assert "completed" in statuses


def _snapshot(database: Path) -> list[tuple]:
    return _rows(database, "select * from raw.orders order by all")


def test_same_seed_same_data(tmp_path: Path) -> None:
    first, second, other = (copy_example(tmp_path / n) for n in ("a", "b", "c"))
    for root, seed in ((first, "3"), (second, "3"), (other, "4")):
        assert main(["sample-data", "-p", str(root), "--seed", seed, "--rows", "50", "--end-time", END_TIME]) == 0
    a, b, c = (_snapshot(r / "example_project.duckdb") for r in (first, second, other))
    assert a == b and len(a) == 50
    assert a != c


PB_PROJECT = dedent(
    """
    name: sf_project
    schema_version: 99
    connection: prod
    model_folders:
      - models
    entities:
      - name: user
        id_types:
          - user_id
          - anonymous_id
    id_types:
      - name: user_id
        filters:
          - type: include
            regex: "[0-9]+"
      - name: anonymous_id
    """
)

INPUTS = dedent(
    """
    inputs:
      - name: tracks
        contract:
          with_columns:
            - name: context_ip
        app_defaults:
          table: ANALYTICS.RAW.TRACKS
          occurred_at_col: sent_at
          ids:
            - select: USER_ID
              type: user_id
              entity: user
            - select: lower(ANONYMOUS_ID)
              type: anonymous_id
              entity: user
      - name: pages
        app_defaults:
          table: PAGES
          occurred_at_col: sent_at
          ids:
            - select: anonymous_id
              type: anonymous_id
              entity: user
    """
)

PROFILES = dedent(
    """
    models:
      - name: daily
        model_type: sql_template
        model_spec:
          materialization:
            output_type: table
          single_sql: |
            {% with t = this.DeRef("inputs/tracks") %}
            select user_id, count(*) as n from {{ t }} where coupon_code <> '' and quantity > 2 group by user_id
            {% endwith %}
    var_groups:
      - name: g
        entity_key: user
        vars:
          - entity_var:
              name: revenue
              select: sum(REVENUE)
              from: inputs/tracks
              where: EVENT = 'Order Completed'
          - entity_var:
              name: days_active
              select: count(distinct date_trunc('day', visited_at))
              from: inputs/pages
          - entity_var:
              name: mobile_pages
              select: count(*)
              from: inputs/pages
              where: is_mobile
    """
)

SNOWFLAKE = dedent(
    """
    connections:
      prod:
        target: prod
        outputs:
          prod:
            type: snowflake
            account: xy
            user: me
            password: secret
            role: r
            warehouse: w
            dbname: ANALYTICS
            schema: PROFILES
    """
)


def _snowflake_project(root: Path) -> Path:
    return write_project(
        root, project=PB_PROJECT, models={"inputs.yaml": INPUTS, "profiles.yaml": PROFILES}, siteconfig=SNOWFLAKE
    )


def test_columns_found_in_every_kind_of_sql(tmp_path: Path) -> None:
    project = load_project(_snowflake_project(tmp_path))
    found = input_columns(project, build_plan(project))
    kinds = {name: {c.name.lower(): c.kind for c in cols.values()} for name, cols in found.items()}
    assert kinds == {
        "tracks": {
            "context_ip": Kind.TEXT,  # the contract
            "user_id": Kind.ID,
            "anonymous_id": Kind.ID,  # inside lower()
            "sent_at": Kind.TIMESTAMP,  # occurred_at_col
            "event": Kind.TEXT,
            "revenue": Kind.NUMBER,  # sum(), inside the CASE the var's where becomes
            "coupon_code": Kind.TEXT,  # the sql_template's where
            "quantity": Kind.NUMBER,  # compared with a number
        },
        "pages": {
            "anonymous_id": Kind.ID,
            "sent_at": Kind.TIMESTAMP,
            "visited_at": Kind.TIMESTAMP,  # date_trunc()
            "is_mobile": Kind.BOOLEAN,  # a where on its own
        },
    }
    assert found["tracks"]["event"].strings == {"Order Completed"}


def test_snowflake_project_runs_on_a_duckdb_file_in_two_commands(tmp_path: Path, capsys) -> None:
    root = _snowflake_project(tmp_path / "p")
    assert main(["sample-data", "-p", str(root), "--rows", "200", "--end-time", END_TIME]) == 0
    out = capsys.readouterr().out
    # DuckDB finds ANALYTICS.RAW.TRACKS in a database named ANALYTICS: the file is named after it
    database = root / "output" / "sample_data" / "ANALYTICS.duckdb"
    site_config = database.with_name("ANALYTICS.siteconfig.yaml")
    assert f"--site-config {site_config}" in out
    assert main(["run", "-p", str(root), "--site-config", str(site_config), "--end_time", END_TIME]) == 0
    rows = _rows(database, 'select revenue, mobile_pages from "PROFILES".user_feature_view')
    assert len(rows) > 5 and any(r[0] for r in rows) and any(r[1] for r in rows)
    # user ids pass the include regex [0-9]+; junk ones do not and stay out of the graph
    ids = {u for (u,) in _rows(database, "select distinct user_id from raw.tracks where user_id is not null")}
    assert any(not u.isdigit() for u in ids)
    graph = {
        u
        for (u,) in _rows(
            database, "select other_id from \"PROFILES\".user_default_id_stitcher where other_id_type = 'user_id'"
        )
    }
    assert graph and all(u.isdigit() for u in graph)


def test_three_part_name_in_another_database_is_an_error_naming_the_input(tmp_path: Path) -> None:
    root = _snowflake_project(tmp_path / "p")
    with pytest.raises(ProfilesError) as err:
        write_sample_data(root, end_time=parse_time(END_TIME), duckdb_path=tmp_path / "local.duckdb")
    assert "input 'tracks'" in str(err.value) and "ANALYTICS.duckdb" in str(err.value)
    assert err.value.line is not None


def test_unqualified_input_on_the_projects_duckdb_connection(tmp_path: Path) -> None:
    inputs = dedent(
        """
        inputs:
          - name: tracks
            app_defaults:
              table: tracks
              occurred_at_col: timestamp
              ids:
                - select: user_id
                  type: user_id
                  entity: user
                - select: anonymous_id
                  type: anonymous_id
                  entity: user
        """
    )
    root = write_project(tmp_path, models={"inputs.yaml": inputs})
    assert main(["sample-data", "-p", str(root), "--rows", "40", "--end-time", END_TIME]) == 0
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0
    ((profiles,),) = _rows(root / "test.duckdb", "select count(*) from profiles.user_all")
    assert profiles > 0


def test_id_shapes_pass_filters_and_junk_fails_them() -> None:
    digits = IdType(name="customer", filters=[{"type": "include", "regex": "[0-9]{6}"}])
    shape = id_shape("customer", digits)
    assert passes(digits, shape("customer", 3, 0)) and shape("customer", 3, 0).isdigit()
    anon = IdType(name="anonymous_id", filters=[{"type": "exclude", "regex": "(undefined|null|test.*)"}])
    assert set(junk_values(anon)) >= {"undefined", "null", "test"}
    assert all(not passes(anon, v) for v in junk_values(anon))
    fixed = IdType(name="user_id", filters=[{"type": "exclude", "value": 0}])
    assert junk_values(fixed) == ["0"]


def test_database_named_like_the_output_schema_gets_another_schema(tmp_path: Path) -> None:
    # `profiles.raw.tracks` puts a database named `profiles` beside the default output schema `profiles`: DuckDB
    # would find `profiles.<table>` ambiguous, so the written siteconfig names the schema `profiles_output`
    inputs = INPUTS_THREE_PART
    root = write_project(tmp_path / "p", models={"inputs.yaml": inputs}, siteconfig=None)
    written = write_sample_data(root, rows=40, end_time=parse_time(END_TIME))
    assert written.destination.engine.output_schema == "profiles_output"
    assert Path(written.destination.engine.database).name == "profiles.duckdb"
    site_config = str(written.destination.site_config)
    assert main(["run", "-p", str(root), "--site-config", site_config, "--end_time", END_TIME]) == 0


INPUTS_THREE_PART = dedent(
    """
    inputs:
      - name: tracks
        app_defaults:
          table: profiles.raw.tracks
          occurred_at_col: timestamp
          ids:
            - select: user_id
              type: user_id
              entity: user
            - select: anonymous_id
              type: anonymous_id
              entity: user
    """
)


def test_csv_inputs_keep_their_file_and_duckdb_option_writes_a_siteconfig(tmp_path: Path) -> None:
    signups = "  - name: signups\n    app_defaults:\n      csv: data/signups.csv\n      ids:\n"
    signups += "        - select: user_id\n          type: user_id\n          entity: user\n"
    inputs = INPUTS_THREE_PART.replace("table: profiles.raw.tracks", "table: raw.tracks") + signups
    root = write_project(tmp_path / "p", models={"inputs.yaml": inputs})
    written = write_sample_data(root, rows=10, end_time=parse_time(END_TIME), duckdb_path=tmp_path / "try.duckdb")
    assert list(written.tables) == ["tracks"]
    assert written.notes == ["input 'signups' reads a `csv:` file: it brings its own rows, none written"]
    # the project's own DuckDB connection is left alone when --duckdb names another file
    assert written.destination.site_config == tmp_path / "try.siteconfig.yaml" and written.destination.written
    assert "path: " + str(tmp_path / "try.duckdb") in written.destination.site_config.read_text()
    assert not (root / "test.duckdb").exists()


MODEL_STAR = dedent(
    """
    models:
      - name: marketing
        model_type: sql_template
        model_spec:
          materialization:
            output_type: ephemeral
          single_sql: |
            {% with t = this.DeRef("inputs/tracks") %}
            select * from {{ t }} where campaign_source = 'email'
            {% endwith %}
          occurred_at_col: timestamp
          ids:
            - select: user_id
              type: user_id
              entity: user
            - select: device_id
              type: anonymous_id
              entity: user
    var_groups:
      - name: g
        entity_key: user
        vars:
          - entity_var:
              name: campaign
              select: first_value(campaign_name)
              from: models/marketing
              window:
                order_by:
                  - timestamp desc
    """
)


def test_columns_read_through_a_sql_models_star_belong_to_its_input(tmp_path: Path) -> None:
    # the var reads campaign_name from the model, which hands on every column of tracks (`select *`); the
    # model's id device_id is a column of tracks too, and must hold profiles' ids (not a few texts, which
    # would stitch every profile together)
    root = write_project(
        tmp_path, models={"inputs.yaml": INPUTS_THREE_PART.replace("profiles.raw", "raw"), "profiles.yaml": MODEL_STAR}
    )
    project = load_project(root)
    tracks = input_columns(project, build_plan(project))["tracks"]
    assert tracks["campaign_name"].kind is Kind.TEXT
    assert tracks["campaign_source"].strings == {"email"}
    assert tracks["device_id"].kind is Kind.ID and tracks["device_id"].id_type == "anonymous_id"
    assert main(["sample-data", "-p", str(root), "--rows", "80", "--end-time", END_TIME]) == 0
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0
    ((devices,),) = _rows(root / "test.duckdb", "select count(distinct device_id) from raw.tracks")
    assert devices > 10


def test_two_inputs_on_one_table_share_its_columns(tmp_path: Path) -> None:
    second = "  - name: orders\n    app_defaults:\n      table: raw.tracks\n      occurred_at_col: timestamp\n"
    second += "      ids:\n        - select: user_id\n          type: user_id\n          entity: user\n"
    inputs = INPUTS_THREE_PART.replace("profiles.raw", "raw") + second
    vars_ = dedent(
        """
        var_groups:
          - name: g
            entity_key: user
            vars:
              - entity_var:
                  name: revenue
                  select: sum(amount)
                  from: inputs/orders
              - entity_var:
                  name: clicks
                  select: count(*)
                  from: inputs/tracks
                  where: event = 'click'
        """
    )
    root = write_project(tmp_path, models={"inputs.yaml": inputs, "profiles.yaml": vars_})
    written = write_sample_data(root, rows=50, end_time=parse_time(END_TIME))
    assert list(written.tables) == ["tracks"]
    assert "input 'orders' reads the table of input 'tracks'" in written.notes
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0
    types = dict(
        _rows(
            root / "test.duckdb",
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'tracks'",
        )
    )
    assert types["amount"] == "DOUBLE" and types["event"] == "VARCHAR"
