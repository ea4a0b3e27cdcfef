"""Scalar SQL of Snowflake (and BigQuery, Redshift, Databricks) translated for DuckDB, run on an in-memory DuckDB
on hand-made values, against the value the source vendor's documentation defines (each case says which rule).

Every construct `scalars.CHECKED` claims for a pair has a case here (test_every_checked_construct_has_a_case),
named as benchmarks/sql_census.py names it, so the census's "same" is a claim backed by a test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from benchmarks import sql_census
from profiles_dagster.sql.dialects import DUCKDB, POSTGRES
from profiles_dagster.sql.transpile import UnfaithfulError, translate
from profiles_dagster.sql.transpile.scalars import CHECKED, strftime_format
from profiles_dagster.sql.transpile.spark_timestampdiff import parse_reader

D = dt.date
TS = dt.datetime
UTC = dt.UTC

BIGQUERY_IGNORE_NULLS = (
    "first_value(x ignore nulls) over (order by y) from (select null as x, 1 as y union all select 2, 2) t order by y"
)
# 1000 rows in any dialect's SQL
ROWS_1000 = (
    "(values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) a(i), "
    "(values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) b(i), "
    "(values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) c(i)"
)

# (construct as the census names it, SQL after SELECT in the source dialect, expected rows, the vendor's rule)
SNOWFLAKE: list[tuple[str, str, list[tuple[object, ...]], str]] = [
    # DATEDIFF counts the unit boundaries crossed, not whole units elapsed (Snowflake: DATEDIFF usage notes)
    ("DATEDIFF", "datediff(day, '2024-01-01 23:00'::timestamp, '2024-01-02 01:00'::timestamp)", [(1,)], "day boundary"),
    ("DATEDIFF", "datediff(month, '2024-01-31'::date, '2024-02-01'::date)", [(1,)], "month boundary"),
    ("DATEDIFF", "datediff(year, '2024-12-31'::date, '2025-01-01'::date)", [(1,)], "year boundary"),
    ("DATEDIFF", "datediff(hour, '2024-01-01 10:59'::timestamp, '2024-01-01 11:01'::timestamp)", [(1,)], "hour"),
    ("DATEDIFF", "datediff('minute', '2024-01-01 10:59:59'::timestamp, '2024-01-01 11:00:01'::timestamp)", [(1,)], ""),
    # weeks start on Monday with WEEK_START = 0 (the default): Saturday to Monday crosses one
    ("DATEDIFF", "datediff(week, '2024-01-06'::date, '2024-01-08'::date)", [(1,)], "WEEK_START 0"),
    ("DATEDIFF", "datediff(days, '2024-01-05'::date, '2024-01-01'::date)", [(-4,)], "negative when end < start"),
    # DATEADD: a DATE plus days or more is a DATE; plus hours a TIMESTAMP_NTZ from midnight; month ends clamp
    ("DATEADD", "dateadd(day, 3, '2024-01-01'::date)", [(D(2024, 1, 4),)], "DATE in, unit >= day: DATE"),
    ("DATEADD", "dateadd(month, 1, '2024-01-31'::date)", [(D(2024, 2, 29),)], "last day of a shorter month"),
    ("DATEADD", "dateadd(hour, 3, '2024-01-01'::date)", [(TS(2024, 1, 1, 3),)], "unit < day: TIMESTAMP_NTZ"),
    ("DATEADD", "dateadd('day', -1, '2024-03-01 10:00'::timestamp)", [(TS(2024, 2, 29, 10),)], "TIMESTAMP in"),
    # DATE_TRUNC keeps the input's type; weeks start Monday (WEEK_START 0)
    ("DATE_TRUNC", "date_trunc('week', '2024-01-10'::date)", [(D(2024, 1, 8),)], "Monday"),
    ("DATE_TRUNC", "date_trunc(month, '2024-01-10 10:00'::timestamp)", [(TS(2024, 1, 1),)], "TIMESTAMP in/out"),
    ("DATE_PART", "date_part(dow, '2024-01-07'::date)", [(0,)], "DAYOFWEEK: Sunday 0 (WEEK_START 0)"),
    ("DATE_PART", "date_part(epoch_second, '2024-01-01'::timestamp)", [(1704067200,)], "seconds since epoch"),
    ("DATE_PART", "date_part(epoch_second, '2024-01-02'::date)", [(1704153600,)], "a DATE: its midnight"),
    ("DATE_PART", "date_part(epoch_second, '2024-01-01 00:00:01.75'::timestamp)", [(1704067201,)], "an integer"),
    ("DATE_PART", "date_part(second, '2024-01-01 00:00:01.75'::timestamp)", [(1,)], "whole seconds"),
    ("DATE_PART", "extract(epoch from '2024-01-01 00:00:01.75'::timestamp)", [(1704067201,)], "EPOCH: EPOCH_SECOND"),
    ("DATE_PART", "date_part(dayofweekiso, '2024-01-07'::date)", [(7,)], "ISO: Sunday 7"),
    ("DATE_PART", "date_part(dayofyear, '2024-02-01'::date)", [(32,)], ""),
    ("DATE_PART", "date_part(quarter, '2024-05-01'::date)", [(2,)], ""),
    # TO_DATE / DATE: a string in AUTO format or with a format; a timestamp string's time is truncated
    ("TO_DATE", "to_date('2024-01-10')", [(D(2024, 1, 10),)], "AUTO"),
    ("TO_DATE", "to_date(x) from (values ('2024-01-10 10:11:12')) t(x)", [(D(2024, 1, 10),)], "time truncated"),
    ("TO_DATE", "to_date(x, 'MM/DD/YYYY') from (values ('01/10/2024')) t(x)", [(D(2024, 1, 10),)], "format"),
    ("TO_DATE", "to_date(x, 'YYYYMMDD') from (values ('20240110')) t(x)", [(D(2024, 1, 10),)], "format"),
    # TO_TIMESTAMP: TIMESTAMP_NTZ (TIMESTAMP_TYPE_MAPPING's default); an integer is seconds since the epoch
    (
        "TO_TIMESTAMP",
        "to_timestamp(x) from (values ('2024-01-10 10:11:12')) t(x)",
        [(TS(2024, 1, 10, 10, 11, 12),)],
        "",
    ),
    ("TO_TIMESTAMP", "to_timestamp(1700000000)", [(TS(2023, 11, 14, 22, 13, 20),)], "epoch seconds, NTZ in UTC"),
    (
        "TO_TIMESTAMP",
        "to_timestamp(x, 'YYYY-MM-DD\"T\"HH24:MI:SS') from (values ('2024-01-10T10:00:00')) t(x)",
        [(TS(2024, 1, 10, 10),)],
        "format with a quoted literal",
    ),
    ("TO_TIMESTAMP_NTZ", "to_timestamp_ntz(x) from (values ('2024-01-10 10:00')) t(x)", [(TS(2024, 1, 10, 10),)], ""),
    # _TZ/_LTZ without an offset: the session's time zone (the test session's is UTC)
    (
        "TO_TIMESTAMP_TZ",
        "to_timestamp_tz(replace('2024-01-10 00:00:00 UTC', ' UTC'))",
        [(TS(2024, 1, 10, tzinfo=UTC),)],
        "an expression, session zone",
    ),
    (
        "TO_TIMESTAMP_LTZ",
        "to_timestamp_ltz(x) from (values ('2024-01-10 08:00')) t(x)",
        [(TS(2024, 1, 10, 8, tzinfo=UTC),)],
        "",
    ),
    ("TO_TIMESTAMP_LTZ", "to_timestamp_ltz(1700000000)", [(TS(2023, 11, 14, 22, 13, 20, tzinfo=UTC),)], "epoch"),
    ("CAST(… AS TIMESTAMPTZ)", "'2024-01-10 10:00'::timestamp_tz", [(TS(2024, 1, 10, 10, tzinfo=UTC),)], ""),
    ("CAST(… AS TIMESTAMPNTZ)", "'2024-01-10 10:00:01'::timestamp_ntz", [(TS(2024, 1, 10, 10, 0, 1),)], "wall clock"),
    ("CAST(… AS TIMESTAMP)", "x::timestamp from (values ('2024-01-10 10:00')) t(x)", [(TS(2024, 1, 10, 10),)], "NTZ"),
    ("CAST(… AS DATE)", "x::date from (values ('2024-01-10 10:00:00'::timestamp)) t(x)", [(D(2024, 1, 10),)], ""),
    ("CAST(… AS VARCHAR)", "x::varchar from (values (12)) t(x)", [("12",)], ""),
    ("CAST(… AS DOUBLE)", "x::float from (values ('1.5')) t(x)", [(1.5,)], "FLOAT is DOUBLE"),
    # FLOAT, FLOAT4, FLOAT8, REAL, DOUBLE: all 64-bit (Snowflake: floating-point data types)
    ("CAST(… AS FLOAT)", "x::real from (values ('0.1')) t(x)", [(0.1,)], "REAL is 64-bit"),
    ("CAST(… AS FLOAT)", "avg(x::float4) from (values ('0.1'), ('0.2')) t(x)", [(0.15000000000000002,)], ""),
    ("CAST(… AS DOUBLE)", "cast(x as double) from (values ('2.25')) t(x)", [(2.25,)], ""),
    # NUMBER(p, s) rounds half away from zero to its scale
    ("CAST(… AS DECIMAL(12, 2))", "x::number(12,2) from (values ('12.345')) t(x)", [(Decimal("12.35"),)], ""),
    ("TRY_CAST(… AS INT)", "try_cast(x as int) from (values ('x'), ('7')) t(x)", [(None,), (7,)], "NULL if not"),
    # implicit casts: RIGHT/LEFT of a number read its text; a string compared with a DATE is cast to DATE
    ("RIGHT", "right(12345, 2)", [("45",)], "number cast to text"),
    ("RIGHT", "length(right(random(), 1))", [(1,)], "right(random(), 1): one digit"),
    ("LEFT", "left(x, 2) from (values (12345)) t(x)", [("12",)], ""),
    # text in arithmetic is cast to a number: right(random(), 2)/100 is a fraction in [0, 1)
    ("RIGHT", "right(12345, 2) / 100", [(0.45,)], "'45' / 100"),
    ("FLOOR", "floor((right(123456, 2) / 100) * (100 - 62 + 1)) + 62", [(83,)], "0.56 * 39 = 21.84"),
    # RANDOM is a 64-bit integer (|r| <= 1000 has probability 2001 / 2^64)
    ("RANDOM", "r = round(r) and abs(r) > 1000 from (select random() as r)", [(True,)], "a 64-bit integer"),
    # uniform over all 64-bit integers: odd and even, negative and positive (MOD takes the dividend's sign)
    ("RANDOM", f"count(distinct mod(random(), 2)) from {ROWS_1000}", [(3,)], "-1, 0 and 1"),
    ("UNIFORM", "uniform(1, 1, random())", [(1,)], "integers in [min, max]"),
    (
        "UNIFORM",
        "min(u), max(u), count(distinct u), sum(iff(u = round(u), 1, 0)) "
        f"from (select uniform(1, 3, random()) as u from {ROWS_1000})",
        [(1, 3, 3, 1000)],
        "every integer of [1, 3], both ends included (1000 draws miss one with probability 3 * (2/3)^1000)",
    ),
    (
        "UNIFORM",
        f"min(u) >= 0.5 and max(u) <= 1.5 and count(distinct u) > 900 from "
        f"(select uniform(0.5::float, 1.5::float, random()) as u from {ROWS_1000})",
        [(True,)],
        "float bounds: floats in [min, max]",
    ),
    (
        "UNIFORM",
        f"min(u) >= 0 and max(u) <= 1 and count(distinct u) > 900 from "
        f"(select uniform(0::number(12, 2), 1::number(12, 2), random()) as u from {ROWS_1000})",
        [(True,)],
        "bounds that are not integers: floats",
    ),
    # integer division is a NUMBER of scale 6 (max(S1, min(S1 + 6, 12))), rounded
    ("/ (division)", "1/3", [(0.333333,)], "scale 6"),
    ("/ (division)", "count(x) / count(*) from (values (1), (2), (null)) t(x)", [(0.666667,)], "rounded"),
    ("/ (division)", "10.5 / 4", [(2.625,)], "scale 1 + 6"),
    ("% (modulo)", "-7 % 3", [(-1,)], "the sign of the dividend"),
    ("ABS", "abs(mod(-7, 3))", [(1,)], ""),
    ("FLOOR", "floor(-1.5)", [(-2,)], ""),
    ("IFF", "iff(1 > 2, 'a', 'b')", [("b",)], ""),
    ("IFF", "iff(null, 'a', 'b')", [("b",)], "NULL condition: the else value"),
    ("COALESCE", "nvl(null, 2)", [(2,)], "NVL"),
    ("COALESCE", "coalesce(null, null, 3)", [(3,)], ""),
    ("NVL2", "nvl2(null, 1, 2)", [(2,)], ""),
    ("IFF", "zeroifnull(null)", [(0,)], "ZEROIFNULL (parsed as an IFF)"),
    ("IFF", "div0(1, 0)", [(0,)], "DIV0 (parsed as an IFF): 0 when dividing by 0"),
    ("NULLIF", "nullif(1, 1)", [(None,)], ""),
    ("CASE", "case when null then 1 else 2 end", [(2,)], ""),
    ("REPLACE", "replace('a-b-c', '-')", [("abc",)], "the replacement defaults to ''"),
    ("LOWER", "lower('AbC')", [("abc",)], ""),
    ("SHA1", "sha1('abc')", [("a9993e364706816aba3e25717850c26c9cd0d89d",)], "hex text"),
    ("SHA1", "sha1(x) from (values ('')) t(x)", [("da39a3ee5e6b4b0d3255bfef95601890afd80709",)], "of ''"),
    # TO_BOOLEAN: a number is TRUE unless 0; strings 'true'/'t'/'yes'/'y'/'on'/'1' (any case) and their opposites
    ("TO_BOOLEAN", "to_boolean(0), to_boolean(1), to_boolean(2)", [(False, True, True)], "numbers"),
    (
        "TO_BOOLEAN",
        "to_boolean('YES'), to_boolean('off'), to_boolean('T'), to_boolean('0')",
        [(True, False, True, False)],
        "",
    ),
    ("TO_BOOLEAN", "to_boolean(null::varchar)", [(None,)], "NULL in, NULL out"),
    # ROUND: half away from zero (the default rounding mode), for NUMBER and FLOAT alike
    ("ROUND", "round(x * 0.8, 2) from (values (1.05625)) t(x)", [(Decimal("0.85"),)], "0.845 rounds up"),
    ("ROUND", "round(-2.5), round(2.5::float)", [(-3, 3.0)], "away from zero, not to even"),
    ("ROUND", "round(x, 1) from (values (1.25::float)) t(x)", [(1.3,)], "a FLOAT to a scale"),
    ("SPLIT_PART", "split_part('a,b,c', ',', -1)", [("c",)], "negative: from the end"),
    ("SPLIT_PART", "split_part('a,b,c', ',', 0)", [("a",)], "0 is 1"),
    ("SPLIT_PART", "split_part('a,b,c', ',', 5)", [("",)], "past the end: ''"),
    # REGEXP_LIKE / RLIKE match the whole subject (implicitly anchored at both ends)
    ("REGEXP_LIKE", "regexp_like('abc', 'b')", [(False,)], "anchored"),
    ("REGEXP_LIKE", "regexp_like('abc', 'a.c')", [(True,)], ""),
    ("REGEXP_LIKE", "'abc' rlike 'b'", [(False,)], "RLIKE, anchored"),
    ("REGEXP_SUBSTR", "regexp_substr('abc123def456', '[0-9]+', 1, 2)", [("456",)], "second occurrence"),
    ("REGEXP_COUNT", "regexp_count('abab', 'ab')", [(2,)], ""),
    (
        "CONVERT_TIMEZONE",
        "convert_timezone('UTC', 'America/New_York', '2024-01-10 10:00'::timestamp_ntz)",
        [(TS(2024, 1, 10, 5),)],
        "",
    ),
    ("CURRENT_DATE", "current_date() = current_date", [(True,)], ""),
    # (TYPEOF takes only a VARIANT on Snowflake: the types are checked through what the values compare with)
    (
        "CURRENT_TIMESTAMP",
        "current_timestamp() > '2026-01-01 00:00:00+00:00'::timestamp_tz",
        [(True,)],
        "TIMESTAMP_LTZ: an instant",
    ),
    (
        "SYSDATE",
        "abs(datediff(minute, sysdate(), convert_timezone('UTC', current_timestamp())::timestamp_ntz)) <= 1",
        [(True,)],
        "TIMESTAMP_NTZ of the time in UTC",
    ),
    # TO_CHAR with a date/time format; with none, a DATE's text is YYYY-MM-DD (DATE_OUTPUT_FORMAT)
    ("TO_CHAR", "to_char(x, 'YYYY-MM') from (values ('2024-01-10'::date)) t(x)", [("2024-01",)], ""),
    (
        "TO_CHAR",
        "to_varchar(x, 'DY, DD MON YYYY HH24:MI:SS.FF3') from (values ('2024-01-10 10:11:12.345'::timestamp)) t(x)",
        [("Wed, 10 Jan 2024 10:11:12.345",)],
        "DY, MON abbreviations; FF3 milliseconds",
    ),
    ("TO_CHAR (no format)", "to_char('2024-01-10'::date)", [("2024-01-10",)], "DATE_OUTPUT_FORMAT"),
    # aggregates
    ("COUNT", "count(x) from (values (1), (null)) t(x)", [(1,)], "NULLs not counted"),
    ("SUM", "sum(x) from (values (1), (null), (2)) t(x)", [(3,)], ""),
    ("AVG", "avg(x) from (values (1), (null), (2)) t(x)", [(1.5,)], ""),
    ("MIN", "min(x) from (values (3), (null), (2)) t(x)", [(2,)], ""),
    ("MAX", "max(x) from (values (3), (null), (2)) t(x)", [(3,)], ""),
    ("MEDIAN", "median(x) from (values (1), (2), (3), (4)) t(x)", [(2.5,)], "mean of the two middle values"),
    ("MODE", "mode(x) from (values (1), (1), (2)) t(x)", [(1,)], ""),
    ("MODE", "mode(x) from (values (null), (null), ('b')) t(x)", [("b",)], "NULLs ignored"),
    ("ANY_VALUE", "any_value(x) from (values (5), (5)) t(x)", [(5,)], ""),
    ("ARRAY_AGG", "array_size(array_agg(x)) from (values (1), (null), (2)) t(x)", [(2,)], "NULLs left out"),
    ("LISTAGG", "listagg(x, ',') within group (order by x) from (values ('b'), ('a'), ('a')) t(x)", [("a,a,b",)], ""),
    (
        "LISTAGG",
        "listagg(distinct x, '|') within group (order by x desc) from (values ('b'), ('a'), ('a')) t(x)",
        [("b|a",)],
        "DISTINCT",
    ),
    # ARRAY_AGG leaves NULLs out and keeps WITHIN GROUP's order
    (
        "WITHIN GROUP",
        "array_agg(x) within group (order by y desc) from (values ('a', 1), ('b', 2), (null, 3)) t(x, y)",
        [('["b","a"]',)],  # an ARRAY is JSON on DuckDB (transpile/semistructured.py)
        "",
    ),
    # rank-related functions default to the whole partition as their frame (FIRST_VALUE/LAST_VALUE usage notes)
    (
        "LAST_VALUE",
        "last_value(x) over (order by y) from (values (1, 1), (2, 2)) t(x, y) order by y",
        [(2,), (2,)],
        "frame: the whole partition",
    ),
    (
        "FIRST_VALUE",
        "first_value(x) over (partition by 1 order by y desc) from (values (1, 1), (2, 2)) t(x, y) order by y",
        [(2,), (2,)],
        "",
    ),
    (
        "IGNORE NULLS",
        "first_value(x) ignore nulls over (order by y) from (values (null, 1), (2, 2)) t(x, y) order by y",
        [(2,), (2,)],
        "",
    ),
    (
        "IGNORE NULLS",
        "last_value(x) ignore nulls over (partition by p order by y rows between unbounded preceding and current row) "
        "from (values (1, 1, 'a'), (null, 2, 'a'), (3, 3, 'a'), (null, 4, 'a'), (null, 1, 'b')) t(x, y, p) "
        "order by p, y",
        [(1,), (1,), (3,), (3,), (None,)],
        "the last non-NULL value of the frame; NULL when it has none",
    ),
    ("ROW_NUMBER", "row_number() over (order by x desc) from (values (1), (2)) t(x) order by x", [(2,), (1,)], ""),
    ("RANK", "rank() over (order by x) from (values (1), (1), (2)) t(x) order by x", [(1,), (1,), (3,)], ""),
    ("OVER (window)", "sum(x) over (partition by y) from (values (1, 'a'), (2, 'a')) t(x, y)", [(3,), (3,)], ""),
    # NULLs sort high: last ascending, first descending (ORDER BY: NULL ordering)
    ("NULLS FIRST/LAST", "x from (values (1), (null), (2)) t(x) order by x desc", [(None,), (2,), (1,)], "DESC"),
    ("NULLS FIRST/LAST", "x from (values (1), (null), (2)) t(x) order by x nulls first", [(None,), (1,), (2,)], ""),
    ("QUALIFY", "x from (values (1), (2)) t(x) qualify row_number() over (order by x desc) = 1", [(2,)], ""),
]

SNOWFLAKE_COMPARISONS: list[tuple[str, list[tuple[object, ...]], str]] = [
    # Snowflake casts the string side to the other side's type (Data type conversion: implicit casting)
    ("x = '2024-01-10'::date from (values ('2024-01-10')) t(x)", [(True,)], "string cast to DATE"),
    ("x = '2024-01-10'::date from (values ('2024-01-10 10:00')) t(x)", [(True,)], "a timestamp string's time dropped"),
    ("x < current_date from (values ('2024-01-10')) t(x)", [(True,)], ""),
    ("x = '2024-01-10'::date from (values ('2024-01-10 10:00'::timestamp)) t(x)", [(False,)], "DATE promoted"),
    ("x >= '2024-01-10'::date from (values ('2024-01-10'::date)) t(x)", [(True,)], ""),
    ("left(x, 10) = '2024-01-10'::date from (values ('2024-01-10 10:00')) t(x)", [(True,)], "text cast to DATE"),
    ("x < to_timestamp_tz('2024-01-11') from (values ('2024-01-10 10:00')) t(x)", [(True,)], "string cast to TZ"),
    ("x > dateadd(day, -30, '2024-02-01'::date) from (values ('2024-01-10')) t(x)", [(True,)], ""),
]

OTHERS: list[tuple[str, str, str, list[tuple[object, ...]], str]] = [
    # (source dialect, construct, SQL, rows, the vendor's rule)
    ("databricks", "ANY_VALUE", "any_value(x) from (values (5), (5)) t(x)", [(5,)], ""),
    (
        "databricks",
        "COLLECT_LIST",
        "size(collect_list(x)) from (values (1), (null), (2)) t(x)",
        [(2,)],
        "NULLs left out",
    ),
    ("databricks", "CAST(… AS DATE)", "cast(x as date) from (values ('2024-01-10')) t(x)", [(D(2024, 1, 10),)], ""),
    ("databricks", "COUNT", "count(x) from (values (1), (null)) t(x)", [(1,)], ""),
    ("databricks", "MAX", "max(x) from (values (1), (2)) t(x)", [(2,)], ""),
    ("databricks", "MIN", "min(x) from (values (1), (2)) t(x)", [(1,)], ""),
    ("databricks", "CURRENT_DATE", "current_date() = current_date", [(True,)], ""),
    # Databricks SQL (Spark) as its function reference defines each; the corpus's Databricks project uses them
    ("databricks", "COALESCE", "coalesce(null, 2, 3)", [(2,)], "first non-NULL"),
    ("databricks", "CASE", "case when x > 1 then 'a' else 'b' end from (values (1), (2)) t(x)", [("b",), ("a",)], ""),
    ("databricks", "SUM", "sum(x) from (values (1), (null), (2)) t(x)", [(3,)], "NULLs skipped"),
    ("databricks", "DATE_ADD", "date_add(cast('2024-02-28' as date), 2)", [(D(2024, 3, 1),)], "returns a DATE"),
    ("databricks", "/ (division)", "7 / 2", [(3.5,)], "`/` of integers is a DOUBLE"),
    ("databricks", "UPPER", "upper('abc')", [("ABC",)], ""),
    ("databricks", "LOWER", "lower('AbC')", [("abc",)], ""),
    ("databricks", "TRIM", "trim('  x  ')", [("x",)], "spaces on both ends"),
    (
        "databricks",
        "OVER (window)",
        "sum(x) over (order by y) from (values (1, 1), (2, 2), (3, 2)) t(x, y) order by y, x",
        [(1,), (6,), (6,)],
        "ORDER BY alone frames RANGE UNBOUNDED PRECEDING to CURRENT ROW: peers included",
    ),
    (
        "databricks",
        "ROW_NUMBER",
        "row_number() over (order by x) from (values (3), (null), (1)) t(x) order by x nulls first",
        [(1,), (2,), (3,)],
        "ascending order puts NULLs first",
    ),
    ("databricks", "CONCAT_WS", "concat_ws('-', 'a', null, 'b')", [("a-b",)], "NULL arguments skipped"),
    ("databricks", "SUBSTRING", "substring('hello', 2, 3)", [("ell",)], "1-based"),
    ("databricks", "SUBSTRING", "substring('hello', 0, 2)", [("he",)], "position 0 is read as 1"),
    ("databricks", "SUBSTRING", "substring('hello', -3, 2)", [("ll",)], "negative counts from the end"),
    (
        "databricks",
        "DATEDIFF",
        "datediff(cast('2024-01-02 01:00:00' as timestamp), cast('2024-01-01 23:00:00' as timestamp))",
        [(1,)],
        "days between the dates of end and start",
    ),
    ("databricks", "DATE_FORMAT", "date_format(cast('2024-02-01' as date), 'MMdd')", [("0201",)], "Java pattern"),
    ("databricks", "% (modulo)", "-7 % 3", [(-1,)], "the dividend's sign"),
    ("databricks", "CAST(… AS STRING)", "cast(12 as string)", [("12",)], ""),
    (
        "databricks",
        "NTILE",
        "ntile(2) over (order by x) from (values (1), (2), (3)) t(x) order by x",
        [(1,), (1,), (2,)],
        "",
    ),
    ("databricks", "ADD_MONTHS", "add_months(cast('2024-01-31' as date), 1)", [(D(2024, 2, 29),)], "month's end"),
    ("databricks", "CAST(… AS DECIMAL(16, 1))", "cast(1.25 as decimal(16, 1))", [(Decimal("1.3"),)], "HALF_UP"),
    (
        "databricks",
        "CAST(… AS FLOAT)",
        "cast(cast(0.1 as float) as double)",
        [(0.10000000149011612,)],
        "FLOAT is 4 bytes (its exact value, widened)",
    ),
    ("databricks", "GREATEST", "greatest(1, null, 3)", [(3,)], "NULLs skipped"),
    (
        "databricks",
        "NTILE",
        "ntile(2) over (order by x desc) from (values (1), (null), (2)) t(x) order by x nulls first",
        [(2,), (1,), (1,)],
        "descending order puts NULLs last",
    ),
    ("databricks", "DATEDIFF", "datediff(DAY, cast('2024-01-30' as date), current_date) > 0", [(True,)], "3 arguments"),
    ("databricks", "DATEDIFF", "datediff(cast('2024-03-01' as date), cast('2024-02-01' as date))", [(29,)], ""),
    # DATEDIFF with a unit is TIMESTAMPDIFF (Databricks docs, datediff (timestamp)): whole units elapsed, by UTC
    (
        "databricks",
        "TIMESTAMPDIFF",
        "datediff(DAY, cast('2024-01-01 23:00' as timestamp), cast('2024-01-02 01:00' as timestamp))",
        [(0,)],
        "2 hours: no whole day (the two-argument form counts dates: 1)",
    ),
    (
        "databricks",
        "TIMESTAMPDIFF",
        "timestampdiff(HOUR, cast('2024-01-01 10:59' as timestamp), cast('2024-01-01 11:01' as timestamp))",
        [(0,)],
        "2 minutes across an hour's boundary",
    ),
    (
        "databricks",
        "TIMESTAMPDIFF",
        "date_diff(HOUR, cast('2024-01-01 12:00' as timestamp), cast('2024-01-01 10:30' as timestamp))",
        [(-1,)],
        "start after end: negative, whole hours only",
    ),
    (
        "databricks",
        "TIMESTAMPDIFF",
        "datediff(MINUTE, cast('2024-01-01' as date), cast('2024-01-01 01:01:59' as timestamp))",
        [(61,)],
        "a DATE is its midnight",
    ),
    (
        "databricks",
        "TIMESTAMPDIFF",
        "datediff(MONTH, cast('2021-02-28 12:00:00' as timestamp), cast('2021-03-28 11:59:59' as timestamp)), "
        "datediff(MONTH, cast('2021-02-28 12:00:00' as timestamp), cast('2021-03-28 12:00:00' as timestamp))",
        [(0, 1)],
        "the docs' examples: a month elapses when day and time reach the start's",
    ),
    (
        "databricks",
        "TIMESTAMPDIFF",
        "datediff(YEAR, DATE'2021-01-01', DATE'1900-03-28')",
        [(-120,)],
        "the docs' example",
    ),
    (
        "databricks",
        "TIMESTAMPDIFF",
        "datediff(QUARTER, DATE'2021-01-31', DATE'2021-04-30'), datediff(WEEK, DATE'2024-01-01', DATE'2024-01-14')",
        [(0, 1)],
        "2 months and 30 days: no quarter; 13 days: one week",
    ),
    ("databricks", "ADD_MONTHS", "add_months(cast('2024-03-31' as date), -1)", [(D(2024, 2, 29),)], "backwards"),
    (
        "databricks",
        "DATE_FORMAT",
        "date_format(cast('2024-02-01 13:04:05' as timestamp), 'yyyy-MM-dd HH:mm:ss')",
        [("2024-02-01 13:04:05",)],
        "",
    ),
    ("databricks", "DATE_FORMAT", "date_format(cast('2024-02-01' as date), 'd/M/yy')", [("1/2/24",)], "unpadded"),
    (
        "databricks",
        "CONCAT_WS",
        "concat_ws('|', collect_list(x)) from (values ('a'), (null), ('a')) t(x)",
        [("a|a",)],
        "an array's elements joined, NULLs skipped",
    ),
    (
        "databricks",
        "COLLECT_LIST",
        "concat_ws('|', collect_list(x)) from (values (cast(null as string))) t(x)",
        [("",)],
        "no value: an empty array",
    ),
    ("databricks", "CONCAT_WS", "concat_ws('-', x, 2, 'b') from (values (1)) t(x)", [("1-2-b",)], "numbers as text"),
    (
        "databricks",
        "COLLECT_LIST",
        "concat_ws('|', coalesce(collect_list(x), array('z'))) from (values (cast(null as string))) t(x)",
        [("",)],
        "an empty array is not NULL",
    ),
    (
        "databricks",
        "COLLECT_LIST",
        "concat_ws('|', collect_list(x) over (order by y rows between 1 following and 1 following)) "
        "from (values ('a', 1), ('b', 2)) t(x, y) order by y",
        [("b",), ("",)],
        "an empty window frame: an empty array",
    ),
    (
        "databricks",
        "CAST",
        "date_format('2024-01-10 10:04:05', 'HH:mm'), cast('2024-01-10 10:00' as timestamp)",
        [("10:04", TS(2024, 1, 10, 10, tzinfo=UTC))],
        "a string read as a TIMESTAMP, which is with local time zone (the session's, UTC here)",
    ),
    ("databricks", "SUBSTRING", "substring(x, 1, 8) from (values ('abcdefghij')) t(x)", [("abcdefgh",)], ""),
    ("databricks", "SUBSTRING", "substring('hello', -10, 7)", [("he",)], "before the start: cut"),
    ("databricks", "ANY_VALUE", "any_value(x) from (values (null), (null)) t(x)", [(None,)], "all NULL"),
    ("databricks", "ANY_VALUE", "any_value(x) from (values (null), (5)) t(x)", [(5,)], "a value; non-NULL first"),
    (
        "databricks",
        "FIRST_VALUE",
        "first_value(x) over (order by y rows between unbounded preceding and unbounded following) "
        "from (values (null, 1), (2, 2)) t(x, y) order by y",
        [(None,), (None,)],
        "NULLs kept unless ignoreNulls",
    ),
    ("bigquery", "CAST(… AS DATE)", "cast(x as date) from (select '2024-01-10' as x) t", [(D(2024, 1, 10),)], ""),
    ("bigquery", "COUNT", "count(x) from (select 1 as x union all select null) t", [(1,)], ""),
    ("bigquery", "MAX", "max(x) from (select 1 as x union all select 2) t", [(2,)], ""),
    ("bigquery", "MIN", "min(x) from (select 1 as x union all select 2) t", [(1,)], ""),
    # BigQuery: the default frame with ORDER BY ends at the current row (RANGE ... CURRENT ROW)
    (
        "bigquery",
        "FIRST_VALUE",
        BIGQUERY_IGNORE_NULLS,
        [(None,), (2,)],
        "frame up to the current row",
    ),
    (
        "redshift",
        "CAST(… AS TIMESTAMP)",
        "cast(x as timestamp) from (select '2024-01-10 10:00' as x) t",
        [(TS(2024, 1, 10, 10),)],
        "",
    ),
    (
        "bigquery",
        "FIRST_VALUE",
        "first_value(y) over (order by y) from (select null as y union all select 1) t order by y",
        [(None,), (None,)],
        "ascending order puts NULLs first",
    ),
    (
        "bigquery",
        "FIRST_VALUE",
        "first_value(y) over (order by y desc) from (select null as y union all select 1) t order by y",
        [(1,), (1,)],
        "descending order puts NULLs last",
    ),
    (
        "redshift",
        "FIRST_VALUE",
        "first_value(y) over (order by y rows between unbounded preceding and unbounded following) "
        "from (select null as y union all select 1) t order by y",
        [(1,), (1,)],
        "ascending order puts NULLs last",
    ),
    ("redshift", "MAX", "max(x) from (select 1 as x union all select 2) t", [(2,)], ""),
    ("redshift", "MIN", "min(x) from (select 1 as x union all select 2) t", [(1,)], ""),
    (
        "redshift",
        "FIRST_VALUE",
        "first_value(x) over (order by y rows between unbounded preceding and unbounded following) "
        "from (select 1 as x, 1 as y union all select 2, 2) t order by y",
        [(1,), (1,)],
        "Redshift requires a frame with ORDER BY",
    ),
]


def run(sql: str, source: str) -> list[tuple[object, ...]]:
    tree = translate(sqlglot.parse_one(f"SELECT {sql}", read=parse_reader(source)), source, "duckdb")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(tree.sql(dialect=DUCKDB)).fetchall()


@pytest.mark.parametrize(
    ("construct", "sql", "rows", "rule"), SNOWFLAKE, ids=[f"{c[0]}:{c[1][:40]}" for c in SNOWFLAKE]
)
def test_snowflake_on_duckdb(construct: str, sql: str, rows: list[tuple[object, ...]], rule: str) -> None:
    assert run(sql, "snowflake") == rows, rule


@pytest.mark.parametrize(("sql", "rows", "rule"), SNOWFLAKE_COMPARISONS)
def test_snowflake_string_against_datetime(sql: str, rows: list[tuple[object, ...]], rule: str) -> None:
    assert run(sql, "snowflake") == rows, rule


@pytest.mark.parametrize(("source", "construct", "sql", "rows", "rule"), OTHERS, ids=[f"{c[0]}:{c[1]}" for c in OTHERS])
def test_other_dialects_on_duckdb(
    source: str, construct: str, sql: str, rows: list[tuple[object, ...]], rule: str
) -> None:
    assert run(sql, source) == rows, rule


# Snowflake SQL Postgres cannot keep the meaning of, refused instead (each also a case of SNOWFLAKE above)
POSTGRES_REFUSED = {
    "datediff(week, '2024-01-06'::date, '2024-01-08'::date)": "DATEDIFF",  # whole 7-day spans there
    "to_timestamp(x, 'YYYY-MM-DD\"T\"HH24:MI:SS') from (values ('2024-01-10T10:00:00')) t(x)": "TO_TIMESTAMP",
    "to_varchar(x, 'DY, DD MON YYYY HH24:MI:SS.FF3') from (values ('2024-01-10 10:11:12.345'::timestamp)) t(x)": (
        "TO_CHAR"  # DY and MON come out upper case from Postgres' to_char
    ),
}


@pytest.fixture(scope="module")
def postgres_cursor() -> Iterator[Any]:
    from profiles_dagster_tests.standins.postgres import postgres_server

    with postgres_server() as server:
        con = server.connect()
        con.autocommit = True
        cursor = con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")  # SHA1, as the Postgres warehouse does
        yield cursor
        con.close()


def _numbers_as_floats(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Postgres' NUMERIC comes back as Decimal: compared by value with the documented number."""
    return [tuple(float(v) if isinstance(v, Decimal) else v for v in row) for row in rows]


