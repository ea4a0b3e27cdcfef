"""What the Postgres session does for a run's speed without changing a result.

Main ids carry the "C" collation (`ByteOrderedText`): in a database whose default collation is a locale's (here
C.UTF-8, as Debian's and most managed servers' initdb choose), every sort and GROUP BY on the main id would
otherwise compare by strcoll without abbreviated keys. The values, their order and the stitcher's answer stay
what they were. The stitcher's scratch tables may be computed by parallel workers."""

from __future__ import annotations

import contextlib
import datetime as dt

from sqlglot import exp

from profiles_dagster.sql.stitcher import main_id_expression, run_stitcher
from profiles_dagster.warehouse.postgres import LARGE_WORK_PARALLEL_TUPLE_COST, PostgresSession
from profiles_dagster_tests.sql.test_stitcher import py_main_id
from profiles_dagster_tests.standins.postgres import postgres_server

_T0 = dt.datetime(2025, 1, 1)


def test_main_ids_are_byte_ordered_and_the_stitcher_table_keeps_the_collation() -> None:
    with postgres_server() as server:
        with contextlib.closing(server.connect()) as admin:
            admin.autocommit = True
            admin.execute(
                "CREATE DATABASE localed TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
            )
        with contextlib.closing(server.connect("localed")) as connection:
            connection.autocommit = True
            session = PostgresSession(connection, "public")
            session.ensure_sha1()
            session.prepare()
            session.execute("CREATE TABLE obs (occurred_at timestamp, t1 text, i1 text, t2 text, i2 text)")
            rows = [(_T0 + dt.timedelta(hours=n), "email", f"e{n}", "user_id", f"U{n // 2}") for n in range(40)]
            with connection.cursor() as cursor:
                cursor.executemany("INSERT INTO obs VALUES (%s, %s, %s, %s, %s)", rows)
            slots = [
                exp.alias_(exp.column(column), alias)
                for column, alias in (
                    ("t1", "other_id_type_1"),
                    ("i1", "other_id_1"),
                    ("t2", "other_id_type_2"),
                    ("i2", "other_id_2"),
                )
            ]
            target = exp.table_("stitched", db="public")
            run_stitcher(
                session,
                observations=exp.select(exp.column("occurred_at"), *slots).from_("obs"),
                target=target,
                main_id_column="user_main_id",
                scratch_prefix="scr",
            )
            (collation,) = session.query(
                "SELECT attcollation::regcollation::text FROM pg_attribute "
                "WHERE attrelid = 'public.stitched'::regclass AND attname = 'user_main_id'"
            )[0]
            assert collation == '"C"'
            got = dict(session.query("SELECT other_id, user_main_id FROM stitched"))
            # each pair of rows shares a user id, first seen with the pair's first email: the main id is the
            # smaller of those two ids' own (a MIN over "C"-collated text)
            main = {k: min(py_main_id(f"e{2 * k}", "email"), py_main_id(f"U{k}", "user_id")) for k in range(20)}
            assert got == {**{f"e{n}": main[n // 2] for n in range(40)}, **{f"U{k}": main[k] for k in range(20)}}
            # the database's own collation orders main ids as their bytes, as "C" does
            ids = [f"v{n}-ü" for n in range(300)]
            rendered = session.render(
                exp.select(exp.alias_(main_id_expression(exp.column("v"), exp.Literal.string("email")), "m"))
            )
            values = ", ".join(f"('{v}')" for v in ids)
            collated = session.query(f"SELECT m FROM ({rendered} FROM (VALUES {values}) AS x(v)) AS s ORDER BY m")
            by_locale = session.query(
                f'SELECT m FROM ({rendered} FROM (VALUES {values}) AS x(v)) AS s ORDER BY m COLLATE "default"'
            )
            assert [r[0] for r in collated] == [r[0] for r in by_locale] == sorted(py_main_id(v, "email") for v in ids)


def test_only_the_stitchers_scratch_tables_get_the_lower_parallel_tuple_cost() -> None:
    """Inside `large_work` a CREATE UNLOGGED TABLE (a scratch table, whose row order is no result) is planned
    with LARGE_WORK_PARALLEL_TUPLE_COST; the stitcher table and everything else with the session's own cost,
    which is never raised and is back after `large_work`."""
    with postgres_server() as server, contextlib.closing(server.connect()) as connection:
        connection.autocommit = True
        session = PostgresSession(connection, "public")

        def planned_with(kind: str, name: str) -> float:
            session.execute(f"CREATE {kind} TABLE {name} AS SELECT current_setting('parallel_tuple_cost') AS c")
            return float(session.query(f"SELECT c FROM {name}")[0][0])

        with session.large_work():
            assert planned_with("UNLOGGED", "scratch") == LARGE_WORK_PARALLEL_TUPLE_COST
            assert planned_with("", "target") == 0.1
        assert planned_with("UNLOGGED", "after") == 0.1
        session.execute("SET parallel_tuple_cost = 0.001")
        with session.large_work():  # never raised
            assert planned_with("UNLOGGED", "cheap") == 0.001


def test_literal_regexps_are_written_as_like_with_the_same_answers() -> None:
    """Anchored patterns of literal alternatives with `.*` (pb's id filters) become `IN`/`LIKE` on Postgres, and
    answer as Postgres' own `~` does for every subject: NULL, '', case, newlines, LIKE's wildcards in the data;
    other patterns stay regular expressions."""
    from profiles_dagster.sql.dialects import POSTGRES

    rewritten = [
        "^(?:(undefined|null|unknown|test.*))$",
        "^(?:0)$",
        "^(?:a|)$",
        "^(?:.*x\\.y)$",
        "^(?:a_b|c%)$",
        "^(?:.*)$",
        "^(?:ab.*cd.*)$",
        "^(a|b)$",
    ]
    kept = ["^(?:[a-z]+@x)$", "^(?:a_b.*)$", "^(?:(a)|(b))$", "test.*", "^(?:a\\\\.*)$", "^(?:a+)$"]
    subjects = [None, "", "0", "00", "a", "A", "b", "null", "NULL", "undefined", "unknownx", "test", "testing",
                "Test1", "test\nx", "x\ntest", "a_b", "axb", "c%", "cd", "x.y", "axy", "zx.y", "ab\ncd", "abcd!",
                "a\\b", "it's"]  # fmt: skip
    with postgres_server() as server, contextlib.closing(server.connect()) as connection:
        connection.autocommit = True
        session = PostgresSession(connection, "public")
        for pattern in [*rewritten, *kept]:
            subject = exp.cast(exp.column("v"), "varchar")
            test = exp.RegexpLike(this=subject, expression=exp.Literal.string(pattern))
            sql = test.sql(POSTGRES)
            assert ("~" not in sql) == (pattern in rewritten), sql
            values = exp.values([exp.tuple_(exp.Literal.string(s) if s is not None else exp.null()) for s in subjects])
            native = f"v ~ {exp.Literal.string(pattern).sql(POSTGRES)}"
            query = f"SELECT v, {sql}, {native} FROM ({values.sql(POSTGRES)}) AS x(v)"
            for value, ours, regex in session.query(query):
                assert ours is regex, (pattern, value, sql)
