"""Input tables found the way the warehouse finds them: an unqualified name in the connection's schema (the
siteconfig output's `schema`, as pb resolves it), unquoted identifiers folded as the project's SQL dialect folds
them, 3-part names through the DuckDB databases a siteconfig `attach:`es, and a missing table named with the
input's file and line.

Every project is our own, on DuckDB. Each seeds a decoy table of the same name in another place with other
amounts, so a sum read from the wrong table shows; the expected sums are worked out from the seeded rows.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from profiles_dagster.cli import main
from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.siteconfig import load_connection
from profiles_dagster.warehouse.duckdb import DuckDBEngine
from profiles_dagster_tests.format.harness import END_TIME, Outputs, write
from profiles_dagster_tests.format.test_format_core import project

VARS = """
var_groups:
  - name: vars
    entity_key: user
    vars:
      - entity_var:
          name: total
          select: sum(amount)
          from: inputs/orders
"""


def inputs(table: str) -> str:
    return f"""
inputs:
  - name: orders
    app_defaults:
      table: {table}
      occurred_at_col: ts
      ids:
        - select: user_id
          type: user_id
          entity: user
"""


def seed(database: Path, statements: list[str]) -> None:
    database.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database))
    for statement in statements:
        con.execute(statement)
    con.close()


def orders(relation: str, u1: int, u2: int) -> list[str]:
    """`relation` with u1's two orders (u1 and u1 + 1, summing to 2*u1 + 1) and u2's one order (u2)."""
    return [
        f"create table {relation} as select * from (values ('u1', {u1}, timestamp '2025-01-01'), "
        f"('u1', {u1 + 1}, timestamp '2025-01-02'), ('u2', {u2}, timestamp '2025-01-03')) t(user_id, amount, ts)"
    ]


def totals(out: Outputs) -> dict[object, object]:
    rows = out.rows(
        "select v.total, s.other_id from out.user_feature_view v join out.user_default_id_stitcher s using (user_main_id)"
    )
    return {other: total for total, other in rows}


def run(root: Path, files: dict[str, str]) -> Outputs:
    write(root, {"pb_project.yaml": project("names"), **files})
    assert main(["run", "-p", str(root), "--end_time", END_TIME]) == 0, "the project did not run"
    return Outputs(root / "warehouse.duckdb")


def test_an_unqualified_name_is_the_table_in_the_connections_schema(tmp_path: Path) -> None:
    # the connection's schema is `out`: out.orders is read, never main.orders (DuckDB's own default schema)
    seed(
        tmp_path / "warehouse.duckdb",
        ["create schema out", *orders("out.orders", 10, 5), *orders("main.orders", 100, 50)],
    )
    out = run(tmp_path, {"models/inputs.yaml": inputs("orders"), "models/vars.yaml": VARS})
    assert totals(out) == {"u1": 21, "u2": 5}


def test_three_part_names_read_the_databases_siteconfig_attaches(tmp_path: Path) -> None:
    # sales.duckdb attached read-only as `shop`, and web.duckdb under its own name; the main file has a decoy
    seed(tmp_path / "data" / "sales.duckdb", ["create schema raw", *orders("raw.orders", 10, 5)])
    seed(tmp_path / "data" / "web.duckdb", ["create schema raw", *orders("raw.orders", 1000, 500)])
    seed(tmp_path / "warehouse.duckdb", ["create schema raw", *orders("raw.orders", 100, 50)])
    site = """
        connections:
          test:
            target: dev
            outputs:
              dev:
                type: duckdb
                path: warehouse.duckdb
                schema: out
                attach:
                  - path: data/sales.duckdb
                    alias: shop
                    read_only: true
                  - path: data/web.duckdb
    """
    out = run(
        tmp_path, {"siteconfig.yaml": site, "models/inputs.yaml": inputs("shop.raw.orders"), "models/vars.yaml": VARS}
    )
    assert totals(out) == {"u1": 21, "u2": 5}
    out = run(
        tmp_path, {"siteconfig.yaml": site, "models/inputs.yaml": inputs("web.raw.orders"), "models/vars.yaml": VARS}
    )
    assert totals(out) == {"u1": 2001, "u2": 500}


def test_a_snowflake_projects_upper_case_names_find_the_tables_snowflake_would(tmp_path: Path) -> None:
    # written for Snowflake: SHOP.RAW.ORDERS is shop.raw.orders (unquoted names fold), never the main file's
    # raw.orders; an unqualified ORDERS is the connection's schema's orders
    seed(tmp_path / "shop.duckdb", ["create schema raw", *orders("raw.orders", 10, 5)])
    seed(
        tmp_path / "warehouse.duckdb",
        ["create schema raw", "create schema out", *orders("raw.orders", 100, 50), *orders("out.orders", 3, 7)],
    )
    site = """
        connections:
          test:
            target: dev
            outputs:
              dev:
                type: duckdb
                path: warehouse.duckdb
                schema: out
                attach:
                  - {path: shop.duckdb, alias: shop}
    """
    files = {"siteconfig.yaml": site, "profiles_dagster.yaml": "dialect: snowflake\n", "models/vars.yaml": VARS}
    out = run(tmp_path, {**files, "models/inputs.yaml": inputs("SHOP.RAW.ORDERS")})
    assert totals(out) == {"u1": 21, "u2": 5}
    out = run(tmp_path, {**files, "models/inputs.yaml": inputs("ORDERS")})
    assert totals(out) == {"u1": 7, "u2": 7}


def test_a_missing_table_names_the_input_the_name_where_and_its_line(tmp_path: Path, capsys) -> None:
    seed(tmp_path / "warehouse.duckdb", ["create schema raw", *orders("main.orders", 100, 50)])
    write(
        tmp_path,
        {"pb_project.yaml": project("names"), "models/inputs.yaml": inputs("Orders"), "models/vars.yaml": VARS},
    )
    assert main(["run", "-p", str(tmp_path), "--end_time", END_TIME]) != 0
    err = capsys.readouterr().err
    assert "input 'orders' reads table 'Orders', looked for as \"out\".\"Orders\"" in err
    assert "connection's schema (out)" in err
    assert "models/inputs.yaml:4" in err
    assert "Traceback" not in err
    # a database nobody attached: the same error, naming the database part
    write(tmp_path, {"models/inputs.yaml": inputs("nowhere.raw.orders")})
    assert main(["run", "-p", str(tmp_path), "--end_time", END_TIME]) != 0
    err = capsys.readouterr().err
    assert 'looked for as "nowhere"."raw"."orders"' in err
    assert "`attach:` alias" in err


def test_siteconfig_attach_paths_are_relative_to_the_siteconfig(tmp_path: Path) -> None:
    site = tmp_path / "conf" / "siteconfig.yaml"
    write(
        tmp_path,
        {
            "conf/siteconfig.yaml": """
                connections:
                  c:
                    target: dev
                    outputs:
                      dev:
                        type: duckdb
                        path: main.duckdb
                        attach:
                          - path: ../data/a.duckdb
                            alias: A
                          - path: /abs/b.duckdb
                            read_only: true
            """
        },
    )
    conn = load_connection(site, "c")
    assert conn.settings["attach"] == [
        {"path": str((tmp_path / "data" / "a.duckdb").resolve()), "alias": "A", "read_only": False},
        {"path": "/abs/b.duckdb", "alias": "b", "read_only": True},
    ]
    assert DuckDBEngine.from_connection(conn).attach == conn.settings["attach"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("attach", "message", "line"),
    [
        ("[{path: a.duckdb, alias: x, readonly: true}]", "unknown key 'readonly' in an `attach` entry", 8),
        ("[{alias: x}]", "a mapping with `path`", 8),
        ("a.duckdb", "a list of `{path, alias}` entries", 8),
        ("[{path: a.duckdb, alias: x}, {path: b.duckdb, alias: X}]", "two `attach` entries use the alias 'X'", 8),
    ],
)
def test_siteconfig_attach_mistakes_are_located(tmp_path: Path, attach: str, message: str, line: int) -> None:
    site = (
        write(
            tmp_path,
            {
                "siteconfig.yaml": f"""
                connections:
                  c:
                    target: dev
                    outputs:
                      dev:
                        type: duckdb
                        path: main.duckdb
                        attach: {attach}
            """
            },
        )
        / "siteconfig.yaml"
    )
    with pytest.raises(ProfilesError) as caught:
        load_connection(site, "c")
    assert message in caught.value.message
    assert caught.value.line == line


def test_attach_on_another_engine_is_refused(tmp_path: Path) -> None:
    site = (
        write(
            tmp_path,
            {
                "siteconfig.yaml": """
                connections:
                  c:
                    target: dev
                    outputs:
                      dev:
                        type: postgres
                        attach: [{path: a.duckdb}]
            """
            },
        )
        / "siteconfig.yaml"
    )
    with pytest.raises(ProfilesError, match="`attach` is a DuckDB key"):
        load_connection(site, "c")


def test_an_attached_file_that_cannot_open_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "junk.duckdb").write_text("not a database")
    engine = DuckDBEngine(
        database=str(tmp_path / "w.duckdb"), attach=[{"path": str(tmp_path / "junk.duckdb"), "alias": "j"}]
    )
    with pytest.raises(ProfilesError, match=r"cannot attach the DuckDB database .*junk.duckdb as 'j'"):
        engine.open_session()


def test_sample_data_writes_an_attached_database_that_the_run_then_reads(tmp_path: Path) -> None:
    seed(tmp_path / "shop.duckdb", [])
    site = """
        connections:
          test:
            target: dev
            outputs:
              dev:
                type: duckdb
                path: warehouse.duckdb
                schema: out
                attach:
                  - {path: shop.duckdb, alias: shop}
    """
    files = {"pb_project.yaml": project("names"), "siteconfig.yaml": site, "models/vars.yaml": VARS}
    write(tmp_path, {**files, "models/inputs.yaml": inputs("shop.raw.orders")})
    assert main(["sample-data", "-p", str(tmp_path), "--rows", "20", "--end-time", END_TIME]) == 0
    assert main(["run", "-p", str(tmp_path), "--end_time", END_TIME]) == 0
    con = duckdb.connect(str(tmp_path / "shop.duckdb"), read_only=True)
    assert con.execute("select count(*) from raw.orders").fetchone() == (20,)
    con.close()


@pytest.mark.parametrize(
    ("written", "dialect", "found"),
    [
        ("events", "snowflake", '"out"."EVENTS"'),  # unqualified: the connection's schema; unquoted folds up
        ('raw."Events"', "snowflake", '"RAW"."Events"'),  # quoted: as written
        ("DB.Raw.Events", "snowflake", '"DB"."RAW"."EVENTS"'),
        ("Raw.Events", "postgres", '"raw"."events"'),  # unquoted folds down
        ('raw."Events"', "postgres", '"raw"."Events"'),
        ("Shop.Raw.Events", "duckdb", '"Shop"."Raw"."Events"'),  # DuckDB keeps the case, matches case-blind
    ],
)
def test_one_resolution_of_an_input_table_name(written: str, dialect: str, found: str) -> None:
    from profiles_dagster.sql.names import input_table

    assert input_table(written, dialect, "out").sql("postgres") == found


@pytest.mark.parametrize(
    ("written", "dialect", "engine", "found"),
    [
        # written for Snowflake, run on Postgres: an unquoted name is the one the Postgres user created
        ("Raw.Events", "snowflake", "postgres", '"raw"."events"'),
        ('raw."Events"', "snowflake", "postgres", '"raw"."Events"'),  # quoted: as written, on any engine
        # written for Postgres, run on Snowflake: Snowflake's own folding
        ("raw.events", "postgres", "snowflake", '"RAW"."EVENTS"'),
        # DuckDB matches case-blind: the project's folding stays (what sample-data writes and the run reads)
        ("Raw.Events", "snowflake", "duckdb", '"RAW"."EVENTS"'),
    ],
)
def test_an_unquoted_name_folds_as_the_engine_that_reads_it_folds(
    written: str, dialect: str, engine: str, found: str
) -> None:
    from profiles_dagster.sql.names import input_table

    assert input_table(written, dialect, "out", engine).sql("postgres") == found


def test_a_snowflake_project_on_postgres_reads_the_lower_case_tables_there(tmp_path: Path, postgres_standin) -> None:
    # Postgres folds unquoted names down: the user's `create table raw.orders` is raw.orders, which the
    # Snowflake-written `RAW.ORDERS` means there; a decoy "RAW"."ORDERS" (quoted upper case) must not be read
    target = postgres_standin.target("names_pg")  # a fresh database
    con = postgres_standin.connect("names_pg")
    with con.cursor() as cur:
        cur.execute('create schema raw; create schema "RAW"')
        cur.execute(
            "create table raw.orders as select * from (values ('u1', 10, timestamp '2025-01-01'), "
            "('u1', 11, timestamp '2025-01-02'), ('u2', 5, timestamp '2025-01-03')) t(user_id, amount, ts)"
        )
        cur.execute("""create table "RAW"."ORDERS" as select * from raw.orders where false""")
    con.close()
    outputs = {"dev": {**target, "schema": "names_out"}}
    import yaml

    site = yaml.safe_dump({"connections": {"test": {"target": "dev", "outputs": outputs}}})
    files = {
        "siteconfig.yaml": site,
        "profiles_dagster.yaml": "dialect: snowflake\n",
        "models/vars.yaml": VARS,
        "models/inputs.yaml": inputs("RAW.ORDERS"),
    }
    write(tmp_path, {"pb_project.yaml": project("names"), **files})
    assert main(["run", "-p", str(tmp_path), "--end_time", END_TIME]) == 0, "the project did not run"
    con = postgres_standin.connect("names_pg")
    with con.cursor() as cur:
        cur.execute(
            "select s.other_id, v.total from names_out.user_feature_view v "
            "join names_out.user_default_id_stitcher s using (user_main_id)"
        )
        totals = {other: int(total) for other, total in cur.fetchall()}
    con.close()
    assert totals == {"u1": 21, "u2": 5}


def test_sample_data_refuses_a_database_the_duckdb_connection_does_not_attach(tmp_path: Path) -> None:
    from profiles_dagster.clock import parse_time
    from profiles_dagster.sampledata import write_sample_data

    write(tmp_path, {"pb_project.yaml": project("names"), "models/inputs.yaml": inputs("shop.raw.orders")})
    with pytest.raises(ProfilesError) as caught:
        write_sample_data(tmp_path, end_time=parse_time(END_TIME))
    assert "input 'orders'" in caught.value.message and "in database shop" in caught.value.message
