"""Snowflake's VARIANT / ARRAY / OBJECT SQL translated for DuckDB and run there on small hand-made rows.

Every expected value is worked out by hand from Snowflake's documentation (the rule is named beside it), never
from what DuckDB returns. Refusals are tested one by one: a construct DuckDB cannot compute with Snowflake's
meaning must raise UnfaithfulError, not run with another meaning.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import sqlglot

from profiles_dagster.cli import main
from profiles_dagster.sql.dialects import DUCKDB
from profiles_dagster.sql.transpile import UnfaithfulError, translate
from profiles_dagster_tests.format.harness import Outputs, write
from profiles_dagster_tests.format.test_format_core import rid

ROWS = """
create table t as select * from (values
    (1, '[{"sku": "a", "qty": 2}, {"sku": "b"}]', '{"state": "CA", "Zip": "94105", "a": {"b": [10, 20]}}'),
    (2, '{"x": 1, "y": [2, 3]}', '{"state": null}'),
    (3, '[]', '{}'),
    (4, NULL, NULL),
    (5, '"text"', '[1, 2]')
) v(id, doc, profile)
"""


def duck(sql: str, source: str = "snowflake") -> list[tuple]:
    """`sql` written for Snowflake, translated and run on DuckDB over the rows above."""
    tree = translate(sqlglot.parse_one(sql, read=source), source, "duckdb")
    con = duckdb.connect()
    try:
        con.execute(ROWS)
        return con.execute(tree.sql(DUCKDB)).fetchall()
    finally:
        con.close()


def refused(sql: str, target: str = "duckdb") -> UnfaithfulError:
    with pytest.raises(UnfaithfulError) as info:
        translate(sqlglot.parse_one(sql, read="snowflake"), "snowflake", target)
    return info.value


# ---- FLATTEN ------------------------------------------------------------------------------------


def test_table_flatten_of_parse_json_joined_to_a_subquery() -> None:
    # the corpus form `from (select ...), table(flatten(parse_json(col))) t`: FLATTEN is a lateral view over
    # the preceding FROM item; an array gives one row per element, INDEX 0-based, KEY NULL, PATH `[i]`;
    # an object one row per field, KEY the field name, INDEX NULL, PATH the name; an empty array, a NULL
    # input and a scalar give no row (OUTER => FALSE omits rows that cannot be expanded)
    rows = duck(
        "select s.id, t.index, t.key, t.path, t.value['sku']::string, t.value "
        "from (select * from t) s, table(flatten(parse_json(doc))) t order by 1, 2, 3"
    )
    assert [r[:5] for r in rows] == [
        (1, 0, None, "[0]", "a"),
        (1, 1, None, "[1]", "b"),
        (2, None, "x", "x", None),
        (2, None, "y", "y", None),
    ]
    assert [json.loads(r[5]) for r in rows] == [{"sku": "a", "qty": 2}, {"sku": "b"}, 1, [2, 3]]


def test_flatten_named_input_and_this() -> None:
    # TABLE(FLATTEN(INPUT => ...)): THIS is the element being flattened
    rows = duck("select f.value::int, f.this from table(flatten(input => parse_json('[5, 6]'))) f order by 1")
    assert [(v, json.loads(this)) for v, this in rows] == [(5, [5, 6]), (6, [5, 6])]


def test_lateral_flatten_with_path_and_outer() -> None:
    # PATH => 'a.b' flattens the element at that path, and PATH of each row starts with it; OUTER => TRUE
    # adds exactly one row with NULL KEY, INDEX, VALUE for an input that gives none (missing path, NULL)
    rows = duck(
        "select t.id, f.index, f.value::int from t, "
        "lateral flatten(input => parse_json(profile), path => 'a.b', outer => true) f order by 1, 2"
    )
    assert rows == [(1, 0, 10), (1, 1, 20), (2, None, None), (3, None, None), (4, None, None), (5, None, None)]
    paths = duck("select f.path from t, lateral flatten(input => parse_json(profile), path => 'a.b') f order by 1")
    assert paths == [("a.b[0]",), ("a.b[1]",)]


def test_lateral_flatten_of_get_and_string_value() -> None:
    # the corpus form `, lateral flatten (input=> get(parse_json(col), 0)) as f` and `f.VALUE::string`:
    # GET(array, 0) is the first element; a VARIANT string cast to string is the text without quotes
    rows = duck(
        "select t.id, f.key, f.VALUE::string from t, lateral flatten (input=> get(parse_json(doc), 0)) as f "
        "where f.VALUE::string <> 'b' order by 1, 2"
    )
    assert rows == [(1, "qty", "2"), (1, "sku", "a")]


def test_flatten_mode_restricts_what_is_expanded() -> None:
    # MODE => 'OBJECT' flattens objects only: the arrays of rows 1 and 3 give no row
    rows = duck("select t.id, f.key from t, table(flatten(input => parse_json(doc), mode => 'OBJECT')) f order by 1, 2")
    assert rows == [(2, "x"), (2, "y")]
    rows = duck(
        "select t.id, f.index from t, table(flatten(input => parse_json(doc), mode => 'ARRAY')) f order by 1, 2"
    )
    assert rows == [(1, 0), (1, 1)]


def test_unqualified_value_column() -> None:
    rows = duck('select value::string from table(flatten(input => parse_json(\'["p", "q"]\'))) order by 1')
    assert rows == [("p",), ("q",)]


def test_a_subquerys_own_seq_column_is_not_flattens() -> None:
    rows = duck(
        "select s.seq, f.index from (select id as seq, doc from t) s, table(flatten(parse_json(s.doc))) f "
        "where s.seq = 1 order by 2"
    )
    assert rows == [(1, 0), (1, 1)]


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("select f.seq from t, table(flatten(parse_json(doc))) f", "FLATTEN column SEQ"),
        ("select seq, value from t, lateral flatten(input => parse_json(doc))", "FLATTEN column SEQ"),
        ("select f.value from t, table(flatten(input => parse_json(doc), recursive => true)) f", "RECURSIVE"),
        ("select f.this from t, lateral flatten(input => parse_json(doc), outer => true) f", "FLATTEN column THIS"),
        ("select f.path from t, lateral flatten(input => parse_json(doc), outer => true) f", "FLATTEN column PATH"),
        ("select * from t, table(flatten(parse_json(doc))) f", "SELECT * over FLATTEN"),
        ("select f.value from t, table(flatten(input => parse_json(doc), mode => 'ALL')) f", "FLATTEN"),
    ],
)
def test_flatten_refusals(sql: str, construct: str) -> None:
    assert construct in refused(sql).construct


# ---- indexes and paths ---------------------------------------------------------------------------


def test_computed_index_stays_zero_based() -> None:
    # Snowflake arrays are 0-based for any index expression: MOD(id, 3) for ids 1..5 is 1, 2, 0, 1, 2
    rows = duck("select id, array_construct('green', 'yellow', 'red')[MOD(id, 3)]::text from t order by id")
    assert rows == [(1, "yellow"), (2, "red"), (3, "green"), (4, "yellow"), (5, "red")]
    # the same on a JSON array from PARSE_JSON, and through GET
    rows = duck(
        'select id, parse_json(\'["g", "y", "r"]\')[id - 1]::string, get(parse_json(\'[7, 8, 9]\'), id - 3) '
        "from t order by id"
    )
    assert rows == [(1, "g", None), (2, "y", None), (3, "r", "7"), (4, None, "8"), (5, None, "9")]


def test_random_index_reaches_every_element() -> None:
    # ABS(MOD(RANDOM(), 3)) is 0, 1 or 2: every row gets a color and all three occur (300 rows: the chance
    # that one never occurs is below 1e-50)
    rows = duck("select array_construct('green','yellow','red')[ABS(MOD(RANDOM(), 3))]::text from range(300)")
    assert {r[0] for r in rows} == {"green", "yellow", "red"}


def test_negative_or_outside_index_is_null() -> None:
    # an index outside the array's boundaries gives NULL (GET); DuckDB's own -1 would be the last element
    rows = duck(
        "select array_construct(1, 2, 3)[-1], array_construct(1, 2, 3)[id - 2], array_construct(1, 2)[5] "
        "from t where id = 1"
    )
    assert rows == [(None, None, None)]


def test_colon_paths_and_brackets() -> None:
    # `:` path lookup into a VARIANT; `::string` gives the unquoted text; a missing key gives NULL; element
    # names are case-sensitive (`Zip` exists, `zip` does not); a JSON null cast to string is NULL
    rows = duck(
        "select id, parse_json(profile):state::varchar, parse_json(profile):Zip::string, parse_json(profile):zip, "
        "parse_json(profile):a.b[1]::int, parse_json(profile)['a']['b'][0]::int, "
        "get_path(parse_json(profile), 'a.b[1]')::int, "
        "get(parse_json(profile), 'state')::string from t order by id"
    )
    assert rows == [
        (1, "CA", "94105", None, 20, 10, 20, "CA"),
        (2, None, None, None, None, None, None, None),
        (3, None, None, None, None, None, None, None),
        (4, None, None, None, None, None, None, None),
        (5, None, None, None, None, None, None, None),
    ]


def test_a_variant_in_a_string_function_is_its_text() -> None:
    # a VARIANT passed where text is expected is converted as `::string` converts it (a string unquoted)
    rows = duck(
        "select upper(parse_json(profile):state), 'st=' || parse_json(profile):state, "
        "length(parse_json(profile):Zip), parse_json(profile):state like 'C%' from t where id = 1"
    )
    assert rows == [("CA", "st=CA", 5, True)]


def test_a_variant_compared_with_text_is_refused() -> None:
    assert refused("select * from t where parse_json(profile):state = 'CA'").construct == "VARIANT compared with text"


def test_coalesce_of_paths_on_an_object_var() -> None:
    # the corpus form coalesce(v1:state::varchar, v2:state::varchar) on OBJECT_CONSTRUCT values
    rows = duck(
        "select coalesce(o1:state::varchar, o2:state::varchar) from (select object_construct('zip', '1') as o1, "
        "object_construct('state', 'NY', 'zip', '2') as o2)"
    )
    assert rows == [("NY",)]


# ---- constructors and functions ------------------------------------------------------------------


def test_parse_json_try_parse_json_to_variant() -> None:
    # TRY_PARSE_JSON gives NULL for invalid JSON; TO_VARIANT of a string is a VARIANT string, whose text is
    # the string itself
    rows = duck(
        "select try_parse_json('{bad'), try_parse_json('[1]'), to_variant('abc')::string, parse_json('null')::string"
    )
    assert rows == [(None, "[1]", "abc", None)]


def test_object_construct_drops_null_values() -> None:
    # OBJECT_CONSTRUCT omits a pair whose value is SQL NULL; a VARCHAR value is a string (even JSON text)
    rows = duck("select id, object_construct('id', id, 'doc', doc, 'none', null) from t where id in (3, 4) order by id")
    assert [(i, json.loads(o)) for i, o in rows] == [(3, {"id": 3, "doc": "[]"}), (4, {"id": 4})]
    # a nested object keeps its own nulls (only the top-level SQL NULL values are dropped)
    (row,) = duck("select object_construct('o', parse_json('{\"k\": null}'))")
    assert json.loads(row[0]) == {"o": {"k": None}}


def test_array_size() -> None:
    # ARRAY_SIZE: the number of elements of an array, NULL for an object or a scalar
    rows = duck("select id, array_size(parse_json(doc)) from t order by id")
    assert rows == [(1, 2), (2, None), (3, 0), (4, None), (5, None)]


def test_array_agg_distinct_within_group_and_nulls() -> None:
    # ARRAY_AGG omits NULLs, orders by WITHIN GROUP, and gives an empty ARRAY when no value is left
    rows = duck(
        "select array_agg(id) within group (order by id desc), "
        "array_agg(distinct id % 2) within group (order by id % 2), "
        "array_agg(doc), array_agg(case when id > 10 then id end) from t"
    )
    ((desc, parity, docs, empty),) = rows
    assert json.loads(desc) == [5, 4, 3, 2, 1]
    assert json.loads(parity) == [0, 1]
    assert len(json.loads(docs)) == 4  # row 4's NULL doc is left out
    assert json.loads(empty) == []


def test_array_construct_of_mixed_values() -> None:
    # ARRAY_CONSTRUCT takes values of different types; ARRAY_SIZE counts them
    rows = duck("select array_construct(1, 'a', parse_json('{\"k\": 2}')), array_size(array_construct(1, 'a'))")
    assert json.loads(rows[0][0]) == [1, "a", {"k": 2}] and rows[0][1] == 2


def test_array_functions_the_corpus_does_not_use() -> None:
    # ARRAY_TO_STRING: each element as TO_VARCHAR gives it (a string unquoted, an object as JSON), a NULL as an
    # empty string; ARRAY_COMPACT drops missing and null values; ARRAY_CONSTRUCT_COMPACT omits NULL inputs;
    # OBJECT_CONSTRUCT_KEEP_NULL keeps a NULL value (as JSON null)
    ((joined, compact, construct_compact, keep_null),) = duck(
        "select array_to_string(parse_json('[1, null, \"a\", {\"k\": 2}]'), ', '), "
        "array_compact(parse_json('[1, null, 3]')), array_construct_compact(1, null, 'x'), "
        "object_construct_keep_null('a', null, 'b', 1)"
    )
    assert joined == '1, , a, {"k":2}'
    assert json.loads(compact) == [1, 3] and json.loads(construct_compact) == [1, "x"]
    assert json.loads(keep_null) == {"a": None, "b": 1}


@pytest.mark.parametrize(("start", "end"), [(1, -1), (0, 2), (-10, 2), (2, 10), (-2, 4), (-10, -3), (3, 1), (5, 6)])
def test_array_slice_follows_pythons_rule(start: int, end: int) -> None:
    # ARRAY_SLICE: 0-based `from`, `to` excluded, negative positions from the end; the documentation names
    # Python's slices as the model, so Python's slice is the expected value
    (row,) = duck(f"select array_slice(parse_json('[1, 2, 3, 4]'), {start}, {end})")
    assert json.loads(row[0]) == [1, 2, 3, 4][start:end]
    assert duck("select array_slice(parse_json('[1, 2]'), 0, null)") == [(None,)]  # a NULL argument: NULL


def test_array_contains_is_typeof_is_array_is_object() -> None:
    # ARRAY_CONTAINS compares as VARIANTs: the string '2' is not the number 2; TYPEOF names a number with a
    # fraction DECIMAL (3.1 in Snowflake's own example), an integer INTEGER, a JSON null NULL_VALUE
    rows = duck(
        "select array_contains('a', parse_json('[\"a\", 1]')), array_contains(2, parse_json('[\"2\"]')), "
        "array_contains(1, parse_json('[3, 1]')), typeof(parse_json('3.1')), typeof(parse_json('15')), "
        "typeof(parse_json('null')), typeof(parse_json('\"s\"')), typeof(parse_json('[]')), "
        "is_array(parse_json('[]')), is_object(parse_json('[]')), is_object(parse_json('{}'))"
    )
    assert rows == [(True, False, True, "DECIMAL", "INTEGER", "NULL_VALUE", "VARCHAR", "ARRAY", True, False, True)]


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("select arrays_overlap(parse_json(doc), parse_json(doc)) from t", "ARRAYS_OVERLAP"),
        ("select object_keys(parse_json(profile)) from t", "OBJECT_KEYS"),
        ("select array_contains(id, parse_json(doc)) from t", "ARRAY_CONTAINS"),
        ("select typeof(id) from t", "TYPEOF"),
        ("select array_construct(1, 2)[uniform(0, 1, random())] from t", "[...]"),
    ],
)
def test_function_refusals(sql: str, construct: str) -> None:
    assert refused(sql).construct == construct


def test_object_construct_star_is_refused() -> None:
    assert refused("select object_construct(*) from t").construct == "OBJECT_CONSTRUCT(*)"


# ---- a project run through the product ---------------------------------------------------------------

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
                    max(object_construct('state', parse_json(profile):state::string,
                    'zip', parse_json(profile):zip::string))
                  from: inputs/orders
              - entity_var:
                  name: state
                  select: coalesce({{ user.Var("address") }}:state::varchar, 'unknown')
              - entity_var:
                  name: first_sku
                  select: '{{ user.Var("skus") }}[0]::string'
    """,
}

