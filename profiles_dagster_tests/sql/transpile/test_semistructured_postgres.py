"""Snowflake's VARIANT / ARRAY / OBJECT SQL translated for Postgres (as jsonb) and run on the Postgres stand-in.

The rows and the expected values are those of test_semistructured.py (DuckDB), worked out by hand from
Snowflake's documentation (the rule is named beside each), never from what Postgres returns. jsonb values come
back as Python values (psycopg decodes them). Refusals are tested one by one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlglot

from profiles_dagster.sql.dialects import POSTGRES
from profiles_dagster.sql.transpile import UnfaithfulError, translate
from profiles_dagster_tests.sql.transpile.test_semistructured import ROWS


@pytest.fixture(scope="module")
def cursor() -> Iterator[Any]:
    from profiles_dagster_tests.standins.postgres import postgres_server

    with postgres_server() as server:
        con = server.connect()
        con.autocommit = True
        cur = con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute(ROWS)
        yield cur
        con.close()


def pg(cursor: Any, sql: str) -> list[tuple]:
    """`sql` written for Snowflake, translated and run on Postgres over the rows of test_semistructured.py."""
    tree = translate(sqlglot.parse_one(sql, read="snowflake"), "snowflake", "postgres")
    cursor.execute(tree.sql(POSTGRES))
    return [tuple(r) for r in cursor.fetchall()]


def refused(sql: str) -> UnfaithfulError:
    with pytest.raises(UnfaithfulError) as info:
        translate(sqlglot.parse_one(sql, read="snowflake"), "snowflake", "postgres")
    return info.value


# ---- FLATTEN ------------------------------------------------------------------------------------


def test_table_flatten_of_parse_json_joined_to_a_subquery(cursor: Any) -> None:
    # an array gives one row per element, INDEX 0-based, KEY NULL, PATH `[i]`; an object one row per field,
    # KEY the field name, INDEX NULL, PATH the name; an empty array, a NULL input and a scalar give no row
    rows = pg(
        cursor,
        "select s.id, t.index, t.key, t.path, t.value['sku']::string, t.value "
        "from (select * from t) s, table(flatten(parse_json(doc))) t order by 1, 2, 3",
    )
    assert rows == [
        (1, 0, None, "[0]", "a", {"sku": "a", "qty": 2}),
        (1, 1, None, "[1]", "b", {"sku": "b"}),
        (2, None, "x", "x", None, 1),
        (2, None, "y", "y", None, [2, 3]),
    ]


def test_flatten_named_input_and_this(cursor: Any) -> None:
    # THIS is the element being flattened
    rows = pg(cursor, "select f.value::int, f.this from table(flatten(input => parse_json('[5, 6]'))) f order by 1")
    assert rows == [(5, [5, 6]), (6, [5, 6])]


def test_lateral_flatten_with_path_and_outer(cursor: Any) -> None:
    # PATH => 'a.b' flattens the element at that path, and PATH of each row starts with it; OUTER => TRUE adds
    # exactly one row with NULL KEY, INDEX, VALUE for an input that gives none (missing path, NULL)
    rows = pg(
        cursor,
        "select t.id, f.index, f.value::int from t, "
        "lateral flatten(input => parse_json(profile), path => 'a.b', outer => true) f order by 1, 2",
    )
    assert rows == [(1, 0, 10), (1, 1, 20), (2, None, None), (3, None, None), (4, None, None), (5, None, None)]
    paths = pg(
        cursor, "select f.path from t, lateral flatten(input => parse_json(profile), path => 'a.b') f order by 1"
    )
    assert paths == [("a.b[0]",), ("a.b[1]",)]


def test_lateral_flatten_of_get_and_string_value(cursor: Any) -> None:
    # GET(array, 0) is the first element; a VARIANT string cast to string is the text without quotes, a
    # number its digits
    rows = pg(
        cursor,
        "select t.id, f.key, f.VALUE::string from t, lateral flatten (input=> get(parse_json(doc), 0)) as f "
        "where f.VALUE::string <> 'b' order by 1, 2",
    )
    assert rows == [(1, "qty", "2"), (1, "sku", "a")]


def test_flatten_mode_and_unqualified_value(cursor: Any) -> None:
    # MODE => 'OBJECT' flattens objects only, 'ARRAY' arrays only; VALUE unqualified names FLATTEN's column
    modes = "select t.id, f.{} from t, table(flatten(input => parse_json(doc), mode => '{}')) f order by 1, 2"
    assert pg(cursor, modes.format("key", "OBJECT")) == [(2, "x"), (2, "y")]
    assert pg(cursor, modes.format("index", "ARRAY")) == [(1, 0), (1, 1)]
    rows = pg(cursor, 'select value::string from table(flatten(input => parse_json(\'["p", "q"]\'))) order by 1')
    assert rows == [("p",), ("q",)]


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("select f.seq from t, table(flatten(parse_json(doc))) f", "FLATTEN column SEQ"),
        ("select f.value from t, table(flatten(input => parse_json(doc), recursive => true)) f", "RECURSIVE"),
        ("select f.this from t, lateral flatten(input => parse_json(doc), outer => true) f", "FLATTEN column THIS"),
        ("select * from t, table(flatten(parse_json(doc))) f", "SELECT * over FLATTEN"),
    ],
)
def test_flatten_refusals(sql: str, construct: str) -> None:
    assert construct in refused(sql).construct


# ---- indexes and paths ---------------------------------------------------------------------------


def test_computed_index_stays_zero_based(cursor: Any) -> None:
    # Snowflake arrays are 0-based for any index expression: MOD(id, 3) for ids 1..5 is 1, 2, 0, 1, 2
    rows = pg(cursor, "select id, array_construct('green', 'yellow', 'red')[MOD(id, 3)]::text from t order by id")
    assert rows == [(1, "yellow"), (2, "red"), (3, "green"), (4, "yellow"), (5, "red")]
    rows = pg(
        cursor,
        'select id, parse_json(\'["g", "y", "r"]\')[id - 1]::string, get(parse_json(\'[7, 8, 9]\'), id - 3) '
        "from t order by id",
    )
    assert rows == [(1, "g", None), (2, "y", None), (3, "r", 7), (4, None, 8), (5, None, 9)]


def test_negative_or_outside_index_is_null(cursor: Any) -> None:
    # an index outside the array's boundaries gives NULL; Postgres' own -1 would be the last element
    rows = pg(
        cursor,
        "select array_construct(1, 2, 3)[-1], array_construct(1, 2, 3)[id - 2], array_construct(1, 2)[5] "
        "from t where id = 1",
    )
    assert rows == [(None, None, None)]


def test_colon_paths_and_brackets(cursor: Any) -> None:
    # `:` path lookup; `::string` gives the unquoted text; a missing key gives NULL; names are case-sensitive;
    # a JSON null cast to string is NULL
    rows = pg(
        cursor,
        "select id, parse_json(profile):state::varchar, parse_json(profile):Zip::string, parse_json(profile):zip, "
        "parse_json(profile):a.b[1]::int, parse_json(profile)['a']['b'][0]::int, "
        "get_path(parse_json(profile), 'a.b[1]')::int, "
        "get(parse_json(profile), 'state')::string from t order by id",
    )
    assert rows == [
        (1, "CA", "94105", None, 20, 10, 20, "CA"),
        (2, None, None, None, None, None, None, None),
        (3, None, None, None, None, None, None, None),
        (4, None, None, None, None, None, None, None),
        (5, None, None, None, None, None, None, None),
    ]


def test_a_variant_in_string_functions_and_arithmetic(cursor: Any) -> None:
    # a VARIANT passed where text is expected is its `::string` text; in arithmetic or compared with a number
    # it is that number (Snowflake's implicit cast); a VARIANT number cast to INT rounds half away from zero
    rows = pg(
        cursor,
        "select upper(parse_json(profile):state), 'st=' || parse_json(profile):state, "
        "length(parse_json(profile):Zip), parse_json(profile):a.b[0] * 2, parse_json(profile):a.b[1] > 15, "
        "parse_json('2.5')::int from t where id = 1",
    )
    assert rows == [("CA", "st=CA", 5, 20, True, 3)]
    assert refused("select * from t where parse_json(profile):state = 'CA'").construct == "VARIANT compared with text"


def test_coalesce_of_paths_on_an_object_var(cursor: Any) -> None:
    # the corpus form coalesce(v1:state::varchar, v2:state::varchar) on OBJECT_CONSTRUCT values
    rows = pg(
        cursor,
        "select coalesce(o1:state::varchar, o2:state::varchar) from (select object_construct('zip', '1') as o1, "
        "object_construct('state', 'NY', 'zip', '2') as o2) s",
    )
    assert rows == [("NY",)]


def test_an_index_of_unknown_type_is_refused() -> None:
    # Postgres' -> must know whether a key or a position is meant; a column of unknown type does not say
    assert refused("select parse_json(doc)[k] from t").construct == "[...]"


# ---- constructors and functions ------------------------------------------------------------------


def test_object_construct_drops_null_values(cursor: Any) -> None:
    # OBJECT_CONSTRUCT omits a pair whose value is SQL NULL; a VARCHAR value is a string (even JSON text); a
    # JSON null value (a VARIANT) is kept, as are a nested object's own nulls
    rows = pg(
        cursor,
        "select id, object_construct('id', id, 'doc', doc, 'none', null) from t where id in (3, 4) order by id",
    )
    assert rows == [(3, {"id": 3, "doc": "[]"}), (4, {"id": 4})]
    rows = pg(cursor, "select object_construct('o', parse_json('{\"k\": null}'), 'n', parse_json('null'))")
    assert rows == [({"o": {"k": None}, "n": None},)]


def test_array_size(cursor: Any) -> None:
    # ARRAY_SIZE: the number of elements of an array, NULL for an object or a scalar
    rows = pg(cursor, "select id, array_size(parse_json(doc)) from t order by id")
    assert rows == [(1, 2), (2, None), (3, 0), (4, None), (5, None)]


def test_array_agg_distinct_within_group_and_nulls(cursor: Any) -> None:
    # ARRAY_AGG omits NULLs, orders by WITHIN GROUP, and gives an empty ARRAY when no value is left
    ((desc, parity, docs, empty),) = pg(
        cursor,
        "select array_agg(id) within group (order by id desc), "
        "array_agg(distinct id % 2) within group (order by id % 2), "
        "array_agg(doc), array_agg(case when id > 10 then id end) from t",
    )
    assert desc == [5, 4, 3, 2, 1]
    assert parity == [0, 1]
    assert len(docs) == 4  # row 4's NULL doc is left out
    assert empty == []


def test_array_construct_of_mixed_values(cursor: Any) -> None:
    rows = pg(cursor, "select array_construct(1, 'a', parse_json('{\"k\": 2}')), array_size(array_construct(1, 'a'))")
    assert rows == [([1, "a", {"k": 2}], 2)]


def test_random_index_reaches_every_element(cursor: Any) -> None:
    # the corpus form ['a', 'b'][ABS(RANDOM() % n)]: 0 .. n-1, every element reached (300 rows)
    rows = pg(
        cursor,
        "select array_construct('green','yellow','red')[ABS(MOD(RANDOM(), 3))]::text "
        "from (select * from t, t t2, t t3, t t4) s",
    )
    assert {r[0] for r in rows} == {"green", "yellow", "red"}


def test_keep_null_to_variant_is_array_is_object(cursor: Any) -> None:
    # OBJECT_CONSTRUCT_KEEP_NULL keeps a NULL value (as JSON null); TO_VARIANT of a string is a VARIANT string,
    # whose text is the string itself; IS_ARRAY / IS_OBJECT by the VARIANT's kind
    rows = pg(
        cursor,
        "select object_construct_keep_null('a', null, 'b', 1), to_variant('abc')::string, to_variant(2) + 1, "
        "is_array(parse_json('[]')), is_object(parse_json('[]')), is_object(parse_json('{}'))",
    )
    assert rows == [({"a": None, "b": 1}, "abc", 3, True, False, True)]


def test_array_compact_construct_compact_contains(cursor: Any) -> None:
    # ARRAY_COMPACT drops missing and null values; ARRAY_CONSTRUCT_COMPACT omits NULL inputs; ARRAY_CONTAINS
    # compares as VARIANTs: the string '2' is not the number 2, 1 is 1.0; a NULL array gives NULL
    rows = pg(
        cursor,
        "select array_compact(parse_json('[1, null, 3]')), array_construct_compact(1, null, 'x'), "
        "array_contains('a', parse_json('[\"a\", 1]')), array_contains(2, parse_json('[\"2\"]')), "
        "array_contains(1, parse_json('[3, 1.0]')), array_contains(1, parse_json(null))",
    )
    assert rows == [([1, 3], [1, "x"], True, False, True, None)]


@pytest.mark.parametrize(("start", "end"), [(1, -1), (0, 2), (-10, 2), (2, 10), (-2, 4), (-10, -3), (3, 1), (5, 6)])
def test_array_slice_follows_pythons_rule(cursor: Any, start: int, end: int) -> None:
    # ARRAY_SLICE: 0-based `from`, `to` excluded, negative positions from the end; the documentation names
    # Python's slices as the model, so Python's slice is the expected value
    (row,) = pg(cursor, f"select array_slice(parse_json('[1, 2, 3, 4]'), {start}, {end})")
    assert row[0] == [1, 2, 3, 4][start:end]
    assert pg(cursor, "select array_slice(parse_json('[1, 2]'), 0, null)") == [(None,)]  # a NULL argument: NULL


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("select array_contains(parse_json('{}'), parse_json(doc)) from t", "ARRAY_CONTAINS"),
        ("select array_slice(parse_json(doc), uniform(0, 1, random()), 2) from t", "ARRAY_SLICE"),
        ("select try_parse_json(doc) from t", "TRY_PARSE_JSON"),
        ("select object_construct(*) from t", "OBJECT_CONSTRUCT(*)"),
        ("select typeof(parse_json(doc)) from t", "TYPEOF"),
        ("select array_to_string(parse_json(doc), ',') from t", "ARRAY_TO_STRING"),
        ("select object_keys(parse_json(doc)) from t", "OBJECT_KEYS"),
        ("select array_agg(id) within group (order by id) over (partition by doc) from t", "ARRAY_AGG"),
    ],
)
def test_refusals(sql: str, construct: str) -> None:
    assert refused(sql).construct == construct


def test_a_timestamp_put_into_a_variant_is_refused() -> None:
    # Snowflake's JSON text of a TIMESTAMP_NTZ (`2024-01-02 03:04:05.000`) is not Postgres' (`2024-01-02T03:04:05`)
    assert refused("select object_construct('t', '2024-01-02'::timestamp)").construct == "OBJECT_CONSTRUCT"
    assert refused("select array_agg(x::timestamp) from t").construct == "ARRAY_AGG"


# SQL of the tests above that the census names with each construct claimed (values checked there)
CHECKED_SQL = {
    "FLATTEN": "select f.value from t, table(flatten(parse_json(doc))) f",
    "TABLE(…)": "select f.value from t, table(flatten(parse_json(doc))) f",
    "LATERAL": "select x.value from t, lateral flatten(input => parse_json(doc)) x",
    "PARSE_JSON": "select parse_json(doc) from t",
    "GET": "select get(parse_json(profile), 'state') from t",
    "GET_PATH": "select parse_json(profile):a.b[0] from t",
    "[ ] (bracket index)": "select parse_json(profile)['state'] from t",
    "ARRAY_SIZE": "select array_size(parse_json(doc)) from t",
    "OBJECT_CONSTRUCT": "select object_construct('a', 1, 'b', null) from t",
    "Array": "select array_construct(1, 'x', null) from t",
    "ARRAY_AGG": "select array_agg(id) from t",
    "WITHIN GROUP": "select array_agg(id) within group (order by id desc) from t",
    "IGNORE NULLS": "select first_value(id) ignore nulls over (order by id) from t",
}


def test_checked_constructs_are_the_census_names(cursor: Any) -> None:
    """What semistructured_postgres.CHECKED claims is what the census counts under those names."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    import sql_census

    from profiles_dagster.sql.transpile.semistructured_postgres import CHECKED

    assert set(CHECKED[("snowflake", "postgres")]) == set(CHECKED_SQL)
    for name, sql in CHECKED_SQL.items():
        named = {label for label, _ in sql_census.constructs(sqlglot.parse_one(sql, read="snowflake"), "snowflake")}
        assert name in named, f"{name}: the census names {sorted(named)}"
        pg(cursor, sql)  # and it runs on Postgres


