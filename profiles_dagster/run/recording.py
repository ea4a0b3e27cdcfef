"""A run's own rows in the run registry: the run, and each material it writes or reuses.

A material is registered before its table exists (status `running`), so a kill mid-step leaves a row
`cleanup` can find; the SQL of each row is `sql/registry.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from profiles_dagster.clock import now_utc
from profiles_dagster.lock import RunLock
from profiles_dagster.plan.steps import Step
from profiles_dagster.sql import registry
from profiles_dagster.sql.registry import Status
from profiles_dagster.warehouse.base import Session


@dataclass
class RunRecord:
    """The registry rows of one run of `project` in `schema`; `seq_no` is 0 until the run has one."""

    session: Session
    schema: str
    project: str
    seq_no: int = 0

    def open(self, lock: RunLock, end_time: datetime, begin_time: datetime | None) -> int:
        """A new run: the next seq_no, recorded as running under `lock` (which the caller holds)."""
        session = self.session
        self.seq_no = int(session.query(session.render(registry.next_seq_no(self.schema)))[0][0]) + 1
        session.run(
            registry.insert(
                self.schema,
                registry.RUNS,
                {
                    "seq_no": self.seq_no,
                    "project": self.project,
                    "status": Status.RUNNING,
                    "started_at": now_utc(),
                    "end_time": end_time,
                    "begin_time": begin_time,
                    "run_id": lock.run_id,
                    "pid": lock.pid,
                    "host": lock.host,
                    "heartbeat_at": now_utc(),
                },
            )
        )
        return self.seq_no

    def material(self, step: Step, table_name: str, status: Status, *, finished: bool = False) -> None:
        """A material of this run: one it starts writing (`running`), or one it reads from an earlier run."""
        row: dict[str, object] = {
            "seq_no": self.seq_no,
            "project": self.project,
            "step": step.path,
            "content_hash": step.content_hash,
            "table_name": table_name,
            "status": status,
            "started_at": now_utc(),
        }
        if finished:
            row["finished_at"] = row["started_at"]
        self.session.run(registry.insert(self.schema, registry.MATERIALS, row))

    def finish_material(self, step: Step, status: Status, rows: int | None, seconds: float) -> None:
        self.session.run(
            registry.finish_material(self.schema, self.seq_no, step.path, status, rows, seconds, now_utc())
        )

    def reject(self, step: Step) -> None:
        """A blocking check failed on this step's material: later runs must not reuse it as their upstream."""
        self.session.run(
            registry.update(
                self.schema,
                registry.MATERIALS,
                {"status": Status.REJECTED},
                exp.and_(registry.eq("seq_no", self.seq_no), registry.eq("step", step.path)),
            )
        )

    def publishing(self, views: list[tuple[str, str]]) -> None:
        """Where the views go (view -> material) and status `publishing`, in one transaction: a run killed
        while publishing is finished by the next one (roll forward)."""
        session = self.session
        with session.transaction():
            for statement in registry.record_views(self.schema, self.project, self.seq_no, views, now_utc()):
                session.run(statement)
            session.run(
                registry.update(
                    self.schema, registry.RUNS, {"status": Status.PUBLISHING}, registry.eq("seq_no", self.seq_no)
                )
            )

    def finish(self, status: Status, message: str | None = None) -> None:
        self.session.run(registry.finish_run(self.schema, self.seq_no, status, now_utc(), message))

    def restore(self, record: dict[str, object]) -> None:
        """Put back a run's own end of record (`compile --seq_no N` leaves N as it was)."""
        self.session.run(registry.update(self.schema, registry.RUNS, record, registry.eq("seq_no", self.seq_no)))
