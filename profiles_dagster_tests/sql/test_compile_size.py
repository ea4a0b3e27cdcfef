"""Compile cost stays linear in the project: a var's SQL refers to the vars it reads, never copies their query.

Each entity var here has `from:` and reads the var before it, the shape that once doubled the SQL per var.
"""

from __future__ import annotations

from pathlib import Path

from sqlglot import exp

from profiles_dagster.offline import offline_context
from profiles_dagster.plan.planner import build_plan
from profiles_dagster.project.loader import load_project
from profiles_dagster.sql import lineage
from profiles_dagster.sql.compiler import StepProgram, compile_step
from profiles_dagster_tests.projects import INPUTS, write_project


def chained_vars(root: Path, count: int) -> Path:
    """`count` entity vars of input tracks: v000 = count(*), each next one `count(*) + <the one before>`."""
    lines = ["var_groups:", "  - name: chain", "    entity_key: user", "    vars:"]
    for n in range(count):
        reads = f" + {{{{ user.Var('v{n - 1:03d}') }}}}" if n else ""
        lines += [
            "      - entity_var:",
            f"          name: v{n:03d}",
            f'          select: "count(*){reads}"',
            "          from: inputs/tracks",
        ]
    return write_project(root, models={"inputs.yaml": INPUTS, "vars.yaml": "\n".join(lines) + "\n"})


def _var_table_sql(root: Path) -> tuple[str, StepProgram]:
    project = load_project(root)
    plan = build_plan(project)
    (step,) = [s for s in plan.steps if s.path == "user/entity_vars"]
    program = compile_step(step, offline_context(project, plan, "duckdb"))
    return program.sql("duckdb"), program


def test_chained_sourced_vars_compile_to_sql_linear_in_their_number(tmp_path: Path) -> None:
    def size(n: int) -> int:
        return len(_var_table_sql(chained_vars(tmp_path / str(n), n))[0])

    # each var adds the same few hundred bytes; copying the query so far once per var would double the
    # bytes per var at each step below (quadratic), twice (as the compiler once did) square them.
    # Small counts first, so a regression fails in a second instead of compiling for hours.
    before, first = size(2), 0.0
    for low, high in ((2, 4), (4, 8), (8, 16), (16, 50)):
        after = size(high)
        per_var = (after - before) / (high - low)
        first = first or per_var
        assert per_var < 1.2 * first, f"{low}->{high} vars: {per_var:.0f} bytes per var, {first:.0f} at first"
        before = after
    assert before < 50 * 1_500


def test_lineage_of_a_long_chain_needs_no_deep_recursion(tmp_path: Path) -> None:
    _, program = _var_table_sql(chained_vars(tmp_path, 400))
    query = lineage.program_query(program)
    assert query is not None
    columns, _ = lineage.output_columns(query)
    mapped = lineage.table_key(next(t for t in query.find_all(exp.Table) if "mapped" in t.name))
    found = lineage.step_lineage(program.step.kind, query, columns, {mapped: "tracks"})
    assert found["v399"] == [("tracks", "user_main_id")]
