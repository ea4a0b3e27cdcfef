"""The run plan of the example project: DESIGN.md's step order, dependencies, view names and hashes."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from profiles_dagster.plan import payloads
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.plan.steps import RunPlan, StepKey, StepKind
from profiles_dagster.project.loader import load_project
from profiles_dagster.project.model import IdStitcher, Input, SqlModel
from profiles_dagster_tests.projects import EXAMPLE_PROJECT, copy_example

INPUTS = ("identifies", "tracks", "pages", "orders")
STITCHER = ("user", "id_stitcher")
ALL = ("user", "all")
ENTITY_VARS = ("user", "entity_vars")
FEATURES = ("user", "features")
SQL_MODEL = ("models", "user_daily_orders")
COHORT = ("user", "cohort", "high_value")
COHORT_VARS = ("user", "cohort", "high_value", "vars")


def view(name: str) -> tuple[str, ...]:
    return ("user", "views", name)


@pytest.fixture(scope="module")
def plan() -> RunPlan:
    return build_plan(load_project(EXAMPLE_PROJECT))


def test_every_step_is_planned_once(plan):
    keys = [s.key for s in plan.steps]
    assert len(keys) == len(set(keys))
    assert set(keys) == {
        SQL_MODEL,
        *(("user", "input_vars", i) for i in INPUTS),
        STITCHER,
        ALL,
        *(("user", "input_vars_mapped", i) for i in INPUTS),
        ENTITY_VARS,
        FEATURES,
        COHORT,
        COHORT_VARS,
        *(view(v) for v in ("user_feature_view", "user_features_by_email", "high_value_feature_view")),
        view("high_value_by_email"),
    }


def test_step_keys_are_named_and_stay_the_tuples_they_were(plan):
    built = {
        StepKey.sql_model("user_daily_orders"): SQL_MODEL,
        StepKey.input_vars("user", "pages"): ("user", "input_vars", "pages"),
        StepKey.id_stitcher("user"): STITCHER,
        StepKey.all("user"): ALL,
        StepKey.input_vars_mapped("user", "pages"): ("user", "input_vars_mapped", "pages"),
        StepKey.entity_vars("user"): ENTITY_VARS,
        StepKey.features("user"): FEATURES,
        StepKey.cohort("user", "high_value"): COHORT,
        StepKey.cohort_vars("user", "high_value"): COHORT_VARS,
        StepKey.view("user", "high_value_by_email"): view("high_value_by_email"),
    }
    for key, plain in built.items():
        assert key == plain and hash(key) == hash(plain) and plan[plain].key == key
        assert key.path == "/".join(plain) == plan[plain].path
        assert pickle.loads(pickle.dumps(key)) == key
    for step in plan.steps:
        assert isinstance(step.key, StepKey)
        assert (step.key.kind, step.key.entity) == (step.kind, step.entity)
    assert StepKey.cohort_vars("user", "high_value").name == "high_value"
    assert StepKey.sql_model("user_daily_orders").name == "user_daily_orders"
    assert StepKey.id_stitcher("user").name == ""


PAYLOADS = {
    StepKind.INPUT_VARS: Input,
    StepKind.SQL_MODEL: SqlModel,
    StepKind.ID_STITCHER: IdStitcher,
    StepKind.ALL: payloads.AllPayload,
    StepKind.INPUT_VARS_MAPPED: payloads.MappedPayload,
    StepKind.ENTITY_VARS: payloads.VarTablePayload,
    StepKind.FEATURES: payloads.FeaturesPayload,
    StepKind.COHORT: payloads.CohortPayload,
    StepKind.COHORT_VARS: payloads.VarTablePayload,
    StepKind.VIEW: payloads.ViewPayload,
}


def test_each_kind_of_step_carries_its_payload_type(plan):
    for step in plan.steps:
        assert type(step.payload) is PAYLOADS[step.kind], step.path
    with pytest.raises(TypeError, match="user/all"):
        plan[ALL].payload_as(payloads.ViewPayload)
    assert plan[COHORT].payload_as(payloads.CohortPayload).parent_vars == ENTITY_VARS


def test_plan_imports_no_sql_or_dagster():
    """DESIGN.md's layers: plan/ knows nothing of SQL, warehouses or Dagster."""
    import profiles_dagster

    banned = ("sqlglot", "dagster", "profiles_dagster.sql", "profiles_dagster.warehouse", "profiles_dagster.dagster")
    for path in (Path(profiles_dagster.__file__).parent / "plan").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(banned), f"{path.name} imports {name}"


def test_steps_are_in_topological_order(plan):
    seen: set[tuple[str, ...]] = set()
    for step in plan.steps:
        assert set(step.deps) <= seen, f"{step.key} comes before its deps"
        seen.add(step.key)


# DESIGN.md's table: steps 3 to 12 of a run, in this order for each entity.
DESIGN_ORDER = [
    StepKind.INPUT_VARS,
    StepKind.ID_STITCHER,
    StepKind.ALL,
    StepKind.INPUT_VARS_MAPPED,
    StepKind.ENTITY_VARS,
    StepKind.FEATURES,
    StepKind.COHORT,
    StepKind.COHORT_VARS,
    StepKind.VIEW,
]


def test_user_steps_come_in_design_order(plan):
    kinds = [s.kind for s in plan.steps if s.entity == "user"]
    assert kinds == sorted(kinds, key=DESIGN_ORDER.index)
    assert [k for k in DESIGN_ORDER if k in kinds] == DESIGN_ORDER


def test_sql_model_comes_before_the_var_table_that_reads_it(plan):
    keys = [s.key for s in plan.steps]
    assert keys.index(SQL_MODEL) < keys.index(ENTITY_VARS)
    assert plan[SQL_MODEL].kind == StepKind.SQL_MODEL
    assert plan[SQL_MODEL].entity is None


