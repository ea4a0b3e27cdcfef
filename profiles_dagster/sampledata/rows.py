"""Rows of plausible sample data for one input: ids from the shared pool of profiles (so the inputs overlap
and stitching merges profiles), a few junk ids the filters drop, timestamps before the run's end time."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from sqlglot import exp

from profiles_dagster.project.schema import IdType
from profiles_dagster.sampledata.columns import Column, Kind
from profiles_dagster.sampledata.ids import Shape, id_shape, junk_values, variants
from profiles_dagster.sql.dialects import DUCKDB

HISTORY = timedelta(days=90)  # how far before the end time the sample events go
NULL_SHARE = 0.15  # of the ids of a row with several ids, the share left NULL
JUNK_SHARE = 0.03  # of the ids, the share that are junk values the filters drop
STRINGS_SHARE = 0.85  # of a text column compared with string literals, the share holding one of them

_TYPES = {
    Kind.TEXT: "VARCHAR",
    Kind.ID: "VARCHAR",
    Kind.BOOLEAN: "BOOLEAN",
    Kind.NUMBER: "DOUBLE",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.JSON: "VARCHAR",  # JSON text, as a warehouse's VARIANT column reads once parsed
}


def column_types(columns: Sequence[Column]) -> list[tuple[str, exp.DataType]]:
    return [(c.name, exp.DataType.build(_TYPES[c.kind], dialect=DUCKDB)) for c in columns]


def profiles_for(rows: int) -> int:
    """How many profiles the pool holds: a few events each."""
    return max(3, rows // 8)


def sample_rows(
    name: str,
    columns: Sequence[Column],
    id_types: dict[str, IdType],
    *,
    rows: int,
    seed: int,
    end_time: datetime,
) -> Iterator[tuple]:
    """`rows` rows for input `name`: the same seed and end time give the same rows."""
    rng = random.Random(f"{seed}:{name}")
    profiles = profiles_for(rows)
    shapes = {c.id_type: id_shape(c.id_type, id_types.get(c.id_type)) for c in columns if c.id_type}
    junk = {t: junk_values(id_types.get(t)) for t in shapes}
    ids = [i for i, c in enumerate(columns) if c.kind is Kind.ID and c.id_type]
    for _ in range(rows):
        profile = rng.randrange(profiles)
        keep = rng.choice(ids) if ids else None  # one id of the row is always there: no row without an id
        row: list[object] = []
        for i, column in enumerate(columns):
            if i in ids:
                row.append(_id(rng, column, shapes, junk, profile, always=i == keep))
            else:
                row.append(_value(rng, column, end_time, rows))
        yield tuple(row)


def _id(
    rng: random.Random,
    column: Column,
    shapes: dict[str, Shape],
    junk: dict[str, list[str]],
    profile: int,
    *,
    always: bool,
) -> str | None:
    id_type = column.id_type or ""
    draw = rng.random()
    if not always and draw < NULL_SHARE:
        return None
    if junk[id_type] and draw > 1 - JUNK_SHARE:
        return rng.choice(junk[id_type])
    shape = shapes[id_type]
    return shape(id_type, profile, rng.randrange(variants(shape)))


def _value(rng: random.Random, column: Column, end_time: datetime, rows: int) -> object:
    if column.kind is Kind.TIMESTAMP:
        seconds = rng.randrange(1, int(HISTORY.total_seconds()))
        return end_time.replace(microsecond=0, tzinfo=None) - timedelta(seconds=seconds)
    if column.kind is Kind.NUMBER:
        return round(rng.uniform(1, 500), 2)
    if column.kind is Kind.BOOLEAN:
        return rng.random() < 0.5
    if column.kind is Kind.JSON:
        return _json(rng, column, rows)
    if column.strings and rng.random() < STRINGS_SHARE:  # the values the project's SQL looks for
        return rng.choice(sorted(column.strings))
    # a join key draws from as many values as the table has rows, so that joining tables of sample rows on it
    # gives about as many rows as each has (five values each would multiply their rows at every join)
    return f"{column.name.lower()}_{rng.randint(1, rows if column.joined else 5)}"


def _json(rng: random.Random, column: Column, rows: int) -> str:
    """An object holding the keys the project's JSON paths read, or an array of one to three of them (what
    FLATTEN and ARRAY_SIZE read) when no path reads the column itself."""

    def one() -> dict[str, object]:
        # numbers: the SQL may compute with a field or read it as text, and a number survives both (Snowflake
        # casts a VARIANT number to text where text is wanted; a text field in arithmetic would fail)
        keys = sorted(column.json_keys) or ["id"]
        return {k: rng.randint(1, max(5, rows // 10)) for k in keys}

    value: object = one() if column.json_object else [one() for _ in range(rng.randint(1, 3))]
    return json.dumps(value, separators=(",", ":"))
