"""Compile every step without a warehouse: what `profiles-dagster validate` and Definitions checks rely on."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from profiles_dagster.clock import default_end_time
from profiles_dagster.errors import ErrorCollector, ProfilesError
from profiles_dagster.plan.steps import RunPlan, Step
from profiles_dagster.project.model import Project
from profiles_dagster.sql.compiler import CompileContext, StepProgram, compile_step
from profiles_dagster.sql.names import material_name, table

PLACEHOLDER_SCHEMA = "profiles"


def offline_context(project: Project, plan: RunPlan, dialect: str) -> CompileContext:
    """Material names of a would-be run (seq_no 0): the SQL is what a run would send, but for names."""
    materials = {
        s.key: table(material_name(s.material_stem, s.content_hash, 0), PLACEHOLDER_SCHEMA) for s in plan.steps
    }
    source = project.settings.sql_dialect(dialect)
    return CompileContext(project, plan, dialect, source, materials, default_end_time())


def check_offline(project: Project, plan: RunPlan, dialect: str, errors: ErrorCollector | None = None) -> int:
    """Compile each step for `dialect`, refuse what sqlglot cannot transpile, and parse the result back.

    Every step is checked on its own and all problems are raised together (`ProfilesErrors`); a step whose
    upstream step failed is skipped, as its error would only repeat the upstream one. Given `errors`, the
    problems are left there (and the failed steps in `errors.failed`) for the caller's further checks."""
    ctx = offline_context(project, plan, dialect)
    given = errors is not None
    errors = errors if errors is not None else ErrorCollector()
    for step in plan.steps:
        if any("/".join(dep) in errors.failed for dep in step.deps):
            errors.failed.add(step.path)
            continue
        with errors.item(step.path):
            check_writable(step, compile_step(step, ctx), dialect, parse_back=True)
    if not given:
        errors.raise_if_any()
    return len(plan.steps)


def check_writable(
    step: Step, program: StepProgram, dialect: str, *, parse_back: bool = False
) -> list[tuple[exp.Expr, str]]:
    """The step's SQL written for `dialect` with sqlglot's refusals raised (and parsed back, if asked): each
    node with its text, which is the text a session of that dialect runs (no refusal means nothing differs)."""
    written: list[tuple[exp.Expr, str]] = []
    for node in program.nodes:
        try:
            text = node.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
            if parse_back:
                sqlglot.parse(text, read=dialect)
        except (UnsupportedError, ParseError) as exc:
            raise _step_error(step, f"its SQL cannot be written for {dialect}: {exc}") from None
        written.append((node, text))
    return written


def _step_error(step: Step, message: str) -> ProfilesError:
    origin = step.origin
    return ProfilesError(
        f"step '{step.path}': {message}",
        file=origin.file if origin else None,
        line=origin.line if origin else None,
        column=origin.column if origin else None,
        key=origin.key if origin else None,
    )