def test_input_vars_read_their_external_input(plan):
    for name in INPUTS:
        step = plan[("user", "input_vars", name)]
        assert step.deps == ()
        assert step.external_inputs == (name,)
    assert plan[SQL_MODEL].deps == ()
    assert plan[SQL_MODEL].external_inputs == ("orders",)
    others = [s for s in plan.steps if s.kind not in (StepKind.INPUT_VARS, StepKind.SQL_MODEL)]
    assert all(s.external_inputs == () for s in others)


def test_documented_deps(plan):
    input_vars = [("user", "input_vars", i) for i in INPUTS]
    mapped = {("user", "input_vars_mapped", i) for i in INPUTS}
    assert plan[STITCHER].deps == tuple(input_vars)
    assert plan[ALL].deps == (STITCHER,)
    for name in INPUTS:
        assert plan[("user", "input_vars_mapped", name)].deps == (("user", "input_vars", name), STITCHER)
    # every input has entity vars; the sql model feeds active_order_days; the stitcher keys it all
    assert set(plan[ENTITY_VARS].deps) == {ALL, STITCHER, *mapped, SQL_MODEL}
    assert plan[ENTITY_VARS].deps[0] == ALL
    assert plan[FEATURES].deps == (ENTITY_VARS,)
    assert plan[view("user_feature_view")].deps == (FEATURES,)
    assert plan[view("user_features_by_email")].deps == (FEATURES, STITCHER)
    assert plan[COHORT].deps == (ALL, ENTITY_VARS)
    # the cohort's own var reads orders; the rest of a cohort var table is the documented pair
    assert set(plan[COHORT_VARS].deps) == {COHORT, ENTITY_VARS, STITCHER, ("user", "input_vars_mapped", "orders")}
    assert plan[COHORT_VARS].deps[:2] == (COHORT, ENTITY_VARS)
    assert plan[view("high_value_feature_view")].deps == (COHORT_VARS,)
    assert plan[view("high_value_by_email")].deps == (COHORT_VARS, STITCHER)


def test_view_names(plan):
    named = {s.key: s.view_name for s in plan.steps if s.view_name}
    assert named == {
        STITCHER: "user_id_stitcher",
        ALL: "user_all",
        COHORT: "user_high_value",
        view("user_feature_view"): "user_feature_view",
        view("user_features_by_email"): "user_features_by_email",
        view("high_value_feature_view"): "high_value_feature_view",
        view("high_value_by_email"): "high_value_by_email",
        SQL_MODEL: "user_daily_orders",
    }


def test_upstream_of_features(plan):
    upstream = plan.upstream([FEATURES])
    assert STITCHER in upstream
    assert {("user", "input_vars", i) for i in INPUTS} <= upstream
    assert {ENTITY_VARS, ALL, SQL_MODEL} <= upstream
    assert FEATURES not in upstream
    assert not upstream & {COHORT, COHORT_VARS, view("user_feature_view")}


def test_ordered_keeps_plan_order(plan):
    picked = [s.key for s in plan.ordered({FEATURES, STITCHER, SQL_MODEL})]
    assert picked == [SQL_MODEL, STITCHER, FEATURES]


# ---- content hashes ----------------------------------------------------------------------------


def hashes(root: Path) -> dict[tuple[str, ...], str]:
    return {s.key: s.content_hash for s in build_plan(load_project(root)).steps}


def test_content_hashes_are_stable_across_loads(plan, tmp_path):
    first = {s.key: s.content_hash for s in plan.steps}
    assert first == hashes(EXAMPLE_PROJECT)
    assert first == hashes(copy_example(tmp_path / "copy"))  # the folder's location is not part of a hash
    assert all(len(h) == 8 for h in first.values())


def test_changing_one_var_changes_its_step_and_everything_downstream(plan, tmp_path):
    root = copy_example(tmp_path / "copy")
    profiles = root / "models" / "profiles.yaml"
    text = profiles.read_text()
    assert text.count("select: count(distinct anonymous_id)") == 1
    profiles.write_text(text.replace("select: count(distinct anonymous_id)", "select: count(anonymous_id)"))

    before = {s.key: s.content_hash for s in plan.steps}
    after = hashes(root)
    changed = {key for key in before if before[key] != after[key]}

    downstream = {s.key for s in plan.steps if ENTITY_VARS in plan.upstream([s.key]) or s.key == ENTITY_VARS}
    assert downstream == {
        ENTITY_VARS,
        FEATURES,
        COHORT,
        COHORT_VARS,
        *(view(v) for v in ("user_feature_view", "user_features_by_email")),
        *(view(v) for v in ("high_value_feature_view", "high_value_by_email")),
    }
    assert changed == downstream


def test_changing_an_input_var_leaves_the_stitcher_alone(plan, tmp_path):
    root = copy_example(tmp_path / "copy")
    profiles = root / "models" / "profiles.yaml"
    text = profiles.read_text()
    assert text.count("select: row_number()") == 1
    profiles.write_text(text.replace("select: row_number()", "select: rank()"))

    before = {s.key: s.content_hash for s in plan.steps}
    after = hashes(root)
    changed = {key for key in before if before[key] != after[key]}
    mapped_orders = ("user", "input_vars_mapped", "orders")
    assert mapped_orders in changed
    assert not changed & {STITCHER, ALL, SQL_MODEL, *(("user", "input_vars", i) for i in INPUTS)}
    assert not changed & {("user", "input_vars_mapped", i) for i in INPUTS if i != "orders"}
    assert changed == {mapped_orders} | {s.key for s in plan.steps if mapped_orders in plan.upstream([s.key])}