POSTGRES_CASES = [("snowflake", *c) for c in SNOWFLAKE if c[0] in CHECKED[("snowflake", "postgres")]] + [
    c for c in OTHERS if c[1] in CHECKED.get((c[0], "postgres"), ())
]


def _on_postgres(cursor: Any, source: str, sql: str, rows: list[tuple[Any, ...]], rule: str) -> None:
    tree = sqlglot.parse_one(f"SELECT {sql}", read=parse_reader(source))
    if sql in POSTGRES_REFUSED:
        with pytest.raises(UnfaithfulError) as err:
            translate(tree, source, "postgres")
        assert err.value.construct == POSTGRES_REFUSED[sql]
        return
    cursor.execute(translate(tree, source, "postgres").sql(dialect=POSTGRES))
    got = [tuple(r) for r in cursor.fetchall()]
    assert _numbers_as_floats(got) == _numbers_as_floats(rows), rule


@pytest.mark.parametrize(
    ("source", "construct", "sql", "rows", "rule"),
    POSTGRES_CASES,
    ids=[f"{c[0]}:{c[1]}:{c[2][:40]}" for c in POSTGRES_CASES],
)
def test_on_postgres(postgres_cursor: Any, source: str, construct: str, sql: str, rows: list[tuple], rule: str) -> None:
    """The constructs claimed for Postgres (every source dialect), run there with the cases DuckDB runs: the
    documented value, or a refusal listed above."""
    _on_postgres(postgres_cursor, source, sql, rows, rule)