ORDERS = """create table raw.orders as select * from (values
    ('u1', '[{"sku": "b", "qty": 2}, {"sku": "a", "qty": 1}]', '{"state": "CA", "zip": "94105"}',
     timestamp '2025-01-01 00:00:00'),
    ('u1', '[{"sku": "a", "qty": 3}]', '{"state": "CA", "zip": "94105"}', timestamp '2025-01-02 00:00:00'),
    ('u2', '[]', '{"zip": "10001"}', timestamp '2025-01-03 00:00:00')
) v(user_id, products, profile, ts)"""


def test_snowflake_semistructured_project_runs_on_duckdb(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    database = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(database))
    con.execute("create schema raw")
    con.execute(ORDERS)
    con.close()
    assert main(["run", "-p", str(tmp_path), "--end_time", "2025-06-01T00:00:00Z"]) == 0
    out = Outputs(database)
    rows = out.by_key("out.user_feature_view")
    u1, u2 = rows[rid("u1", "user_id")], rows[rid("u2", "user_id")]
    # u1's orders hold three items (b x2, a x1, a x3): 6 units, distinct skus [a, b] in order, first 'a'
    assert u1["units"] == 6 and json.loads(u1["skus"]) == ["a", "b"] and u1["first_sku"] == "a"
    # u1's address keeps both keys; state read back through a `:` path
    assert json.loads(u1["address"]) == {"state": "CA", "zip": "94105"} and u1["state"] == "CA"
    # u2's only order has no item (an empty array flattens to no row): no units, no skus; its profile has no
    # state, so OBJECT_CONSTRUCT leaves the key out and the `:` path gives NULL
    assert u2["units"] is None and u2["skus"] is None and u2["first_sku"] is None
    assert json.loads(u2["address"]) == {"zip": "10001"} and u2["state"] == "unknown"


