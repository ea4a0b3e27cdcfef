"""The id stitcher on every engine's stand-in equals the independent union-find model of test_stitcher.

One graph holds the interesting cases side by side (disjoint, so each keeps its own answer): random
sparse graphs, a chain, a star, repeated edges, isolated ids, NULL times, one value under two types.
"""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest
from sqlglot import exp

from profiles_dagster.sql.names import table
from profiles_dagster.sql.stitcher import main_id_expression, run_stitcher
from profiles_dagster_tests.sql.test_stitcher import (
    MAIN,
    T0,
    Row,
    expected_output,
    py_main_id,
    random_rows,
    slot_columns,
    ts,
    wide_rows,
)
from profiles_dagster_tests.standins import Engine
from profiles_dagster_tests.standins.example import load_table


def _prefixed(rows: list[Row], prefix: str) -> list[Row]:
    return [(f"{prefix}{k}", t, [(typ, f"{prefix}{v}") for typ, v in ids]) for k, t, ids in rows]


def cases() -> list[Row]:
    rng = random.Random(3)
    rows: list[Row] = []
    rows += _prefixed(random_rows(1, n_rows=300, n_ids=250), "a")
    rows += _prefixed(random_rows(2, n_rows=200, n_ids=400, max_ids=6), "b")
    rows += _prefixed(
        [
            (f"r{i}", T0 + dt.timedelta(seconds=300 - i), [("email", f"c{i}"), ("email", f"c{i + 1}")])
            for i in range(300)
        ],
        "chain",
    )
    rows += _prefixed([(f"r{i}", ts(rng), [("anon_id", "hub"), ("email", f"leaf{i}")]) for i in range(100)], "star")
    rows += _prefixed(
        [(f"d{i}", T0 + dt.timedelta(days=i), [("email", "x"), ("user_id", "y"), ("email", "x")]) for i in range(5)]
        + [("solo", T0 - dt.timedelta(days=3), [("email", "z"), ("email", "z")])],
        "dup",
    )
    rows += _prefixed([(f"i{i}", ts(rng), [("email", f"e{i}")]) for i in range(20)], "iso")
    rows += _prefixed(
        [
            ("n1", None, [("email", "a"), ("email", "b")]),
            ("n2", None, [("email", "b"), ("anon_id", "c")]),
            ("k1", None, [("email", "f"), ("email", "g")]),
            ("k2", T0, [("email", "f")]),
        ],
        "null",
    )
    rows += _prefixed(
        [
            ("r1", T0, [("email", "same")]),
            ("r2", T0, [("user_id", "same")]),
            ("r3", T0, [("user_id", "same"), ("anon_id", "a1")]),
        ],
        "two",
    )
    return rows


def _text(value) -> str | None:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, str):
        return str(pd.Timestamp(value)) if value[:2] in ("19", "20") and len(value) >= 19 else value
    return str(pd.Timestamp(value)) if isinstance(value, dt.datetime) else str(value)


def test_stitcher_equals_union_find(engine: Engine) -> None:
    rows = cases()
    columns = ["occurred_at", *slot_columns()]
    flat = [{c: "" if v is None else str(v) for c, v in zip(columns, row, strict=True)} for row in wide_rows(rows)]
    types = {c: "VARCHAR" for c in columns} | {"occurred_at": "TIMESTAMP"}
    warehouse = engine.warehouse(schema="stitch")
    with warehouse.session() as session:
        session.create_schema("stitch")
        load_table(session, "stitch", "obs", flat, types)
        target = table("stitched", "stitch")
        session.drop_table(target)
        stats = run_stitcher(
            session,
            observations=exp.select(*columns).from_(table("obs", "stitch")),
            target=target,
            main_id_column=MAIN,
            scratch_prefix="_scratch",
        )
        cast = engine.notes.get("null_timestamps_read_as_epoch")
        times = [
            exp.alias_(exp.cast(exp.column(c), "VARCHAR"), c) if cast else exp.column(c)
            for c in ("valid_at", "first_seen_at")
        ]
        query = exp.select(exp.column(MAIN), exp.column("other_id"), exp.column("other_id_type"), *times).from_(target)
        got = session.query(session.render(query))
        leftovers = [n for n in session.list_tables("stitch") if n.lower().startswith("_scratch")]
    actual = sorted(tuple(_text(v) for v in r) for r in got)
    expected = sorted(tuple(_text(v) for v in r) for r in expected_output(rows))
    assert len(actual) == len(expected)
    assert actual == expected
    assert stats.clusters == len({r[0] for r in expected})
    assert leftovers == []


@pytest.mark.parametrize("value", ["a@b.com", "ünïcode-✓", "42"])
def test_main_id_hash_matches_pb(engine: Engine, value: str) -> None:
    with engine.warehouse().session() as session:
        expr = main_id_expression(exp.Literal.string(value), exp.Literal.string("email"))  # rendered by the session
        (got,) = session.query(session.render(exp.select(expr)))[0]
    assert got == py_main_id(value, "email")
