"""Snowflake's implicit and type-dependent casts on DuckDB, from the types of the columns read
(profiles_dagster/sql/transpile/implicit.py, types.py).

Each case is a query over a hand-made typed DuckDB table `t` (the types a run reads from upstream materials and
inputs), translated with those column types attached, run on an in-memory DuckDB and compared with the value
Snowflake's documentation defines (the rule is named beside each case). Refusals are tested one by one."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from benchmarks import sql_census
from profiles_dagster.cli import main
from profiles_dagster.sql.dialects import DUCKDB
from profiles_dagster.sql.dialects import POSTGRES as POSTGRES_DIALECT
from profiles_dagster.sql.transpile import UnfaithfulError, translate
from profiles_dagster.sql.transpile.implicit import CHECKED
from profiles_dagster.sql.transpile.types import attach_schema
from profiles_dagster_tests.format.harness import Outputs, write
from profiles_dagster_tests.format.test_format_core import rid

# one row per case's table; the columns' DuckDB types are what a material or an input holds
TABLE = """create table t as select * from (values
    ('"12"'::json, '12.5'::json, '"abc"'::json, '"2024-01-02"'::json, '12', '012',
     timestamp '2024-01-02 03:04:05.1', timestamp '2024-01-02 03:04:05', date '2024-01-02', true, 12::bigint,
     1.5::decimal(10, 2), 0.1::double, timestamptz '2024-01-02 03:04:05+00', 'yes', 'On', 'F', 'maybe',
     NULL::varchar)
) v(vs, vn, vtext, vdate, txt, txt0, ts, ts0, d, b, i, dec, f, tstz, yes, on_, f_, maybe, nothing)"""


def _schema(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, exp.DataType]]:
    rows = con.execute("describe t").fetchall()
    return {"t": {name.lower(): exp.DataType.build(kind, dialect="duckdb") for name, kind, *_ in rows}}


def duck(select: str, source: str = "snowflake", typed: bool = True) -> list[tuple[object, ...]]:
    """`SELECT <select> FROM t` in the source dialect, translated with t's column types, run on DuckDB."""
    con = duckdb.connect()
    con.execute(TABLE)
    tree = sqlglot.parse_one(f"select {select} from t", read=source)
    if typed:
        attach_schema(tree, _schema(con))
    sql = translate(tree, source, "duckdb").sql(DUCKDB)
    return con.execute(sql).fetchall()


