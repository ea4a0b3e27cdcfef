"""The SQL a compile or a run sends, one file per step under `output/<target>/seq_no_<n>/`, as pb writes it:
read it afterwards, run it by hand, diff two runs."""

from __future__ import annotations

from pathlib import Path

from profiles_dagster.plan.steps import Step


def sql_folder(project_root: Path, target: str, seq_no: int) -> Path:
    return project_root / "output" / target / f"seq_no_{seq_no}"


def write_step_sql(folder: Path, position: int, step: Step, sql: str) -> Path:
    """`position` is the step's 1-based place in the run, so the files sort in the order they ran."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{position:02d}_{step.path.replace('/', '__')}.sql"
    path.write_text(sql + "\n", encoding="utf-8")
    return path