# ---- FIRST_VALUE(..) IGNORE NULLS and pb's window on a rewritten aggregate -------------------------------------

VALUES = "(values (1, null, 1), (1, 'b', 2), (1, 'c', 3), (1, null, 4), (2, null, 1)) v(g, x, y)"


def test_first_value_ignore_nulls(cursor: Any) -> None:
    # FIRST_VALUE(x) IGNORE NULLS: the first non-NULL x of the frame in the window's order; with an ORDER BY and
    # no frame Snowflake's frame is the whole partition (ROWS UNBOUNDED PRECEDING .. UNBOUNDED FOLLOWING); a
    # partition of NULLs only gives NULL
    rows = pg(
        cursor, f"select g, y, first_value(x) ignore nulls over (partition by g order by y) from {VALUES} order by 1, 2"
    )
    assert rows == [(1, 1, "b"), (1, 2, "b"), (1, 3, "b"), (1, 4, "b"), (2, 1, None)]
    # a frame up to the current row, descending: y=4 sees only its NULL; y=3 'c'; then 'c' stays first
    rows = pg(
        cursor,
        "select g, y, first_value(x ignore nulls) over (partition by g order by y desc "
        f"rows between unbounded preceding and current row) from {VALUES} order by 1, 2",
    )
    assert rows == [(1, 1, "c"), (1, 2, "c"), (1, 3, "c"), (1, 4, None), (2, 1, None)]
    # LAST_VALUE(x) IGNORE NULLS: Snowflake's whole-partition frame too, so every row sees the partition's last
    # non-NULL x ('c' at y=3; y=4 is NULL)
    rows = pg(
        cursor, f"select g, y, last_value(x) ignore nulls over (partition by g order by y) from {VALUES} order by 1, 2"
    )
    assert rows == [(1, 1, "c"), (1, 2, "c"), (1, 3, "c"), (1, 4, "c"), (2, 1, None)]


