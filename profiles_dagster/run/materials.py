"""Which table each step of a run reads or writes: new names for the selected steps, and for the upstream
they read, the latest complete material of its current definition (a never-materialized one stops the run)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from profiles_dagster.errors import ProfilesError
from profiles_dagster.plan.steps import RunPlan, Step, StepKey
from profiles_dagster.run.recording import RunRecord
from profiles_dagster.run.resume import Resume
from profiles_dagster.sql import registry
from profiles_dagster.sql.names import material_name, table
from profiles_dagster.sql.registry import MaterialRow, Status


def step_materials(
    record: RunRecord, plan: RunPlan, steps: Sequence[Step], resume: Resume | None
) -> dict[StepKey, exp.Table]:
    """The material of every step the selection writes or reads, the reused ones recorded as such.

    Continuing run N (`resume`), the steps N already completed with their current definition keep their
    material (unless `--force`; noted in `resume.kept`), and the upstream they read is N's own where N has it.
    """
    schema, seq_no = record.schema, record.seq_no
    selected = {s.key for s in steps}
    materials = {s.key: table(material_name(s.material_stem, s.content_hash, seq_no), schema) for s in steps}
    if resume is not None and not resume.force:
        for step in steps:
            found = _run_material(record, step)
            if found:
                materials[step.key] = table(found.table_name, schema)
                resume.kept[step.key] = found.row_count
    missing = []
    reused: list[tuple[Step, str]] = []
    for step in plan.ordered(plan.upstream(selected) - selected):
        own = _run_material(record, step) if resume is not None else None
        if own:
            materials[step.key] = table(own.table_name, schema)
            continue  # run N's own material: already registered as written by N
        latest = registry.latest_existing_material(
            record.session, record.session.table_exists, schema, record.project, step.path, step.content_hash
        )
        if latest is not None:
            materials[step.key] = table(latest.table_name, schema)
            reused.append((step, latest.table_name))
        else:
            missing.append(step.path)
    if missing:
        raise ProfilesError(
            f"the selection reads {', '.join(missing)}, never materialized with their current definition; "
            "include them in the selection (or materialize them first)"
        )
    for step, name in reused:  # what this run reads from earlier runs: retention keeps it while needed
        record.material(step, name, Status.REUSED, finished=True)
    return materials


def _run_material(record: RunRecord, step: Step) -> MaterialRow | None:
    """The complete material this run's seq_no wrote for the step's current definition, if its table exists."""
    return registry.latest_existing_material(
        record.session,
        record.session.table_exists,
        record.schema,
        record.project,
        step.path,
        step.content_hash,
        seq_no=record.seq_no,
    )