# (census name, SQL after SELECT, expected first value, the documented rule)
SNOWFLAKE: list[tuple[str, str, object, str]] = [
    # coercion: a VARIANT operand of arithmetic is its number; a VARIANT string '12' is 12
    ("VARIANT arithmetic", "vs * 2", 24.0, "VARIANT string coerced to a number"),
    ("VARIANT arithmetic", "vn * 2", 25.0, "VARIANT number"),
    ("VARIANT arithmetic", "vs + vn", 24.5, "two VARIANTs"),
    ("ROUND", "round((vs * 0.8), 2)", 9.6, "the corpus's form: ROUND of a coerced VARIANT"),
    ("ROUND", "round(2.5)", Decimal("3"), "NUMBER: half away from zero (default rounding mode)"),
    ("ROUND", "round(-2.5)", Decimal("-3"), "NUMBER: half away from zero"),
    ("ROUND", "round(vn)", 13.0, "a VARIANT coerced, then half away from zero"),
    ("ROUND", "round(2.5, 0, 'HALF_TO_EVEN')", Decimal("2"), "rounding_mode HALF_TO_EVEN"),
    ("ROUND", "round(dec, 0, 'HALF_AWAY_FROM_ZERO')", Decimal("2"), "rounding_mode HALF_AWAY_FROM_ZERO"),
    ("VARIANT aggregate", "sum(vs)", 12.0, "SUM of a VARIANT coerces each value"),
    ("VARIANT aggregate", "avg(vn)", 12.5, "AVG of a VARIANT"),
    # comparisons: the VARIANT or text side is cast to the other side's type
    ("VARIANT comparison", "vn > 10", True, "VARIANT vs number"),
    ("VARIANT comparison", "vs = 12", True, "VARIANT string '12' vs 12"),
    ("VARIANT comparison", "vdate < '2024-02-01'::date", True, "VARIANT vs DATE: cast to DATE"),
    ("text comparison", "txt > 9", True, "text cast to a number (DuckDB alone refuses VARCHAR > INTEGER)"),
    ("text comparison", "txt0 = 12", True, "'012' is the number 12"),
    ("text comparison", "txt < i + 1", True, "text vs a numeric column expression"),
    # an id of 19 digits stays exact (a DOUBLE would make these equal)
    ("text comparison", "'1234567890123456789'::varchar = 1234567890123456788", False, "exact NUMBER"),
    # text (or a VARIANT) in a date function: a TIMESTAMP_NTZ read from its text in AUTO format
    ("date functions", "datediff(day, vdate, '2024-01-10'::date)", 8, "a VARIANT date string"),
    ("date functions", "year(d::varchar)", 2024, "YEAR of a date's text"),
    ("date functions", "dateadd(day, 1, d::varchar)", dt.datetime(2024, 1, 3), "a TIMESTAMP from text"),
    ("date functions", "date_trunc(month, vdate)", dt.datetime(2024, 1, 1), "DATE_TRUNC of a VARIANT"),
    ("date functions", "extract(day from d::string)", 2, "EXTRACT from text"),
    # CAST(x AS VARCHAR) / ::string / TO_CHAR(x): the text of x's type
    # TIMESTAMP_OUTPUT_FORMAT's default YYYY-MM-DD HH24:MI:SS.FF3
    ("CAST(… AS VARCHAR)", "ts::string", "2024-01-02 03:04:05.100", "TIMESTAMP_OUTPUT_FORMAT"),
    ("CAST(… AS VARCHAR)", "cast(ts0 as varchar)", "2024-01-02 03:04:05.000", "FF3 keeps three zero digits"),
    ("CAST(… AS VARCHAR)", "d::varchar", "2024-01-02", "DATE_OUTPUT_FORMAT YYYY-MM-DD"),
    ("CAST(… AS VARCHAR)", "b::varchar", "true", "BOOLEAN as text: 'true'"),
    ("CAST(… AS VARCHAR)", "i::varchar", "12", "an integer"),
    ("CAST(… AS VARCHAR)", "dec::varchar", "1.50", "NUMBER(10,2) keeps its scale"),
    ("CAST(… AS VARCHAR)", "vtext::varchar", "abc", "a VARIANT string without its JSON quotes"),
    ("CAST(… AS VARCHAR)", "txt::varchar", "12", "text stays text"),
    ("CAST(… AS VARCHAR)", "cast(null as varchar)", None, "NULL"),
    ("TO_CHAR (no format)", "to_char(ts)", "2024-01-02 03:04:05.100", "as ::string"),
    ("TO_CHAR (no format)", "to_varchar(d)", "2024-01-02", "TO_VARCHAR is TO_CHAR"),
    ("TO_CHAR (no format)", "to_char(vs)", "12", "a VARIANT string without its quotes"),
    # TO_BOOLEAN: 'true'/'t'/'yes'/'y'/'on'/'1' TRUE, 'false'/'f'/'no'/'n'/'off'/'0' FALSE, any case; 0 FALSE
    ("TO_BOOLEAN", "to_boolean(yes)", True, "'yes'"),
    ("TO_BOOLEAN", "to_boolean(on_)", True, "'On': case-insensitive (DuckDB's cast refuses 'on')"),
    ("TO_BOOLEAN", "to_boolean(f_)", False, "'F'"),
    ("TO_BOOLEAN", "to_boolean(nothing)", None, "NULL"),
    ("TO_BOOLEAN", "to_boolean(1)", True, "a non-zero number"),
    ("TO_BOOLEAN", "to_boolean(0)", False, "0"),
    ("TO_BOOLEAN", "to_boolean(b)", True, "a BOOLEAN"),
]


@pytest.mark.parametrize(("name", "select", "expected", "rule"), SNOWFLAKE, ids=[c[1] for c in SNOWFLAKE])
def test_snowflake_casts_as_documented(name: str, select: str, expected: object, rule: str) -> None:
    (value,) = duck(select)[0]
    if isinstance(expected, float):
        assert value == pytest.approx(expected), rule
    else:
        assert value == expected, rule


