"""`cleanup` on every engine's stand-in: after two runs of the example, keeping one drops exactly the first
run's materials but one a user's own view reads, and every view still reads what it read before.

The expected names come from the engine's own listing before the cleanup (what exists), not from the
registry the cleanup reads; engines that fold names (Snowflake lists them upper-case) are compared
case-blind, as the engine itself resolves them.
"""

from __future__ import annotations

import re

from sqlglot import exp

from profiles_dagster.loading import load
from profiles_dagster.maintenance import cleanup
from profiles_dagster.runner import parse_time, run_all
from profiles_dagster.sql import registry
from profiles_dagster_tests.conftest import END_TIME
from profiles_dagster_tests.standins import Engine
from profiles_dagster_tests.standins.example import load_example_inputs, project_copy

SCHEMA = "retention"
VIEWS = ("user_id_stitcher", "user_all", "user_feature_view", "user_features_by_email", "user_high_value")


def _materials(session, seq_no: int) -> set[str]:
    pattern = re.compile(rf"^material_.+_{seq_no}$")
    return {name.lower() for name in session.list_tables(SCHEMA) if pattern.match(name.lower())}


def _view_counts(session) -> dict[str, int]:
    return {view: int(session.query(f"SELECT COUNT(*) FROM {SCHEMA}.{view}")[0][0]) for view in VIEWS}


def test_cleanup_keeps_the_last_run_and_what_the_views_read(engine: Engine, tmp_path) -> None:
    project_dir, site = project_copy(tmp_path, engine.target, schema=SCHEMA)
    loaded = load(project_dir, site_config=site)
    warehouse = engine.adapt(loaded.warehouse) if engine.adapt else loaded.warehouse
    with warehouse.session() as session:
        load_example_inputs(session, reuse=True)
    for _ in range(2):
        run_all(loaded.project, loaded.plan, warehouse, end_time=parse_time(END_TIME))
    with warehouse.session() as session:
        first, second = _materials(session, 1), _materials(session, 2)
        views_before = _view_counts(session)
        assert len(first) >= len(loaded.plan.steps) - 1 and len(second) == len(first)
        assert all(count > 0 for count in views_before.values())
        # a user's own view over one of run 1's materials keeps it (where the engine reports view SQL)
        (read,) = [n for n in session.list_tables(SCHEMA) if re.match(r"^material_user_var_table_.+_1$", n.lower())]
        report_view = exp.table_("my_report", db=SCHEMA, quoted=True)
        over = exp.select("*").from_(exp.table_(read, db=SCHEMA, quoted=True))
        session.run(exp.Create(kind="VIEW", this=report_view, expression=over))
        rows_read = session.row_count(report_view)

        report = cleanup(session, loaded.project, loaded.plan, keep=1)

        assert report.errors == []
        assert {name.lower() for name in report.dropped} == first - {read.lower()}
        assert _materials(session, 1) == {read.lower()}
        assert session.row_count(report_view) == rows_read > 0
        assert _materials(session, 2) == second
        assert _view_counts(session) == views_before
        rows = session.query(
            session.render(registry.select(SCHEMA, registry.MATERIALS, columns=("table_name", "seq_no", "status")))
        )
        assert {str(n).lower() for n, seq, status in rows if status == "dropped"} == first - {read.lower()}
        assert all(status != "dropped" for _, seq, status in rows if int(seq) == 2)
        again = cleanup(session, loaded.project, loaded.plan, keep=1)
        assert again.dropped == [] and again.errors == []
