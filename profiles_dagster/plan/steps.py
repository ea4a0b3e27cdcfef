"""The run plan: pb's documented run steps as data, in dependency order. No SQL, no IO."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from profiles_dagster.project.model import Origin

StepKey = tuple[str, ...]


class StepKind(enum.StrEnum):
    INPUT_VARS = "input_vars"
    SQL_MODEL = "sql_model"
    ID_STITCHER = "id_stitcher"
    ALL = "all"
    INPUT_VARS_MAPPED = "input_vars_mapped"
    ENTITY_VARS = "entity_vars"
    FEATURES = "features"
    COHORT = "cohort"
    COHORT_VARS = "cohort_vars"
    VIEW = "view"


@dataclass(frozen=True)
class Step:
    key: StepKey
    kind: StepKind
    model_name: str  # names the material: Material_<model_name>_<hash8>_<seq_no>
    entity: str | None
    deps: tuple[StepKey, ...]
    external_inputs: tuple[str, ...]  # input names read directly from the warehouse
    content_hash: str
    view_name: str | None = None  # the stable pb view repointed after a complete run
    origin: Origin | None = None
    description: str = ""
    payload: Any = field(default=None, compare=False, hash=False)

    @property
    def path(self) -> str:
        return "/".join(self.key)


@dataclass
class RunPlan:
    project_name: str
    steps: list[Step]  # topological order
    notes: list[str] = field(default_factory=list)  # models left out as pb leaves them out (enable_status)

    def __post_init__(self) -> None:
        self.by_key = {s.key: s for s in self.steps}

    def __getitem__(self, key: StepKey) -> Step:
        return self.by_key[key]

    def upstream(self, keys: Iterable[StepKey]) -> set[StepKey]:
        """Every step the given steps read from, directly or not (the keys themselves excluded)."""
        todo = list(keys)
        seen: set[StepKey] = set()
        while todo:
            for dep in self.by_key[todo.pop()].deps:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def ordered(self, keys: Iterable[StepKey]) -> list[Step]:
        wanted = set(keys)
        return [s for s in self.steps if s.key in wanted]