@pytest.mark.parametrize(
    ("source", "sql", "construct"),
    [
        ("snowflake", "uniform(0, x, random()) from t", "UNIFORM"),  # an integer or a float: x's type decides
        ("snowflake", "uniform(1, 10, 42)", "UNIFORM"),  # a constant generator maps to the range Snowflake's way
        ("snowflake", "date_part(week, '2024-01-07'::date)", "DATE_PART"),  # WEEK_OF_YEAR_POLICY
        ("snowflake", "mode(x) over (partition by y) from t", "MODE"),  # Postgres' mode() is no window function
        ("snowflake", "to_boolean(x) from t", "TO_BOOLEAN"),  # text or a number: not known
        ("snowflake", "round(x, 1, 'HALF_TO_EVEN') from t", "ROUND"),
        ("databricks", "date_format(x, 'MMM') from t", "DATE_FORMAT"),  # a month name: the server's locale
        ("databricks", "date_format(x, f) from t", "DATE_FORMAT"),
        ("databricks", "concat_ws(',', 'a', collect_list(x)) from t", "CONCAT_WS"),
        ("databricks", "cast(cast(x as double) as string) from t", "CAST"),  # Spark writes doubles its own way
        ("databricks", "lag(x) ignore nulls over (order by y) from t", "IGNORE NULLS"),
        ("databricks", "cast(x as double) % 10 from t", "% (modulo)"),  # IEEE remainder: no Postgres form
        ("snowflake", "mod(x::float, 10) from t", "% (modulo)"),  # only FIRST/LAST_VALUE's
    ],
)
def test_refused_on_postgres(source: str, sql: str, construct: str) -> None:
    with pytest.raises(UnfaithfulError) as err:
        translate(sqlglot.parse_one(f"SELECT {sql}", read=parse_reader(source)), source, "postgres")
    assert err.value.construct == construct