class _Ctx:
    source_dialect = "snowflake"

    def rendered(self, text: str, where: object) -> str:
        return text

    def translated(self, tree: sqlglot.exp.Expr, where: object) -> sqlglot.exp.Expr:
        return translate(tree, "snowflake", "postgres")


def _pb_windowed(select: str, order_by: list[str]) -> str:
    """An entity var's `select` with pb's `window:` (partition by g, the given order), as the compiler writes it."""
    from sqlglot import exp

    from profiles_dagster.project.schema import Window
    from profiles_dagster.sql.compiler import _windowed
    from profiles_dagster.sql.fragments import Where

    value = translate(sqlglot.parse_one(select, read="snowflake"), "snowflake", "postgres")
    window = Window(order_by=order_by)
    return _windowed(value, [exp.column("g")], window, _Ctx(), Where(None, "v")).sql(POSTGRES)  # type: ignore[arg-type]


def test_a_pb_window_goes_on_the_rewritten_aggregate(cursor: Any) -> None:
    # pb's `window: order_by: [y desc]` on `first_value(x ignore nulls)`: Snowflake's frame (the whole
    # partition), so every row of g=1 gets the last non-NULL by y, 'c'
    cursor.execute(f"select g, {_pb_windowed('first_value(x ignore nulls)', ['y desc'])} from {VALUES} order by g, y")
    assert cursor.fetchall() == [(1, "c"), (1, "c"), (1, "c"), (1, "c"), (2, None)]
    # `array_agg(x)` with a window of no order: NULLs left out, every row gets the partition's values, [] for none
    cursor.execute(f"select g, {_pb_windowed('array_agg(x)', [])} from {VALUES} order by g, y")
    assert [(g, sorted(a)) for g, a in cursor.fetchall()] == [(1, ["b", "c"])] * 4 + [(2, [])]


