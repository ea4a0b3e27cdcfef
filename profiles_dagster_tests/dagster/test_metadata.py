"""What the UI shows per step: column schema with YAML descriptions, column lineage back to the inputs,
the SQL file of each step and its log line, timings; and how long the example's Definitions take."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlglot

from example_project.definitions import raw_loader
from example_project.loading import RAW_TABLES
from profiles_dagster import build_definitions
from profiles_dagster.dagster.lineage import placeholder_context
from profiles_dagster.errors import ProfilesError
from profiles_dagster.loading import load
from profiles_dagster.plan.steps import StepKind
from profiles_dagster.sql import lineage
from profiles_dagster.sql.fragments import Where
from profiles_dagster.warehouse.duckdb import DuckDBWarehouse
from profiles_dagster_tests.conftest import END_TIME, EXAMPLE

RUN_CONFIG = {"ops": {"profiles_example_project": {"config": {"end_time": END_TIME}}}}
RAW = {"raw/identifies", "raw/tracks", "raw/pages", "raw/orders"}


@pytest.fixture(scope="module")
def example_materialized(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("metadata")
    defs = build_definitions(
        EXAMPLE,
        warehouse=DuckDBWarehouse(database=str(folder / "w.duckdb")),
        assets=[raw_loader(n) for n in RAW_TABLES],
        output_dir=folder / "sql",
    )
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(run_config=RUN_CONFIG, instance=instance)
    assert result.success
    metadata = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    return defs, metadata, logs, folder


def _roots(lineages: dict[str, dg.TableColumnLineage], asset: str, column: str, seen=None) -> set[tuple[str, str]]:
    """Follow column lineage hop by hop until assets without lineage (the raw inputs)."""
    seen = seen if seen is not None else set()
    if (asset, column) in seen:
        return set()
    seen.add((asset, column))
    found = lineages.get(asset)
    if found is None:
        return {(asset, column)}
    out: set[tuple[str, str]] = set()
    for dep in found.deps_by_column.get(column, []):
        out |= _roots(lineages, dep.asset_key.to_user_string(), dep.column_name, seen)
    return out


def test_feature_view_columns_trace_back_to_input_columns(example_materialized) -> None:
    _, metadata, _, _ = example_materialized
    lineages = {k: m["dagster/column_lineage"].value for k, m in metadata.items() if "dagster/column_lineage" in m}
    assert {"user/views/user_feature_view", "user/entity_vars", "user/input_vars/orders"} <= set(lineages)
    view = "user/views/user_feature_view"
    assert _roots(lineages, view, "total_revenue") == {("raw/orders", "amount"), ("raw/orders", "status")}
    assert _roots(lineages, view, "first_seen_at") == {("raw/tracks", "timestamp")}
    assert _roots(lineages, view, "distinct_devices") == {("raw/tracks", "anonymous_id")}
    # through the custom SQL model: order_day is cast(timestamp as date)
    assert _roots(lineages, view, "active_order_days") == {("raw/orders", "timestamp")}
    # the first hop is the feature table, then the entity var table
    hop = lineages[view].deps_by_column["total_revenue"]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in hop] == [("user/features", "total_revenue")]
    hop = lineages["user/features"].deps_by_column["total_revenue"]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in hop] == [("user/entity_vars", "total_revenue")]
    # a view keyed by email: its key is an id of the graph, from every input declaring ids
    email_roots = _roots(lineages, "user/views/user_features_by_email", "email")
    assert ("raw/identifies", "email") in email_roots and ("raw/orders", "email") in email_roots
    # every column of every feature view reaches an input column
    for asset in lineages:
        if asset.startswith("user/views/"):
            schema = metadata[asset]["dagster/column_schema"].value
            for column in schema.columns:
                roots = _roots(lineages, asset, column.name)
                assert roots and {a for a, _ in roots} <= RAW, (asset, column.name, roots)


def test_lineage_is_declared_on_specs_and_completed_by_runs(example_materialized) -> None:
    defs, metadata, _, _ = example_materialized
    graph = defs.resolve_asset_graph()
    spec_lineage = graph.get(dg.AssetKey(["user", "views", "user_feature_view"])).metadata["dagster/column_lineage"]
    assert "total_revenue" in spec_lineage.deps_by_column
    # input var tables pass the input's columns through `*`: known only once a run saw them (input_row_id
    # numbers rows in the input's scan order, as pb does: it reads no column)
    before = graph.get(dg.AssetKey(["user", "input_vars", "orders"])).metadata.get("dagster/column_lineage")
    assert before is None or set(before.deps_by_column) <= {"input_row_id"}
    after = metadata["user/input_vars/orders"]["dagster/column_lineage"].value
    assert {"amount", "status", "email"} <= set(after.deps_by_column)
    assert [(d.asset_key.to_user_string(), d.column_name) for d in after.deps_by_column["amount"]] == [
        ("raw/orders", "amount")
    ]


def test_column_schema_types_and_descriptions(example_materialized) -> None:
    _, metadata, _, _ = example_materialized
    columns = {c.name: c for c in metadata["user/features"]["dagster/column_schema"].value.columns}
    assert columns["total_revenue"].description == "Revenue from completed orders."
    assert columns["total_revenue"].type.startswith("DECIMAL")
    assert columns["user_main_id"].type == "VARCHAR" and "Main id" in columns["user_main_id"].description
    stitcher = {c.name: c for c in metadata["user/id_stitcher"]["dagster/column_schema"].value.columns}
    assert "earliest" in stitcher["first_seen_at"].description.lower()
    mapped = {c.name: c for c in metadata["user/input_vars_mapped/orders"]["dagster/column_schema"].value.columns}
    assert mapped["order_number"].description.startswith("1 for a user's first completed order")


def test_sql_files_timing_and_logs(example_materialized) -> None:
    _, metadata, logs, folder = example_materialized
    features = metadata["user/features"]
    path = Path(features["profiles/sql_file"].value)
    assert path.parent == folder / "sql" / "dagster" / "seq_no_1"
    assert path.name.endswith("_user__features.sql")
    text = path.read_text()
    assert features["dagster/table_name"].value.split(".")[1] in text
    sqlglot.parse(text, read="duckdb")  # the file is the SQL as it ran
    assert len(list(path.parent.glob("*.sql"))) == 19
    assert features["profiles/seconds"].value >= 0 and features["profiles/seq_no"].value == 1
    assert "profiles/view" not in features  # the feature table has no stable view of its own
    assert metadata["user/views/user_feature_view"]["profiles/view"].value == "profiles.user_feature_view"
    assert any(line.startswith("user/features: running ") and str(path) in line for line in logs)
    assert any(line.startswith("user/features: 951 rows in") for line in logs)
    assert any("Published views:" in line and "user_feature_view" in line for line in logs)
    health = metadata["user/id_stitcher"]  # the runner's stitcher health, shown per materialization
    assert health["profiles/health_profile_size_max"].value == 14 and health["profiles/health_profiles"].value == 951


def test_code_references_point_at_the_yaml(example_materialized) -> None:
    defs, _, _, _ = example_materialized
    spec = defs.resolve_asset_graph().get(dg.AssetKey(["user", "cohort", "high_value"]))
    ref = spec.metadata["dagster/code_references"].code_references[0]
    assert ref.file_path.endswith("models/profiles.yaml")
    lines = Path(ref.file_path).read_text().splitlines()
    assert "high_value" in lines[ref.line_number - 1]


def test_definitions_build_quickly(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(database=str(tmp_path / "w.duckdb"))
    build_definitions(EXAMPLE, warehouse=warehouse)  # warm the imports
    start = time.perf_counter()
    defs = build_definitions(EXAMPLE, warehouse=warehouse, assets=[raw_loader(n) for n in RAW_TABLES])
    defs.resolve_asset_graph()
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"building the example's Definitions took {elapsed:.2f}s"


# ---- the lineage walk on its own ------------------------------------------------------------------------


def _trace(sql: str, column: str) -> set[tuple[str, str]]:
    return lineage.trace(sqlglot.parse_one(sql, read="duckdb"), column)


def test_trace_through_subqueries_ctes_stars_and_unions() -> None:
    assert _trace("select a.x + b.y as s from t1 a join s2.t2 b on a.k = b.k", "s") == {("t1", "x"), ("s2.t2", "y")}
    assert _trace("select *, v * 2 as w from (select x as v from t) sub", "w") == {("t", "x")}
    assert _trace("select * from (select x as v from t) sub", "v") == {("t", "x")}
    assert _trace("select src.*, 1 as one from raw.orders as src", "amount") == {("raw.orders", "amount")}
    assert _trace("with c as (select lower(e) as email from t) select email from c", "email") == {("t", "e")}
    union = "select a as id from t1 union all select b from t2"
    assert _trace(union, "id") == {("t1", "a"), ("t2", "b")}
    assert _trace("select * exclude (x) from t", "x") == set()
    assert _trace("select count(*) as n from t group by k", "n") == {("t", "k")}
    # unqualified columns go to the one source that has them
    joined = "select v from (select 1 as k, x as v from t1) a join (select 1 as k, y as w from t2) b on a.k = b.k"
    assert _trace(joined, "v") == {("t1", "x")}


def test_output_columns_expand_known_tables() -> None:
    query = sqlglot.parse_one("select s.*, x as y from t as s", read="duckdb")
    assert lineage.output_columns(query) == (["y"], False)
    assert lineage.output_columns(query, {"t": ["a", "b"]}) == (["a", "b", "y"], True)


def test_trace_down_layers_that_pass_columns_through() -> None:
    layered = "select *, a + 1 as v1 from (select *, b as v0 from (select k, a, b from t) l0) l1"
    assert _trace(layered, "k") == {("t", "k")}
    assert _trace(layered, "v0") == {("t", "b")}
    assert _trace(layered, "v1") == {("t", "a")}
    assert _trace(layered, "missing") == set()  # the bottom select names no such column
    # a layer over a union: by name on the left, by position on the right; a name neither side has reads nothing
    union = "select *, 1 as one from (select a as id from t1 union all select b as x from t2) u"
    assert _trace(union, "id") == {("t1", "a"), ("t2", "b")}
    assert _trace(union, "x") == set()
    # `* exclude` and stars over tables are not plain pass-through: their own rules hold
    assert _trace("select * exclude (x) from (select x, y from t) s", "x") == set()
    assert _trace("select * exclude (x) from (select x, y from t) s", "y") == {("t", "y")}
    assert _trace("select *, 1 as one from (select * from raw.t) s", "amount") == {("raw.t", "amount")}


def test_trace_through_thousands_of_layers() -> None:
    """Each var layered on the ones before it is one subquery: the walk down them is no deep recursion."""
    query = sqlglot.exp.select("k", "a").from_("t")
    for n in range(3000):
        value = sqlglot.exp.alias_(sqlglot.exp.column("a") + n, f"v{n}")
        query = sqlglot.exp.select(sqlglot.exp.Star(), value).from_(query.subquery(f"l{n}", copy=False), copy=False)
    assert lineage.trace(query, "k") == {("t", "k")}
    assert lineage.step_lineage(StepKind.ENTITY_VARS, query, ["v0", "v2999"], {"t": "T"}) == {
        "v0": [("T", "a")],
        "v2999": [("T", "a")],
    }


def test_placeholder_context_parses_a_fragment_once_and_hands_out_copies() -> None:
    loaded = load(EXAMPLE)
    ctx = placeholder_context(loaded.project, loaded.plan, "duckdb", "duckdb")
    where = Where(None, "x")
    first = ctx.fragment("sum(amount)", where)
    first.set("this", sqlglot.exp.column("changed"))  # the compiler attaches and changes what it gets
    second = ctx.fragment("sum(amount)", where)
    assert second.sql() == "SUM(amount)" and second is not first
    assert ctx.template_context() is ctx.template_context()
    assert ctx.template_context(this_name="t").this_name == "t"
    with pytest.raises(ProfilesError, match="cannot parse"):
        ctx.fragment("sum(", where)
    with pytest.raises(ProfilesError, match="cannot parse"):
        ctx.fragment("sum(", where)  # failures are not remembered: each is reported


def test_build_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(database=str(tmp_path / "w.duckdb"))
    build_definitions(EXAMPLE, warehouse=warehouse)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.freeze()  # e.g. a server that freezes its heap before forking: the build must not thaw it
    try:
        frozen = gc.get_freeze_count()
        build_definitions(EXAMPLE, warehouse=warehouse)
        assert 0 < gc.get_freeze_count() <= frozen  # still frozen (less what was freed), nothing of the build's
    finally:
        gc.unfreeze()