@pytest.mark.parametrize(
    ("select", "why"),
    [
        ("vtext * 2", "a VARIANT string that is no number: Snowflake fails to coerce it too"),
        ("to_boolean(maybe)", "Snowflake: Boolean value 'maybe' is not recognized"),
        ("txt0 > vtext::varchar::int", "text that is no number cast: an error on both"),
    ],
)
def test_snowflake_errors_stay_errors(select: str, why: str) -> None:
    # never TRY_CAST: a NULL where Snowflake fails would be another answer
    with pytest.raises(duckdb.Error):
        duck(select)


@pytest.mark.parametrize(
    ("select", "construct"),
    [
        ("f::varchar", "CAST(… AS VARCHAR)"),  # FLOAT: Snowflake's own shortest form
        ("tstz::varchar", "CAST(… AS VARCHAR)"),  # TIMESTAMP_LTZ/TZ: the output format has an offset
        ("to_char(f)", "TO_CHAR"),
        ("(dec + dec)::varchar", "CAST(… AS VARCHAR)"),  # a type the SQL does not show, columns read with types
        ("cast(unknown_column as varchar)", "CAST(… AS VARCHAR)"),  # a column of no known type
        ("max(vn)", "MAX of a VARIANT"),  # VARIANT order: numbers by value, DuckDB's JSON text by text
        ("min(vs)", "MIN of a VARIANT"),
        ("round(dec, 0, 'HALF_DOWN')", "ROUND"),
    ],
)
def test_snowflake_refusals(select: str, construct: str) -> None:
    with pytest.raises(UnfaithfulError) as refused:
        duck(select)
    assert refused.value.construct == construct


def test_untyped_compile_keeps_sqlglots_cast() -> None:
    # compiled with no types at all (no connection): the cast is left as sqlglot writes it, not refused; the run
    # compiles the step again with the types of what it reads
    tree = sqlglot.parse_one("select cast(x as varchar) from t", read="snowflake")
    assert translate(tree, "snowflake", "duckdb").sql(DUCKDB) == "SELECT CAST(x AS TEXT) FROM t"


def test_to_boolean_of_a_value_of_unknown_type_is_refused() -> None:
    tree = sqlglot.parse_one("select to_boolean(x) from t", read="snowflake")
    with pytest.raises(UnfaithfulError):
        translate(tree, "snowflake", "duckdb")


# Databricks: CAST(x AS STRING) by x's type; `date_format` of a DATE or string casts it to a TIMESTAMP first
DATABRICKS: list[tuple[str, str, object, str]] = [
    ("CAST", "date_format('2024-02-01', 'MMdd')", "0201", "a string cast to TIMESTAMP, then formatted"),
    ("CAST", "date_format(d, 'yyyy-MM-dd HH:mm')", "2024-01-02 00:00", "a DATE cast to TIMESTAMP: midnight"),
    ("CAST(… AS STRING)", "cast(i as string)", "12", "an integer"),
    ("CAST(… AS STRING)", "cast(d as string)", "2024-01-02", "a DATE"),
    ("CAST(… AS STRING)", "cast(b as string)", "true", "a BOOLEAN"),
]


@pytest.mark.parametrize(("name", "select", "expected", "rule"), DATABRICKS, ids=[c[1] for c in DATABRICKS])
def test_databricks_casts_as_documented(name: str, select: str, expected: object, rule: str) -> None:
    assert duck(select, "databricks")[0][0] == expected, rule


def test_databricks_text_of_a_double_is_refused() -> None:
    with pytest.raises(UnfaithfulError):
        duck("cast(f as string)", "databricks")


def test_every_checked_construct_has_a_case() -> None:
    for (source, _), names in CHECKED.items():
        cases = SNOWFLAKE if source == "snowflake" else DATABRICKS
        assert names <= {c[0] for c in cases}, names - {c[0] for c in cases}


def test_census_names_the_cases_as_checked() -> None:
    # the labels the census gives these constructs are the names CHECKED claims
    labels = {
        sql_census.label(n, "snowflake")
        for select in ("cast(x as varchar)", "to_char(x)", "to_boolean(x)", "round(x)")
        for n in sqlglot.parse_one(f"select {select}", read="snowflake").walk()
    }
    assert CHECKED[("snowflake", "duckdb")] <= labels
    spark = sqlglot.parse_one("select date_format(x, 'MMdd')", read="databricks")
    assert "CAST" in {sql_census.label(n, "databricks") for n in spark.walk()}


