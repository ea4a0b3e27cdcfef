"""A step that failed in the warehouse, named by what the user wrote: the var whose SQL the engine's error
points at (a column or function it names), else the step and its model's file and line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from profiles_dagster.errors import ProfilesError, summary
from profiles_dagster.plan.payloads import VarTablePayload
from profiles_dagster.plan.steps import Step
from profiles_dagster.project.model import Origin, Var

# what engines' errors name: DuckDB `Referenced column "x" not found`, `Scalar Function with name x does not
# exist`, `No function matches ... 'x(VARCHAR)'`; Postgres `column "x" does not exist`, `function x(text)`
_NAMED = (
    re.compile(r'"([^"]+)"'),
    re.compile(r"with name (\w+)"),
    re.compile(r"'(\w+)\("),
    re.compile(r"function (\w+)\("),
)


def step_failure(step: Step, exc: BaseException, sql_file: Path | None = None) -> ProfilesError:
    """The ProfilesError for an engine error in `step`; `sql_file` is where the SQL that failed was written."""
    text = summary(exc)
    read = f"the SQL that failed is in {sql_file}" if sql_file is not None else None
    found = _culprit(step, str(exc))
    if found is not None:
        var, key = found
        return _var_error(var, key, f"failed in the warehouse (step '{step.path}'): {text}", read)
    origin: Origin | None = step.origin  # leads the message as file:line
    return ProfilesError(
        f"step '{step.path}' failed in the warehouse: {text}",
        file=origin.file if origin else None,
        line=origin.line if origin else None,
        column=origin.column if origin else None,
        hint=read,
    )


def var_failure(step: Step, var: Var, exc: BaseException, where: str = "in the warehouse") -> ProfilesError:
    """The ProfilesError for an engine error that `var` alone causes (found by preparing it on its own): located
    at the fragment the error names, else at its select."""
    names = _names(str(exc))
    key = next((k for name in names for k, sql in _fragments(var) if _word(name).search(sql)), "select")
    return _var_error(var, key, f"failed {where} (step '{step.path}'): {summary(exc)}")


def _var_error(var: Var, key: str, what: str, hint: str | None = None) -> ProfilesError:
    """`<kind> '<name>' <what>`, located at the var's `key` (its select, where, window...)."""
    at = var.origin.at(key)
    kind = var.kind.replace("_", " ")
    return ProfilesError(
        f"{kind} '{var.name}' {what}", file=at.file, line=at.line, column=at.column, key=at.key, hint=hint
    )


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)|(?<=\.){re.escape(name)}(?!\w)", re.IGNORECASE)


def _names(message: str) -> list[str]:
    names: list[str] = []
    for pattern in _NAMED:
        names.extend(m.group(1) for m in pattern.finditer(message))
    return [n.split(".")[-1] for n in names if n.strip()]


def _culprit(step: Step, message: str) -> tuple[Var, str] | None:
    """The first var (in the order they are computed) whose select, where or window names what the error
    names; None when the step is no var table or nothing matches."""
    payload = step.payload
    if not isinstance(payload, VarTablePayload):
        return None
    for name in _names(message):
        word = _word(name)
        for planned in payload.vars:
            for key, sql in _fragments(planned.var):
                if word.search(sql):
                    return planned.var, key
    return None


def _fragments(var: Var) -> Iterator[tuple[str, str]]:
    """(key, SQL) of the parts of a var the engine runs as written."""
    spec = var.spec
    for key in ("select", "where"):
        text = getattr(spec, key, None)
        if text:
            yield key, str(text)
    window = getattr(spec, "window", None)
    if window is not None:
        for n, text in enumerate(window.partition_by):
            yield f"window.partition_by[{n}]", text
        for n, text in enumerate(window.order_by):
            yield f"window.order_by[{n}]", text
