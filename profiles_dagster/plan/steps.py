"""The run plan: pb's documented run steps as data, in dependency order. No SQL, no IO."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from profiles_dagster.plan.keys import StepKey, StepKind
from profiles_dagster.plan.payloads import StepPayload
from profiles_dagster.project.model import Origin

__all__ = ["RunPlan", "Step", "StepKey", "StepKind", "StepPayload"]

P = TypeVar("P", bound=StepPayload)


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
    # what the step's SQL is built from (payloads.py): left out of equality and hashing, as content_hash stands for it
    payload: StepPayload = field(compare=False, hash=False, kw_only=True)

    @property
    def path(self) -> str:
        return "/".join(self.key)

    @property
    def grain(self) -> str | None:
        """The coarser timegrain whose last boundary the step computes as of (None: the run's end time)."""
        return self.key.grain

    @property
    def material_stem(self) -> str:
        """What its material tables are named after: the model's name, and a coarser grain's
        (`Material_user_var_table_week_<hash8>_<seq_no>` beside the default grain's `Material_user_var_table_...`)."""
        return f"{self.model_name}_{self.grain}" if self.grain else self.model_name

    def payload_as(self, kind: type[P]) -> P:
        """The payload as the type its step kind carries; a step of another kind is a programming error."""
        if not isinstance(self.payload, kind):
            raise TypeError(
                f"step {self.path} ({self.kind}) carries {type(self.payload).__name__}, not {kind.__name__}"
            )
        return self.payload


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