# ---- end to end: a sql model selecting VARIANT fields, entity vars doing arithmetic on them ----------------

PROJECT = {
    "pb_project.yaml": """
        name: typed
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
    "profiles_dagster.yaml": "dialect: snowflake\n",
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
    """,
    "models/sql.yaml": """
        models:
          - name: items
            model_type: sql_template
            model_spec:
              materialization:
                output_type: table
              ids:
                - select: user_id
                  type: user_id
                  entity: user
              single_sql: |
                {% with orders = this.DeRef("inputs/orders") %}
                select user_id, parse_json(payload):price as price, parse_json(payload):sku as sku, ts
                from {{ orders }}
                {% endwith %}
          - name: discounted
            model_type: sql_template
            model_spec:
              materialization:
                output_type: table
              ids:
                - select: user_id
                  type: user_id
                  entity: user
              single_sql: |
                {% with items = this.DeRef("models/items") %}
                with t1 as (select user_id, price from {{ items }})
                select user_id, round((price * 0.8), 2) as disc_price from t1
                {% endwith %}
    """,
    "models/vars.yaml": """
        var_groups:
          - name: vars
            entity_key: user
            vars:
              - entity_var:
                  name: doubled
                  select: sum(price * 2)
                  from: models/items
              - entity_var:
                  name: big_orders
                  select: count(*)
                  from: models/items
                  where: price > 10
              - entity_var:
                  name: last_sku
                  select: max(sku::string)
                  from: models/items
              - entity_var:
                  name: last_seen
                  select: max(ts)::string
                  from: models/items
              - entity_var:
                  name: discount
                  select: sum(disc_price)
                  from: models/discounted
    """,
}

# u1: a price written as a JSON string ("12") and one as a number (3.5); u2: one order at 5
ORDERS = """create table raw.orders as select * from (values
    ('u1', '{"price": "12", "sku": "b"}', timestamp '2025-01-01 10:00:00'),
    ('u1', '{"price": 3.5, "sku": "a"}', timestamp '2025-01-02 11:30:00.25'),
    ('u2', '{"price": 5, "sku": "c"}', timestamp '2025-01-03 00:00:00')
) v(user_id, payload, ts)"""


def test_variant_arithmetic_project_validates_and_runs(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    database = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(database))
    con.execute("create schema raw")
    con.execute(ORDERS)
    con.close()
    assert main(["validate", "-p", str(tmp_path)]) == 0
    assert main(["run", "-p", str(tmp_path), "--end_time", "2025-06-01T00:00:00Z"]) == 0
    rows = Outputs(database).by_key("out.user_feature_view")
    u1, u2 = rows[rid("u1", "user_id")], rows[rid("u2", "user_id")]
    # Snowflake coerces each VARIANT price to a number: u1 (12 + 3.5) * 2 = 31, u2 5 * 2 = 10
    assert float(u1["doubled"]) == pytest.approx(31.0) and float(u2["doubled"]) == pytest.approx(10.0)
    # `price > 10` holds for u1's 12 (a VARIANT string, compared as a number) only
    assert u1["big_orders"] == 1 and u2["big_orders"] in (0, None)
    # ::string of a VARIANT string drops its quotes; MAX of text: 'b'
    assert u1["last_sku"] == "b" and u2["last_sku"] == "c"
    # a TIMESTAMP_NTZ as text in Snowflake's default output format (three fraction digits)
    assert u1["last_seen"] == "2025-01-02 11:30:00.250" and u2["last_seen"] == "2025-01-03 00:00:00.000"
    # round(price * 0.8, 2): u1 9.6 + 2.8 = 12.4; u2 4.0
    assert float(u1["discount"]) == pytest.approx(12.4) and float(u2["discount"]) == pytest.approx(4.0)
    assert json.dumps(u1, default=str)  # the row reads back whole