def test_a_pb_window_goes_on_the_array_agg_inside_its_wrapper() -> None:
    # an entity var `array_agg(x)` with pb's `window:` is ARRAY_AGG(x) OVER (PARTITION BY ...): NULLs skipped,
    # every row of a partition gets the partition's values (no ORDER BY: the whole partition is the frame)
    from sqlglot import exp

    from profiles_dagster.project.schema import Window
    from profiles_dagster.sql.compiler import _windowed
    from profiles_dagster.sql.fragments import Where

    class Ctx:
        source_dialect = "snowflake"

        def rendered(self, text: str, where: Where) -> str:
            return text

    value = translate(sqlglot.parse_one("array_agg(x)", read="snowflake"), "snowflake", "duckdb")
    windowed = _windowed(value, [exp.column("g")], Window(), Ctx(), Where(None, "v"))  # type: ignore[arg-type]
    query = f"select g, {windowed.sql(DUCKDB)} from (values (1, 'a'), (1, null), (1, 'c'), (2, null)) v(g, x)"
    con = duckdb.connect()
    rows = con.execute(query).fetchall()
    con.close()
    assert sorted((g, sorted(json.loads(a))) for g, a in rows) == [
        (1, ["a", "c"]),
        (1, ["a", "c"]),
        (1, ["a", "c"]),
        (2, []),  # a partition with no value left: an empty ARRAY, not NULL
    ]