# ---- a project run through the product on Postgres ----------------------------------------------------------

PROJECT = {
    "pb_project.yaml": """
        name: semi
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
                select user_id, t.index as pos, t.value['sku']::string as sku, t.value:qty::int as qty
                from (select * from {{ orders }}), table(flatten(parse_json(products))) t
                {% endwith %}
    """,
    "models/vars.yaml": """
        var_groups:
          - name: vars
            entity_key: user
            vars:
              - entity_var:
                  name: units
                  select: sum(qty)
                  from: models/items
              - entity_var:
                  name: skus
                  select: array_agg(distinct sku) within group (order by sku)
                  from: models/items
              - entity_var:
                  name: address
                  select: >-
                    first_value(object_construct('state', parse_json(profile):state::string,
                    'zip', parse_json(profile):zip::string))
                  from: inputs/orders
                  window:
                    order_by:
                      - ts desc
              - entity_var:
                  name: oldest_address
                  select: >-
                    last_value(object_construct('state', parse_json(profile):state::string,
                    'zip', parse_json(profile):zip::string))
                  from: inputs/orders
                  window:
                    order_by:
                      - ts desc
              - entity_var:
                  name: plan
                  select: first_value(plan ignore nulls)
                  from: inputs/orders
                  window:
                    order_by:
                      - ts desc
              - entity_var:
                  name: state
                  select: coalesce({{ user.Var("address") }}:state::varchar, 'unknown')
              - entity_var:
                  name: first_sku
                  select: '{{ user.Var("skus") }}[0]::string'
    """,
}

