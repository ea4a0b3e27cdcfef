"""Which materials a cleanup drops and which it keeps, decided from registry rows (no IO here).

Kept, whatever `keep` says:
- every material a stable view points at (per the registry, and any name found in the definition of a
  view in the schema that is itself kept: user views built on a material count too);
- every material written or reused by the last `keep` complete runs of the project;
- the latest complete material of every step (what Dagster shows as the asset's current table, and
  what a subset run reuses), also the latest one with the step's current definition;
- materials of runs still running.
Dropped: other registry materials of the project (older complete runs, failed and killed runs),
`Material_*` tables whose seq_no is one of the project's runs but which the registry does not know
(a run killed between CREATE TABLE and its bookkeeping), and stitcher scratch tables `_pd_*` of runs
that are no longer running. Tables of other projects or other tools in the schema are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from profiles_dagster.sql.names import MATERIAL_PREFIX
from profiles_dagster.sql.registry import UNFINISHED, MaterialRow, RunRow, Status

__all__ = ["CleanupPlan", "Drop", "MaterialRow", "RunRow", "material_seq_no", "plan_cleanup", "scratch_seq_no"]

SCRATCH_PREFIX = "_pd_"
# case-blind: Snowflake lists unquoted names in upper case
_MATERIAL = re.compile(re.escape(MATERIAL_PREFIX) + r".+_[0-9a-f]{6,}_(\d+)$", re.IGNORECASE)
_SCRATCH = re.compile(re.escape(SCRATCH_PREFIX) + r"[0-9a-f]+_(\d+)(_.*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Drop:
    name: str
    kind: str  # TABLE or VIEW
    reason: str


@dataclass
class CleanupPlan:
    keep_runs: list[int]
    drops: list[Drop] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # material -> why it stays

    def summary(self) -> str:
        return f"{len(self.drops)} to drop, {len(self.kept)} kept (runs kept: {', '.join(map(str, self.keep_runs))})"


def material_seq_no(name: str) -> int | None:
    match = _MATERIAL.match(name)
    return int(match.group(1)) if match else None


def scratch_seq_no(name: str) -> int | None:
    match = _SCRATCH.match(name)
    return int(match.group(1)) if match else None


def plan_cleanup(
    project: str,
    *,
    keep: int,
    runs: Iterable[RunRow],
    materials: Iterable[MaterialRow],
    existing: Mapping[str, str],  # name -> TABLE | VIEW, everything in the output schema
    view_pointers: Mapping[str, str] = {},  # stable view -> material, from the registry
    view_definitions: Mapping[str, str] = {},  # view name -> its SQL text, as the warehouse reports it
    current_hashes: Mapping[str, str] = {},  # step path -> content hash in the project as it is now
    running: Iterable[int] = (),  # seq_nos of runs alive now (a run's own auto-cleanup)
) -> CleanupPlan:
    if keep < 1:
        raise ValueError("keep must be at least 1")
    # the registry holds names as the run wrote them; an engine may list them in another case (Snowflake:
    # upper): compare in the listing's spelling, so a kept material is never taken for an orphan
    spelled = {name.lower(): name for name in existing}

    def as_listed(name: str) -> str:
        return spelled.get(name.lower(), name)

    materials = [replace(m, table_name=as_listed(m.table_name)) for m in materials]
    view_pointers = {view: as_listed(material) for view, material in view_pointers.items()}
    runs = list(runs)
    ours = {r.seq_no: r for r in runs if r.project == project}
    # the caller holds the run lock: an unfinished run not named in `running` is dead
    running = set(running)
    ours = {
        n: replace(r, status=Status.KILLED) if r.status in UNFINISHED and n not in running else r
        for n, r in ours.items()
    }
    complete = sorted((r.seq_no for r in ours.values() if r.status is Status.COMPLETE), reverse=True)
    plan = CleanupPlan(keep_runs=sorted(complete[:keep]))
    kept_runs = set(plan.keep_runs)
    rows = [m for m in materials if m.project == project and m.status is not Status.DROPPED]
    kept = plan.kept

    def keep_table(name: str, why: str) -> None:
        kept.setdefault(name, why)

    for view, material in view_pointers.items():
        keep_table(material, f"view {view} points at it")
    for m in rows:
        if m.seq_no in kept_runs:
            keep_table(m.table_name, f"{'read' if m.status is Status.REUSED else 'written'} by kept run {m.seq_no}")
        elif m.seq_no in running:
            keep_table(m.table_name, f"run {m.seq_no} is running")
    latest: dict[str, MaterialRow] = {}
    latest_current: dict[str, MaterialRow] = {}
    for m in sorted(rows, key=lambda m: m.seq_no):
        run = ours.get(m.seq_no)
        if m.status not in (Status.COMPLETE, Status.REUSED) or run is None or run.status is not Status.COMPLETE:
            continue
        latest[m.step] = m
        if current_hashes.get(m.step) == m.content_hash:
            latest_current[m.step] = m
    for m in (*latest.values(), *latest_current.values()):
        keep_table(m.table_name, f"latest complete material of {m.step}")

    candidates: dict[str, Drop] = {}
    for m in rows:
        if m.table_name in kept or m.table_name not in existing:
            continue
        run = ours.get(m.seq_no)
        status = run.status if run else "unknown"
        why = f"run {m.seq_no} ({status})" + (" is older than the kept runs" if status is Status.COMPLETE else "")
        candidates.setdefault(m.table_name, Drop(m.table_name, existing[m.table_name], why))
    known = {m.table_name for m in rows} | {m.table_name for m in materials}
    for name, kind in existing.items():
        if name in kept or name in candidates:
            continue
        seq = material_seq_no(name)
        if seq is not None and seq in ours and name not in known and seq not in running:
            candidates[name] = Drop(name, kind, f"orphan of run {seq} ({ours[seq].status}): not in the registry")
            continue
        seq = scratch_seq_no(name)
        if seq is not None and seq in ours and seq not in running:
            candidates[name] = Drop(name, kind, f"id stitcher scratch table of run {seq} ({ours[seq].status})")

    # views that stay keep what they read: a user's view over a material, or a material that is a view
    while True:
        staying = [v for v in view_definitions if v not in candidates]
        rescued = [
            name for name in candidates if any(_mentions(view_definitions[v], name) for v in staying if v != name)
        ]
        if not rescued:
            break
        for name in rescued:
            reader = next(v for v in staying if v != name and _mentions(view_definitions[v], name))
            keep_table(name, f"view {reader} reads it")
            del candidates[name]
    plan.drops = sorted(candidates.values(), key=lambda d: (d.kind != "VIEW", d.name))
    plan.kept = {name: why for name, why in kept.items() if name in existing}
    return plan


def _mentions(sql: str, name: str) -> bool:
    """Whether a view's SQL names a table: as a whole identifier, quoted or not."""
    pattern = r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])"
    return re.search(pattern, sql or "", re.IGNORECASE) is not None
