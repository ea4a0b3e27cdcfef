"""The example project's outputs equal an independent pandas/union-find computation, value by value."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from profiles_dagster_tests.conftest import END_TIME_NAIVE, EXAMPLE_DATA
from profiles_dagster_tests.example_truth import Truth, compute_truth


@pytest.fixture(scope="module")
def truth() -> Truth:
    return compute_truth(EXAMPLE_DATA, END_TIME_NAIVE)


def _read(database: Path, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def _same(a: object, b: object) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)) or a is pd.NaT or a is pd.NA:
        return b is None or (isinstance(b, float) and math.isnan(b)) or b is pd.NaT or b is pd.NA
    if isinstance(a, pd.Timestamp | pd.Timedelta) or isinstance(b, pd.Timestamp):
        return pd.Timestamp(a) == pd.Timestamp(b)
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def assert_frames_equal(actual: pd.DataFrame, expected: pd.DataFrame, key: str) -> None:
    assert list(actual.columns) == list(expected.columns)
    assert actual[key].is_unique and expected[key].is_unique
    assert set(actual[key]) == set(expected[key])
    a = actual.set_index(key)
    e = expected.set_index(key)
    mismatches = [
        (k, column, a.at[k, column], e.at[k, column])
        for column in e.columns
        for k in e.index
        if not _same(a.at[k, column], e.at[k, column])
    ]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"


def test_id_graph_equals_union_find(example_run: Path, truth: Truth) -> None:
    actual = _read(
        example_run,
        "select user_main_id, other_id, other_id_type, first_seen_at from profiles.user_id_stitcher",
    )
    actual["node"] = actual.other_id_type + ":" + actual.other_id
    expected = truth.id_graph.copy()
    expected["node"] = expected.other_id_type + ":" + expected.other_id
    columns = ["node", "user_main_id", "first_seen_at"]
    assert_frames_equal(actual[columns], expected[columns], "node")


def test_stitcher_columns_and_valid_at(example_run: Path) -> None:
    graph = _read(example_run, "select * from profiles.user_id_stitcher")
    assert list(graph.columns) == ["user_main_id", "other_id", "other_id_type", "valid_at", "first_seen_at"]
    assert (graph.valid_at >= graph.first_seen_at).all()


def test_all_cohort_is_every_main_id(example_run: Path, truth: Truth) -> None:
    all_ = _read(example_run, "select * from profiles.user_all")
    assert list(all_.columns) == ["user_main_id"]
    assert set(all_.user_main_id) == set(truth.id_graph.user_main_id)
    assert all_.user_main_id.is_unique


def test_entity_var_table_equals_pandas(example_run: Path, truth: Truth) -> None:
    (table,) = _read(
        example_run,
        "select table_name from profiles._profiles_materials where step = 'user/entity_vars' "
        "and status = 'complete' order by seq_no desc limit 1",
    ).table_name
    actual = _read(example_run, f'select * from profiles."{table}"')
    assert_frames_equal(actual, truth.var_table, "user_main_id")


def test_feature_view_equals_pandas(example_run: Path, truth: Truth) -> None:
    actual = _read(example_run, "select * from profiles.user_feature_view")
    assert_frames_equal(actual, truth.feature_view, "user_main_id")
    assert "last_order_at" not in actual.columns  # is_feature: false


def test_feature_view_by_email_equals_pandas(example_run: Path, truth: Truth) -> None:
    actual = _read(example_run, "select * from profiles.user_features_by_email")
    assert_frames_equal(actual, truth.feature_view_by_email, "email")


def test_cohort_members_and_view(example_run: Path, truth: Truth) -> None:
    members = _read(example_run, "select * from profiles.user_high_value")
    assert set(members.user_main_id) == truth.high_value
    assert 0 < len(truth.high_value) < len(truth.feature_view)
    actual = _read(example_run, "select * from profiles.high_value_feature_view")
    assert_frames_equal(actual, truth.high_value_feature_view, "user_main_id")
    by_email = _read(example_run, "select * from profiles.high_value_by_email")
    assert list(by_email.columns)[:2] == ["email", "hv_max_order_amount"]
    expected_emails = set(
        truth.id_graph[truth.id_graph.user_main_id.isin(truth.high_value)].query("other_id_type == 'email'").other_id
    )
    assert set(by_email.email) == expected_emails