def test_a_pb_window_over_last_value_takes_snowflakes_frame() -> None:
    # Snowflake's frame for FIRST_VALUE / LAST_VALUE over an ORDER BY with no frame is the whole partition, so
    # `last_value(x)` with pb's `window: order_by: [y]` gives every row the partition's last x ('b' for g=1);
    # DuckDB's default frame would end at the row (each row its own x)
    from sqlglot import exp

    from profiles_dagster.project.schema import Window
    from profiles_dagster.sql.compiler import _windowed
    from profiles_dagster.sql.fragments import Where

    class Ctx:
        source_dialect = "snowflake"

        def rendered(self, text: str, where: Where) -> str:
            return text

        def translated(self, tree: exp.Expr, where: Where) -> exp.Expr:
            return translate(tree, "snowflake", "duckdb")

    value = translate(sqlglot.parse_one("last_value(x)", read="snowflake"), "snowflake", "duckdb")
    windowed = _windowed(value, [exp.column("g")], Window(order_by=["y"]), Ctx(), Where(None, "v"))  # type: ignore[arg-type]
    query = f"select g, y, {windowed.sql(DUCKDB)} from (values (1, 'a', 1), (1, 'b', 2), (2, 'c', 1)) v(g, x, y)"
    con = duckdb.connect()
    rows = sorted(con.execute(query).fetchall())
    con.close()
    assert rows == [(1, 1, "b"), (1, 2, "b"), (2, 1, "c")]