@pytest.mark.parametrize(
    ("source", "select", "rows"),
    [
        # Snowflake: FIRST_VALUE(x IGNORE NULLS) over pb's window (timestamp desc): the latest non-NULL value
        ("snowflake", "first_value(x ignore nulls)", [("a", "c"), ("b", None)]),
        ("snowflake", "first_value(x) ignore nulls", [("a", "c"), ("b", None)]),
        ("databricks", "any_value(x)", [("a", "c"), ("b", None)]),  # a non-NULL value of the partition
    ],
)
def test_window_var_of_a_rewritten_function_on_postgres(
    postgres_cursor: Any, source: str, select: str, rows: list[tuple[Any, ...]]
) -> None:
    """A var's select gets pb's `window:` after translation (compiler._windowed): a rewrite into an aggregate
    marks where the window goes, as the compiler reads it; MAX over each id's rows picks the var's value."""
    from profiles_dagster.sql.compiler import _windowed

    value = translate(sqlglot.parse_one(select, read=parse_reader(source)), source, "postgres")
    ctx = type("Ctx", (), {"source_dialect": source, "rendered": lambda self, text, where: text})()
    ctx.translated = lambda tree, where: translate(tree, source, "postgres")  # type: ignore[attr-defined]
    window = type("W", (), {"order_by": ["t desc"], "frame_clause": None})()
    over = _windowed(value, [exp.column("id")], window, ctx, where=None)  # type: ignore[arg-type]
    sql = (
        f"SELECT id, MAX(v) FROM (SELECT id, {over.sql(dialect=POSTGRES)} AS v FROM (VALUES "
        "('a', 1, NULL), ('a', 2, 'c'), ('a', 3, NULL), ('b', 1, NULL)) AS t(id, t, x)) AS w GROUP BY id ORDER BY id"
    )
    postgres_cursor.execute(sql)
    got = [tuple(r) for r in postgres_cursor.fetchall()]
    assert got == rows