ORDERS = """create table raw.orders as select * from (values
    ('u1', '[{"sku": "b", "qty": 2}, {"sku": "a", "qty": 1}]', '{"state": "CA", "zip": "94105"}', 'basic',
     timestamp '2025-01-01 00:00:00'),
    ('u1', '[{"sku": "a", "qty": 3}]', '{"state": "CA", "zip": "94107"}', null, timestamp '2025-01-02 00:00:00'),
    ('u2', '[]', '{"zip": "10001"}', null, timestamp '2025-01-03 00:00:00')
) v(user_id, products, profile, plan, ts)"""


def test_snowflake_semistructured_project_runs_on_postgres(postgres_standin: Any, tmp_path: Any, capsys: Any) -> None:
    import yaml

    from profiles_dagster.cli import main
    from profiles_dagster_tests.format.harness import write
    from profiles_dagster_tests.format.test_format_core import rid

    target = postgres_standin.target("semistructured")
    write(tmp_path, PROJECT)
    site = tmp_path / "siteconfig.yaml"
    outputs = {"dev": {**target, "schema": "out"}}
    site.write_text(yaml.safe_dump({"connections": {"test": {"target": "dev", "outputs": outputs}}}))
    with postgres_standin.connect(target["dbname"]) as con:
        con.execute("create schema raw")
        con.execute(ORDERS)
    argv = ["-p", str(tmp_path), "--site-config", str(site)]
    assert main(["validate", *argv]) == 0
    assert main(["run", *argv, "--end_time", "2025-06-01T00:00:00Z"]) == 0
    with postgres_standin.connect(target["dbname"]) as con:
        cur = con.execute("select * from out.user_feature_view")
        names = [d[0] for d in cur.description]
        rows = {r[names.index("user_main_id")]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    u1, u2 = rows[rid("u1", "user_id")], rows[rid("u2", "user_id")]
    # u1's orders hold three items (b x2, a x1, a x3): 6 units, distinct skus [a, b] in order, first 'a'
    assert u1["units"] == 6 and u1["skus"] == ["a", "b"] and u1["first_sku"] == "a"
    # the latest order's profile as an object, its state read back through a `:` path; LAST_VALUE in the same
    # descending order over Snowflake's default frame (the whole partition) is the oldest order's; the latest
    # plan that is not NULL (the latest order has none: IGNORE NULLS reaches the earlier 'basic')
    assert u1["address"] == {"state": "CA", "zip": "94107"} and u1["state"] == "CA" and u1["plan"] == "basic"
    assert u1["oldest_address"] == {"state": "CA", "zip": "94105"}
    # u2's only order has no item (an empty array flattens to no row): no units, no skus; its profile has no
    # state, so OBJECT_CONSTRUCT leaves the key out and the `:` path gives NULL; no plan at all
    assert u2["units"] is None and u2["skus"] is None and u2["first_sku"] is None
    assert u2["address"] == {"zip": "10001"} and u2["state"] == "unknown" and u2["plan"] is None
    # an object under a window whose frame ends at the row would be pb's MAX of different objects: no max(jsonb)
    # on Postgres, and Snowflake's order of objects is not documented
    vars_file = tmp_path / "models" / "vars.yaml"
    text = vars_file.read_text()
    framed = re.sub(
        r"( +)order_by:\n( +)- ts desc",
        r"\g<0>\n\1frame_clause: rows between 1 preceding and current row",
        text,
        count=1,
    )
    assert framed != text
    vars_file.write_text(framed)
    assert main(["validate", *argv, "--no-prepare"]) == 1
    assert "holds a VARIANT and has `window:`" in capsys.readouterr().err


def test_a_json_column_is_read_as_jsonb(cursor: Any) -> None:
    # a Postgres `json` column holds VARIANTs too: its paths, FLATTEN and ARRAY_SIZE are those of jsonb
    from sqlglot import exp

    from profiles_dagster.sql.transpile.types import attach_schema

    cursor.execute("create table if not exists j as select 1 as id, cast('{\"a\": [1, 2]}' as json) as v")
    tree = sqlglot.parse_one(
        "select v:a[1]::int, array_size(v:a), f.index from j, table(flatten(v:a)) f", read="snowflake"
    )
    attach_schema(tree, {"j": {"id": exp.DataType.build("int"), "v": exp.DataType.build("json")}})
    cursor.execute(translate(tree, "snowflake", "postgres").sql(POSTGRES))
    assert sorted(cursor.fetchall()) == [(2, 2, 0), (2, 2, 1)]