# SQL of the tests above (their values are checked there) that the census names with each construct claimed
CHECKED_SQL = {
    "FLATTEN": "select f.value from t, table(flatten(parse_json(doc))) f",
    "TABLE(…)": "select f.value from t, table(flatten(parse_json(doc))) f",
    "LATERAL": "select x.value from t, lateral flatten(input => parse_json(doc)) x",
    "PARSE_JSON": "select parse_json(doc) from t",
    "GET": "select get(profile, 'state') from t",
    "GET_PATH": "select profile:a.b[0] from t",
    "[ ] (bracket index)": "select profile['state'] from t",
    "ARRAY_SIZE": "select array_size(parse_json(doc)) from t",
    "OBJECT_CONSTRUCT": "select object_construct('a', 1, 'b', null) from t",
    "Array": "select array_construct(1, 'x', null) from t",
}


def test_checked_constructs_are_the_census_names() -> None:
    """What semistructured.CHECKED claims is what the census counts under those names (benchmarks/sql_census.py)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    import sql_census

    from profiles_dagster.sql.transpile.semistructured import CHECKED

    assert set(CHECKED[("snowflake", "duckdb")]) == set(CHECKED_SQL)
    for name, sql in CHECKED_SQL.items():
        named = {label for label, _ in sql_census.constructs(sqlglot.parse_one(sql, read="snowflake"), "snowflake")}
        assert name in named, f"{name}: the census names {sorted(named)}"
        duck(sql)  # and it runs on DuckDB
