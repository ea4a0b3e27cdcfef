"""The stitcher's per-engine hooks: every scratch table gets planner statistics (Postgres plans joins
on a fresh CREATE TABLE AS blind, and a hash aggregate sized for 200 groups spilled for minutes
here), and the whole run happens with the session's larger work memory, restored afterwards.
"""

from __future__ import annotations

import contextlib
import re

import duckdb
from sqlglot import exp

from profiles_dagster.sql.stitcher import run_stitcher
from profiles_dagster.warehouse.postgres import PostgresSession
from profiles_dagster_tests.sql.test_stitcher import (
    RecordingSession,
    expected_output,
    load_observations,
    observations_query,
    random_rows,
)
from profiles_dagster_tests.standins.postgres import postgres_server


def test_scratch_tables_analyzed_inside_large_work(tmp_path) -> None:
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    rows = random_rows(5, n_rows=400, n_ids=300, max_ids=4)
    load_observations(con, rows)
    session = RecordingSession(connection=con)
    run_stitcher(
        session,
        observations=observations_query(),
        target=exp.table_("stitched", quoted=True),
        main_id_column="user_main_id",
        scratch_prefix="scr",
    )
    got = sorted(con.execute('SELECT * FROM "stitched"').fetchall(), key=lambda r: tuple(map(str, r)))
    assert got == expected_output(rows)
    events = session.events
    assert events[0] == "large_work on" and events[-1] == "large_work off"
    created = 0
    for index, event in enumerate(events):
        made = re.match(r'CREATE TEMPORARY TABLE "(scr_\w+)"', event)
        if made:  # each scratch table is analyzed right after it is built
            created += 1
            assert events[index + 1] == f"analyze {made.group(1)}"
    assert created > 10


def test_postgres_work_mem_raised_for_the_run_then_restored() -> None:
    with postgres_server() as server, contextlib.closing(server.connect()) as connection:
        session = PostgresSession(connection, "public")

        def work_mem() -> str:
            return str(session.query("SHOW work_mem")[0][0])

        before = work_mem()
        with session.large_work():
            assert work_mem() == "256MB"
        assert work_mem() == before
        session.execute("SET work_mem = '1GB'")
        with session.large_work():  # never lowered
            assert work_mem() == "1GB"
        assert work_mem() == "1GB"
        session.analyze(exp.table_("pg_class", db="pg_catalog"))  # renders and runs