def test_a_var_holding_a_variant_string_is_text_without_quotes(tmp_path: Path) -> None:
    # `{{ user.Var("v") }}::string` of a var whose value is a VARIANT string: Snowflake's text is the string
    # itself ('CA'), not its JSON ('"CA"'), though the reading var only sees a column of the var table
    project = dict(PROJECT)
    project["models/vars.yaml"] = """
        var_groups:
          - name: vars
            entity_key: user
            vars:
              - entity_var:
                  name: first_sku
                  select: min_by(sku, ts)
                  from: models/items
              - entity_var:
                  name: sku_text
                  select: '{{ user.Var("first_sku") }}::string'
              - entity_var:
                  name: sku_upper
                  select: 'upper({{ user.Var("first_sku") }}::varchar)'
    """
    write(tmp_path, project)
    database = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(database))
    con.execute("create schema raw")
    con.execute(ORDERS)
    con.close()
    assert main(["run", "-p", str(tmp_path), "--end_time", "2025-06-01T00:00:00Z"]) == 0
    rows = Outputs(database).by_key("out.user_feature_view")
    u1 = rows[rid("u1", "user_id")]
    assert u1["sku_text"] == "b" and u1["sku_upper"] == "B"


# ---- the same rules on Postgres (VARIANT as jsonb), on the Postgres stand-in --------------------------------

PG_TABLE = """create table t as select
    '"12"'::jsonb as vs, '12.5'::jsonb as vn, '"abc"'::jsonb as vtext, '"2024-01-02"'::jsonb as vdate,
    '12'::text as txt, '012'::text as txt0, timestamp '2024-01-02 03:04:05.1' as ts,
    timestamp '2024-01-02 03:04:05' as ts0, date '2024-01-02' as d, true as b, 12::bigint as i,
    1.5::numeric(10, 2) as dec, 0.1::double precision as f, timestamptz '2024-01-02 03:04:05+00' as tstz,
    'yes'::text as yes, 'On'::text as on_, 'F'::text as f_, 'maybe'::text as maybe, NULL::varchar as nothing"""

# the cases above whose rules are registered for Postgres too (TO_BOOLEAN and ROUND's modes are DuckDB's alone)
POSTGRES = [c for c in SNOWFLAKE if c[0] not in ("TO_BOOLEAN", "ROUND")]


@pytest.fixture(scope="module")
def pg_cursor() -> Iterator[Any]:
    from profiles_dagster_tests.standins.postgres import postgres_server

    with postgres_server() as server:
        con = server.connect()
        con.autocommit = True
        cursor = con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        cursor.execute(PG_TABLE)
        yield cursor
        con.close()


def pg(cursor: Any, select: str) -> list[tuple[object, ...]]:
    """`SELECT <select> FROM t` in Snowflake SQL, translated with t's Postgres column types, run on Postgres."""
    cursor.execute(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute "
        "where attrelid = 't'::regclass and attnum > 0 and not attisdropped"
    )
    schema = {"t": {name: exp.DataType.build(kind, dialect="postgres") for name, kind in cursor.fetchall()}}
    tree = attach_schema(sqlglot.parse_one(f"select {select} from t", read="snowflake"), schema)
    cursor.execute(translate(tree, "snowflake", "postgres").sql(POSTGRES_DIALECT))
    return [tuple(r) for r in cursor.fetchall()]


@pytest.mark.parametrize(("name", "select", "expected", "rule"), POSTGRES, ids=[c[1] for c in POSTGRES])
def test_snowflake_casts_on_postgres(pg_cursor: Any, name: str, select: str, expected: object, rule: str) -> None:
    (value,) = pg(pg_cursor, select)[0]
    if isinstance(expected, float) or isinstance(value, Decimal | float):
        assert float(value) == pytest.approx(float(expected)), rule  # type: ignore[arg-type]
    else:
        assert value == expected, rule


@pytest.mark.parametrize(
    ("select", "construct"),
    [
        ("f::varchar", "CAST(… AS VARCHAR)"),  # FLOAT: Snowflake's own shortest form
        ("tstz::varchar", "CAST(… AS VARCHAR)"),  # TIMESTAMP_LTZ/TZ: the output format has an offset
        ("to_char(f)", "TO_CHAR"),
        ("cast(unknown_column as varchar)", "CAST(… AS VARCHAR)"),  # a column of no known type
        ("max(vn)", "MAX of a VARIANT"),  # VARIANT order is not jsonb's
    ],
)
def test_snowflake_refusals_on_postgres(pg_cursor: Any, select: str, construct: str) -> None:
    with pytest.raises(UnfaithfulError) as refused:
        pg(pg_cursor, select)
    assert refused.value.construct == construct