def test_issue_example_right_of_random_is_one_digit() -> None:
    """`right(random(), 1)` (issue 18): no right(BIGINT, INTEGER) on DuckDB; Snowflake reads the number's text."""
    digits = {row[0] for row in run("right(random(), 1) from range(200)", "snowflake")}
    assert digits == set("0123456789")  # odd digits too: all 64 bits are random


def test_to_char_keeps_what_it_cannot_know_the_type_of_as_a_date_format() -> None:
    assert strftime_format('YYYY-MM-DD"T"HH24:MI') == "%Y-%m-%dT%H:%M"
    assert strftime_format('"100%" YYYY') == "100%% %Y"


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("to_char(x, '999.99') from t", "TO_CHAR"),  # a number format: DuckDB has no TO_CHAR for numbers
        ("to_char(x, 'YYYY-WW') from t", "TO_CHAR"),  # WW (week of year) has no strftime element of that text
        ("to_char(x, fmt) from t", "TO_CHAR"),  # a format known only at run time
        ("to_timestamp(31536000000000)", "TO_TIMESTAMP"),  # Snowflake reads this size as microseconds
        ("random(42)", "RANDOM"),  # a seeded sequence is Snowflake's own
    ],
)
def test_refused(sql: str, construct: str) -> None:
    with pytest.raises(UnfaithfulError) as err:
        translate(sqlglot.parse_one(f"SELECT {sql}", read="snowflake"), "snowflake", "duckdb")
    assert err.value.construct == construct


