"""What names a step: its kind, and its key, the path of its material (`user/input_vars/identifies`)."""

from __future__ import annotations

import enum

from profiles_dagster.project.timegrains import GRAINS


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


_GRAIN = "at_"  # the last part of a step computed as of a coarser timegrain's boundary: `user/all/at_week`
_MODELS = "models"  # the first part of a custom SQL model's key, where an entity's steps have the entity
_VIEWS = "views"
_VARS = "vars"


class StepKey(tuple[str, ...]):
    """A step's key, built only by the named constructors below.

    It stays a tuple of the path's parts so it equals, hashes and sorts as the plain tuples callers
    (tests, `selected=` arguments) already hold: `plan[("user", "all")]` keeps finding `StepKey.all("user")`,
    and the translator's Dagster asset key is still the parts in order.
    """

    __slots__ = ()

    def __new__(cls, *parts: str) -> StepKey:
        return super().__new__(cls, parts)

    def __getnewargs__(self) -> tuple[str, ...]:  # pickle and copy pass the parts back
        return tuple(self)

    # -- one constructor per kind of step ---------------------------------------------------------------

    @classmethod
    def sql_model(cls, name: str) -> StepKey:
        """A custom SQL model's: under `models/`, beside the entities, as pb's paths have it."""
        return cls(_MODELS, name)

    @classmethod
    def input_vars(cls, entity: str, input_name: str) -> StepKey:
        return cls(entity, StepKind.INPUT_VARS.value, input_name)

    @classmethod
    def id_stitcher(cls, entity: str) -> StepKey:
        return cls(entity, StepKind.ID_STITCHER.value)

    @classmethod
    def all(cls, entity: str) -> StepKey:
        """The ALL cohort's: pb's `<entity>/all`."""
        return cls(entity, StepKind.ALL.value)

    @classmethod
    def input_vars_mapped(cls, entity: str, input_name: str) -> StepKey:
        """An input's rows with the entity's main id, and the input vars on them."""
        return cls(entity, StepKind.INPUT_VARS_MAPPED.value, input_name)

    @classmethod
    def entity_vars(cls, entity: str) -> StepKey:
        """The entity's var table; a cohort's has `cohort_vars`."""
        return cls(entity, StepKind.ENTITY_VARS.value)

    @classmethod
    def features(cls, entity: str) -> StepKey:
        return cls(entity, StepKind.FEATURES.value)

    @classmethod
    def cohort(cls, entity: str, name: str) -> StepKey:
        return cls(entity, StepKind.COHORT.value, name)

    @classmethod
    def cohort_vars(cls, entity: str, cohort: str) -> StepKey:
        """A cohort's var table: below its cohort, so the cohort's key prefixes both."""
        return cls(entity, StepKind.COHORT.value, cohort, _VARS)

    @classmethod
    def view(cls, entity: str, name: str) -> StepKey:
        """A feature view's, or a feature table's (pb builds both as views of var columns)."""
        return cls(entity, _VIEWS, name)

    def at(self, grain: str) -> StepKey:
        """The same step computed as of the last boundary of a coarser `grain` (pb's `time_grain` on a
        var_group): its own material beside the default grain's, keyed `<key>/at_<grain>`."""
        return StepKey(*self.base, f"{_GRAIN}{grain}")

    # -- reading one --------------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The key as the Dagster asset key, the run registry and the CLI's `-m` spell it."""
        return "/".join(self)

    @property
    def grain(self) -> str | None:
        """The coarser timegrain the step is computed at (`at`); None: the run's own (default) grain."""
        last, base = self[-1], self[:-1]
        if not last.startswith(_GRAIN) or last[len(_GRAIN) :] not in GRAINS or len(base) < 2:
            return None
        # only after a whole key: an input, model, cohort or view named `at_week` is a name, not a grain
        if base[0] == _MODELS:
            whole = len(base) == 2
        elif base[1] in (StepKind.INPUT_VARS.value, StepKind.INPUT_VARS_MAPPED.value, _VIEWS):
            whole = len(base) == 3
        elif base[1] == StepKind.COHORT.value:
            whole = len(base) == 3 or (len(base) == 4 and base[3] == _VARS)
        else:
            whole = len(base) == 2
        return last[len(_GRAIN) :] if whole else None

    @property
    def base(self) -> StepKey:
        """The key without its grain: the default grain's step of which this one is the coarser copy."""
        return StepKey(*self[:-1]) if self.grain is not None else self

    @property
    def entity(self) -> str | None:
        """The entity the step belongs to; None for a custom SQL model."""
        return None if self[0] == _MODELS else self[0]

    @property
    def kind(self) -> StepKind:
        key = self.base
        if key[0] == _MODELS:
            return StepKind.SQL_MODEL
        if key[1] == _VIEWS:
            return StepKind.VIEW
        if key[1] == StepKind.COHORT.value and len(key) == 4:
            return StepKind.COHORT_VARS
        return StepKind(key[1])

    @property
    def name(self) -> str:
        """The input, SQL model, cohort or view the key is of ('' for an entity's own steps, e.g. its id stitcher)."""
        key = self.base
        if key[0] == _MODELS:
            return key[1]
        return key[2] if len(key) > 2 else ""
