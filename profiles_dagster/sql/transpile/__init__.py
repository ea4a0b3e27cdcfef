"""A project's SQL, from the dialect it is written in to the engine that runs it, with its meaning kept.

sqlglot parses the project's dialect and writes the engine's; where its rewrite would change a value
(a 0-based index kept on a 1-based engine, a function whose NULL rule differs, ...) a rule here rewrites the
tree first, and where no faithful rewrite exists a rule refuses the construct (`UnfaithfulError`), which the
compiler reports at `validate` with the var or model and its file:line. A different answer is never an
option.

Rules are registered per (source dialect, target engine) pair by the modules of this package, one theme each;
`translate` applies those of the pair to a parsed fragment, a sql model or a filter, before generation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlglot import exp

Rule = Callable[[exp.Expr], exp.Expr]

_RULES: dict[tuple[str, str], list[Rule]] = {}


class UnfaithfulError(Exception):
    """A construct of the source dialect the target engine cannot compute with the same meaning."""

    def __init__(self, construct: str, reason: str) -> None:
        super().__init__(f"{construct}: {reason}")
        self.construct = construct
        self.reason = reason


def rule(pairs: Iterable[tuple[str, str]]) -> Callable[[Rule], Rule]:
    """Register a node transform for each (source, target) pair, applied in registration order."""

    def register(fn: Rule) -> Rule:
        for pair in pairs:
            _RULES.setdefault(pair, []).append(fn)
        return fn

    return register


def rules_for(source: str, target: str) -> list[Rule]:
    return list(_RULES.get((str(source), str(target)), ()))


def translate(tree: exp.Expr, source: str, target: str) -> exp.Expr:
    """`tree` (parsed as `source`) rewritten so that the `target` engine's SQL means what it meant; raises
    `UnfaithfulError` for a construct that cannot keep its meaning there. The tree is not modified."""
    rules = rules_for(source, target)
    if not rules:
        return tree
    out = tree.copy()
    for fn in rules:
        out = out.transform(fn, copy=False)
    return out


# the rule modules register themselves on import
from profiles_dagster.sql.transpile import _registered  # noqa: E402,F401

__all__ = ["Rule", "UnfaithfulError", "rule", "rules_for", "translate"]