def test_every_checked_construct_has_a_case() -> None:
    """`CHECKED` is what the census reports as "same": each name has a case above whose SQL contains it."""
    cases: dict[tuple[str, str], list[str]] = {}
    for construct, sql, _, _ in SNOWFLAKE:
        cases.setdefault(("snowflake", construct), []).append(sql)
    for source, construct, sql, _, _ in OTHERS:
        cases.setdefault((source, construct), []).append(sql)
    for (source, target), names in CHECKED.items():
        assert target in ("duckdb", "postgres")
        for name in names:
            assert (source, name) in cases, f"{source} {name} is claimed but has no case"
            found = {
                label
                for sql in cases[(source, name)]
                for label, _ in sql_census.constructs(
                    sqlglot.parse_one(f"SELECT {sql}", read=parse_reader(source)), source
                )
            }
            assert name in found, f"the census does not name {name} in its cases: {sorted(found)}"


# ---- the census -------------------------------------------------------------------------------------------

PROJECT = """\
name: {name}
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
"""

INPUTS = """\
inputs:
  - name: events
    app_defaults:
      table: raw.events
      occurred_at_col: ts
      ids:
        - select: user_id
          type: user_id
          entity: user
"""

VARS = """\
var_groups:
  - name: g
    entity_key: user
    vars:
{vars}
"""


