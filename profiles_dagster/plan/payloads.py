"""What each kind of step carries from the project to the SQL that builds it: one named type per kind.

The project's own frozen models serve where they are the whole story (an input, a custom SQL model, an id
stitcher); the other kinds get a type here, so the compiler, the checks and the translator read fields by
name and a type checker sees a change of shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiles_dagster.plan.keys import StepKey
from profiles_dagster.plan.vars import PlannedVar
from profiles_dagster.project.model import Cohort, FeatureView, IdStitcher, Input, SqlModel


@dataclass(frozen=True)
class AllPayload:
    """The ALL cohort: every main id of the entity's identity graph."""

    id_stitcher: StepKey


@dataclass(frozen=True)
class MappedPayload:
    """An input's (or a sql model's) rows with the entity's main id and the input vars computed on them."""

    input: Input | SqlModel
    input_vars: StepKey  # the input's numbered rows, or the sql model's table
    id_stitcher: StepKey
    vars: tuple[PlannedVar, ...]  # in dependency order


@dataclass(frozen=True)
class VarTablePayload:
    """An entity's var table, or a cohort's."""

    entity: str
    cohort: str | None
    vars: tuple[PlannedVar, ...]  # in dependency order
    inherited: tuple[str, ...]  # entity var names a cohort var table carries along
    declared: tuple[str, ...]  # own var names in the order the YAML declares them (the column order)
    inherit_from: StepKey | None = None  # the var table whose columns a cohort's var table carries
    # a cohort of the entity: the features of the entity's coarser-grain var tables it carries, LEFT JOINed on
    # the main id as pb's cohort views do (a cohort extending another carries them among `inherited`)
    coarser: tuple[tuple[StepKey, tuple[str, ...]], ...] = ()

    @property
    def base(self) -> StepKey:
        """The table whose members are the rows: the cohort's, or the entity's ALL cohort."""
        return StepKey.cohort(self.entity, self.cohort) if self.cohort else StepKey.all(self.entity)


@dataclass(frozen=True)
class FeaturesPayload:
    entity_vars: StepKey
    features: tuple[str, ...]  # the is_feature vars, in the var table's order
    # var tables of coarser var_groups (pb's time_grain) and their is_feature vars: LEFT JOINed on the main id,
    # so a profile their boundary's stitching does not know gets NULL, as in pb
    coarser: tuple[tuple[StepKey, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class CohortPayload:
    """A cohort filters its parent's members (the entity's ALL cohort, or the cohort it extends) on the
    parent's vars."""

    cohort: Cohort
    parent: StepKey
    parent_vars: StepKey


@dataclass(frozen=True)
class ViewPayload:
    view: FeatureView
    columns: tuple[str, ...]  # the var columns, in output order
    source: StepKey  # the var table (or feature table) the columns come from
    id_stitcher: StepKey | None  # the graph a view keyed by another id type reads its ids from
    # a feature table's columns from coarser-grain var tables (pb's time_grain), LEFT JOINed on the main id
    coarser: tuple[tuple[StepKey, tuple[str, ...]], ...] = ()
    # pb's feature_table_model writes the run's end time as `valid_at` after the main id (pb 0.26.4)
    valid_at: bool = False


StepPayload = (
    Input
    | SqlModel
    | IdStitcher
    | AllPayload
    | MappedPayload
    | VarTablePayload
    | FeaturesPayload
    | CohortPayload
    | ViewPayload
)
