"""`profiles-dagster show ...`: what a project builds and in which order, as text or Graphviz dot."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.planner import build_plan, model_refs
from profiles_dagster.plan.steps import RunPlan, StepKind
from profiles_dagster.project.loader import load_project


def show_models(plan: RunPlan, *, dot: bool = False) -> str:
    """One line per step, with the pb model reference `--model_refs` takes for it; then the plan's notes."""
    refs: dict[tuple[str, ...], str] = {}
    for ref, keys in sorted(model_refs(plan).items(), key=lambda kv: (not kv[0].startswith("models/"), kv[0])):
        for key in keys:
            if len(keys) == 1 and ref != "/".join(key):  # a var's ref stands for its var table: not listed
                refs.setdefault(key, ref)
    for step in plan.steps:
        if step.kind is StepKind.ENTITY_VARS:
            refs[step.key] = f"{step.entity}/all/var_table"
    lines = [f"{'step':<48} {'kind':<18} {'stable view':<32} {'pb ref (--model_refs)':<36} defined at"]
    for step in plan.steps:
        origin = f"{step.origin.file.name}:{step.origin.line}" if step.origin else "(derived)"
        ref = refs.get(step.key, step.path)
        lines.append(f"{step.path:<48} {step.kind.value:<18} {step.view_name or '-':<32} {ref:<36} {origin}")
    lines.extend(f"note: {note}" for note in plan.notes)
    return "\n".join(lines)


def show_dependencies(plan: RunPlan, *, dot: bool = False) -> str:
    if dot:
        lines = [f'digraph "{plan.project_name}" {{', "  rankdir=LR;", "  node [shape=box];"]
        for step in plan.steps:
            for name in step.external_inputs:
                lines.append(f'  "inputs/{name}" [shape=cylinder];')
                lines.append(f'  "inputs/{name}" -> "{step.path}";')
            for dep in step.deps:
                lines.append(f'  "{"/".join(dep)}" -> "{step.path}";')
        lines.append("}")
        return "\n".join(dict.fromkeys(lines))
    lines = []
    for step in plan.steps:
        reads = [f"inputs/{n}" for n in step.external_inputs] + ["/".join(d) for d in step.deps]
        lines.append(f"{step.path}  <-  {', '.join(reads) if reads else '(nothing)'}")
    return "\n".join(lines)


PlanView = Callable[..., str]
SHOW: dict[str, Callable[[argparse.Namespace], str]] = {
    "models": lambda args: show_models(build_plan(load_project(args.project_dir))),
    "dependencies": lambda args: show_dependencies(build_plan(load_project(args.project_dir)), dot=args.dot),
}


def show(args: argparse.Namespace) -> int:
    handler = SHOW.get(args.what)
    if handler is None:
        raise ProfilesError(f"nothing called '{args.what}' to show; choose from {', '.join(sorted(SHOW))}")
    print(handler(args))
    return 0