def _project(root: Path, name: str, selects: list[tuple[str, str | None]]) -> None:
    folder = root / name
    (folder / "models").mkdir(parents=True)
    (folder / "pb_project.yaml").write_text(PROJECT.format(name=name))
    (folder / "models" / "inputs.yaml").write_text(INPUTS)
    lines = []
    for n, (select, where) in enumerate(selects):
        lines += [
            "      - entity_var:",
            f"          name: v{n}",
            "          from: inputs/events",
            f'          select: "{select}"',
        ]
        if where:
            lines.append(f'          where: "{where}"')
    (folder / "models" / "profiles.yaml").write_text(VARS.format(vars="\n".join(lines)))


def test_census_counts_constructs_per_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    diff = "max(datediff(day, ts, current_date()))"
    _project(tmp_path, "one", [(diff, None), ("count(*)", "iff(a > 1, true, false)")])
    _project(tmp_path, "two", [(diff, "to_char(ts, '999') = '1'"), ("any_value(a)", None)])
    monkeypatch.setitem(sql_census.DIALECTS, "one", "snowflake")
    monkeypatch.setitem(sql_census.DIALECTS, "two", "snowflake")
    result = sql_census.census(tmp_path, ["one", "two"])
    assert not result.failed
    rows = {(r[0], r[1]): r[2:] for r in result.rows()}
    assert rows[("DATEDIFF", "snowflake")] == [2, 2, "same", "same"]
    assert rows[("CURRENT_DATE", "snowflake")] == [2, 2, "same", "same"]
    assert rows[("MAX", "snowflake")] == [2, 2, "same", "same"]
    assert rows[("COUNT", "snowflake")] == [1, 1, "same", "same"]
    assert rows[("IFF", "snowflake")] == [1, 1, "same", "same"]
    assert rows[("TO_CHAR", "snowflake")] == [1, 1, "refused", "refused"]
    assert rows[("ANY_VALUE", "snowflake")] == [1, 1, "same", "same"]  # Postgres 15's form: ARRAY_AGG(x)[1]
    table = sql_census.render_table(result.rows(), markdown=True)
    assert table.splitlines()[0] == "| construct | dialect | count | projects | duckdb | postgres |"
    assert "| DATEDIFF | snowflake | 2 | 2 | same | same |" in table


def test_census_labels() -> None:
    def names(sql: str, dialect: str = "snowflake") -> list[str]:
        return [label for label, _ in sql_census.constructs(sqlglot.parse_one(sql, read=dialect), dialect)]

    assert names("a::date") == ["CAST(… AS DATE)"]
    assert names("x / y") == ["/ (division)"]
    assert names("iff(a, 1, 2)") == ["IFF"]
    assert names("case when a then 1 end") == ["CASE"]
    assert "QUALIFY" in names("select a from t qualify row_number() over (order by a) = 1")
    assert isinstance(sqlglot.parse_one("a", read="snowflake"), exp.Column)
